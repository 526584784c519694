// npm run bench:ledger — throughput and latency of ledger captures through the local libSQL
// server: renter held → provider available with the platform fee split off (4 entries, one
// libSQL batch each; src/ledger/rules.ts capture + src/ledger/store.ts postTransaction).
//
// Starts a fresh migrated database behind the local libSQL server (test/support/libsql.ts),
// funds and escrows money for BENCH_RENTERS (16) renters, then runs captures between random
// renter/provider pairs (BENCH_PROVIDERS, 4) at each concurrency in BENCH_LEVELS (1,4,8):
// BENCH_WARMUP (1) s of warm-up, then BENCH_SECONDS (8) s measured. Every capture has its own
// idempotency key; renters hold far more than the bench can spend, so none should fail.
// Prints a markdown table, the goals (≥ 500 captures/s at concurrency 4; concurrency 8 at
// least 0.9× concurrency 4) and a final check that the ledger still balances.
//
// BENCH_SERVER=child runs the libSQL server in its own process instead of this one, so the
// load generator and the server do not share one event loop (for comparison; the default,
// in-process, is what the tests use). BENCH_SERVER_NODE_ARGS passes Node flags to that
// process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the server alone.
import { createClient, type Client } from '@libsql/client/web';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { capture, credit, hold, type RuleResult, type TransactionSpec } from '../src/ledger/rules.ts';
import { postTransaction } from '../src/ledger/store.ts';
import { newId } from '../src/ids.ts';
import { applyMigrations } from '../local/migrate.ts';
import { startTestDatabase } from '../test/support/libsql.ts';
import { percentile } from './support.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const warmup = Number(process.env.BENCH_WARMUP ?? 1);
const levels = (process.env.BENCH_LEVELS ?? '1,4,8').split(',').map(Number);
const renterCount = Number(process.env.BENCH_RENTERS ?? 16);
const providerCount = Number(process.env.BENCH_PROVIDERS ?? 4);
const serverMode = process.env.BENCH_SERVER === 'child' ? 'child' : 'in-process';

const M = 1_000_000n;
/** Each renter's escrow: far more than any run spends (≤ 100 per capture). */
const ESCROW = 100_000_000n * M;
const GOAL_C4 = 500;
const GOAL_SCALING = 0.9;

interface Database {
  url: string;
  close(): Promise<void>;
}

