// `npm run bench:rewards [-- --sizes 10000,100000 --chunk 500 --epoch-s 600 --owners 20]`
//
// Closing one supply-rewards epoch (docs/rewards.md, "Closing" and "I/O") for N synthetic nodes,
// per size: wall time from the epoch being due to its status `closed`, libSQL statements and HTTP
// pipeline requests the Worker sent, Worker invocations (scheduled calls) it took, per 10,000
// nodes, and whether 100,000 nodes close within the first 5 minutes of the next epoch.
//
// The platform runs in this process the way `npm start` (local/start.ts) runs it, with one
// difference: a counting proxy sits between the Worker and the local libSQL server, because the
// launcher points LIBSQL_URL at the server itself. The proxy parses each Hrana pipeline request
// and counts its statements (an `execute` is one, a `batch` one per step; BEGIN/COMMIT/ROLLBACK
// steps the client adds are counted apart). And instead of the launcher's timer
// (GRIDLEASE_CRON_S), the bench fires the cron itself, back to back: each `scheduled` call is
// awaited, so invocations never overlap and are counted exactly (the faster path; a deployed cron
// fires once a minute, which the goal's projection below accounts for).
//
// Synthetic data, written straight into the database file (embedded libSQL, one INSERT … SELECT
// over a recursive CTE per table) before the server starts: `--owners` provider accounts owning
// the nodes round-robin; per node one GPU of a catalog model (cycling through the catalog), a
// passed capacity challenge decided 7 days minus a minute before the epoch (still verifying it:
// VERIFIED_TTL_S is 7 days; and outside the inspection cron's 7-day look-back, which would
// otherwise open an inspection of every node's challenge while the bench runs), a full epoch of
// node_metrics_minute rows, and a one-GPU sell order open through the whole epoch (stored as
// `cancelled` a minute after the
// epoch's end, so the each-minute order sweep, which would try to place still-open orders in their
// Durable Object books, leaves them alone; the inputs read only created_at and closed_at). Nodes
// are `offline` (so the challenge cron issues no re-challenges) and verified. No leases: paid
// utilisation 0, taper 100%. The epoch is short, REWARDS_EPOCH_S=600 by default (10 minute rows per
// node: 1M rows at 100,000 nodes; an hour would be 6M), with REWARDS_START set so that epoch 0
// ended CLOSE_DELAY (2 min) and a bit before the run: it is due at once.
//
// --timeout-s (default 1800) per size: a close still running after that is reported as NOT
// closed, with how far it got; the process then ends itself with SIGKILL (exit status 137), since
// the statement still running on the libSQL server's thread cannot be interrupted.
//
// The admin (sign-up, then the role set in libSQL as bench/inspections.ts does) mints genesis via
// POST /v1/admin/rewards/genesis. Before the epoch is due, a few scheduled calls at a time before
// its end measure the other crons' floor (statements per call with nothing to close).
import { createClient, type Client } from '@libsql/client/node';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { HOST, LOCAL_CHAIN, LOCAL_GRID_ADDRESS, LOCAL_STRIPE_KEY, LOCAL_USDC_ADDRESS, ROOT } from '../local/dev-config.ts';
import { startLibsqlServerThread, type LibsqlServerThread } from '../local/libsql-server/thread.ts';
import { applyMigrations } from '../local/migrate.ts';
import { loadOrCreateSecrets } from '../local/secrets.ts';
import { bundleWorker, startWorker } from '../local/worker.ts';
import { GPU_MODELS } from '../src/catalog/gpus.ts';
import { CLOSE_DELAY_MS, DEFAULT_CLOSE_BUDGET_S, DEFAULT_CLOSE_MAX_STEPS } from '../src/rewards/config.ts';
import { freePort } from '../test/support/platform.ts';
import { findWorkerd, ticks } from './proc.ts';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,100000' },
    chunk: { type: 'string', default: '' },
    'epoch-s': { type: 'string', default: '600' },
    owners: { type: 'string', default: '20' },
    'max-invocations': { type: 'string', default: '5000' },
    'timeout-s': { type: 'string', default: '1800' },
    'keep-data': { type: 'boolean', default: false },
  },
  strict: true,
});
const SIZES = String(args.sizes)
  .split(',')
  .map((s) => Number(s.trim()));
