// One epoch's split (docs/rewards.md, Taper, Cap, Split). Pure bigint; every division floors.
//
//   P0    = max(0, E − inspector pay)
//   taper = max(floor, 10^6 − ⌈ΣL · 10^12 / (ΣG · full)⌉) ppm, ΣL leased GPU-seconds and
//           ΣG = Σ gpus_offered · epoch_s over the eligible nodes (10^6 when there is no capacity)
//   P     = ⌊P0 · taper / 10^6⌋                           (providersEmission)
//   cap   = ⌊P · REWARDS_OWNER_CAP_PPM / 10^6⌋
//   water-filling over owners (weight W_o = Σ of its nodes' weights): with R what is left after
//   the capped owners' caps and W the uncapped owners' weight, every owner with R · W_o > cap · W
//   (exact, no rounding) is capped; repeated until none is over. Then
//     a node of a capped owner gets   ⌊cap · w_i / W_o⌋
//     a node of an uncapped owner gets ⌊R · w_i / W⌋
//   returned = P0 − paid: the taper's cut, what no uncapped owner was left to take, and every
//   floor's remainder. So paid + returned = P0 exactly, and no owner ever gets more than cap.
//
// What the cap does and doesn't do: it is per owner account. One operator running k accounts
// can receive up to k · cap (each account is capped separately); splitting nodes across
// accounts gives nothing when no account is capped (an uncapped node's amount depends only on R
// and W, not on who owns it), and it gets around the cap only as far as the operator can spread
// real, verified, online GPUs across accounts. It limits concentration per account, not per person.
import { PPM, type RewardsConfig } from './config.ts';
import { countedLeasedGpuS, eligible, weight, type NodeInputs } from './weights.ts';

export interface SplitLine {
  nodeId: string;
  ownerId: string;
  weight: bigint;
  amount: bigint;
}

export interface SplitResult {
  /** Eligible nodes only, by nodeId. */
  lines: SplitLine[];
  /** ⌊ΣL · 10^6 / ΣG⌋ over eligible nodes. */
  utilisationPpm: number;
  taperPpm: number;
  /** After inspector pay and the taper, before the cap. */
  providersEmission: bigint;
  paid: bigint;
  /** To the pool: the taper's cut, cap leftovers and rounding (= max(0, emission − inspectorPay) − paid). */
  returned: bigint;
}

const M = BigInt(PPM);

/** The taper factor in ppm for leased GPU-seconds over offered GPU-seconds: non-increasing in `leased`. */
export function taperFor(config: RewardsConfig, leasedGpuS: bigint, offeredGpuS: bigint): number {
  if (offeredGpuS <= 0n) return PPM;
  const num = leasedGpuS * M * M;
  const den = offeredGpuS * BigInt(config.taperFullUtilPpm);
  const cut = (num + den - 1n) / den; // ⌈ΣL · 10^12 / (ΣG · full)⌉
  const factor = M - cut;
  const floor = BigInt(config.taperFloorPpm);
  const t = factor > floor ? factor : floor;
  return Number(t > M ? M : t < 0n ? 0n : t);
}

const byId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function splitEpoch(config: RewardsConfig, epochS: number, emission: bigint, inspectorPay: bigint, nodes: readonly NodeInputs[]): SplitResult {
  const p0 = emission > inspectorPay ? emission - inspectorPay : 0n;
  const chosen = nodes
    .filter((n) => eligible(config, epochS, n))
    .sort((a, b) => byId(a.nodeId, b.nodeId) || byId(a.ownerId, b.ownerId));

  let leased = 0n;
  let offered = 0n;
  for (const n of chosen) {
    leased += BigInt(countedLeasedGpuS(epochS, n));
    offered += BigInt(Math.floor(n.gpusOffered)) * BigInt(epochS);
  }
  const utilisationPpm = offered > 0n ? Number((leased * M) / offered) : 0;
  const taperPpm = taperFor(config, leased, offered);
  const providers = (p0 * BigInt(taperPpm)) / M;
  const cap = (providers * BigInt(config.ownerCapPpm)) / M;

  const weighted = chosen.map((n) => ({ n, w: weight(config, epochS, n) }));
  const ownerWeight = new Map<string, bigint>();
  for (const { n, w } of weighted) ownerWeight.set(n.ownerId, (ownerWeight.get(n.ownerId) ?? 0n) + w);

  // Water-filling: owners with no weight take nothing and are left out.
  const capped = new Set<string>();
  let rest = providers;
  let restWeight = 0n;
  for (const w of ownerWeight.values()) restWeight += w;
  for (;;) {
    if (restWeight === 0n) break;
    const over = [...ownerWeight].filter(([o, w]) => !capped.has(o) && w > 0n && rest * w > cap * restWeight).map(([o]) => o);
    if (over.length === 0) break;
    for (const o of over) {
      capped.add(o);
      rest -= cap;
      restWeight -= ownerWeight.get(o)!;
    }
  }

  const lines: SplitLine[] = weighted.map(({ n, w }) => {
    let amount = 0n;
    if (capped.has(n.ownerId)) amount = (cap * w) / ownerWeight.get(n.ownerId)!;
    else if (restWeight > 0n) amount = (rest * w) / restWeight;
    return { nodeId: n.nodeId, ownerId: n.ownerId, weight: w, amount };
  });
  const paid = lines.reduce((s, l) => s + l.amount, 0n);
  return { lines, utilisationPpm, taperPpm, providersEmission: providers, paid, returned: p0 - paid };
}
