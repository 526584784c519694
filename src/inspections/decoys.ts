// Decoy transcripts: capacity answers the platform makes up, known good or known bad, that an
// inspector cannot tell from a real node's without doing the work: a rubber-stamping inspector
// passes a bad one (or fails a good one) and is slashed. Pure: keys, signing and randomness are
// injected.
//
// A decoy is built like an honest answer but only where anyone can look: the opened leaves are
// the exact product entries (every one of them, so an inspector's own picks inside them hold),
// and every subtree that covers no opened leaf is a random 32-byte hash, which no one can tell
// from a real subtree's hash without its preimage. Building one costs m·leaf·n multiply-adds per
// GPU instead of n³ (and at most 2n generated lines of A and B per GPU). A known-bad decoy changes one opened entry before hashing: a wrong value
// under a valid path, exactly what a real node that skipped work shows.
import type { CapacityChallenge, OpeningRequest } from '../contracts/inspections.ts';
import { COMMITMENT_DOMAIN, commitmentFields } from '../contracts/inspections.ts';
import type { Transcript } from '../contracts/inspector-verdicts.ts';
import { signedMessage } from '../contracts/signed-message.ts';
import { challengeParams, encodeOpenings } from './capacity-wire.ts';
import { fromHex, toHex } from './encoding.ts';
import { dot, fillLine, matrixKey } from './matrices.ts';
import { leafHash, nodeHash } from './merkle.ts';
import { leafCountFor, leafEntries, leafOf, openingPositions, type Opening } from './openings.ts';
import type { Sha256 } from './sha256.ts';

export interface DecoyInput {
  inspectionId: string;
  nodeId: string;
  nodePublicKey: string;
  challenge: CapacityChallenge;
  request: OpeningRequest;
  expect: 'pass' | 'fail';
  order: Transcript['order_processing'];
}

export interface DecoyDeps {
  sha256: Sha256;
  sign: (message: Uint8Array) => Promise<string>;
  randomBytes: (length: number) => Uint8Array;
  /** Uniform in [0, 1): which GPU and opening a known-bad decoy gets wrong. */
  random: () => number;
}

/** The decoy's transcript, signed with the decoy node's key. */
export async function buildDecoyTranscript(input: DecoyInput, deps: DecoyDeps): Promise<Transcript> {
  const { seed, n, gpuCount, leafSize } = challengeParams(input.challenge);
  const openSeed = fromHex(input.request.open_seed)!;
  const leafCount = leafCountFor(n, leafSize);
  const wrongGpu = Math.floor(deps.random() * gpuCount);
  const wrongOpening = Math.floor(deps.random() * input.request.count);
  const roots: string[] = [];
  const answers: Opening[][] = [];
  for (let gpu = 0; gpu < gpuCount; gpu++) {
    const keyA = await matrixKey(seed, gpu, 'A', deps.sha256);
    const keyB = await matrixKey(seed, gpu, 'B', deps.sha256);
    const positions = await openingPositions(seed, openSeed, gpu, n, input.request.count, deps.sha256);
    const leaves = new Map<number, Uint8Array>();
    // Each row of A and column of B is generated once per GPU, however many opened entries use it
    // (a leaf spans few rows and, at small n, the openings cover most of C): at most 2n lines.
    const rows = new Map<number, Int8Array>();
    const cols = new Map<number, Int8Array>();
    const lineOf = (cache: Map<number, Int8Array>, key: typeof keyA, line: number) => {
      let out = cache.get(line);
      if (!out) fillLine(key, line, n, (out = new Int8Array(n))), cache.set(line, out);
      return out;
    };
    for (const p of positions) {
      const { leafIndex } = leafOf(n, leafSize, p);
      if (leaves.has(leafIndex)) continue;
      const count = leafEntries(n, leafSize, leafIndex);
      const bytes = new Uint8Array(count * 4);
      const view = new DataView(bytes.buffer);
      for (let e = 0; e < count; e++) {
        const flat = leafIndex * leafSize + e;
        view.setInt32(e * 4, dot(lineOf(rows, keyA, Math.floor(flat / n)), 0, lineOf(cols, keyB, flat % n), 0, n), true);
      }
      leaves.set(leafIndex, bytes);
    }
    if (input.expect === 'fail' && gpu === wrongGpu) {
      const { leafIndex, offset } = leafOf(n, leafSize, positions[wrongOpening]!);
      const view = new DataView(leaves.get(leafIndex)!.buffer);
      view.setInt32(offset * 4, view.getInt32(offset * 4, true) + 1 + Math.floor(deps.random() * 1000), true);
    }
    const tree = await sparseTree(leafCount, leaves, deps);
    roots.push(toHex(tree.root));
    answers.push(
      positions.map((p) => {
        const { leafIndex } = leafOf(n, leafSize, p);
        return { leafIndex, leaf: leaves.get(leafIndex)!, path: tree.path(leafIndex) };
      }),
    );
  }
  const commitment = { challenge_id: input.challenge.challenge_id, roots };
  const signature = await deps.sign(signedMessage(COMMITMENT_DOMAIN, commitmentFields(input.nodeId, input.challenge, commitment)));
  return {
    inspection_id: input.inspectionId,
    kind: 'capacity',
    node_id: input.nodeId,
    node_public_key: input.nodePublicKey,
    challenge: input.challenge as unknown as Record<string, unknown>,
    registered_gpu_uuids: [],
    identity: null,
    capacity: { commitment, signature, opening_request: input.request, openings: encodeOpeningsOnce(input.challenge.challenge_id, answers) },
    order_processing: input.order,
  };
}

