// npm run bench:libsql — what the local libSQL server (local/libsql-server.ts) costs per
// pipeline, against the floor: the same SQL run directly through the `libsql` driver.
//
// Starts the server in this process on a fresh migrated database (local/migrate.ts), with
// one active account and a funded USD available ledger account, then measures, one request
// at a time, BENCH_WARMUP (300) unmeasured then BENCH_N (2000) measured of each:
//   - order: the pipeline `POST /v1/orders` sends (as captured from @libsql/client): 5
//     store_sql, one batch of BEGIN IMMEDIATE + 8 statements (the order, its ledger hold
//     transaction, 2 ledger account upserts, 2 balance updates, 2 entry inserts with
//     RETURNING) + COMMIT (+ ROLLBACK if COMMIT failed), each step conditioned on the
//     previous one, and close. Every iteration is a new order with fresh ids.
//   - select: `SELECT status FROM accounts WHERE id = ?` as execute + close.
// over HTTP (node:http keep-alive agent, one socket, from a worker thread so the client does
// not run on the server's thread), and directly through the driver in this thread (prepared
// statements, safe integers, same transaction shape): the floor the server adds to.
// Columns: round-trip latency percentiles (for "direct", the time of the calls); time in the
// server, from the request's headers to its response handed to the socket (p50, node:http
// diagnostics channels: body, JSON, engine, response); time inside Engine.pipeline (p50); CPU
// ms per pipeline of the server's thread (process.threadCpuUsage around the measured run: HTTP,
// JSON, engine and SQLite; the client thread is not counted). Each HTTP response is checked
// (no step error, COMMIT ran, the row read back).
import Database from 'libsql';
import { subscribe } from 'node:diagnostics_channel';
import { Agent, request, type IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { startLibsqlServer } from '../local/libsql-server.ts';
import { Engine } from '../local/libsql-server/engine.ts';
import { applyMigrations } from '../local/migrate.ts';
import { percentile } from './support.ts';

const N = Number(process.env.BENCH_N ?? 2000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 300);

const ACCOUNT = 'acc_bench0000000000000000';
const AVAILABLE = `${ACCOUNT}:USD:available`;
const HELD = `${ACCOUNT}:USD:held`;
const HOLD = 23167n;
const NOW = 1795627523533;

// The statements of the captured order pipeline, verbatim (src/orders + src/ledger/store.ts).
const SQL = {
  order: `INSERT INTO orders (id, account_id, idempotency_key, request_hash, side, region, gpu_model, gpus, price, tif, duration_s, pay_with,
              hold_amount, min_reliability_ppm, verified_only, workload, node_id, min_duration_s, max_duration_s, book, status, expires_at, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)`,
  transaction: `INSERT INTO ledger_transactions (id, idempotency_key, request_hash, kind, reference, reverses, memo, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  account: `INSERT INTO ledger_accounts (id, owner_id, asset, kind, allow_negative, balance, created_at)
            VALUES (?, ?, ?, ?, ?, 0, ?) ON CONFLICT (id) DO NOTHING`,
  balance: `UPDATE ledger_accounts SET balance = balance + ? WHERE id = ?`,
  entry: `INSERT INTO ledger_entries (transaction_id, account_id, owner_id, account_kind, asset, amount, balance_after, created_at)
            SELECT ?, id, owner_id, kind, asset, ?, balance, ? FROM ledger_accounts WHERE id = ?
            RETURNING account_id, owner_id, account_kind, asset, amount, balance_after`,
  select: 'SELECT status FROM accounts WHERE id = ?',
} as const;

type Value = null | bigint | number | string;

/** The 8 statements of order number `i` (between BEGIN IMMEDIATE and COMMIT), with their args. */
function orderStatements(i: number): { sql: keyof typeof SQL; args: Value[] }[] {
  const id = `ord_bench${String(i).padStart(15, '0')}`;
  const tx = `ltx_bench${String(i).padStart(15, '0')}`;
  const workload = '{"image":"busybox","command":[],"env":{},"ports":[]}';
  const book = JSON.stringify({ id, accountId: ACCOUNT, gpus: 1, price: 1390000, expiresAt: NOW + 86_400_000, region: 'us-east', gpuModel: 'h100-80gb', side: 'buy', durationS: 60, minReliability: 0, verifiedOnly: false, tif: 'gtc', payWith: 'USD', holdAmount: String(HOLD), gridUsdRate: '250000', gridDiscountBps: '1000', workload: JSON.parse(workload) });
  const hash = (n: number) => (n.toString(16) + 'a'.repeat(64)).slice(0, 64);
  return [
    { sql: 'order', args: [id, ACCOUNT, `key-${i}`, hash(i), 'buy', 'us-east', 'h100-80gb', 1, 1390000n, 'gtc', 60, 'USD', HOLD, 0, 0, workload, null, null, null, book, NOW + 86_400_000, NOW] },
    { sql: 'transaction', args: [tx, `order:${id}:hold`, hash(i + 1), 'hold', id, null, 'bid escrow', NOW] },
    { sql: 'account', args: [AVAILABLE, ACCOUNT, 'USD', 'available', 0, NOW] },
    { sql: 'account', args: [HELD, ACCOUNT, 'USD', 'held', 0, NOW] },
    { sql: 'balance', args: [-HOLD, AVAILABLE] },
    { sql: 'entry', args: [tx, -HOLD, NOW, AVAILABLE] },
    { sql: 'balance', args: [HOLD, HELD] },
    { sql: 'entry', args: [tx, HOLD, NOW, HELD] },
  ];
}

// ---- client (worker thread) ----

/** A value as @libsql/client sends it: JS numbers as floats, bigints as integer strings. */
function jsonValue(v: Value): Record<string, unknown> {
  if (v === null) return { type: 'null' };
  if (typeof v === 'bigint') return { type: 'integer', value: String(v) };
  if (typeof v === 'number') return { type: 'float', value: v };
  return { type: 'text', value: v };
}

function orderBody(i: number): string {
  const ids = Object.keys(SQL).filter((k) => k !== 'select') as (keyof typeof SQL)[];
  const stmt = (s: Record<string, unknown>, args: Value[], wantRows: boolean) => ({ ...s, args: args.map(jsonValue), named_args: [], want_rows: wantRows });
  const steps: unknown[] = [{ stmt: stmt({ sql: 'BEGIN IMMEDIATE' }, [], false) }];
  for (const s of orderStatements(i)) steps.push({ condition: { type: 'ok', step: steps.length - 1 }, stmt: stmt({ sql_id: ids.indexOf(s.sql) }, s.args, true) });
  steps.push({ condition: { type: 'ok', step: steps.length - 1 }, stmt: stmt({ sql: 'COMMIT' }, [], false) });
  steps.push({ condition: { type: 'not', cond: { type: 'ok', step: steps.length - 1 } }, stmt: stmt({ sql: 'ROLLBACK' }, [], false) });
  return JSON.stringify({
    baton: null,
    requests: [...ids.map((id, sqlId) => ({ type: 'store_sql', sql_id: sqlId, sql: SQL[id] })), { type: 'batch', batch: { steps } }, { type: 'close' }],
  });
}

const selectBody = JSON.stringify({
  baton: null,
  requests: [{ type: 'execute', stmt: { sql: SQL.select, args: [jsonValue(ACCOUNT)], named_args: [], want_rows: true } }, { type: 'close' }],
});

function checkOrder(res: any): void {
  const batch = res.results?.[5];
  const errors = batch?.response?.result?.step_errors as unknown[] | undefined;
  if (batch?.type !== 'ok' || errors === undefined || errors.some((e) => e !== null) || batch.response.result.step_results[9] === null) {
    throw new Error(`order pipeline failed: ${JSON.stringify(res).slice(0, 2000)}`);
  }
}

function checkSelect(res: any): void {
  if (res.results?.[0]?.response?.result?.rows?.[0]?.[0]?.value !== 'active') throw new Error(`select pipeline failed: ${JSON.stringify(res).slice(0, 2000)}`);
}

async function client(url: string): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const target = new URL('/v2/pipeline', url);
  const post = (body: Buffer) =>
    new Promise<string>((resolve, reject) => {
      const req = request(target, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString('utf8')}`))));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  let next = 0;
  const run = async (kind: 'order' | 'select', count: number): Promise<number[]> => {
    const latencies: number[] = [];
    const select = Buffer.from(selectBody);
    for (let k = 0; k < count; k++) {
      const body = kind === 'order' ? Buffer.from(orderBody(next++)) : select;
      const t0 = performance.now();
      const text = await post(body);
      latencies.push(performance.now() - t0);
      const res = JSON.parse(text);
      if (kind === 'order') checkOrder(res);
      else checkSelect(res);
    }
    return latencies;
  };
  const port = parentPort!;
  port.on('message', async (msg: { kind: 'order' | 'select'; count: number } | 'exit') => {
    if (msg === 'exit') {
      agent.destroy();
      port.close();
      return;
    }
    try {
      port.postMessage({ latencies: await run(msg.kind, msg.count) });
    } catch (err) {
      port.postMessage({ error: err instanceof Error ? err.message : String(err) });
    }
  });
}

