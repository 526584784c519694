// The RegionBook object under injected faults (test/faults/book-sim.ts): a fixed set of seeds on
// every run; `npm run test:faults -- --book --seeds N` runs many more, and a failing seed prints
// the command that replays it.
import { describe, expect, it } from 'vitest';
import { runBookSeed } from '../faults/book-sim.ts';
import { useTestDatabase } from '../support/test-database.ts';

const db = useTestDatabase();

const SEEDS = Array.from({ length: 10 }, (_, i) => i + 1);
const totals = { failed: 0, lost: 0, evicted: 0 };

describe('the RegionBook object under faults', () => {
  it.each(SEEDS)('seed %i: every invariant holds after every step, and the wind-down returns every renter its money', { timeout: 60_000 }, async (seed) => {
    const report = await runBookSeed(db().money, db().url, seed).catch((err: Error) => {
      throw new Error(`${err.message}\n  replay: npm run test:faults -- --book --seed ${seed}`);
    });
    // The run exercised what it is for: faults, trades, and checks with nothing in flight.
    expect(report.faults.failed + report.faults.lost + report.faults.evicted).toBeGreaterThan(0);
    expect(report.trades).toBeGreaterThan(0);
    expect(report.quiescentChecks).toBeGreaterThan(0);
    totals.failed += report.faults.failed;
    totals.lost += report.faults.lost;
    totals.evicted += report.faults.evicted;
  });

  it('injected faults of every kind across the seeds', () => {
    expect(totals.failed).toBeGreaterThan(0);
    expect(totals.lost).toBeGreaterThan(0);
    expect(totals.evicted).toBeGreaterThan(0);
  });
});
