// npm run bench:leases — many concurrent leases on the local platform, driven by simulated runners:
// how late settlements post, how fast a dead runner's lease fails, and whether the money adds up.
//
// Starts a fresh platform (temp data folder) with HEARTBEAT_INTERVAL_S (default 2),
// HEARTBEAT_MIN_INTERVAL_S (1), HEARTBEAT_FLUSH_S (2), NODE_GRACE_S = BENCH_GRACE_S (10) and
// LEASE_SETTLE_S = BENCH_SETTLE_S (5), and the credential rate limits raised (every registration
// comes from one IP). Request logging is off unless LOG_REQUESTS=true is in the environment: this
// bench is about leases, not log forwarding.
//
// Setup over HTTP, BENCH_SETUP_CONCURRENCY (8) requests at a time: a provider and a renter (dev
// faucet: 1,000,000 USD); BENCH_LEASES (200) nodes with one H100 each (join token → register),
// heartbeating until GET /v1/nodes lists them all online; one sell per node at 3.60, then
// BENCH_LEASES buys at 3.60 for BENCH_DURATION_S (120) s, each of which must fill.
//
// Every node has a simulated runner in this process, open loop on its own timer (phases spread
// over one interval): a heartbeat every HEARTBEAT_INTERVAL_S carrying the acks of the commands it
// received; start_lease → POST /v1/runner/leases/{id}/events {type: 'started'}, then the lease is
// listed `running` in every heartbeat; stop_lease → listed `stopped` once, then dropped. Runner
// traffic shares one keep-alive agent with at most BENCH_CONCURRENCY (16) requests in flight; a
// heartbeat due while the node's previous one is still queued or in flight is skipped and counted.
//
// Two settlement periods after the last lease started, BENCH_KILL (default 20% of the leases)
// runners stop heartbeating for good; each of their leases is read every 500 ms until it has
// ended. The others run to their paid end. Lease reads use their own agent (and, apart from those
// of killed leases, a cap of BENCH_SETUP_CONCURRENCY): every open lease every 8 settlement periods
// (the API lists a lease's last 20 settlements), each lease past its paid end every 2 s until it
// has ended (for at most grace + 60 s after the last paid end), then, once the renter's held USD
// is back to 0 (at most 30 s more), every lease once more and the renter's ledger. A platform that
// stops answering still gets a report, from the last reads that succeeded.
//
// Measured: settlement lag = posted_at − due_at (a periodic settlement is due when it was
// scheduled; a final one when the lease ended: its paid or early end for a completed lease, the
// failure for a failed one); settlements/s = settlements posted ÷ the time from the first start report to the
// last posting; time to `failed` = the read that saw it − the kill, and as the lease saw it,
// failed (history) − the last heartbeat it accepted. Money: each lease's captures in the renter's
// ledger = its `billed`, and Σ billed = 1,000,000 − the renter's available USD. As a cross-check
// that does not depend on the API, the settlement transactions in libSQL are counted directly. CPU (Linux /proc)
// over the lease phase: workerd (Worker + Durable Objects, one JS thread), the launcher (libSQL
// server) and this process. Requests workerd cancels as hung (a 500 saying so) are counted per
// row. BENCH_PLATFORM_LOG=<file> saves the platform's output.
// BENCH_URL is not supported: the bench needs a fresh platform with these settings.
import { createClient } from '@libsql/client/web';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { findWorkerd, ticks } from './proc.ts';
import { freePort, launch, type Platform } from '../test/support/platform.ts';
import { h100Machine, num, percentile } from './support.ts';
import { generateNodeKey } from '../runner/src/identity.ts';

const LEASES = num('BENCH_LEASES', 200);
const DURATION_S = num('BENCH_DURATION_S', 120);
const KILL = Math.min(LEASES, num('BENCH_KILL', Math.round(0.2 * LEASES)));
const GRACE_S = num('BENCH_GRACE_S', 10);
const SETTLE_S = num('BENCH_SETTLE_S', 5);
const INTERVAL_S = num('HEARTBEAT_INTERVAL_S', 2);
const MIN_INTERVAL_S = num('HEARTBEAT_MIN_INTERVAL_S', 1);
const FLUSH_S = num('HEARTBEAT_FLUSH_S', 2);
const CONCURRENCY = num('BENCH_CONCURRENCY', 16);
const SETUP_CONCURRENCY = num('BENCH_SETUP_CONCURRENCY', 8);
const LOG_REQUESTS = process.env.LOG_REQUESTS === 'true' ? 'true' : 'false';
const PLATFORM_LOG = process.env.BENCH_PLATFORM_LOG ?? '';
const POLL_MS = 500;
const SNAPSHOT_MS = 8 * SETTLE_S * 1000;
const REQUEST_TIMEOUT_MS = 15_000;
const FAUCET = 1_000_000n * 1_000_000n;

const GOAL_DETECT_EXTRA_S = 10;
const GOAL_LAG_P99_S = 5;