// ---- server side (main thread) ----

interface Result {
  latencies: number[];
  cpuMs: number;
  serverMs: number[];
  engineMs: number[];
}

const engineMs: number[] = [];
const serverMs: number[] = [];

/** Times each request in the server: headers parsed → response finished (written to the socket). */
function instrumentServer(): void {
  const started = new WeakMap<IncomingMessage, number>();
  subscribe('http.server.request.start', (m) => started.set((m as { request: IncomingMessage }).request, performance.now()));
  subscribe('http.server.response.finish', (m) => {
    const t0 = started.get((m as { request: IncomingMessage }).request);
    if (t0 !== undefined) serverMs.push(performance.now() - t0);
  });
}

/** Times Engine.pipeline (from the parsed request to the response object). */
function instrumentEngine(): void {
  const original = Engine.prototype.pipeline;
  Engine.prototype.pipeline = async function (this: Engine, body) {
    const t0 = performance.now();
    try {
      return await original.call(this, body);
    } finally {
      engineMs.push(performance.now() - t0);
    }
  };
}

function cpuMs(): number {
  const u = process.threadCpuUsage();
  return (u.user + u.system) / 1000;
}

function ask(worker: Worker, kind: 'order' | 'select', count: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    worker.once('message', (msg: { latencies?: number[]; error?: string }) => (msg.error !== undefined ? reject(new Error(msg.error)) : resolve(msg.latencies!)));
    worker.postMessage({ kind, count });
  });
}

