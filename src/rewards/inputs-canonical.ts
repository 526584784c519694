// The canonical form of an epoch's inputs, hashed into its report's `inputs_hash`: one object per
// node in node-id order, stake as micro-units text, as canonical JSON. Pure and shared: the Worker
// hashes it when it closes an epoch, `gridlease-runner verify-epoch` when it checks one, each with
// its own SHA-256.
import { canonicalJson } from '../contracts/canonical-json.ts';
import type { NodeInputs } from './weights.ts';

export function canonicalInputs(i: NodeInputs) {
  return {
    node_id: i.nodeId,
    owner_id: i.ownerId,
    gpu_model: i.gpuModel,
    gpus_offered: i.gpusOffered,
    confirmed_s: i.confirmedS,
    leased_gpu_s: i.leasedGpuS,
    verified: i.verified,
    stake: i.stake.toString(),
  };
}

/** The text whose SHA-256 (hex) is the epoch's inputs hash. */
export function inputsCanonicalJson(lines: readonly NodeInputs[]): string {
  const sorted = [...lines].sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  return canonicalJson(sorted.map(canonicalInputs));
}
