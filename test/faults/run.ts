// npm run test:faults -- --seeds N [--from S] [--steps K] [--leases L] [--lost RATE]
// npm run test:faults -- --seed S          (replays one seed, printing its report)
//
// Runs the Lease fault simulator (lease-sim.ts) for many seeds against one fresh migrated
// libSQL database, prints one row per seed (faults injected, calls, final states) and, for a
// failing seed, the broken invariant and the command that replays it. Exit code 1 when any fails.
import { parseArgs } from 'node:util';
import { DEFAULT_OPTIONS, runLeaseSeed, type SimReport } from './lease-sim.ts';
import { startTestDatabase } from '../support/libsql.ts';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string' },
    seed: { type: 'string' },
    from: { type: 'string' },
    steps: { type: 'string' },
    leases: { type: 'string' },
    lost: { type: 'string' },
  },
});
const int = (v: string | undefined, fallback: number, name: string) => {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a whole number, not ${JSON.stringify(v)}`);
  return n;
};
const one = values.seed !== undefined;
const from = one ? int(values.seed, 1, 'seed') : int(values.from, 1, 'from');
const count = one ? 1 : int(values.seeds, 100, 'seeds');
const lostRate = values.lost === undefined ? DEFAULT_OPTIONS.lostRate : Number(values.lost);
if (!(lostRate >= 0 && lostRate <= 0.5)) throw new Error('--lost must be a rate from 0 to 0.5');
const options = { steps: int(values.steps, DEFAULT_OPTIONS.steps, 'steps'), leases: int(values.leases, DEFAULT_OPTIONS.leases, 'leases'), lostRate };
const extra = `${values.steps ? ` --steps ${options.steps}` : ''}${values.leases ? ` --leases ${options.leases}` : ''}${values.lost ? ` --lost ${lostRate}` : ''}`;

const db = await startTestDatabase();
const failures: Array<{ seed: number; message: string }> = [];
const totals = { operations: 0, failed: 0, lost: 0, evicted: 0, quiescent: 0 };
const started = performance.now();
console.log(`Lease fault simulation: seeds ${from}–${from + count - 1}, ${options.steps} steps, ${options.leases} leases each`);
console.log('| seed | ops | libSQL/port failed | answers lost | evictions | quiescent checks | final states |');
console.log('|---:|---:|---:|---:|---:|---:|---|');
for (let seed = from; seed < from + count; seed++) {
  let report: SimReport;
  try {
    report = await runLeaseSeed(db.money, seed, options);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    failures.push({ seed, message });
    console.log(`| ${seed} | FAILED: ${message.replace(/\n/g, ' ')} |`);
    continue;
  }
  totals.operations += report.operations;
  totals.failed += report.faults.failed;
  totals.lost += report.faults.lost;
  totals.evicted += report.faults.evicted;
  totals.quiescent += report.quiescentChecks;
  const finals = Object.entries(report.outcomes).filter(([k]) => k.startsWith('final:')).map(([k, v]) => `${v} ${k.slice(6)}`).join(', ');
  console.log(`| ${seed} | ${report.operations} | ${report.faults.failed} | ${report.faults.lost} | ${report.faults.evicted} | ${report.quiescentChecks} | ${finals} |`);
  if (one) console.log(JSON.stringify({ calls: report.calls, outcomes: report.outcomes, endings: report.endings }, null, 2));
}
await db.close();
const seconds = (performance.now() - started) / 1000;
console.log(`\n${count} seeds in ${seconds.toFixed(1)} s: ${totals.operations} operations, ${totals.failed} failed, ${totals.lost} answers lost, ${totals.evicted} evictions, ${totals.quiescent} quiescent checks; ${failures.length} failing seed(s).`);
for (const f of failures) console.log(`\nseed ${f.seed}: ${f.message}\n  replay: npm run test:faults -- --seed ${f.seed}${extra}`);
process.exitCode = failures.length > 0 ? 1 : 0;
