// The Collector object under injected faults (test/faults/collector-sim.ts): a fixed set of seeds
// on every run; `npm run test:faults -- --collector --seeds N` runs many more, and a failing seed
// prints the command that replays it.
import { describe, expect, it } from 'vitest';
import { runCollectorSeed } from '../faults/collector-sim.ts';
import { useTestDatabase } from '../support/test-database.ts';

const db = useTestDatabase();

const SEEDS = Array.from({ length: 12 }, (_, i) => i + 1);

describe('the Collector object under faults', () => {
  it.each(SEEDS)('seed %i: every invariant holds after every step, and every batch written is delivered', { timeout: 60_000 }, async (seed) => {
    const report = await runCollectorSeed(db().url, seed).catch((err: Error) => {
      throw new Error(`${err.message}\n  replay: npm run test:faults -- --collector --seed ${seed}`);
    });
    // The run exercised what it is for: faults of every kind, checks with nothing in flight,
    // heartbeats accepted and refused, batches delivered.
    expect(report.faults.failed).toBeGreaterThan(0);
    expect(report.faults.lost).toBeGreaterThan(0);
    expect(report.faults.evicted).toBeGreaterThan(0);
    expect(report.quiescentChecks).toBeGreaterThan(0);
    expect(report.heartbeats.reported).toBeGreaterThan(0);
    expect(report.outcomes['flush:offline reports'] ?? 0).toBeGreaterThan(0);
    expect(report.outcomes['heartbeat:revoked:revoked'] ?? 0).toBeGreaterThan(0);
    expect(report.delivered).toBeGreaterThan(0);
  });
});
