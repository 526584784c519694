// The pure log rules (src/leases/logs.ts): what a runner's batch adds, the rate, the kept size.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LOG_LATE_S, type LogLine } from '../../src/contracts/runner.ts';
import { decideAppend, emptyMeta, lineCost, type LogLimits, type LogMeta } from '../../src/leases/logs.ts';

const T0 = Date.parse('2026-12-07T00:00:00Z');
const limits: LogLimits = { keepCost: 10_000, burstCost: 5_000, refillPerS: 1_000, retainMs: 60_000 };
const line = (seq: number, text = 'x'.repeat(36)): LogLine => ({ seq, at: new Date(T0).toISOString(), stream: 'stdout', text });

describe('decideAppend', () => {
  it('keeps new seqs, skips those already stored, and counts a gap as lost', () => {
    let meta = emptyMeta(T0, limits);
    const a = decideAppend(meta, [line(0), line(1)], T0, null, limits);
    if (!a.ok) throw new Error(a.reason);
    expect(a.store.map((l) => l.seq)).toEqual([0, 1]);
    meta = a.meta;
    const b = decideAppend(meta, [line(1), line(2), line(5)], T0, null, limits);
    if (!b.ok) throw new Error(b.reason);
    expect(b.store.map((l) => l.seq)).toEqual([2, 5]);
    expect(b.meta).toMatchObject({ nextSeq: 6, lost: 2, storedCost: 4 * lineCost('x'.repeat(36)) });
  });

  it('refuses seqs out of order, and lines once the lease ended LOG_LATE_S ago', () => {
    const meta = emptyMeta(T0, limits);
    expect(decideAppend(meta, [line(1), line(1)], T0, null, limits)).toEqual({ ok: false, reason: 'out_of_order' });
    expect(decideAppend(meta, [line(2), line(1)], T0, null, limits)).toEqual({ ok: false, reason: 'out_of_order' });
    expect(decideAppend(meta, [line(0)], T0 + LOG_LATE_S * 1000, T0, limits).ok).toBe(true);
    expect(decideAppend(meta, [line(0)], T0 + LOG_LATE_S * 1000 + 1, T0, limits)).toEqual({ ok: false, reason: 'lease_ended' });
  });

  it('charges the rate budget and refuses a batch that does not fit, saying when it would', () => {
    const meta = emptyMeta(T0, limits);
    const lines = Array.from({ length: 60 }, (_, i) => line(i)); // 60 × 100 = 6,000 > 5,000
    const refused = decideAppend(meta, lines, T0, null, limits);
    expect(refused).toEqual({ ok: false, reason: 'rate_limited', retryAfterS: 1 });
    const half = decideAppend(meta, lines.slice(0, 50), T0, null, limits);
    if (!half.ok) throw new Error(half.reason);
    expect(half.meta.budget).toBe(0);
    expect(decideAppend(half.meta, [line(50)], T0, null, limits)).toMatchObject({ ok: false, reason: 'rate_limited' });
    // A tenth of a second refills 100.
    expect(decideAppend(half.meta, [line(50)], T0 + 100, null, limits).ok).toBe(true);
  });

  it('property: stored seqs strictly increase, nextSeq = last + 1, lost + stored = nextSeq, cost within the kept size after eviction', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 8 }), { maxLength: 30 }), (batches) => {
        let meta: LogMeta = emptyMeta(T0, { ...limits, burstCost: 1e12 });
        let seq = 0;
        let stored = 0;
        let now = T0;
        for (const steps of batches) {
          // A batch that repeats the last line, then skips ahead by the drawn steps.
          const lines = steps.map((step) => line((seq += step) + 0, 'y'.repeat(step * 10)));
          const increasing = lines.every((l, i) => i === 0 || l.seq > lines[i - 1]!.seq);
          const d = decideAppend(meta, lines, (now += 10), null, { ...limits, burstCost: 1e12 });
          if (!increasing) {
            expect(d).toEqual({ ok: false, reason: 'out_of_order' });
            continue;
          }
          if (!d.ok) throw new Error(d.reason);
          for (let i = 1; i < d.store.length; i++) expect(d.store[i]!.seq).toBeGreaterThan(d.store[i - 1]!.seq);
          if (d.store.length > 0) expect(d.meta.nextSeq).toBe(d.store.at(-1)!.seq + 1);
          stored += d.store.length;
          expect(d.meta.storedCost - d.evict).toBeLessThanOrEqual(limits.keepCost);
          meta = d.meta;
          expect(meta.lost + stored).toBe(meta.nextSeq);
        }
      }),
    );
  });
});
