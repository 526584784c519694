// npm run test:faults -- --seeds N [--from S] [--steps K] [--leases L] [--lost RATE]
// npm run test:faults -- --seed S          (replays one seed, printing its report)
// npm run test:faults -- --book ...        (the RegionBook simulator, book-sim.ts)
// npm run test:faults -- --collector ...   (the Collector simulator, collector-sim.ts)
//
// Runs the Lease fault simulator (lease-sim.ts), or the RegionBook's or the Collector's, for many
// seeds against one fresh migrated libSQL database, prints one row per seed (faults injected,
// calls, final states) and, for a failing seed, the broken invariant and the command that
// replays it. Exit code 1 when any fails.
import { registerHooks } from 'node:module';
import { parseArgs } from 'node:util';
import { DEFAULT_OPTIONS, runLeaseSeed, type SimReport } from './lease-sim.ts';
import { startTestDatabase } from '../support/libsql.ts';

// The RegionBook and Collector classes import `cloudflare:workers`; here they get its shim.
const shim = new URL('./workers-shim.ts', import.meta.url).href;
registerHooks({
  resolve: (specifier, context, next) => (specifier === 'cloudflare:workers' ? { url: shim, shortCircuit: true } : next(specifier, context)),
});

const { values } = parseArgs({
  options: {
    seeds: { type: 'string' },
    seed: { type: 'string' },
    from: { type: 'string' },
    steps: { type: 'string' },
    leases: { type: 'string' },
    lost: { type: 'string' },
    book: { type: 'boolean' },
    collector: { type: 'boolean' },
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
if (values.book || values.collector) {
  // The RegionBook's or the Collector's simulator: one row per seed, the same totals.
  interface Row {
    operations: number;
    faults: { failed: number; lost: number; evicted: number };
    quiescentChecks: number;
    calls: Record<string, number>;
    outcomes: Record<string, number>;
    /** Trades (book), batches delivered (collector). */
    made: number;
    extra?: unknown;
  }
  const flag = values.book ? '--book' : '--collector';
  let name: string;
  let defaults: { steps: number; lostRate: number };
  let runOne: (seed: number, o: { steps: number; lostRate: number }) => Promise<Row>;
  if (values.book) {
    const { DEFAULT_BOOK_OPTIONS, runBookSeed } = await import('./book-sim.ts');
    name = 'RegionBook';
    defaults = DEFAULT_BOOK_OPTIONS;
    runOne = async (seed, o) => {
      const r = await runBookSeed(db.money, db.url, seed, o);
      return { ...r, made: r.trades, extra: { logged: r.logged } };
    };
  } else {
    const { DEFAULT_COLLECTOR_OPTIONS, runCollectorSeed } = await import('./collector-sim.ts');
    name = 'Collector';
    defaults = DEFAULT_COLLECTOR_OPTIONS;
    runOne = async (seed, o) => {
      const r = await runCollectorSeed(db.url, seed, o);
      return { ...r, made: r.delivered, extra: { deliveries: r.deliveries, heartbeats: r.heartbeats } };
    };
  }
  const objOptions = { steps: int(values.steps, defaults.steps, 'steps'), lostRate: values.lost === undefined ? defaults.lostRate : lostRate };
  const objExtra = `${values.steps ? ` --steps ${objOptions.steps}` : ''}${values.lost ? ` --lost ${lostRate}` : ''}`;
  const failed: Array<{ seed: number; message: string }> = [];
  const sum = { operations: 0, failed: 0, lost: 0, evicted: 0, quiescent: 0, made: 0 };
  const t0 = performance.now();
  const madeLabel = values.book ? 'trades' : 'batches delivered';
  console.log(`${name} fault simulation: seeds ${from}–${from + count - 1}, ${objOptions.steps} steps each`);
  console.log(`| seed | ops | failed | answers lost | evictions | quiescent checks | ${madeLabel} | calls |`);
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (let seed = from; seed < from + count; seed++) {
    try {
      const r = await runOne(seed, objOptions);
      sum.operations += r.operations;
      sum.failed += r.faults.failed;
      sum.lost += r.faults.lost;
      sum.evicted += r.faults.evicted;
      sum.quiescent += r.quiescentChecks;
      sum.made += r.made;
      const calls = Object.values(r.calls).reduce((a, b) => a + b, 0);
      console.log(`| ${seed} | ${r.operations} | ${r.faults.failed} | ${r.faults.lost} | ${r.faults.evicted} | ${r.quiescentChecks} | ${r.made} | ${calls} |`);
      if (one) console.log(JSON.stringify({ calls: r.calls, outcomes: r.outcomes, extra: r.extra }, null, 2));
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      failed.push({ seed, message });
      console.log(`| ${seed} | FAILED: ${message.replace(/\n/g, ' ')} |`);
    }
  }
  await db.close();
  console.log(`\n${count} seeds in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${sum.operations} operations, ${sum.failed} failed, ${sum.lost} answers lost, ${sum.evicted} evictions, ${sum.quiescent} quiescent checks, ${sum.made} ${madeLabel}; ${failed.length} failing seed(s).`);
  for (const f of failed) console.log(`\nseed ${f.seed}: ${f.message}\n  replay: npm run test:faults -- ${flag} --seed ${f.seed}${objExtra}`);
  process.exit(failed.length > 0 ? 1 : 0);
}
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