const TERMINAL = ['completed', 'failed', 'cancelled'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Decimal money string → micro-units, exactly. */
function micro(s: string): bigint {
  const negative = s.startsWith('-');
  const [whole, fraction = ''] = s.replace('-', '').split('.');
  const v = BigInt(whole!) * 1_000_000n + BigInt(fraction.padEnd(6, '0').slice(0, 6));
  return negative ? -v : v;
}
const usd = (m: bigint) => {
  const abs = m < 0n ? -m : m;
  return `${m < 0n ? '-' : ''}${abs / 1_000_000n}.${(abs % 1_000_000n).toString().padStart(6, '0')}`;
};

// ── HTTP ─────────────────────────────────────────────────────────────────────────────
interface Reply {
  status: number;
  body: any;
}
interface Traffic {
  sent: number;
  statuses: Map<number, number>;
  errors: number;
  /** 500s whose body says workerd cancelled the request as hung. */
  hung: number;
  latencies: number[];
  /** Time spent waiting for a free slot under the concurrency cap. */
  waits: number[];
}
const traffic = new Map<string, Traffic>();
function trafficOf(kind: string): Traffic {
  let t = traffic.get(kind);
  if (!t) traffic.set(kind, (t = { sent: 0, statuses: new Map(), errors: 0, hung: 0, latencies: [], waits: [] }));
  return t;
}

let base = new URL('http://127.0.0.1');
let onFirstHung: (kind: string) => void = () => {};

function call(agent: Agent, kind: string, method: 'GET' | 'POST', path: string, opts: { auth?: string; body?: unknown; key?: string } = {}): Promise<Reply> {
  const t = trafficOf(kind);
  const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  const headers: Record<string, string | number> = {};
  if (body !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  if (opts.auth) headers.authorization = `Bearer ${opts.auth}`;
  if (opts.key) headers['idempotency-key'] = opts.key;
  const started = performance.now();
  t.sent++;
  return new Promise<Reply>((resolve, reject) => {
    const req = request({ agent, host: base.hostname, port: base.port, path, method, headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('error', reject);
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        t.latencies.push(performance.now() - started);
        t.statuses.set(status, (t.statuses.get(status) ?? 0) + 1);
        if (status === 500 && text.includes('code had hung') && t.hung++ === 0) onFirstHung(kind);
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        resolve({ status, body: parsed });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => {
      t.errors++;
      reject(err);
    });
    req.end(body);
  });
}

/** At most `limit` jobs at once, first come first served; records each job's wait under `kind`. */
function cap(limit: number) {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async <T>(kind: string, job: () => Promise<T>): Promise<T> => {
    const queued = performance.now();
    if (active >= limit) await new Promise<void>((r) => waiting.push(r));
    else active++;
    trafficOf(kind).waits.push(performance.now() - queued);
    try {
      return await job();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}

async function ok(reply: Promise<Reply>, expected: number, what: string): Promise<any> {
  const r = await reply;
  if (r.status !== expected) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Retries a read a few times: under load a request may fail and is counted in its row. */
async function retried<T>(job: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await job();
    } catch (err) {
      if (i >= attempts) throw err;
      await sleep(500 * i);
    }
  }
}

async function each<T>(items: T[], concurrency: number, job: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    for (let i = next++; i < items.length; i = next++) await job(items[i]!, i);
  }));
}

// ── Simulated runners ────────────────────────────────────────────────────────────────
type ListedState = 'starting' | 'running' | 'stopped';
interface SimNode {
  index: number;
  nodeId: string;
  token: string;
  bootId: string;
  seq: number;
  leases: Map<string, ListedState>;
  /** Command ids received and not yet carried by an accepted heartbeat. */
  acks: Set<string>;
  handled: Set<string>;
  busy: boolean;
  killed: boolean;
  /** Wall time the last heartbeat the Collector accepted was sent. */
  lastAcceptedSentAt: number | null;
  timer?: NodeJS.Timeout;
}

interface Run {
  runnerAgent: Agent;
  limit: ReturnType<typeof cap>;
  stopped: boolean;
  skipped: number;
  ignored: number;
  leaseNode: Map<string, SimNode>;
  /** Wall time each lease's `started` event was answered 202. */
  startedAt: Map<string, number>;
}

function heartbeatBody(n: SimNode) {
  return {
    node_id: n.nodeId,
    boot_id: n.bootId,
    seq: n.seq++,
    sent_at: new Date().toISOString(),
    draining: false,
    gpus: [{ index: 0, utilization_pct: 90 + Math.round(Math.random() * 100) / 10, memory_used_mib: 60_000, temperature_c: 65, power_w: 600 }],
    leases: [...n.leases].map(([lease_id, state]) => ({ lease_id, state })),
    acks: [...n.acks],
  };
}

async function heartbeat(run: Run, n: SimNode): Promise<void> {
  n.busy = true;
  try {
    await run.limit('heartbeat', async () => {
      if (n.killed) return;
      const sentAt = Date.now();
      const body = heartbeatBody(n);
      const r = await call(run.runnerAgent, 'heartbeat', 'POST', '/v1/runner/heartbeats', { auth: n.token, body });
      if (r.status !== 202) return;
      if (!r.body.accepted) {
        run.ignored++;
        return;
      }
      n.lastAcceptedSentAt = sentAt;
      if (n.killed) return;
      for (const id of body.acks) n.acks.delete(id);
      for (const l of body.leases) if (l.state === 'stopped') n.leases.delete(l.lease_id);
      for (const cmd of r.body.commands as Array<{ id: string; type: string; lease_id?: string }>) {
        n.acks.add(cmd.id);
        if (n.handled.has(cmd.id)) continue;
        n.handled.add(cmd.id);
        if (cmd.type === 'start_lease' && cmd.lease_id) {
          run.leaseNode.set(cmd.lease_id, n);
          n.leases.set(cmd.lease_id, 'starting');
          void reportStarted(run, n, cmd.lease_id);
        } else if (cmd.type === 'stop_lease' && cmd.lease_id && n.leases.has(cmd.lease_id)) {
          n.leases.set(cmd.lease_id, 'stopped');
        }
      }
    });
  } catch {
    // counted in traffic; the next tick tries again
  } finally {
    n.busy = false;
  }
}

async function reportStarted(run: Run, n: SimNode, leaseId: string): Promise<void> {
  for (let attempt = 0; attempt < 5 && !n.killed && !run.stopped; attempt++) {
    try {
      const r = await run.limit('lease event', () =>
        call(run.runnerAgent, 'lease event', 'POST', `/v1/runner/leases/${leaseId}/events`, { auth: n.token, body: { type: 'started', at: new Date().toISOString() } }),
      );
      if (r.status === 202) {
        if (n.leases.get(leaseId) === 'starting') n.leases.set(leaseId, 'running');
        run.startedAt.set(leaseId, Date.now());
        return;
      }
    } catch {
      // counted; retried
    }
    await sleep(1000);
  }
}

/** Open loop: node i heartbeats at t0 + i/N × interval + k × interval, whatever the replies do. */
function startRunner(run: Run, n: SimNode, t0: number): void {
  const every = INTERVAL_S * 1000;
  let k = 0;
  const tick = () => {
    if (n.killed || run.stopped) return;
    if (n.busy) run.skipped++;
    else void heartbeat(run, n);
    k++;
    n.timer = setTimeout(tick, Math.max(0, t0 + k * every - performance.now()));
  };
  n.timer = setTimeout(tick, Math.max(0, t0 - performance.now()));
}

// ── Lease reads ──────────────────────────────────────────────────────────────────────
interface Settlement {
  n: number;
  dueAt: number;
  postedAt: number;
}
interface LeaseView {
  id: string;
  state: string;
  billed: bigint;
  history: Array<{ state: string; at: number; reason?: string }>;
  /** Every settlement read so far, by number (the API lists only the last 20). */
  settlements: Map<number, Settlement>;
}

function merge(views: Map<string, LeaseView>, raw: any): LeaseView {
  const settlements = views.get(raw.id)?.settlements ?? new Map<number, Settlement>();
  for (const s of raw.settlements as Array<{ n: number; due_at: string; posted_at: string }>) {
    settlements.set(s.n, { n: s.n, dueAt: Date.parse(s.due_at), postedAt: Date.parse(s.posted_at) });
  }
  const history = (raw.history as Array<{ state: string; at: string; reason?: string }>).map((h) => ({ ...h, at: Date.parse(h.at) }));
  const view: LeaseView = { id: raw.id, state: raw.state, billed: micro(raw.billed), history, settlements };
  views.set(raw.id, view);
  return view;
}

const ended = (v: LeaseView | undefined) => v !== undefined && TERMINAL.includes(v.state);
const endedAt = (v: LeaseView) => [...v.history].reverse().find((h) => TERMINAL.includes(h.state))?.at ?? Infinity;

// ── Platform ─────────────────────────────────────────────────────────────────────────
/** Platform log lines worth counting (all of them go to BENCH_PLATFORM_LOG when set). */
const LOG_PATTERNS: Array<[string, RegExp]> = [
  ['lease step failed; retrying', /lease step failed/g],
  ['book effect failed; retrying', /book effect failed/g],
  ['heartbeat batch not sent', /heartbeat batch not sent/g],
  ['promise resolved from another request context (workerd)', /different request context/g],
];

async function start(dataDir: string) {
  const libsqlPort = await freePort();
  const platform = await launch({
    dataDir,
    port: await freePort(),
    libsqlPort,
    env: {
      LOG_REQUESTS,
      ORDER_RATE_LIMIT: 'off', WRITE_RATE_LIMIT: 'off',
      ORDER_MAX_OPEN: 'off',
      HEARTBEAT_INTERVAL_S: String(INTERVAL_S),
      HEARTBEAT_MIN_INTERVAL_S: String(MIN_INTERVAL_S),
      HEARTBEAT_FLUSH_S: String(FLUSH_S),
      NODE_GRACE_S: String(GRACE_S),
      LEASE_SETTLE_S: String(SETTLE_S),
      AUTH_IP_RATE_LIMIT: '1000000/60',
      WRITE_IP_RATE_LIMIT: 'off',
      AUTH_RATE_LIMIT: '1000000/60',
    },
  });
  base = new URL(platform.url);
  const logged = new Map(LOG_PATTERNS.map(([name]) => [name, 0]));
  let tail = '';
  if (PLATFORM_LOG) writeFileSync(PLATFORM_LOG, '');
  const scan = (d: Buffer) => {
    if (PLATFORM_LOG) appendFileSync(PLATFORM_LOG, d);
    const text = tail + d.toString();
    for (const [name, re] of LOG_PATTERNS) logged.set(name, logged.get(name)! + (text.match(re)?.length ?? 0));
    tail = text.slice(-80);
  };
  platform.child.stdout!.on('data', scan);
  platform.child.stderr!.on('data', scan);
  const launcherPid = platform.child.pid ?? 0;
  return { platform, logged, launcherPid, workerdPid: findWorkerd(launcherPid), libsqlPort };
}

type Api = (kind: string, method: 'GET' | 'POST', path: string, opts?: { auth?: string; body?: unknown; key?: string }) => Promise<Reply>;

/** Settlement transactions in the ledger, read from libSQL directly: what the Lease objects posted, whatever the API answers. */
async function ledgerSettlements(libsqlPort: number, since: number): Promise<{ count: number; after: number; last: number } | null> {
  const db = createClient({ url: `http://127.0.0.1:${libsqlPort}` });
  try {
    const rs = await db.execute({
      sql: "SELECT count(*) AS n, coalesce(sum(created_at > ?), 0) AS after, coalesce(max(created_at), 0) AS last FROM ledger_transactions WHERE idempotency_key LIKE 'lease:%:settle:%'",
      args: [since],
    });
    const row = rs.rows[0]!;
    return { count: Number(row.n), after: Number(row.after), last: Number(row.last) };
  } catch {
    return null;
  } finally {
    db.close();
  }
}

/** Accounts, money, nodes brought online by their runners, one ask per node, then the buys. */
async function setup(api: Api, run: Run, nodes: SimNode[], progress: (what: string) => void) {
  const account = async (role: string) => {
    const body = { email: `bench.${role}.${crypto.randomUUID().slice(0, 8)}@example.com`, password: 'Benchmark-Lease-7731', roles: [role] };
    return (await ok(api('setup', 'POST', '/v1/accounts', { body }), 201, 'account')).api_key.key as string;
  };
  const providerKey = await account('provider');
  const renterKey = await account('renter');
  await ok(api('setup', 'POST', '/v1/dev/faucet', { auth: renterKey, key: crypto.randomUUID(), body: { asset: 'USD', amount: '1000000' } }), 201, 'faucet');

  const registering = performance.now();
  await each(Array.from({ length: LEASES }, (_, i) => i), SETUP_CONCURRENCY, async (i) => {
    const { join_token } = await ok(api('setup', 'POST', '/v1/nodes/join-tokens', { auth: providerKey }), 201, 'join token');
    const machine = h100Machine(`bench-lease-${i}`, 1);
    const reg = await ok(api('setup', 'POST', '/v1/runner/register', { body: { join_token, region: 'us-east', machine, public_key: generateNodeKey().publicKey } }), 201, 'register');
    nodes[i] = { index: i, nodeId: reg.node_id, token: reg.node_token, bootId: crypto.randomUUID(), seq: 0, leases: new Map(), acks: new Set(), handled: new Set(), busy: false, killed: false, lastAcceptedSentAt: null };
  });
  progress(`registered ${LEASES} nodes in ${((performance.now() - registering) / 1000).toFixed(1)} s`);

  const t0 = performance.now() + 50;
  for (const n of nodes) startRunner(run, n, t0 + (n.index / nodes.length) * INTERVAL_S * 1000);
  const onlineBy = Date.now() + 60_000;
  for (;;) {
    const list = await ok(api('setup', 'GET', '/v1/nodes', { auth: providerKey }), 200, 'nodes');
    const online = (list.data as Array<{ status: string }>).filter((x) => x.status === 'online').length;
    if (online >= LEASES) break;
    if (Date.now() > onlineBy) throw new Error(`only ${online} of ${LEASES} nodes online after 60 s`);
    await sleep(500);
  }
  progress('all nodes online');

  const selling = Date.now();
  await each(nodes, SETUP_CONCURRENCY, async (n) => {
    const body = { side: 'sell', region: 'us-east', gpu_model: 'h100-80gb', gpus: 1, price: '3.60', node_id: n.nodeId, max_duration_s: 30 * 86_400 };
    await ok(api('setup', 'POST', '/v1/orders', { auth: providerKey, key: crypto.randomUUID(), body }), 201, 'sell');
  });
  progress(`${LEASES} sells placed in ${((Date.now() - selling) / 1000).toFixed(1)} s`);
  const leaseIds: string[] = [];
  const buysStarted = Date.now();
  const workload = { image: 'busybox', command: [], env: {}, ports: [] };
  await each(nodes, SETUP_CONCURRENCY, async () => {
    const body = { side: 'buy', region: 'us-east', gpu_model: 'h100-80gb', gpus: 1, price: '3.60', duration_s: DURATION_S, pay_with: 'USD', workload };
    const placed = await ok(api('buy', 'POST', '/v1/orders', { auth: renterKey, key: crypto.randomUUID(), body }), 201, 'buy');
    if (placed.order.status !== 'filled' || placed.leases.length !== 1) throw new Error(`buy did not fill: ${JSON.stringify(placed)}`);
    leaseIds.push(placed.leases[0].id as string);
  });
  const buysS = (Date.now() - buysStarted) / 1000;
  progress(`${LEASES} buys placed and filled in ${buysS.toFixed(1)} s`);
  return { renterKey, leaseIds, buysStarted, buysS };
}

// ── Main ─────────────────────────────────────────────────────────────────────────────
async function main() {
  const benchStarted = performance.now();
  const progress = (what: string) => console.error(`${((performance.now() - benchStarted) / 1000).toFixed(1).padStart(6)} s  ${what}`);
  onFirstHung = (kind) => progress(`first "${kind}" request cancelled by workerd as hung`);
  const dataDir = mkdtempSync(join(tmpdir(), 'gridlease-bench-leases-'));
  const readerAgent = new Agent({ keepAlive: true, maxSockets: SETUP_CONCURRENCY + KILL + 4 });
  const run: Run = {
    runnerAgent: new Agent({ keepAlive: true, maxSockets: CONCURRENCY }),
    limit: cap(CONCURRENCY),
    stopped: false,
    skipped: 0,
    ignored: 0,
    leaseNode: new Map(),
    startedAt: new Map(),
  };
  let platform: Platform | undefined;
  const nodes: SimNode[] = [];
  try {
    const loadBefore = loadavg();
    const started = await start(dataDir);
    platform = started.platform;
    const { workerdPid, launcherPid } = started;
    const api: Api = (kind, method, path, opts) => call(readerAgent, kind, method, path, opts);
    const { renterKey, leaseIds, buysStarted, buysS } = await setup(api, run, nodes, progress);

    const runningBy = Date.now() + 60_000;
    while (run.startedAt.size < LEASES && Date.now() < runningBy) await sleep(200);
    if (run.startedAt.size < LEASES) throw new Error(`only ${run.startedAt.size} of ${LEASES} leases started within 60 s`);
    const firstStart = Math.min(...run.startedAt.values());
    const allStarted = Math.max(...run.startedAt.values());
    progress(`all leases running, ${((allStarted - buysStarted) / 1000).toFixed(1)} s after the first buy`);

    // Lease reads: their own agent and cap, apart from the runners.
    const views = new Map<string, LeaseView>();
    const readLimit = cap(SETUP_CONCURRENCY);
    const read = async (id: string, kind = 'lease read') => merge(views, (await ok(api(kind, 'GET', `/v1/leases/${id}`, { auth: renterKey }), 200, 'lease read')).lease);
    const readAll = (ids: string[]) => Promise.all(ids.map((id) => readLimit('lease read', () => read(id)).catch(() => undefined)));
    let snapshots = 0;
    const snapshotLoop = (async () => {
      for (let next = Date.now() + SNAPSHOT_MS; ; next += SNAPSHOT_MS) {
        while (!run.stopped && Date.now() < next) await sleep(250);
        if (run.stopped) return;
        await readAll(leaseIds.filter((id) => !ended(views.get(id))));
        snapshots++;
      }
    })();

    // CPU over the lease phase, and workerd's busiest second.
    const cpu0 = { workerd: ticks(workerdPid), launcher: ticks(launcherPid), self: process.cpuUsage() };
    const phaseStarted = performance.now();
    let peakWorkerd = 0;
    let lastWorkerd = cpu0.workerd;
    const sampler = setInterval(() => {
      const w = ticks(workerdPid);
      peakWorkerd = Math.max(peakWorkerd, (w - lastWorkerd) / 10);
      lastWorkerd = w;
    }, 1000);

    // Two settlement periods in, some runners die without a word.
    await sleep(Math.max(0, allStarted + 2 * SETTLE_S * 1000 - Date.now()));
    const victims = Array.from({ length: KILL }, (_, i) => leaseIds[Math.floor((i * LEASES) / KILL)]!);
    const killTime = Date.now();
    const killedAt = new Map<string, number>();
    for (const id of victims) {
      const n = run.leaseNode.get(id)!;
      n.killed = true;
      clearTimeout(n.timer);
      killedAt.set(id, Date.now());
    }
    progress(`killed ${KILL} runners`);
    const failedSeenAt = new Map<string, number>();
    const watchers = victims.map(async (id) => {
      const deadline = killedAt.get(id)! + (GRACE_S + 120) * 1000;
      while (Date.now() < deadline) {
        const asked = Date.now();
        try {
          if (ended(await read(id, 'lease read (killed)'))) {
            failedSeenAt.set(id, Date.now());
            return;
          }
        } catch {
          // counted in its row; asked again
        }
        await sleep(Math.max(0, POLL_MS - (Date.now() - asked)));
      }
    });

    // The others run to their paid end.
    const survivors = leaseIds.filter((id) => !killedAt.has(id));
    const expectedEnd = (id: string) => run.startedAt.get(id)! + DURATION_S * 1000;
    const doneBy = Math.max(...leaseIds.map(expectedEnd)) + (GRACE_S + 60) * 1000;
    await sleep(Math.max(0, Math.min(...survivors.map(expectedEnd)) - Date.now()));
    while (survivors.some((id) => !ended(views.get(id))) && Date.now() < doneBy) {
      await readAll(survivors.filter((id) => !ended(views.get(id)) && Date.now() >= expectedEnd(id)));
      await sleep(2000);
    }
    progress('every surviving lease ended (or given up)');
    await Promise.all(watchers);
    progress('every killed lease seen failed (or given up)');
    let balance: { held: bigint; available: bigint } | null = null;
    const heldBy = Date.now() + 30_000;
    while (balance?.held !== 0n && Date.now() < heldBy) {
      try {
        const b = await ok(api('balances', 'GET', '/v1/balances', { auth: renterKey }), 200, 'balances');
        const u = (b.data as Array<{ asset: string; available: string; held: string }>).find((x) => x.asset === 'USD')!;
        balance = { held: micro(u.held), available: micro(u.available) };
      } catch {
        // counted in its row; asked again
      }
      if (balance?.held !== 0n) await sleep(500);
    }
    progress(`renter held ${balance ? usd(balance.held) : 'unknown (balances failed)'}`);
    const phaseS = (performance.now() - phaseStarted) / 1000;
    clearInterval(sampler);
    const cpu1 = { workerd: ticks(workerdPid), launcher: ticks(launcherPid), self: process.cpuUsage(cpu0.self) };
    run.stopped = true;
    for (const n of nodes) clearTimeout(n.timer);
    await snapshotLoop;

    // Final reads and the renter's ledger; a read that keeps failing leaves the last one seen.
    let finalReadsFailed = 0;
    await each(leaseIds, SETUP_CONCURRENCY, async (id) => {
      await retried(() => read(id)).catch(() => finalReadsFailed++);
    });
    let paid: Map<string, bigint> | null = new Map<string, bigint>();
    let entries = 0;
    try {
      let cursor: string | null = null;
      do {
        const page: any = await retried(() => ok(api('ledger', 'GET', `/v1/ledger/entries?asset=USD&limit=200${cursor ? `&cursor=${cursor}` : ''}`, { auth: renterKey }), 200, 'ledger'));
        for (const e of page.data as Array<{ kind: string; reference: string | null; account: string; amount: string }>) {
          entries++;
          if (e.kind === 'capture' && e.account === 'held' && e.reference) paid.set(e.reference, (paid.get(e.reference) ?? 0n) - micro(e.amount));
        }
        cursor = page.next_cursor;
      } while (cursor);
    } catch {
      paid = null;
    }
    const ledger = await ledgerSettlements(started.libsqlPort, killTime);
    progress('final reads done');

    report({
      views: leaseIds.flatMap((id) => views.get(id) ?? []),
      victims,
      killedAt,
      failedSeenAt,
      lastHeartbeat: new Map(victims.map((id) => [id, run.leaseNode.get(id)!.lastAcceptedSentAt])),
      firstStart,
      allStarted,
      buysStarted,
      buysS,
      snapshots,
      finalReadsFailed,
      paid,
      entries,
      ledger,
      balance,
      logged: started.logged,
      skipped: run.skipped,
      ignored: run.ignored,
      loadBefore,
      phaseS,
      cpu: {
        workerd: ((cpu1.workerd - cpu0.workerd) / (phaseS * 1000)) * 100,
        launcher: ((cpu1.launcher - cpu0.launcher) / (phaseS * 1000)) * 100,
        self: ((cpu1.self.user + cpu1.self.system) / 1000 / (phaseS * 1000)) * 100,
        peakWorkerd,
      },
    });
  } catch (err) {
    if (platform) console.error(`platform output (start and latest lines):\n${platform.output().slice(-8000)}`);
    throw err;
  } finally {
    run.stopped = true;
    for (const n of nodes) if (n) clearTimeout(n.timer);
    run.runnerAgent.destroy();
    readerAgent.destroy();
    if (platform) await platform.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// ── Report ───────────────────────────────────────────────────────────────────────────
interface Results {
  /** The last view of every lease that was read at least once. */
  views: LeaseView[];
  victims: string[];
  killedAt: Map<string, number>;
  failedSeenAt: Map<string, number>;
  /** Per killed lease: when its node's last accepted heartbeat was sent. */
  lastHeartbeat: Map<string, number | null>;
  firstStart: number;
  allStarted: number;
  buysStarted: number;
  buysS: number;
  snapshots: number;
  finalReadsFailed: number;
  /** Renter captures per lease from the ledger; null when the ledger could not be read. */
  paid: Map<string, bigint> | null;
  entries: number;
  /** Settlement transactions in libSQL: all, those after the kill, when the last was posted. */
  ledger: { count: number; after: number; last: number } | null;
  balance: { held: bigint; available: bigint } | null;
  logged: Map<string, number>;
  skipped: number;
  ignored: number;
  loadBefore: number[];
  phaseS: number;
  /** Percent of one core over the lease phase. */
  cpu: { workerd: number; launcher: number; self: number; peakWorkerd: number };
}

const fmt = (v: number, digits = 2) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

function report(r: Results): void {
  const all = r.views;
  const killed = new Set(r.victims);

  // Settlement lags, by kind. A settlement due before the lease ended is periodic.
  const lags = { periodic: [] as number[], 'final (completed: due at its end)': [] as number[], 'final (failed: due at the failure)': [] as number[] };
  let posted = 0;
  let seen = 0;
  let lastPosted = 0;
  for (const v of all) {
    const end = endedAt(v);
    posted += Math.max(0, ...v.settlements.keys());
    for (const s of v.settlements.values()) {
      seen++;
      lastPosted = Math.max(lastPosted, s.postedAt);
      const lag = (s.postedAt - s.dueAt) / 1000;
      if (s.dueAt < end) lags.periodic.push(lag);
      else if (v.state === 'failed') lags['final (failed: due at the failure)'].push(lag);
      else lags['final (completed: due at its end)'].push(lag);
    }
  }
  const lagRows = [...Object.entries(lags), ['all', Object.values(lags).flat()] as const].map(([name, l]) => [name, sorted(l)] as const);
  const allLags = lagRows.at(-1)![1];
  const periodic = lagRows[0]![1];
  const runS = (lastPosted - r.firstStart) / 1000;

  const toFailed: number[] = [];
  const failedVsKill: number[] = [];
  const failedVsLastHb: number[] = [];
  for (const id of r.victims) {
    const v = all.find((x) => x.id === id);
    const seenAt = r.failedSeenAt.get(id);
    if (v?.state !== 'failed' || seenAt === undefined) continue;
    toFailed.push((seenAt - r.killedAt.get(id)!) / 1000);
    failedVsKill.push((endedAt(v) - r.killedAt.get(id)!) / 1000);
    const last = r.lastHeartbeat.get(id);
    if (last != null) failedVsLastHb.push((endedAt(v) - last) / 1000);
  }
  const detectedInTime = toFailed.filter((s) => s <= GRACE_S + GOAL_DETECT_EXTRA_S).length;

  console.log(
    `\n${LEASES} leases of 1 H100 for ${DURATION_S} s on ${LEASES} simulated nodes (us-east, one book); ${KILL} runners killed ` +
      `${2 * SETTLE_S} s after the last lease started. HEARTBEAT_INTERVAL_S=${INTERVAL_S}, HEARTBEAT_MIN_INTERVAL_S=${MIN_INTERVAL_S}, ` +
      `HEARTBEAT_FLUSH_S=${FLUSH_S}, NODE_GRACE_S=${GRACE_S}, LEASE_SETTLE_S=${SETTLE_S}; ≤ ${CONCURRENCY} runner requests in flight; ` +
      `request logging ${LOG_REQUESTS === 'true' ? 'on' : 'off'}.`,
  );
  console.log(
    `${cpus().length} CPUs shared by this process, the launcher (libSQL) and workerd; load average (1/5/15 min) ${r.loadBefore.map((x) => x.toFixed(2)).join(' / ')} before, ` +
      `${loadavg().map((x) => x.toFixed(2)).join(' / ')} after. Lease phase ${r.phaseS.toFixed(0)} s: CPU workerd ${fmt(r.cpu.workerd, 0)}% of a core ` +
      `(busiest second ${fmt(r.cpu.peakWorkerd, 0)}%), launcher ${fmt(r.cpu.launcher, 0)}%, this process ${fmt(r.cpu.self, 0)}%. ` +
      `${LEASES} buys placed in ${r.buysS.toFixed(1)} s; all leases running ${((r.allStarted - r.buysStarted) / 1000).toFixed(1)} s after the first buy.\n`,
  );

  console.log('| requests | sent | 2xx | 429 | other non-2xx (of which 500 hung) | errors | p50 ms | p99 ms | wait for a slot p99 ms |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const [kind, t] of traffic) {
    const lat = sorted(t.latencies);
    const n2xx = [...t.statuses].filter(([s]) => s >= 200 && s < 300).reduce((s, [, c]) => s + c, 0);
    const n429 = t.statuses.get(429) ?? 0;
    const wait = t.waits.length ? fmt(percentile(sorted(t.waits), 99)) : '—';
    console.log(`| ${kind} | ${t.sent} | ${n2xx} | ${n429} | ${t.sent - t.errors - n2xx - n429} (${t.hung}) | ${t.errors} | ${fmt(percentile(lat, 50))} | ${fmt(percentile(lat, 99))} | ${wait} |`);
  }
  console.log(`\nheartbeats skipped (node's previous one still queued or in flight): ${r.skipped}; answered 202 but not accepted: ${r.ignored}\n`);

  console.log('| settlement lag (posted_at − due_at), s | count | p50 | p99 | max | min |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const [name, l] of lagRows) console.log(`| ${name} | ${l.length} | ${fmt(percentile(l, 50))} | ${fmt(percentile(l, 99))} | ${fmt(l.at(-1) ?? NaN)} | ${fmt(l[0] ?? NaN)} |`);
  console.log(
    `\nsettlements posted: ${posted} (${seen} read back; the API lists a lease's last 20, read every ${SNAPSHOT_MS / 1000} s, ${r.snapshots} passes) over ${fmt(runS, 1)} s ` +
      `from the first start to the last posting: ${fmt(posted / runS, 1)} settlements/s (${LEASES} running leases ÷ ${SETTLE_S} s = ${fmt(LEASES / SETTLE_S, 1)}/s at most while all run)`,
  );
  console.log(
    r.ledger
      ? `ledger (libSQL, read directly): ${r.ledger.count} settlement transactions, ${r.ledger.after} of them after the kill, the last ${fmt((r.ledger.last - r.firstStart) / 1000, 1)} s after the first start\n`
      : 'ledger (libSQL, read directly): could not be read\n',
  );

  console.log('| killed runners → lease failed, s | count | p50 | p99 | max |');
  console.log('|---|---:|---:|---:|---:|');
  for (const [name, l] of [
    [`failed seen (read every ${POLL_MS} ms) − kill`, sorted(toFailed)],
    ['failed (lease history) − kill', sorted(failedVsKill)],
    ['failed (lease history) − last accepted heartbeat sent', sorted(failedVsLastHb)],
  ] as const) {
    console.log(`| ${name} | ${l.length} | ${fmt(percentile(l, 50))} | ${fmt(percentile(l, 99))} | ${fmt(l.at(-1) ?? NaN)} |`);
  }

  console.log('\n| platform log lines | count |');
  console.log('|---|---:|');
  for (const [name, c] of r.logged) console.log(`| ${name} | ${c} |`);

  const count = (pred: (v: LeaseView) => boolean) => all.filter(pred).length;
  const other = all.filter((v) => v.state !== 'completed' && v.state !== 'failed');
  console.log('\n| leases | count |');
  console.log('|---|---:|');
  console.log(`| completed | ${count((v) => v.state === 'completed')} |`);
  console.log(`| failed, runner killed | ${count((v) => v.state === 'failed' && killed.has(v.id))} |`);
  console.log(`| failed, runner alive | ${count((v) => v.state === 'failed' && !killed.has(v.id))} |`);
  console.log(`| other (${[...new Set(other.map((v) => v.state))].join(', ') || '—'}) | ${other.length} |`);
  console.log(`| never read | ${LEASES - all.length} |`);
  console.log(`| final read failed (last one read used) | ${r.finalReadsFailed} |`);
  for (const v of [...other, ...all.filter((v) => v.state === 'failed' && !killed.has(v.id))].slice(0, 5)) {
    const h = v.history.at(-1);
    console.log(`  ${v.id}: ${v.state} since ${h ? new Date(h.at).toISOString() : '?'}${h?.reason ? ` (${h.reason})` : ''}, ${v.settlements.size} settlements read, billed ${usd(v.billed)}`);
  }

  const mismatched = r.paid ? all.filter((v) => (r.paid!.get(v.id) ?? 0n) !== v.billed).length : null;
  const billedSum = all.reduce((s, v) => s + v.billed, 0n);
  const spent = r.balance ? FAUCET - r.balance.available : null;
  const completedBilled = all.filter((v) => v.state === 'completed').map((v) => v.billed).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const paidFull = (3_600_000n * BigInt(DURATION_S)) / 3_600n; // 3.60 per GPU-hour, one GPU
  console.log('\n| money check | value | holds |');
  console.log('|---|---|---|');
  console.log(
    mismatched === null
      ? '| leases whose renter captures ≠ billed | n/a (ledger reads failed) | NO |'
      : `| leases whose renter captures (ledger, ${r.entries} entries) ≠ billed | ${mismatched} of ${all.length} | ${mismatched === 0 && all.length === LEASES ? 'yes' : 'NO'} |`,
  );
  console.log(`| Σ billed vs 1,000,000 − renter available | ${usd(billedSum)} vs ${spent === null ? 'n/a' : usd(spent)} | ${billedSum === spent ? 'yes' : 'NO'} |`);
  console.log(`| renter held USD at the end | ${r.balance ? usd(r.balance.held) : 'n/a'} | ${r.balance?.held === 0n ? 'yes' : 'NO'} |`);
  if (completedBilled.length > 0) {
    const [lo, hi] = [completedBilled[0]!, completedBilled.at(-1)!];
    console.log(`| billed per completed lease (paid ${usd(paidFull)}) | ${usd(lo)} … ${usd(hi)} | ${hi <= paidFull ? 'yes' : 'NO'} |`);
  }

  const lagP99 = percentile(allLags, 99);
  const periodicP99 = percentile(periodic, 99);
  // The lag figures speak for the run only if every lease ended and was read at the end.
  const endedCount = count((v) => v.state === 'completed' || v.state === 'failed');
  const lagMeasured = endedCount === LEASES && r.finalReadsFailed === 0;
  console.log('\nGoals:');
  console.log(
    `  failure detected within grace + ${GOAL_DETECT_EXTRA_S} s (${GRACE_S + GOAL_DETECT_EXTRA_S} s) for 100% of killed leases: ` +
      `${detectedInTime} of ${KILL} (${fmt((100 * detectedInTime) / Math.max(1, KILL), 1)}%), max ${fmt(Math.max(...toFailed))} s → ${detectedInTime === KILL ? 'met' : 'NOT met'}`,
  );
  console.log(
    `  settlement lag p99 ≤ ${GOAL_LAG_P99_S} s: ${fmt(lagP99)} s over ${allLags.length} settlements (periodic alone ${fmt(periodicP99)} s; both must be within)` +
      `${lagMeasured ? '' : `, but only ${endedCount} of ${LEASES} leases were seen ended and ${r.finalReadsFailed} final reads failed`} → ` +
      `${lagMeasured && lagP99 <= GOAL_LAG_P99_S && periodicP99 <= GOAL_LAG_P99_S ? 'met' : 'NOT met'}`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
