// The Lease object under injected faults (test/faults/lease-sim.ts): a fixed set of seeds on
// every run; `npm run test:faults -- --seeds N` runs many more, and a failing seed prints the
// command that replays it.
import { describe, expect, it } from 'vitest';
import { runLeaseSeed } from '../faults/lease-sim.ts';
import { useTestDatabase } from '../support/test-database.ts';

const db = useTestDatabase();

const SEEDS = Array.from({ length: 12 }, (_, i) => i + 1);

describe('the Lease object under faults', () => {
  it.each(SEEDS)('seed %i: every invariant holds after every step, and every lease ends settled', { timeout: 60_000 }, async (seed) => {
    const report = await runLeaseSeed(db().money, seed).catch((err: Error) => {
      throw new Error(`${err.message}\n  replay: npm run test:faults -- --seed ${seed}`);
    });
    // The run exercised what it is for: faults of every kind, and checks with nothing in flight.
    expect(report.faults.failed + report.faults.lost + report.faults.evicted).toBeGreaterThan(0);
    expect(report.quiescentChecks).toBeGreaterThan(0);
    expect(report.outcomes.final).toBe(3);
  });
});
