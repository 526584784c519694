// A lease's workload logs (docs/api.md, "Logs"; docs/decisions.md). Pure: what to keep of a
// batch the runner sent, the per-lease rate, and how much to drop from the front to stay within
// the kept size. The Lease object stores what this decides; nothing here reads a clock or storage.
import { LOG_LATE_S, type LogLine } from '../contracts/runner.ts';

/** What the Lease object keeps about its log besides the lines. */
export interface LogMeta {
  /** The seq expected next: every line below it was stored once (or lost, or dropped as old). */
  nextSeq: number;
  /** Σ cost of the stored lines (see lineCost). */
  storedCost: number;
  /** Lines the runner never delivered (seq gaps: its spool overflowed). */
  lost: number;
  /** Lines dropped from the front to stay within keepCost. */
  dropped: number;
  /** Rate budget left (cost units) at `budgetAt`. */
  budget: number;
  budgetAt: number;
}

export interface LogLimits {
  /** The most cost the lease keeps; the oldest lines go first. */
  keepCost: number;
  /** The rate budget's size (a burst) and refill per second. */
  burstCost: number;
  refillPerS: number;
  /** How long after its end a lease's logs are kept. */
  retainMs: number;
}

export const LOG_LIMITS: LogLimits = {
  keepCost: 8 * 1024 * 1024,
  burstCost: 8 * 1024 * 1024,
  refillPerS: 2 * 1024 * 1024,
  retainMs: 7 * 86_400_000,
};

/** A stored line's cost: its text plus a fixed overhead, so floods of empty lines also count. */
export const lineCost = (text: string) => text.length + 64;

export const emptyMeta = (now: number, limits: LogLimits = LOG_LIMITS): LogMeta => ({ nextSeq: 0, storedCost: 0, lost: 0, dropped: 0, budget: limits.burstCost, budgetAt: now });

export type AppendDecision =
  | { ok: true; store: LogLine[]; meta: LogMeta; /** Cost to drop from the front after storing. */ evict: number }
  | { ok: false; reason: 'out_of_order' }
  | { ok: false; reason: 'lease_ended' }
  | { ok: false; reason: 'rate_limited'; retryAfterS: number };

/**
 * Decides a runner's batch: seqs must strictly increase (else nothing is kept); lines below
 * nextSeq are a retry's and are skipped; seqs skipped before or between the new lines count as lost.
 * A batch is charged against the rate budget as a whole and refused whole when it does not fit
 * (the runner keeps it and retries after Retry-After). `endedAt`: when the lease ended, if it did.
 */
export function decideAppend(meta: LogMeta, lines: readonly LogLine[], now: number, endedAt: number | null, limits: LogLimits = LOG_LIMITS): AppendDecision {
  for (let i = 1; i < lines.length; i++) if (lines[i]!.seq <= lines[i - 1]!.seq) return { ok: false, reason: 'out_of_order' };
  if (endedAt !== null && now > endedAt + LOG_LATE_S * 1000) return { ok: false, reason: 'lease_ended' };
  const store = lines.filter((l) => l.seq >= meta.nextSeq);
  const elapsedS = Math.max(0, now - meta.budgetAt) / 1000;
  const budget = Math.min(limits.burstCost, meta.budget + elapsedS * limits.refillPerS);
  const cost = store.reduce((s, l) => s + lineCost(l.text), 0);
  if (cost > budget) {
    const retryAfterS = Math.max(1, Math.ceil((Math.min(cost, limits.burstCost) - budget) / limits.refillPerS));
    return { ok: false, reason: 'rate_limited', retryAfterS };
  }
  if (store.length === 0) return { ok: true, store, meta: { ...meta, budget, budgetAt: now }, evict: 0 };
  // Seqs skipped before and between the new lines: lines the runner lost.
  const gap = store[store.length - 1]!.seq + 1 - meta.nextSeq - store.length;
  const storedCost = meta.storedCost + cost;
  return {
    ok: true,
    store,
    evict: Math.max(0, storedCost - limits.keepCost),
    meta: { ...meta, nextSeq: store[store.length - 1]!.seq + 1, storedCost, lost: meta.lost + gap, budget: budget - cost, budgetAt: now },
  };
}
