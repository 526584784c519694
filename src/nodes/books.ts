// Which RegionBooks hold something of a node: an ask that is open or fully leased (its GPUs come
// back to it when a lease ends, until it expires) or a live lease. Each such book must hear
// whether the node is online and how far it is trusted, or it sells what cannot be delivered.
import type { Client } from '@libsql/client/web';

export interface NodeInBook {
  id: string;
  status: string;
  reliabilityPpm: number;
  verified: boolean;
}

export interface BookOfNodes {
  region: string;
  gpuModel: string;
  nodes: NodeInBook[];
}

const CHUNK = 500;

/** The books holding asks or live leases of `nodeIds`, each with those nodes as libSQL has them now. */
export async function booksHoldingNodes(client: Client, nodeIds: string[], now = Date.now()): Promise<BookOfNodes[]> {
  const byBook = new Map<string, BookOfNodes & { seen: Set<string> }>();
  for (let i = 0; i < nodeIds.length; i += CHUNK) {
    const chunk = nodeIds.slice(i, i + CHUNK);
    const marks = chunk.map(() => '?').join(',');
    const rs = await client.execute({
      sql: `SELECT h.node_id, h.region, h.gpu_model, n.status, n.reliability_ppm, n.verified FROM (
              SELECT node_id, region, gpu_model FROM orders
               WHERE side = 'sell' AND status IN ('open', 'filled') AND expires_at > ? AND node_id IN (${marks})
              UNION
              SELECT node_id, region, gpu_model FROM leases WHERE state IN ('provisioning', 'running') AND node_id IN (${marks})
            ) h JOIN nodes n ON n.id = h.node_id`,
      args: [now, ...chunk, ...chunk],
    });
    for (const r of rs.rows) {
      const key = `${r.region}:${r.gpu_model}`;
      const book = byBook.get(key) ?? { region: String(r.region), gpuModel: String(r.gpu_model), nodes: [], seen: new Set<string>() };
      byBook.set(key, book);
      const id = String(r.node_id);
      if (book.seen.has(id)) continue;
      book.seen.add(id);
      book.nodes.push({ id, status: String(r.status), reliabilityPpm: Number(r.reliability_ppm), verified: Number(r.verified) === 1 });
    }
  }
  return [...byBook.values()].map(({ seen: _, ...book }) => book);
}
