// A binary SHA-256 Merkle tree with domain-separated hashes (RFC 6962 style): a leaf is
// SHA-256(0x00 ‖ bytes), an inner node SHA-256(0x01 ‖ left ‖ right), so a leaf can never pass for
// a node. A level with an odd count promotes its last node unchanged to the next level instead of
// pairing it with itself, so no two leaf lists share a root (the duplication flaw, CVE-2012-2459).
import { concatBytes, type Sha256 } from './sha256.ts';

export const HASH_BYTES = 32;
/** Leaf indices stay int32 so the bit arithmetic on them is exact. */
export const MAX_LEAVES = 0x7fffffff;
const LEAF = Uint8Array.of(0x00);
const NODE = Uint8Array.of(0x01);

export const leafHash = (bytes: Uint8Array, sha256: Sha256) => sha256(concatBytes(LEAF, bytes));
export const nodeHash = (left: Uint8Array, right: Uint8Array, sha256: Sha256) => sha256(concatBytes(NODE, left, right));

/** Every level's hashes, each level one buffer of count × 32 bytes; the last level is the root. */
export interface MerkleTree {
  leafCount: number;
  levels: Uint8Array[];
}

const at = (level: Uint8Array, index: number) => level.subarray(index * HASH_BYTES, (index + 1) * HASH_BYTES);

export async function buildMerkleTree(leafCount: number, leaf: (index: number) => Uint8Array, sha256: Sha256): Promise<MerkleTree> {
  if (!Number.isSafeInteger(leafCount) || leafCount < 1 || leafCount > MAX_LEAVES) throw new RangeError('a tree needs 1 to 2³¹ − 1 leaves');
  let level = new Uint8Array(leafCount * HASH_BYTES);
  for (let i = 0; i < leafCount; i++) level.set(await leafHash(leaf(i), sha256), i * HASH_BYTES);
  const levels = [level];
  for (let count = leafCount; count > 1; count = Math.ceil(count / 2)) {
    const next = new Uint8Array(Math.ceil(count / 2) * HASH_BYTES);
    for (let i = 0; i + 1 < count; i += 2) next.set(await nodeHash(at(level, i), at(level, i + 1), sha256), (i / 2) * HASH_BYTES);
    if (count % 2 === 1) next.set(at(level, count - 1), ((count - 1) / 2) * HASH_BYTES);
    levels.push(next);
    level = next;
  }
  return { leafCount, levels };
}

export const merkleRoot = (tree: MerkleTree): Uint8Array => tree.levels[tree.levels.length - 1]!.slice();

/** The sibling hashes from the leaf up; a promoted node has no sibling at that level and adds none. */
export function merklePath(tree: MerkleTree, index: number): Uint8Array[] {
  if (!Number.isInteger(index) || index < 0 || index >= tree.leafCount) throw new RangeError('no such leaf');
  const path: Uint8Array[] = [];
  let count = tree.leafCount;
  for (let depth = 0; count > 1; depth++, index >>= 1, count = Math.ceil(count / 2)) {
    const sibling = index ^ 1;
    if (sibling < count) path.push(at(tree.levels[depth]!, sibling).slice());
  }
  return path;
}

/** How many hashes the path of leaf `index` in a tree of `leafCount` leaves has. */
export function merklePathLength(leafCount: number, index: number): number {
  let length = 0;
  for (let count = leafCount; count > 1; index >>= 1, count = Math.ceil(count / 2)) if ((index ^ 1) < count) length++;
  return length;
}

/**
 * Whether `leafBytes` is leaf `index` of the tree of `leafCount` leaves with this root. The path's
 * shape follows from (index, leafCount), so a path of the wrong length fails. Never throws.
 */
export async function verifyMerklePath(
  root: Uint8Array,
  leafCount: number,
  index: number,
  leafBytes: Uint8Array,
  path: readonly Uint8Array[],
  sha256: Sha256,
): Promise<boolean> {
  if (!Number.isSafeInteger(leafCount) || leafCount < 1 || leafCount > MAX_LEAVES) return false;
  if (!Number.isSafeInteger(index) || index < 0 || index >= leafCount) return false;
  if (root.length !== HASH_BYTES || path.length !== merklePathLength(leafCount, index)) return false;
  if (path.some((h) => h.length !== HASH_BYTES)) return false;
  let hash = await leafHash(leafBytes, sha256);
  let step = 0;
  for (let count = leafCount; count > 1; index = Math.floor(index / 2), count = Math.ceil(count / 2)) {
    const sibling = index ^ 1;
    if (sibling >= count) continue;
    const other = path[step++]!;
    hash = index % 2 === 0 ? await nodeHash(hash, other, sha256) : await nodeHash(other, hash, sha256);
  }
  return equalBytes(hash, root);
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