/**
 * encodeOpenings's wire shape, each distinct leaf and hash encoded once: openings often share a
 * leaf (at small n they cover most of C), and each carries the leaf's bytes again.
 */
function encodeOpeningsOnce(challengeId: string, gpus: readonly (readonly Opening[])[]): ReturnType<typeof encodeOpenings> {
  const hex = new Map<Uint8Array, string>();
  const hexOf = (h: Uint8Array) => hex.get(h) ?? (hex.set(h, toHex(h)), hex.get(h)!);
  return {
    challenge_id: challengeId,
    gpus: gpus.map((openings) => {
      const leaves = new Map<Uint8Array, string>();
      return openings.map((o) => {
        let leaf = leaves.get(o.leaf);
        if (leaf === undefined) leaves.set(o.leaf, (leaf = encodeOpenings(challengeId, [[{ ...o, path: [] }]]).gpus[0]![0]!.leaf));
        return { leaf_index: o.leafIndex, leaf, path: o.path.map(hexOf) };
      });
    }),
  };
}

/**
 * A Merkle tree (merkle.ts's shape: odd last node promoted) where only the given leaves are real
 * and every node covering none of them is random: its root, and the paths of the given leaves.
 */
export async function sparseTree(leafCount: number, leaves: ReadonlyMap<number, Uint8Array>, deps: Pick<DecoyDeps, 'sha256' | 'randomBytes'>) {
  let level = new Map<number, Uint8Array>();
  for (const [index, bytes] of leaves) level.set(index, await leafHash(bytes, deps.sha256));
  const levels: Map<number, Uint8Array>[] = [];
  for (let count = leafCount; count > 1; count = Math.ceil(count / 2)) {
    const next = new Map<number, Uint8Array>();
    for (const index of [...level.keys()].sort((a, b) => a - b)) {
      const parent = index >> 1;
      if (next.has(parent)) continue;
      const left = parent * 2;
      const right = left + 1;
      if (right >= count) {
        next.set(parent, level.get(left)!);
        continue;
      }
      if (!level.has(left)) level.set(left, deps.randomBytes(32));
      if (!level.has(right)) level.set(right, deps.randomBytes(32));
      next.set(parent, await nodeHash(level.get(left)!, level.get(right)!, deps.sha256));
    }
    levels.push(level);
    level = next;
  }
  const root = level.get(0)!;
  return {
    root,
    path(index: number): Uint8Array[] {
      const out: Uint8Array[] = [];
      let count = leafCount;
      for (let depth = 0; count > 1; depth++, index >>= 1, count = Math.ceil(count / 2)) {
        const sibling = index ^ 1;
        if (sibling < count) out.push(levels[depth]!.get(sibling)!);
      }
      return out;
    },
  };
}