/** The libSQL server in a child process (BENCH_SERVER=child), on a fresh migrated file. */
async function startChildDatabase(): Promise<Database> {
  const dir = mkdtempSync(join(tmpdir(), 'gridlease-bench-ledger-'));
  const file = join(dir, 'db.sqlite');
  let child: ChildProcess | undefined;
  try {
    await applyMigrations(`file:${file}`);
    const script = fileURLToPath(new URL('../local/libsql-server.ts', import.meta.url));
    const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const started = spawn(process.execPath, [...nodeArgs, script, '--file', file, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    child = started;
    const url = await new Promise<string>((resolve, reject) => {
      started.once('exit', (code) => reject(new Error(`libsql server exited with ${code}`)));
      createInterface({ input: started.stdout! }).once('line', (line) => resolve(line.trim()));
    });
    return {
      url,
      close: async () => {
        if (started.exitCode === null) {
          const exited = new Promise((resolve) => started.once('exit', resolve));
          started.kill('SIGTERM');
          await exited;
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function spec(r: RuleResult): TransactionSpec {
  if (!r.ok) throw new Error(`rule refused: ${r.problem}`);
  return r.spec;
}

interface Level {
  concurrency: number;
  done: number;
  failures: number;
  seconds: number;
  p50: number;
  p99: number;
  /** HTTP requests to the libSQL server per capture. */
  requestsPerCapture: number;
}

let requests = 0;
const countingFetch: typeof fetch = (input, init) => {
  requests++;
  return fetch(input, init);
};

const renters = Array.from({ length: renterCount }, () => newId('acc'));
const providers = Array.from({ length: providerCount }, () => newId('acc'));
let sequence = 0;
let failureSample: string | undefined;

/** Runs captures from `concurrency` workers for `durationS` seconds. */
async function load(client: Client, concurrency: number, durationS: number, tag: string): Promise<Level> {
  const latencies: number[] = [];
  let failures = 0;
  const requestsBefore = requests;
  const started = performance.now();
  const deadline = started + durationS * 1000;
  async function worker(): Promise<void> {
    while (performance.now() < deadline) {
      const payer = renters[Math.floor(Math.random() * renters.length)]!;
      const payee = providers[Math.floor(Math.random() * providers.length)]!;
      const amount = BigInt(1 + Math.floor(Math.random() * 100)) * M;
      const s = spec(capture({ payer, payee, asset: 'USD', amount, fee: amount / 20n, idempotencyKey: `bench.${tag}.${sequence++}`, reference: 'lease_bench' }));
      const t0 = performance.now();
      try {
        const res = await postTransaction(client, s);
        if (!res.ok || res.replayed) {
          failures++;
          failureSample ??= JSON.stringify(res);
        }
      } catch (err) {
        failures++;
        failureSample ??= err instanceof Error ? err.message : String(err);
      }
      latencies.push(performance.now() - t0);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const done = latencies.length;
  return {
    concurrency,
    done,
    failures,
    seconds: elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    requestsPerCapture: done > 0 ? (requests - requestsBefore) / done : NaN,
  };
}

async function fund(client: Client): Promise<void> {
  await Promise.all(
    renters.map(async (owner) => {
      const credited = await postTransaction(client, spec(credit({ owner, asset: 'USD', amount: ESCROW, source: 'stripe', idempotencyKey: newId('key'), reference: 'bench' })));
      const held = await postTransaction(client, spec(hold({ owner, asset: 'USD', amount: ESCROW, idempotencyKey: newId('key'), reference: 'bench' })));
      if (!credited.ok || !held.ok) throw new Error(`funding ${owner} failed: ${JSON.stringify([credited, held], (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
    }),
  );
}

async function verify(client: Client, captures: number): Promise<boolean> {
  const [perAsset, count, stored] = await Promise.all([
    client.execute('SELECT asset, SUM(amount) AS s, COUNT(*) AS n FROM ledger_entries GROUP BY asset'),
    client.execute("SELECT COUNT(*) AS n FROM ledger_transactions WHERE kind = 'capture'"),
    client.execute(
      `SELECT COUNT(*) AS n FROM ledger_accounts a
       WHERE a.balance != (SELECT COALESCE(SUM(amount), 0) FROM ledger_entries e WHERE e.owner_id = a.owner_id AND e.account_id = a.id)`,
    ),
  ]);
  let ok = true;
  for (const r of perAsset.rows) {
    const zero = BigInt(r.s as bigint) === 0n;
    ok &&= zero;
    console.log(`ledger ${r.asset}: ${r.n} entries sum to ${r.s} → ${zero ? 'balanced' : 'NOT BALANCED'}`);
  }
  const stored0 = BigInt(stored.rows[0]!.n as bigint) === 0n;
  ok &&= stored0;
  console.log(`accounts whose stored balance ≠ sum of their entries: ${stored.rows[0]!.n}`);
  const n = Number(count.rows[0]!.n);
  ok &&= n === captures;
  console.log(`capture transactions stored: ${n} (${captures} reported ok)`);
  return ok;
}

function checkSettings(): void {
  const positive = (name: string, n: number, integer = true) => {
    if (!(n > 0) || (integer && !Number.isInteger(n))) throw new Error(`${name} must be a positive ${integer ? 'integer' : 'number'}, got ${n}`);
  };
  positive('BENCH_SECONDS', seconds, false);
  if (!(warmup >= 0)) throw new Error(`BENCH_WARMUP must be ≥ 0, got ${warmup}`);
  for (const c of levels) positive('BENCH_LEVELS entry', c);
  positive('BENCH_RENTERS', renterCount);
  positive('BENCH_PROVIDERS', providerCount);
}

async function main(): Promise<void> {
  checkSettings();
  const db: Database = serverMode === 'child' ? await startChildDatabase() : await startTestDatabase();
  const client = createClient({ url: db.url, intMode: 'bigint', fetch: countingFetch });
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.once('SIGINT', onSignal);
  try {
    await fund(client);
    const rows: Level[] = [];
    let captures = 0;
    for (const c of levels) {
      if (interrupted) break;
      const warm = await load(client, c, warmup, `w${c}`);
      const row = await load(client, c, seconds, `c${c}`);
      captures += warm.done - warm.failures + row.done - row.failures;
      rows.push(row);
    }
    const base = rows.find((r) => r.concurrency === 1) ?? rows[0];
    const rate = (r: Level) => r.done / r.seconds;
    console.log(`\nledger captures (4 entries each), libSQL server ${serverMode}, ${renterCount} renters × ${providerCount} providers, ${warmup} s warm-up + ${seconds} s per level\n`);
    console.log('| concurrency | transfers/s | p50 ms | p99 ms | failures | vs concurrency 1 |');
    console.log('|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      console.log(`| ${r.concurrency} | ${rate(r).toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.failures} | ${base ? (rate(r) / rate(base)).toFixed(2) : 'n/a'}× |`);
    }
    console.log(`\nHTTP requests to libSQL per capture: ${rows.map((r) => `${r.requestsPerCapture.toFixed(2)} (c=${r.concurrency})`).join(', ')}`);
    if (failureSample) console.log(`first failure: ${failureSample}`);
    const c4 = rows.find((r) => r.concurrency === 4);
    const c8 = rows.find((r) => r.concurrency === 8);
    if (c4) console.log(`goal ≥ ${GOAL_C4} transfers/s at concurrency 4: ${rate(c4) >= GOAL_C4 ? 'met' : 'NOT met'} (${rate(c4).toFixed(0)})`);
    if (c4 && c8) {
      const scaling = rate(c8) / rate(c4);
      console.log(`goal concurrency 8 ≥ ${GOAL_SCALING}× concurrency 4: ${scaling >= GOAL_SCALING ? 'met' : 'NOT met'} (${scaling.toFixed(2)}×)`);
    }
    const failures = rows.reduce((n, r) => n + r.failures, 0);
    console.log('');
    const balanced = await verify(client, captures);
    console.log(`ledger check: ${balanced ? 'ok' : 'FAILED'}`);
    if (!balanced || failures > 0) process.exitCode = 1;
  } finally {
    process.off('SIGINT', onSignal);
    client.close();
    await db.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