if (SIZES.some((n) => !Number.isInteger(n) || n < 1 || n > 1_000_000)) throw new Error('--sizes: integers in [1, 1000000], comma-separated');
/** REWARDS_CLOSE_CHUNK; empty: unset, the default (500). */
const CHUNK = String(args.chunk).trim();
const EPOCH_S = Number(args['epoch-s']);
if (!Number.isInteger(EPOCH_S) || EPOCH_S < 60 || EPOCH_S % 60 !== 0) throw new Error('--epoch-s: a whole number of minutes, at least 60');
const OWNERS = Number(args.owners);
const MAX_INVOCATIONS = Number(args['max-invocations']);
/** Per size: a close still not done after this long is reported as such (the bench does not wait on). */
const TIMEOUT_S = Number(args['timeout-s']);
const MINUTES = EPOCH_S / 60;
const CLOSE_DELAY_S = CLOSE_DELAY_MS / 1000;
const CRON_PERIOD_S = 60;
const GOAL_NODES = 100_000;
const GOAL_S = 300;
const BASELINE_CALLS = 5;

const fmt = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
const int = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
const progressStart = performance.now();
const progress = (what: string) => console.error(`${((performance.now() - progressStart) / 1000).toFixed(1).padStart(7)} s  ${what}`);
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' / ');

// ── The counting proxy ────────────────────────────────────────────────────────────────
interface Counts {
  requests: number;
  statements: number;
  /** BEGIN / COMMIT / ROLLBACK steps the client wraps batches in. */
  control: number;
  bytesIn: number;
  bytesOut: number;
  maxRequestBytes: number;
  maxResponseBytes: number;
  byKind: Map<string, number>;
}
const newCounts = (): Counts => ({ requests: 0, statements: 0, control: 0, bytesIn: 0, bytesOut: 0, maxRequestBytes: 0, maxResponseBytes: 0, byKind: new Map() });
const CONTROL = /^\s*(BEGIN|COMMIT|ROLLBACK|END)\b/i;

/** What a statement is for, by its SQL text (for the breakdown table). */
function kindOf(sql: string): string {
  if (/FROM node_metrics_minute m WHERE/.test(sql) || /INSERT INTO reward_lines/.test(sql) || /SET cursor = \?/.test(sql)) return 'inputs (computing)';
  if (/SELECT \* FROM reward_lines/.test(sql) || /json_each\(\?\)/.test(sql) || /SET status = 'paying'/.test(sql) || /idempotency_key >= 'inspection:'/.test(sql) || /SELECT balance FROM ledger_accounts WHERE id = \?$/.test(sql.trim()))
    return 'split';
  if (/paid_at IS NULL AND amount > 0/.test(sql) || /ledger_/.test(sql) || /SET paid_at = \?/.test(sql) || /SET status = 'closed'/.test(sql)) return 'payments';
  if (/reward_epochs|reward_lines/.test(sql)) return 'epoch state / vesting';
  return 'other crons';
}

/**
 * SQL texts the client stored (`store_sql`) and refers to by `sql_id`: ids belong to a stream, but
 * the Worker's calls here run one after another, so the latest text stored under an id is the one
 * (for the breakdown by purpose only; counts do not depend on it).
 */
const storedSql = new Map<number, string>();

function countPipeline(body: Buffer, c: Counts): void {
  c.requests++;
  c.bytesIn += body.length;
  c.maxRequestBytes = Math.max(c.maxRequestBytes, body.length);
  let json: any;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return;
  }
  const one = (stmt: any) => {
    const sql = String(stmt?.sql ?? (stmt?.sql_id !== undefined ? (storedSql.get(stmt.sql_id) ?? '') : ''));
    if (CONTROL.test(sql)) {
      c.control++;
      return;
    }
    c.statements++;
    const k = kindOf(sql);
    c.byKind.set(k, (c.byKind.get(k) ?? 0) + 1);
  };
  for (const r of json?.requests ?? []) {
    if (r?.type === 'store_sql') storedSql.set(r.sql_id, String(r.sql));
    else if (r?.type === 'execute') one(r.stmt);
    else if (r?.type === 'batch') for (const s of r.batch?.steps ?? []) one(s.stmt);
    else if (r?.type === 'sequence') one({ sql: r.sql });
  }
}

