import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addPoint, billFor, confirmedMs, feeFor, lastPoint, type Span } from '../../src/leases/metering.ts';

/** The obvious computation: sort the points, count each gap no longer than the grace. */
function reference(points: number[], graceMs: number, from: number, to: number): number {
  const sorted = [...new Set(points)].sort((a, b) => a - b);
  let total = 0;
  for (let i = 1; i < sorted.length; i++) {
    const [a, b] = [sorted[i - 1]!, sorted[i]!];
    if (b - a > graceMs) continue;
    const start = Math.max(a, from);
    const end = Math.min(b, to);
    if (end > start) total += end - start;
  }
  return total;
}

const spansOf = (points: number[], graceMs: number) => points.reduce<Span[]>((s, p) => addPoint(s, p, graceMs), []);

describe('metering', () => {
  it('counts gaps up to the grace and nothing of a longer one', () => {
    const spans = spansOf([0, 10_000, 20_000, 80_000, 90_000], 45_000);
    expect(spans).toEqual([[0, 20_000], [80_000, 90_000]]);
    expect(confirmedMs(spans, 0, 100_000)).toBe(30_000);
    expect(confirmedMs(spans, 5_000, 85_000)).toBe(20_000);
    expect(lastPoint(spans)).toBe(90_000);
  });

  it('merges spans a late point bridges, and ignores repeated points', () => {
    let spans = spansOf([0, 10_000, 100_000, 110_000], 45_000);
    expect(spans).toHaveLength(2);
    spans = addPoint(spans, 55_000, 45_000);
    expect(spans).toEqual([[0, 110_000]]);
    expect(addPoint(spans, 55_000, 45_000)).toEqual(spans);
  });

  it('agrees with the reference for random timelines, in any order, with repeats', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 3_600_000 }), { maxLength: 200 }),
        fc.integer({ min: 1, max: 120_000 }),
        fc.integer({ min: 0, max: 3_600_000 }),
        fc.integer({ min: 0, max: 3_600_000 }),
        fc.infiniteStream(fc.nat()),
        (points, grace, a, b, order) => {
          const [from, to] = a <= b ? [a, b] : [b, a];
          const shuffled = [...points, ...points.slice(0, 20)];
          for (let i = shuffled.length - 1; i > 0; i--) {
            const j = order.next().value % (i + 1);
            [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
          }
          expect(confirmedMs(spansOf(shuffled, grace), from, to)).toBe(reference(points, grace, from, to));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('bills from the total, rounded down once, in the lease’s asset', () => {
    const usd = { price: 2_000_000, gpus: 2, asset: 'USD' as const, gridUsdRate: 250_000n, gridDiscountBps: 1_000n };
    expect(billFor(usd, 3_600_000)).toBe(4_000_000n);
    // 1 ms of 2 GPUs at $2/h = 1.111… micro-dollars: 1.
    expect(billFor(usd, 1)).toBe(1n);
    // Summing per-millisecond pieces would bill 3,600,000 µ$; the total bills 4,000,000.
    expect(billFor(usd, 1) * 3_600_000n).not.toBe(billFor(usd, 3_600_000));
    // GRID: $4.00 less 10% = $3.60 at $0.25 = 14.4 GRID.
    expect(billFor({ ...usd, asset: 'GRID' }, 3_600_000)).toBe(14_400_000n);
    expect(feeFor(4_000_000n, 500n)).toBe(200_000n);
    expect(feeFor(19n, 500n)).toBe(0n);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000_000 }), fc.integer({ min: 1, max: 16 }), fc.integer({ min: 0, max: 30 * 86_400_000 }), (price, gpus, ms) => {
        const billed = billFor({ ...usd, price, gpus }, ms);
        const exact = BigInt(price) * BigInt(gpus) * BigInt(ms);
        expect(billed * 3_600_000n <= exact && exact < (billed + 1n) * 3_600_000n).toBe(true);
      }),
    );
  });
});