async function overHttp(worker: Worker, kind: 'order' | 'select'): Promise<Result> {
  await ask(worker, kind, WARMUP);
  engineMs.length = 0;
  serverMs.length = 0;
  const cpu0 = cpuMs();
  const latencies = await ask(worker, kind, N);
  const cpu = cpuMs() - cpu0;
  return { latencies, cpuMs: cpu / N, serverMs: serverMs.splice(0), engineMs: engineMs.splice(0) };
}

/** The floor: the same statements through the driver, on a connection set up like the server's. */
function direct(file: string, kind: 'order' | 'select', first: number): Result {
  const db = new Database(file, { timeout: 0 });
  db.exec('PRAGMA busy_timeout = 0');
  db.exec('PRAGMA foreign_keys = ON');
  db.exec('PRAGMA synchronous = NORMAL');
  try {
    const prepared = Object.fromEntries(Object.entries(SQL).map(([k, sql]) => [k, db.prepare(sql).safeIntegers(true)])) as Record<keyof typeof SQL, Database.Statement>;
    const begin = db.prepare('BEGIN IMMEDIATE');
    const commit = db.prepare('COMMIT');
    const once = (statements: ReturnType<typeof orderStatements>) => {
      if (kind === 'select') {
        const rows = prepared.select.raw(true).all([ACCOUNT]) as unknown[][];
        if (rows[0]?.[0] !== 'active') throw new Error('direct select: account not found');
        return;
      }
      begin.run();
      for (const s of statements) {
        const stmt = prepared[s.sql];
        if (stmt.reader) stmt.raw(true).all(s.args);
        else stmt.run(s.args);
      }
      commit.run();
    };
    const args = (i: number) => (kind === 'order' ? orderStatements(i) : []);
    for (let k = 0; k < WARMUP; k++) once(args(first + k));
    // The arguments are built before the timed run: the server gets them parsed too.
    const all = Array.from({ length: N }, (_, k) => args(first + WARMUP + k));
    const latencies: number[] = [];
    const cpu0 = cpuMs();
    for (const statements of all) {
      const t0 = performance.now();
      once(statements);
      latencies.push(performance.now() - t0);
    }
    return { latencies, cpuMs: (cpuMs() - cpu0) / N, serverMs: [], engineMs: [] };
  } finally {
    db.close();
  }
}