function startProxy(target: URL, counts: () => Counts): Promise<{ server: Server; url: string; close: () => Promise<void> }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const c = counts();
      if (req.method === 'POST' && /\/pipeline$/.test(req.url ?? '')) countPipeline(body, c);
      const headers = { ...req.headers, host: target.host, 'content-length': String(body.length) };
      const up = request({ agent, host: target.hostname, port: target.port, path: req.url, method: req.method, headers }, (upRes) => {
        const out: Buffer[] = [];
        upRes.on('data', (d: Buffer) => out.push(d));
        upRes.on('end', () => {
          const data = Buffer.concat(out);
          c.bytesOut += data.length;
          c.maxResponseBytes = Math.max(c.maxResponseBytes, data.length);
          const h = { ...upRes.headers };
          delete h['transfer-encoding'];
          h['content-length'] = String(data.length);
          res.writeHead(upRes.statusCode ?? 502, h);
          res.end(data);
        });
        upRes.on('error', () => res.destroy());
      });
      up.on('error', (err) => {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: `proxy: ${String(err)}`, code: 'PROXY_ERROR' }));
      });
      up.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve) =>
    server.listen(0, HOST, () => {
      const { port } = server.address() as { port: number };
      resolve({
        server,
        url: `http://${HOST}:${port}`,
        close: () =>
          new Promise<void>((r) => {
            agent.destroy();
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    }),
  );
}

// ── Synthetic data ───────────────────────────────────────────────────────────────────
async function seed(db: Client, n: number, startMs: number): Promise<void> {
  const endMs = startMs + EPOCH_S * 1000;
  const startMin = startMs / 60_000;
  const models = `(${GPU_MODELS.map((m, i) => `SELECT ${i} AS k, '${m.id}' AS id, '${m.names[0]}' AS name, ${Math.round(m.vramGb * 1024)} AS mib`).join(' UNION ALL ')})`;
  const seq = (count: number) => `WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ${count - 1})`;
  const nodeId = (col: string) => `printf('nod_bench%011d', ${col})`;
  const owner = (col: string) => `printf('acc_bench%011d', ${col} % ${OWNERS})`;
  const modelCount = GPU_MODELS.length;
  // Decided 7 days minus a minute before the epoch's start: within the verified TTL (7 days) at the
  // start, and older than the inspection cron's 7-day look-back (INSPECTION_LOOKBACK_MS), so the
  // cron does not open an inspection of each of these challenges while the bench runs.
  const decidedAt = startMs - 7 * 86_400_000 + 60_000;
  const steps: Array<[string, string]> = [
    ['accounts', `${seq(OWNERS)} INSERT INTO accounts (id, email, password_hash, roles, status, created_at)
      SELECT printf('acc_bench%011d', i), printf('bench.owner.%d@example.com', i), 'x', '["provider"]', 'active', ${startMs - 2 * 86_400_000} FROM s`],
    ['nodes', `${seq(n)} INSERT INTO nodes (id, account_id, region, hostname, machine, status, verified, verified_at, verified_until, last_heartbeat_at, created_at)
      SELECT ${nodeId('i')}, ${owner('i')}, 'us-east', printf('host-%d', i), '{}', 'offline', 1, ${startMs - 3_600_000}, ${endMs + 30 * 86_400_000}, ${endMs - 1000}, ${startMs - 86_400_000} FROM s`],
    ['node_gpus', `${seq(n)} INSERT INTO node_gpus (node_id, gpu_index, uuid, name, model, memory_mib, driver)
      SELECT ${nodeId('i')}, 0, printf('GPU-bench-%d', i), m.name, m.id, m.mib, '550.54.15' FROM s JOIN ${models} m ON m.k = s.i % ${modelCount}`],
    ['node_metrics_minute', `${seq(n)}, t(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM t WHERE k < ${MINUTES - 1})
      INSERT INTO node_metrics_minute (node_id, minute, heartbeats, util_sum, util_samples, mem_used_max_mib, temp_max_c, power_sum_w, power_samples)
      SELECT ${nodeId('i')}, ${startMin} + k, 4, 2.0, 4, 1024, 60.0, 1200.0, 4 FROM s, t ORDER BY 1, 2`],
    ['orders', `${seq(n)} INSERT INTO orders (id, account_id, idempotency_key, request_hash, side, region, gpu_model, gpus, price, tif, book, status, node_id, expires_at, created_at, closed_at)
      SELECT printf('ord_bench%011d', i), ${owner('i')}, printf('bench-%d', i), 'x', 'sell', 'us-east', m.id, 1, 1000000, 'gtc', '{}', 'cancelled', ${nodeId('i')},
        ${endMs + 86_400_000}, ${startMs - 3_600_000}, ${endMs + 60_000}
      FROM s JOIN ${models} m ON m.k = s.i % ${modelCount}`],
    ['node_challenges', `${seq(n)} INSERT INTO node_challenges (id, node_id, kind, challenge, status, issued_at, deadline, decision, decided_at)
      SELECT printf('chl_bench%011d', i), ${nodeId('i')}, 'capacity', '{}', 'passed', ${decidedAt - 600_000}, ${decidedAt}, 'pass', ${decidedAt} FROM s`],
  ];
  for (const [table, sql] of steps) {
    const t = performance.now();
    await db.execute(sql);
    progress(`  ${table}: ${fmt((performance.now() - t) / 1000)} s`);
  }
}

/** Set when a size's close did not finish within --timeout-s. */
let timedOut = false;

// ── One size ─────────────────────────────────────────────────────────────────────────
interface Invocation {
  ms: number;
  before: string | null;
  after: string | null;
  statements: number;
  requests: number;
}

interface Row {
  n: number;
  /** False when the timeout ended the wait: the numbers are then those reached so far. */
  closed: boolean;
  state: string;
  log: Invocation[];
  lines: number;
  eligible: number;
  wallS: number;
  computingS: number;
  payingS: number;
  reportS: number;
  invocations: number;
  computingInvocations: number;
  maxInvocationS: number;
  counts: Counts;
  baselinePerCall: { statements: number; requests: number };
  workerdCpuS: number;
  serverCpuS: number;
  seedS: number;
  paidMatches: boolean;
}

async function runSize(n: number, script: string): Promise<Row> {
  const dataDir = mkdtempSync(join(tmpdir(), 'gridlease-bench-rewards-'));
  let libsql: LibsqlServerThread | undefined;
  let proxy: Awaited<ReturnType<typeof startProxy>> | undefined;
  let mf: Awaited<ReturnType<typeof startWorker>>['mf'] | undefined;
  let direct: Client | undefined;
  try {
    const dbFile = join(dataDir, 'gridlease.db');
    await applyMigrations(`file:${dbFile}`);
    // Epoch 0 ended CLOSE_DELAY + 60 s before seeding starts: due at the first call.
    const startMs = Math.floor(Date.now() / 60_000) * 60_000 - (EPOCH_S + CLOSE_DELAY_S + 60) * 1000;
    const endMs = startMs + EPOCH_S * 1000;
    progress(`n = ${n}: seeding (epoch 0 = ${new Date(startMs).toISOString()} + ${EPOCH_S} s)`);
    const seedStarted = performance.now();
    const file = createClient({ url: `file:${dbFile}` });
    try {
      await seed(file, n, startMs);
    } finally {
      file.close();
    }
    const seedS = (performance.now() - seedStarted) / 1000;

    libsql = await startLibsqlServerThread({ file: dbFile, host: HOST, port: 0, log: (line) => console.error(JSON.stringify({ component: 'libsql', ...line })) });
    let counts = newCounts();
    proxy = await startProxy(new URL(libsql.url), () => counts);
    direct = createClient({ url: libsql.url }); // the bench's own reads: not through the proxy, not counted
    const secrets = await loadOrCreateSecrets(dataDir);
    const port = await freePort();
    const origin = `http://${HOST}:${port}`;
    const started = await startWorker({
      script,
      host: HOST,
      port,
      persistDir: dataDir,
      libsqlAddress: new URL(proxy.url).host,
      bindings: {
        // As local/start.ts binds them, LIBSQL_URL pointing at the counting proxy.
        ENVIRONMENT: 'development',
        LIBSQL_URL: proxy.url,
        JWT_ISSUER: origin,
        JWT_PRIVATE_KEYS: secrets.JWT_PRIVATE_KEYS,
        APP_URL: origin,
        STRIPE_SECRET_KEY: LOCAL_STRIPE_KEY,
        STRIPE_WEBHOOK_SECRET: secrets.STRIPE_WEBHOOK_SECRET,
        STRIPE_API_BASE: `http://${HOST}:9`,
        CHAIN_WEBHOOK_SECRETS: secrets.CHAIN_WEBHOOK_SECRETS,
        PUBLIC_URL: origin,
        QUEUE_TRANSPORT: 'local',
        QSTASH_CURRENT_SIGNING_KEY: secrets.QSTASH_CURRENT_SIGNING_KEY,
        QSTASH_NEXT_SIGNING_KEY: secrets.QSTASH_NEXT_SIGNING_KEY,
        CHAIN_NAME: LOCAL_CHAIN,
        USDC_DEPOSIT_ADDRESS: LOCAL_USDC_ADDRESS,
        GRID_DEPOSIT_ADDRESS: LOCAL_GRID_ADDRESS,
        CAPACITY_MAX_N: '256',
        INSPECTION_COMMIT_S: '60',
        INSPECTION_REVEAL_S: '60',
        LOG_REQUESTS: 'false',
        REWARDS_START: new Date(startMs).toISOString(),
        REWARDS_EPOCH_S: String(EPOCH_S),
        ...(CHUNK ? { REWARDS_CLOSE_CHUNK: CHUNK } : {}),
      },
    });
    mf = started.mf;
    const worker = await mf.getWorker('gridlease');
    const workerd = findWorkerd(process.pid);
    const api = async (method: string, path: string, opts: { auth?: string; body?: unknown } = {}) => {
      const res = await fetch(`${origin}${path}`, {
        method,
        headers: { ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }), ...(opts.auth ? { authorization: `Bearer ${opts.auth}` } : {}), 'idempotency-key': crypto.randomUUID() },
        ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
      });
      const text = await res.text();
      let body: any = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON
      }
      return { status: res.status, body };
    };

    // Admin and genesis.
    const signUp = await api('POST', '/v1/accounts', { body: { email: `bench.admin.${crypto.randomUUID().slice(0, 8)}@example.com`, password: 'Benchmark-Rewards-4417', roles: ['renter'] } });
    if (signUp.status !== 201) throw new Error(`sign-up: ${signUp.status} ${JSON.stringify(signUp.body).slice(0, 300)}`);
    await direct.execute({ sql: `UPDATE accounts SET roles = '["renter","admin"]' WHERE id = ?`, args: [signUp.body.account.id] });
    const genesis = await api('POST', '/v1/admin/rewards/genesis', { auth: signUp.body.api_key.key });
    if (genesis.status !== 201) throw new Error(`genesis: ${genesis.status} ${JSON.stringify(genesis.body).slice(0, 300)}`);
    progress(`n = ${n}: platform up, genesis minted ${genesis.body.amount} GRID; seeding took ${fmt(seedS)} s`);

    // The other crons' floor: calls at a time before the epoch's end (nothing to close).
    counts = newCounts();
    for (let i = 0; i < BASELINE_CALLS; i++) await worker.scheduled({ scheduledTime: new Date(startMs + 60_000), cron: '* * * * *' });
    const baselinePerCall = { statements: counts.statements / BASELINE_CALLS, requests: counts.requests / BASELINE_CALLS };

    // Close: back-to-back scheduled calls until the epoch's row says closed.
    counts = newCounts();
    const report = newCounts();
    const cpu0 = { workerd: ticks(workerd), self: process.cpuUsage() };
    const t0 = performance.now();
    let invocations = 0;
    let computingInvocations = 0;
    let maxInvocationS = 0;
    let payingAt = NaN;
    let closedAt = NaN;
    let lastLog = performance.now();
    const log: Invocation[] = [];
    let lastLines = 0;
    let closed = false;
    let state = '';
    const deadline = t0 + TIMEOUT_S * 1000;
    for (;;) {
      if (invocations >= MAX_INVOCATIONS) throw new Error(`not closed after ${invocations} invocations`);
      const before = ((await direct.execute('SELECT status FROM reward_epochs WHERE epoch = 0')).rows[0]?.status ?? null) as string | null;
      const ti = performance.now();
      const s0 = { statements: counts.statements, requests: counts.requests };
      const call = worker.scheduled({ scheduledTime: new Date(), cron: '* * * * *' });
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([call, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), Math.max(0, deadline - performance.now()))))]);
      clearTimeout(timer);
      maxInvocationS = Math.max(maxInvocationS, (performance.now() - ti) / 1000);
      invocations++;
      if (outcome === 'timeout') {
        // The server runs one statement at a time: while the Worker's is still running, this read waits on it.
        const read = direct.execute('SELECT status, (SELECT COUNT(*) FROM reward_lines WHERE epoch = 0) AS lines, (SELECT COUNT(*) FROM reward_lines WHERE epoch = 0 AND paid_at IS NOT NULL) AS paid FROM reward_epochs WHERE epoch = 0');
        const r = await Promise.race([read.then((rs) => rs.rows[0]), new Promise<null>((res) => setTimeout(() => res(null), 5_000).unref())]);
        state = `invocation ${invocations} (status ${before} when it started) still running after ${TIMEOUT_S} s; ${r === null ? 'the libSQL server still busy with a statement (no answer to a status read within 5 s)' : `status ${r?.status}, ${r?.lines} lines, ${r?.paid} paid`}`;
        log.push({ ms: performance.now() - ti, before, after: null, statements: counts.statements - s0.statements, requests: counts.requests - s0.requests });
        progress(`n = ${n}: TIMEOUT: ${state}`);
        timedOut = true;
        closedAt = performance.now();
        if (Number.isNaN(payingAt)) payingAt = closedAt;
        break;
      }
      if (before === null || before === 'computing') computingInvocations++;
      if ((outcome as { outcome?: string }).outcome && (outcome as { outcome: string }).outcome !== 'ok') progress(`invocation ${invocations}: outcome ${JSON.stringify(outcome)}`);
      const row = (await direct.execute('SELECT status, cursor, (SELECT COUNT(*) FROM reward_lines WHERE epoch = 0) AS lines, (SELECT COUNT(*) FROM reward_lines WHERE epoch = 0 AND paid_at IS NOT NULL) AS paid FROM reward_epochs WHERE epoch = 0')).rows[0];
      lastLines = Number(row?.lines ?? 0);
      const status = (row?.status ?? null) as string | null;
      log.push({ ms: performance.now() - ti, before, after: status, statements: counts.statements - s0.statements, requests: counts.requests - s0.requests });
      if (status !== 'computing' && status !== null && Number.isNaN(payingAt)) payingAt = performance.now();
      if (performance.now() - lastLog > 15_000) {
        lastLog = performance.now();
        progress(`n = ${n}: ${invocations} invocations, status ${status}, ${row?.lines ?? 0} lines, ${row?.paid ?? 0} paid, ${int(counts.statements)} statements`);
      }
      if (status === 'closed') {
        // The public report: polled until 200 (its statements counted apart).
        const r0 = performance.now();
        const saved = counts;
        counts = report;
        let reply;
        for (let i = 0; i < 100; i++) {
          reply = await api('GET', '/v1/rewards/epochs/0?limit=1');
          if (reply.status === 200) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        counts = saved;
        if (reply?.status !== 200) throw new Error(`GET /v1/rewards/epochs/0: ${reply?.status} ${JSON.stringify(reply?.body).slice(0, 300)}`);
        closedAt = performance.now();
        closed = true;
        state = `closed; report answered 200 in ${fmt((closedAt - r0) / 1000, 2)} s`;
        break;
      }
    }
    const cpu1 = { workerd: ticks(workerd), self: process.cpuUsage(cpu0.self) };
    // After a timeout the server may still be running the Worker's statement: no more reads then.
    const totals = !closed
      ? { lines: lastLines, paid: null, eligible: NaN, paid_sum: null }
      : (
      await direct.execute(`SELECT (SELECT COUNT(*) FROM reward_lines WHERE epoch = 0) AS lines, e.paid, (SELECT COUNT(*) FROM reward_lines WHERE epoch = 0 AND eligible = 1) AS eligible,
        (SELECT COALESCE(SUM(amount), 0) FROM reward_lines WHERE epoch = 0 AND paid_at IS NOT NULL) AS paid_sum FROM reward_epochs e WHERE e.epoch = 0`)
    ).rows[0]!;
    const row: Row = {
      n,
      closed,
      state,
      log,
      lines: Number(totals.lines),
      eligible: Number(totals.eligible),
      wallS: (closedAt - t0) / 1000,
      computingS: (payingAt - t0) / 1000,
      payingS: (closedAt - payingAt) / 1000,
      reportS: 0,
      invocations,
      computingInvocations,
      maxInvocationS,
      counts,
      baselinePerCall,
      workerdCpuS: (cpu1.workerd - cpu0.workerd) / 1000,
      // This process: the proxy, Miniflare's side and the libSQL server's thread.
      serverCpuS: (cpu1.self.user + cpu1.self.system) / 1e6,
      seedS,
      paidMatches: String(totals.paid) === String(totals.paid_sum),
    };
    progress(`n = ${n}: ${closed ? 'closed' : 'NOT closed'} after ${invocations} invocations in ${fmt(row.wallS)} s; ${int(counts.statements)} statements in ${int(counts.requests)} requests`);
    for (const [i, l] of log.entries()) progress(`  invocation ${i + 1}: ${l.before} → ${l.after ?? '(still running)'} in ${fmt(l.ms / 1000, 2)} s, ${int(l.statements)} statements, ${int(l.requests)} requests`);
    return row;
  } finally {
    direct?.close();
    // A statement still running on the libSQL thread (after a timeout) cannot be interrupted:
    // cleaning up waits at most a few seconds for each part, and main() exits the process.
    const upTo = (p: Promise<unknown> | undefined) => Promise.race([p?.catch(() => {}), new Promise((r) => setTimeout(r, 10_000).unref())]);
    await upTo(mf?.dispose());
    await upTo(proxy?.close());
    await upTo(libsql?.close());
    if (!args['keep-data']) rmSync(dataDir, { recursive: true, force: true });
    else progress(`data kept in ${dataDir}`);
  }
}

