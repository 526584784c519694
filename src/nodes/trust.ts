// A node's trust (its reliability and whether inspection verified it) decides which bids its
// asks may match: `min_reliability`, `verified_only`. Books match on the node's current values,
// so every change to them in libSQL must be followed by `publishNodeTrust`.
import type { Bindings } from '../env.ts';
import { connection } from '../db/client.ts';
import { regionBook } from '../durable/region-book.ts';
import { booksHoldingNodes } from './books.ts';

/**
 * Reads the node's current reliability and verification from libSQL and tells every book that
 * holds its asks or leases; returns how many books were told. Idempotent: call it again (or
 * retry it) whenever unsure, it always sends what libSQL says now. Throws when a book or libSQL
 * cannot be reached, so a caller retries it as one of its own steps.
 */
export async function publishNodeTrust(env: Bindings, nodeId: string): Promise<number> {
  const books = await booksHoldingNodes(connection(env).client, [nodeId]);
  await Promise.all(
    books.map((b) => {
      const node = b.nodes.find((n) => n.id === nodeId)!;
      return regionBook(env, b.region, b.gpuModel).setNodeTrust(nodeId, { reliabilityPpm: node.reliabilityPpm, verified: node.verified });
    }),
  );
  return books.length;
}