function seed(file: string): void {
  const db = new Database(file);
  try {
    db.prepare("INSERT INTO accounts (id, email, password_hash, roles, status) VALUES (?, 'bench@example.com', 'x', '[\"renter\"]', 'active')").run([ACCOUNT]);
    db.prepare("INSERT INTO ledger_accounts (id, owner_id, asset, kind, allow_negative, balance, created_at) VALUES (?, ?, 'USD', 'available', 0, ?, ?)").run([AVAILABLE, ACCOUNT, 10n ** 15n, NOW]);
  } finally {
    db.close();
  }
}

async function main(): Promise<void> {
  if (!(Number.isInteger(N) && N > 0) || !(Number.isInteger(WARMUP) && WARMUP >= 0)) throw new Error('BENCH_N must be a positive integer, BENCH_WARMUP ≥ 0');
  const dir = mkdtempSync(join(tmpdir(), 'gridlease-bench-libsql-'));
  const file = join(dir, 'db.sqlite');
  let worker: Worker | undefined;
  let server: Awaited<ReturnType<typeof startLibsqlServer>> | undefined;
  try {
    await applyMigrations(`file:${file}`);
    seed(file);
    instrumentEngine();
    instrumentServer();
    server = await startLibsqlServer({ file, port: 0 });
    worker = new Worker(new URL(import.meta.url), { workerData: { url: server.url } });
    await new Promise<void>((resolve, reject) => {
      worker!.once('online', resolve);
      worker!.once('error', reject);
    });
    const rows: [string, string, Result][] = [];
    rows.push(['order (5 store_sql + batch of 11 + close)', 'HTTP', await overHttp(worker, 'order')]);
    rows.push(['select (execute + close)', 'HTTP', await overHttp(worker, 'select')]);
    worker.postMessage('exit');
    await server.close();
    server = undefined;
    rows.push(['order: BEGIN IMMEDIATE + 8 + COMMIT', 'libsql driver, direct', direct(file, 'order', 1_000_000)]);
    rows.push(['select', 'libsql driver, direct', direct(file, 'select', 0)]);

    const f = (n: number) => (Number.isNaN(n) ? '—' : n.toFixed(3));
    console.log(`\nlibSQL server per pipeline, one at a time: ${WARMUP} warm-up + ${N} measured each (node ${process.version})\n`);
    console.log('| pipeline | path | p50 ms | p90 ms | p99 ms | in server p50 ms | in Engine.pipeline p50 ms | server thread CPU ms/op |');
    console.log('|---|---|---:|---:|---:|---:|---:|---:|');
    for (const [name, path, r] of rows) {
      const lat = [...r.latencies].sort((a, b) => a - b);
      const p50 = (ms: number[]) => f(percentile([...ms].sort((a, b) => a - b), 50));
      console.log(`| ${name} | ${path} | ${f(percentile(lat, 50))} | ${f(percentile(lat, 90))} | ${f(percentile(lat, 99))} | ${p50(r.serverMs)} | ${p50(r.engineMs)} | ${f(r.cpuMs)} |`);
    }
  } finally {
    await worker?.terminate();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMainThread) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
} else {
  void client((workerData as { url: string }).url);
}