async function main(): Promise<void> {
  for (const [k, v] of Object.entries({ WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_HIDE_BANNER: 'true' })) process.env[k] ??= v;
  const loadBefore = load();
  progress('bundling the Worker');
  const script = bundleWorker(join(ROOT, '.wrangler', 'bench-rewards-build'));
  const rows: Row[] = [];
  for (const n of SIZES) rows.push(await runSize(n, script));
  const chunk = CHUNK || '500 (default)';
  const steps = (n: number) => Math.ceil(n / Number(CHUNK || 500));

  console.log(
    `\nTable 1. Closing one rewards epoch (REWARDS_EPOCH_S=${EPOCH_S}: ${MINUTES} node_metrics_minute rows per node; REWARDS_CLOSE_CHUNK=${chunk}; ${OWNERS} owners; every node eligible: one GPU of a catalog model, ` +
      `a sell order open through the epoch, a passed capacity challenge, every minute confirmed; no leases). The Worker in workerd (Miniflare) and the local libSQL server, as \`npm start\` runs them, ` +
      `a counting proxy between them; the cron fired by the bench back to back (each scheduled call awaited) from the moment the epoch is due until its row says closed and GET /v1/rewards/epochs/0 answers 200. ` +
      `${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, Node ${process.versions.node}; shared with other work: load average ${loadBefore} before, ${load()} after.\n`,
  );
  console.log('| nodes | closed? | lines (eligible) | wall to closed s | computing + split s | paying s | invocations (computing / paying) | longest invocation s | libSQL statements | + BEGIN/COMMIT | HTTP pipeline requests | largest request / response MB | workerd CPU s | bench process CPU s (libSQL server, proxy) |');
  console.log('|---:|:---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const c = r.counts;
    console.log(
      `| ${int(r.n)} | ${r.closed ? 'yes' : `NO (timeout ${TIMEOUT_S} s)`} | ${int(r.lines)} (${int(r.eligible)}) | ${fmt(r.wallS)}${r.closed ? '' : '+'} | ${fmt(r.computingS)} | ${fmt(r.payingS)} | ${r.invocations} (${r.computingInvocations} / ${r.invocations - r.computingInvocations}) | ${fmt(r.maxInvocationS)} | ${int(c.statements)} | ${int(c.control)} | ${int(c.requests)} | ` +
        `${fmt(c.maxRequestBytes / 1e6, 2)} / ${fmt(c.maxResponseBytes / 1e6, 2)} | ${fmt(r.workerdCpuS)} | ${fmt(r.serverCpuS)} |`,
    );
  }

  for (const r of rows) if (!r.closed) console.log(`\nn = ${int(r.n)}: ${r.state}`);

  console.log('\nTable 1b. Where the time goes: invocations by the epoch\'s status before → after (the split runs in the invocation that moves computing → paying).\n');
  console.log('| nodes | computing → computing: invocations, s | → paying (gather rest + split + first payments): s, statements | paying → paying / closed: invocations, s | slowest invocation: s (statements) |');
  console.log('|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const gather = r.log.filter((l) => (l.before === null || l.before === 'computing') && l.after === 'computing');
    const split = r.log.find((l) => (l.before === null || l.before === 'computing') && l.after !== 'computing');
    const paying = r.log.filter((l) => l.before === 'paying');
    const slowest = r.log.reduce((a, b) => (b.ms > a.ms ? b : a), r.log[0]!);
    const sum = (ls: Invocation[]) => ls.reduce((a, l) => a + l.ms, 0) / 1000;
    console.log(
      `| ${int(r.n)} | ${gather.length}, ${fmt(sum(gather))} | ${split ? `${fmt(split.ms / 1000)}${split.after === null ? '+ (still running)' : ''}, ${int(split.statements)}` : 'n/a'} | ${paying.length}, ${fmt(sum(paying))} | ${fmt(slowest.ms / 1000)} (${int(slowest.statements)}) |`,
    );
  }

  console.log('\nTable 2. Per 10,000 nodes, and the cost at each size over the smallest (linear = the size ratio).\n');
  console.log('| nodes | s per 10k | statements per 10k | requests per 10k | invocations per 10k | size ratio | time ratio | statements ratio | invocations ratio |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  // Only sizes that closed: a close cut off by the timeout has no total to compare.
  const closedRows = rows.filter((r) => r.closed);
  const first = closedRows[0] ?? rows[0]!;
  for (const r of closedRows) {
    const per = 10_000 / r.n;
    console.log(
      `| ${int(r.n)} | ${fmt(r.wallS * per, 2)} | ${int(r.counts.statements * per)} | ${int(r.counts.requests * per)} | ${fmt(r.invocations * per, 2)} | ${fmt(r.n / first.n, 1)} | ${fmt(r.wallS / first.wallS, 2)} | ` +
        `${fmt(r.counts.statements / first.counts.statements, 2)} | ${fmt(r.invocations / first.invocations, 2)} |`,
    );
  }
  for (const r of rows) if (!r.closed) console.log(`| ${int(r.n)} | not closed within ${TIMEOUT_S} s: left out | | | | | | | |`);
  if (closedRows.length > 1) {
    const last = closedRows.at(-1)!;
    const sizeRatio = last.n / first.n;
    const verdict = (x: number) => (x <= sizeRatio * 1.25 ? 'about linear' : x <= sizeRatio * 2 ? 'somewhat worse than linear' : 'worse than linear');
    console.log(
      `\nLinearity ${int(last.n)} / ${int(first.n)} (size ratio ${fmt(sizeRatio, 1)}): time ×${fmt(last.wallS / first.wallS, 2)} (${verdict(last.wallS / first.wallS)}), ` +
        `statements ×${fmt(last.counts.statements / first.counts.statements, 2)} (${verdict(last.counts.statements / first.counts.statements)}), invocations ×${fmt(last.invocations / first.invocations, 2)}.`,
    );
  }

  console.log('\nTable 3. Statements by purpose (classified by SQL text), per size; and the other crons\' floor measured before the epoch was due.\n');
  const kinds = [...new Set(rows.flatMap((r) => [...r.counts.byKind.keys()]))].sort();
  console.log(`| nodes | ${kinds.join(' | ')} | floor per scheduled call (statements / requests) |`);
  console.log(`|---:|${kinds.map(() => '---:').join('|')}|---:|`);
  for (const r of rows) {
    console.log(`| ${int(r.n)} | ${kinds.map((k) => int(r.counts.byKind.get(k) ?? 0)).join(' | ')} | ${fmt(r.baselinePerCall.statements)} / ${fmt(r.baselinePerCall.requests)} |`);
  }
  for (const r of rows) if (r.closed && !r.paidMatches) console.log(`\nWARNING n = ${r.n}: the epoch's paid total differs from the sum of paid lines`);

  // Goal: 100,000 nodes closed within 5 minutes of the epoch's end.
  const done = rows.filter((r) => r.closed);
  const at = rows.find((r) => r.n === GOAL_NODES && r.closed) ?? done.at(-1) ?? rows.at(-1)!;
  const measured = at.n === GOAL_NODES && at.closed;
  const unfinished = rows.find((r) => r.n === GOAL_NODES && !r.closed);
  const scale = GOAL_NODES / at.n;
  const stepsNeeded = 2 * Math.floor(GOAL_NODES / Number(CHUNK || 500)) + 2;
  // A run starts no step after REWARDS_CLOSE_BUDGET_S nor beyond REWARDS_CLOSE_MAX_STEPS (close.ts).
  const invByRules = (wallS: number) => Math.max(Math.ceil(wallS / DEFAULT_CLOSE_BUDGET_S), Math.ceil(stepsNeeded / DEFAULT_CLOSE_MAX_STEPS));
  const inv = measured ? at.invocations : invByRules(at.wallS * scale);
  // Back to back: everything but the split's invocation scaled linearly; that one also by n² (its
  // UPDATE … FROM json_each is quadratic: Table 1b) as the second figure.
  const split = at.log.find((l) => (l.before === null || l.before === 'computing') && l.after !== 'computing');
  const splitS = (split?.ms ?? 0) / 1000;
  const wallLinear = measured ? at.wallS : at.wallS * scale;
  const wallSplitSquared = measured ? at.wallS : (at.wallS - splitS) * scale + splitS * scale * scale;
  // Deployed, the cron fires once a minute: the first run at or after end + CLOSE_DELAY, then one a minute.
  const deployedS = CLOSE_DELAY_S + (inv - 1) * CRON_PERIOD_S + at.wallS / at.invocations;
  console.log('\nGoal:');
  console.log(
    `  100,000 nodes closed within the first 5 minutes of the next epoch (≤ ${GOAL_S} s after its start), ${measured ? 'measured at 100,000' : at.closed ? `EXTRAPOLATED from ${int(at.n)} (×${fmt(scale, 2)}), the largest size that closed` : `no size closed: figures from ${int(at.n)} as far as it got`}:`,
  );
  if (unfinished) console.log(`    measured at 100,000: NOT closed ${fmt(unfinished.wallS)} s after it was due (the --timeout-s) → NOT met`);
  console.log(
    `    with the each-minute cron as deployed: first run ${CLOSE_DELAY_S} s after the end (CLOSE_DELAY), ${inv} invocations (${measured ? 'measured' : 'by close.ts\'s rules'}: ${steps(GOAL_NODES)} input chunks + the split + ${steps(GOAL_NODES)} payment chunks + close ≈ ${stepsNeeded} steps, no step started after ${DEFAULT_CLOSE_BUDGET_S} s or beyond ${DEFAULT_CLOSE_MAX_STEPS} steps per invocation), one a minute, ` +
      `each assumed to finish within its minute → ≈ ${int(deployedS)} s (${fmt(deployedS / 60)} min) → ${deployedS <= GOAL_S ? 'met' : 'NOT met'}`,
  );
  console.log(
    `    with invocations back to back (this bench's pace, no minute between them): ${CLOSE_DELAY_S} s + ${measured ? `${fmt(wallLinear)} s` : `${fmt(wallLinear)} s (linear) or ${fmt(wallSplitSquared)} s (the split's invocation, ${fmt(splitS)} s at ${int(at.n)}, scaled by n²)`} → ` +
      `${CLOSE_DELAY_S + wallLinear <= GOAL_S ? 'met' : 'NOT met'}`,
  );
}

main().then(
  // After a timeout the libSQL server's thread is still inside SQLite running the Worker's
  // statement, which nothing can interrupt, and process.exit() waits for that thread: end at once.
  () => (timedOut ? process.kill(process.pid, 'SIGKILL') : process.exit(0)),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
