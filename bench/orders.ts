// npm run bench:orders — placing orders, end to end and inside one book:
//   POST /v1/orders (access token; escrow hold + order row in one libSQL transaction with the
//   Idempotency-Key, which also refuses an inactive account; RegionBook.place) on the local
//   platform, and one RegionBook Durable Object driven directly from inside the Worker.
//
// Starts a fresh platform (temp data folder), signs up a renter and funds it with the dev
// faucet (enough for every bid to hold its maximum cost), warms up (200 × GET /livez and
// 100 orders and 100 floor requests one at a time, not reported), then:
//   1. GET /livez, POST /v1/dev/bench/floor and POST /v1/orders BENCH_SEQUENTIAL (200) times
//      each, one at a time: the latency a lone client sees;
//   2. for each fixed rate in BENCH_RATES (50,100,200,400 per second), lowest first:
//      a. the floor: GET /livez at that rate for BENCH_SECONDS (10) s, driven exactly like the
//         orders that follow (the latency any route gets at that rate on this machine);
//      b. POST /v1/orders at that rate for BENCH_SECONDS s: buys of 1 h100-80gb in us-east for
//         60 s at a random price 1.00–1.99, paid in USD, each with its own Idempotency-Key.
//         Nothing sells, so every bid rests holding a few cents (thousands rest by the end).
//      c. then the floor under a buy: POST /v1/dev/bench/floor (development only) at that
//         rate for BENCH_SECONDS s: the same access token, one libSQL write transaction in one
//         round trip (BEGIN IMMEDIATE, SELECT 1, COMMIT) and one Durable Object call that
//         commits a small write before answering (a rate-limit bucket of the caller's own,
//         whose state stays a few bytes), and nothing else. It is the I/O no buy can skip (the
//         escrow hold commits in libSQL, then the book stores the bid durably), so no buy can
//         be faster than it on this machine: what a buy takes beyond it is the buy's own work.
//         It runs after the orders, so they follow their /livez floor directly as before;
//      The goals are judged at every rate; the summary names the rates meeting both latency
//      goals with no 5xx;
//   3. five GET /v1/accounts/me, 2 s after the load: does a database-backed route still answer?
//   4. one RegionBook: POST /v1/dev/bench/book (development only) with BENCH_BOOK_ORDERS (20000)
//      operations at each concurrency in BENCH_BOOK_CONCURRENCY (1,8,32), seed BENCH_SEED (1).
//      The Worker drives a new book `bench:<uuid>` with ~80% resting limit orders that never
//      cross (bids 1.00–1.99, asks 2.00–2.99) and ~20% cancels of resting asks, keeping that
//      many RPCs in flight, and times each RPC. workerd's clock inside a request only advances
//      across I/O, which is fine here: every RPC is I/O. A cancelled ask's status still goes to
//      libSQL through the book's outbox (an UPDATE matching no row), as a real cancel's does,
//      after the cancel has answered.
//      It runs last, after step 3 showed the HTTP backlog gone: its books keep tens of thousands
//      of resting orders in workerd's one isolate (the Worker's and every Durable Object's),
//      and the garbage collector's pauses over that heap would otherwise land in the HTTP rows
//      (measured: p99 at 100/s 75 ms after it, 18 ms without it).
// The HTTP load is open-loop: request k is due at k / rate s; at most BENCH_CONNECTIONS (64)
// are in flight (keep-alive node:http agent). Latency is the HTTP round trip from when the
// request left; "lag" is how late requests left against the schedule (all connections busy).
// A request without an answer in 10 s is a timeout.
//
// CPU (Linux /proc): the workerd process (Worker + Durable Objects, one JS thread), the
// launcher (local libSQL server, mock Stripe, log forwarding), this load generator, and every
// other process on the machine, all sharing its cores.
// Request logging: on unless LOG_REQUESTS=false is in the environment (passed through).
// BENCH_GC=1 runs workerd with V8's --trace-gc (major collections only, its stdout line-buffered
// through stdbuf) and adds a column: the stop-the-world major GCs that ended during each row and
// their pauses. The trace costs a little; leave it off for the reported figures.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Agent, request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { findWorkerd, ticks } from './proc.ts';
import { freePort, launch, type Platform } from '../test/support/platform.ts';
import { num, percentile } from './support.ts';

const RATES = (process.env.BENCH_RATES ?? '50,100,200,400').split(',').filter(Boolean).map(Number).sort((a, b) => a - b);
const WARMUP_LIVEZ = 200;
const SECONDS = num('BENCH_SECONDS', 10);
const CONNECTIONS = num('BENCH_CONNECTIONS', 64);
const BOOK_ORDERS = num('BENCH_BOOK_ORDERS', 20_000);
const BOOK_CONCURRENCY = (process.env.BENCH_BOOK_CONCURRENCY ?? '1,8,32').split(',').filter(Boolean).map(Number);
const SEED = num('BENCH_SEED', 1);
const SEQUENTIAL = num('BENCH_SEQUENTIAL', 200);
const LOG_REQUESTS = process.env.LOG_REQUESTS === 'false' ? 'false' : 'true';
const REQUEST_TIMEOUT_MS = 10_000;
const TRACE_GC = process.env.BENCH_GC === '1';
const WARMUP_ORDERS = 100;

const GOAL_P50_MS = 5;
const GOAL_P99_MS = 20;
const GOAL_BOOK_RATE = 1000;

/** The most one bid holds: 1.99 USD per GPU-hour × 1 GPU × 60 s, in micro-USD, rounded up. */
const MAX_HOLD_MICRO = Math.ceil((1_990_000 * 60) / 3600);
const FAUCET_MICRO = 1_000_000 * 1_000_000;

const rates = RATES;

interface Phase {
  name: string;
  rate: number;
  sent: number;
  elapsedS: number;
  /** By status class: 2xx, 4xx, 5xx, and anything else. */
  ok: number;
  client: number;
  server: number;
  other: number;
  timeouts: number;
  errors: number;
  /** Round trips of the 2xx replies only: a fast failure is not a fast order. */
  latencies: number[];
  lags: number[];
  firstFailure: string | null;
  cpuMs: Cpu;
  startedAt: number;
  endedAt: number;
}

interface BookRun {
  concurrency: number;
  orders: number;
  seconds: number;
  orders_per_s: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  errors: number;
  place: { count: number; p50_ms: number; p99_ms: number; max_ms: number };
  cancel: { count: number; p50_ms: number; p99_ms: number; max_ms: number };
  cpuMs: Cpu;
}

interface Cpu {
  workerd: number;
  launcher: number;
  bench: number;
  /** Every other process on the machine (other work sharing the cores). */
  others: number;
}

let launcherPid = 0;
let workerdPid = 0;
/** Busy CPU time of the whole machine in ms: all of /proc/stat's first line but idle and iowait. */
function machineBusy(): number {
  try {
    const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return ((user! + nice! + system! + irq! + softirq! + steal!) * 1000) / 100;
  } catch {
    return NaN;
  }
}
function cpu(): Cpu {
  const own = process.cpuUsage();
  const workerd = workerdPid ? ticks(workerdPid) : NaN;
  const launcher = launcherPid ? ticks(launcherPid) : NaN;
  const bench = (own.user + own.system) / 1000;
  return { workerd, launcher, bench, others: machineBusy() - workerd - launcher - bench };
}
const cpuSince = (before: Cpu): Cpu => {
  const now = cpu();
  return { workerd: now.workerd - before.workerd, launcher: now.launcher - before.launcher, bench: now.bench - before.bench, others: now.others - before.others };
};

interface Reply {
  status: number;
  text: string;
}

function send(agent: Agent | false, url: URL, method: string, path: string, headers: Record<string, string | number>, body?: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path,
        method,
        headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        timeout: timeoutMs,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

async function json(reply: Promise<Reply>): Promise<any> {
  const { status, text } = await reply;
  if (status < 200 || status >= 300) throw new Error(`${status} ${text}`);
  return JSON.parse(text);
}

function orderBody(): string {
  const cents = Math.floor(Math.random() * 100);
  return JSON.stringify({
    side: 'buy',
    region: 'us-east',
    gpu_model: 'h100-80gb',
    gpus: 1,
    duration_s: 60,
    pay_with: 'USD',
    price: `1.${String(cents).padStart(2, '0')}`,
    workload: { image: 'busybox', command: [], env: {}, ports: [] },
  });
}

function newPhase(name: string, rate: number): Phase {
  return {
    name,
    rate,
    sent: 0,
    elapsedS: 0,
    ok: 0,
    client: 0,
    server: 0,
    other: 0,
    timeouts: 0,
    errors: 0,
    latencies: [],
    lags: [],
    firstFailure: null,
    cpuMs: { workerd: NaN, launcher: NaN, bench: NaN, others: NaN },
    startedAt: performance.now(),
    endedAt: NaN,
  };
}

/** Major GCs in workerd (BENCH_GC=1): when each one's trace line arrived, and its pause. */
const majorGcs: Array<{ at: number; pauseMs: number }> = [];
let traceTail = '';
function readGcTrace(chunk: string): void {
  const lines = (traceTail + chunk).split('\n');
  traceTail = lines.pop()!;
  for (const line of lines) {
    // "[pid:0x…:0]  41234 ms: Mark-Compact 33.7 (45.3) -> 11.9 (45.3) MB, pooled: 0.0 MB, 85.00 / 0.00 ms (…) allocation limit; …"
    const m = /Mark-Compact .*? MB, .*?([\d.]+) \/ [\d.]+ ms/.exec(line);
    if (m) majorGcs.push({ at: performance.now(), pauseMs: Number(m[1]) });
  }
}

/** A wrapper that runs workerd with its stdout line-buffered, so trace lines arrive as they happen. */
function lineBufferedWorkerd(dir: string): string {
  // The binary Miniflare itself would run.
  const fromMiniflare = createRequire(createRequire(import.meta.url).resolve('miniflare'));
  const workerdBinary = (fromMiniflare('workerd') as { default: string }).default;
  const path = join(dir, 'workerd-line-buffered.sh');
  writeFileSync(path, `#!/bin/sh\nexec stdbuf -oL -eL '${workerdBinary}' "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

const gcsDuring = (p: Phase) => majorGcs.filter((g) => g.at >= p.startedAt && g.at <= p.endedAt);

function recordReply(phase: Phase, { status, text }: Reply, latencyMs: number): void {
  if (status >= 200 && status < 300) {
    phase.ok++;
    phase.latencies.push(latencyMs);
  } else {
    if (status >= 400 && status < 500) phase.client++;
    else if (status >= 500) phase.server++;
    else phase.other++;
    phase.firstFailure ??= `${status} ${text.slice(0, 300)}`;
  }
}

function recordError(phase: Phase, err: unknown): void {
  if (err instanceof Error && err.message === 'timeout') phase.timeouts++;
  else phase.errors++;
  phase.firstFailure ??= String(err);
}

/** One request at a time: the latency a lone client sees. */
async function sequential(name: string, total: number, next: () => Promise<Reply>): Promise<Phase> {
  const phase = newPhase(name, NaN);
  const before = cpu();
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const started = performance.now();
    phase.sent++;
    await next().then(
      (reply) => recordReply(phase, reply, performance.now() - started),
      (err: unknown) => recordError(phase, err),
    );
  }
  phase.elapsedS = (performance.now() - t0) / 1000;
  phase.endedAt = performance.now();
  phase.cpuMs = cpuSince(before);
  phase.latencies.sort((a, b) => a - b);
  return phase;
}

/** Open loop: request k is due at t0 + k / rate; `next()` makes request k. */
async function drive(name: string, rate: number, total: number, next: () => Promise<Reply>): Promise<Phase> {
  const phase = newPhase(name, rate);
  const before = cpu();
  let active = 0;
  let dispatched = 0;
  let due = 0;
  const t0 = performance.now() + 20;
  let lastDone = t0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));

  const pump = () => {
    while (active < CONNECTIONS && dispatched < due) {
      const dueAt = t0 + (dispatched * 1000) / rate;
      dispatched++;
      active++;
      const started = performance.now();
      phase.lags.push(started - dueAt);
      phase.sent++;
      next()
        .then(
          (reply) => recordReply(phase, reply, performance.now() - started),
          (err: unknown) => recordError(phase, err),
        )
        .finally(() => {
          lastDone = performance.now();
          active--;
          pump();
          if (dispatched >= total && active === 0) finish();
        });
    }
  };
  const tick = () => {
    due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
    pump();
    if (due < total) setTimeout(tick, 2);
    else if (active === 0 && dispatched >= total) finish();
  };
  setTimeout(tick, 20);
  await finished;
  phase.elapsedS = (lastDone - t0) / 1000;
  phase.endedAt = performance.now();
  phase.cpuMs = cpuSince(before);
  phase.latencies.sort((a, b) => a - b);
  phase.lags.sort((a, b) => a - b);
  return phase;
}

const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');
const times = (a: number, b: number) => (Number.isFinite(a / b) ? `${(a / b).toFixed(1)}×` : 'n/a');
/** CPU time as % of one core; '—' under 1 s, where /proc's 10 ms ticks say little. */
const pct = (cpuMs: number, seconds: number) => (seconds < 1 ? '—' : Number.isFinite(cpuMs) ? `${(cpuMs / 10 / seconds).toFixed(0)}%` : 'n/a');

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'gridlease-bench-orders-'));
  let platform: Platform | undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS, maxFreeSockets: CONNECTIONS });
  try {
    const gcEnv: Record<string, string> = TRACE_GC
      ? { MINIFLARE_WORKERD_PATH: lineBufferedWorkerd(dataDir), MINIFLARE_WORKERD_V8_FLAGS: '--trace-gc --trace-gc-ignore-scavenger' }
      : {};
    platform = await launch({
      dataDir,
      port: await freePort(),
      libsqlPort: await freePort(),
      // One account places hundreds of orders a second and leaves thousands resting.
      env: { LOG_REQUESTS, ORDER_RATE_LIMIT: 'off', WRITE_RATE_LIMIT: 'off', WRITE_IP_RATE_LIMIT: 'off', ORDER_MAX_OPEN: 'off', ...gcEnv },
      ...(TRACE_GC ? { onOutput: readGcTrace } : {}),
    });
    const url = new URL(platform.url);
    launcherPid = platform.child.pid ?? 0;
    workerdPid = findWorkerd(launcherPid);
    const loadAtStart = loadavg()[0]!;

    const account = await json(
      send(agent, url, 'POST', '/v1/accounts', {}, JSON.stringify({ email: `bench.orders.${Date.now()}@example.com`, password: 'Benchmark-Quartz-9042', roles: ['renter'] })),
    );
    // Trading clients exchange their API key for an access token: verified without a database
    // read (the signature check is cached per isolate), where a key is looked up every time.
    const token = await json(
      send(agent, url, 'POST', '/v1/auth/token', {}, JSON.stringify({ grant_type: 'api_key', api_key: account.api_key.key as string })),
    );
    const auth = { authorization: `Bearer ${token.access_token as string}` };
    const orderCount = WARMUP_ORDERS + SEQUENTIAL + rates.reduce((n, r) => n + Math.round(r * SECONDS), 0);
    const grants = Math.max(1, Math.ceil((orderCount * MAX_HOLD_MICRO) / FAUCET_MICRO));
    for (let i = 0; i < grants; i++) {
      await json(send(agent, url, 'POST', '/v1/dev/faucet', { ...auth, 'idempotency-key': `bench-faucet-${i}` }, JSON.stringify({ asset: 'USD', amount: '1000000' })));
    }
    const placeOrder = () => send(agent, url, 'POST', '/v1/orders', { ...auth, 'idempotency-key': crypto.randomUUID() }, orderBody());
    const livez = () => send(agent, url, 'GET', '/livez', {});
    const ioFloor = () => send(agent, url, 'POST', '/v1/dev/bench/floor', auth);

    // Warm-up, not reported: isolate start, JIT, the book's first load, the first pooled connections.
    await drive('warm-up /livez', WARMUP_LIVEZ, WARMUP_LIVEZ, livez);
    for (let i = 0; i < WARMUP_ORDERS; i++) {
      const { status, text } = await placeOrder();
      if (status !== 201) throw new Error(`warm-up order failed: ${status} ${text}`);
      const floor = await ioFloor();
      if (floor.status !== 201) throw new Error(`warm-up of the I/O floor failed: ${floor.status} ${floor.text}`);
    }
    console.error('warm-up done');

    const single = [
      await sequential(`GET /livez (floor), ${SEQUENTIAL} one at a time`, SEQUENTIAL, livez),
      await sequential(`POST /v1/dev/bench/floor (I/O under a buy), ${SEQUENTIAL} one at a time`, SEQUENTIAL, ioFloor),
      await sequential(`POST /v1/orders, ${SEQUENTIAL} one at a time`, SEQUENTIAL, placeOrder),
    ];
    const pairs: Array<{ floor: Phase; io: Phase; orders: Phase }> = [];
    for (const rate of rates) {
      const total = Math.round(rate * SECONDS);
      const floor = await drive(`GET /livez (floor) at ${rate}/s`, rate, total, livez);
      const orders = await drive(`POST /v1/orders at ${rate}/s`, rate, total, placeOrder);
      const io = await drive(`POST /v1/dev/bench/floor (I/O under a buy) at ${rate}/s`, rate, total, ioFloor);
      pairs.push({ floor, io, orders });
      console.error(`${rate}/s done`);
    }
    // Whether the platform still answers a database-backed request once the load is over.
    await new Promise((r) => setTimeout(r, 2000));
    const after = await sequential('GET /v1/accounts/me after the load', 5, () => send(agent, url, 'GET', '/v1/accounts/me', auth));

    // The book last: its resting orders would otherwise sit in the heap the HTTP rows pay for.
    const book: BookRun[] = [];
    const bookFailures: string[] = [];
    for (const concurrency of BOOK_CONCURRENCY) {
      const before = cpu();
      const started = performance.now();
      try {
        const result = await json(send(false, url, 'POST', '/v1/dev/bench/book', auth, JSON.stringify({ orders: BOOK_ORDERS, concurrency, seed: SEED }), 900_000));
        book.push({ ...result, concurrency, cpuMs: cpuSince(before) });
        console.error(`book at concurrency ${concurrency} done`);
      } catch (err) {
        bookFailures.push(`concurrency ${concurrency}: failed after ${((performance.now() - started) / 1000).toFixed(1)} s: ${String(err).slice(0, 300)}`);
      }
    }

    const logging = LOG_REQUESTS === 'true' ? 'on' : 'off';
    console.log(
      `\n${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? 'unknown'}) shared by this load generator, the launcher (libSQL server) and workerd; ` +
        `1-min load average ${loadAtStart.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after; Node ${process.version}; request logging ${logging}; ` +
        `open loop, ≤ ${CONNECTIONS} connections, ${SECONDS} s per row; warm-up (not reported): ${WARMUP_LIVEZ} × GET /livez, then ${WARMUP_ORDERS} orders and ${WARMUP_ORDERS} floor requests one at a time\n`,
    );
    console.log('## HTTP\n');
    const gcHead = TRACE_GC ? ' major GCs: pause ms |' : '';
    console.log(`| row | offered/s | sent | 2xx/s | p50 ms | p90 ms | p99 ms | max ms | p50 / p99 vs floor | lag p99 ms | 2xx | 4xx | 5xx | timeouts | other errors | CPU ms/req workerd / launcher / bench | CPU workerd / launcher / bench / others |${gcHead}`);
    console.log(`|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|${TRACE_GC ? '---|' : ''}`);
    const row = (p: Phase, floor: Phase | null) => {
      const l = p.latencies;
      const vs = floor ? `${times(percentile(l, 50), percentile(floor.latencies, 50))} / ${times(percentile(l, 99), percentile(floor.latencies, 99))}` : '—';
      console.log(
        `| ${p.name} | ${Number.isFinite(p.rate) ? p.rate : '—'} | ${p.sent} | ${(p.ok / p.elapsedS).toFixed(0)} | ${ms(percentile(l, 50))} | ${ms(percentile(l, 90))} | ${ms(percentile(l, 99))} | ${ms(l.at(-1) ?? NaN)} | ${vs} | ` +
          `${Number.isFinite(p.rate) ? ms(percentile(p.lags, 99)) : '—'} | ${p.ok} | ${p.client} | ${p.server} | ${p.timeouts} | ${p.errors + p.other} | ` +
          `${ms(p.cpuMs.workerd / p.sent)} / ${ms(p.cpuMs.launcher / p.sent)} / ${ms(p.cpuMs.bench / p.sent)} | ` +
          `${pct(p.cpuMs.workerd, p.elapsedS)} / ${pct(p.cpuMs.launcher, p.elapsedS)} / ${pct(p.cpuMs.bench, p.elapsedS)} / ${pct(p.cpuMs.others, p.elapsedS)} |` +
          (TRACE_GC ? ` ${gcsDuring(p).map((g) => g.pauseMs.toFixed(0)).join(', ') || 'none'} |` : ''),
      );
    };
    row(single[0]!, null);
    row(single[1]!, single[0]!);
    row(single[2]!, single[0]!);
    for (const { floor, io, orders } of pairs) {
      row(floor, null);
      row(orders, floor);
      row(io, floor);
    }
    row(after, null);
    for (const p of [single[1]!, single[2]!, ...pairs.flatMap((x) => [x.io, x.orders]), after]) if (p.firstFailure) console.log(`\nfirst failure, ${p.name}: ${p.firstFailure}`);
    console.log(
      '\nlatency (p50 … max, of 2xx replies only): from when the request left to the end of the reply; lag: how late requests left against the schedule; ' +
        'CPU %: of one core over the row (100% = one core busy; others = every other process on the machine); ' +
        'workerd is one JS thread for the Worker and every Durable Object.',
    );

    console.log(`\n## One RegionBook (POST /v1/dev/bench/book, ${BOOK_ORDERS} operations each, seed ${SEED})\n`);
    console.log('| concurrency | orders/s | seconds | p50 ms | p99 ms | max ms | places p50 / p99 ms | cancels p50 / p99 ms | places / cancels | errors | workerd CPU ms/order | CPU workerd / launcher / others |');
    console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const b of book) {
      console.log(
        `| ${b.concurrency} | ${b.orders_per_s.toFixed(0)} | ${b.seconds.toFixed(2)} | ${ms(b.p50_ms)} | ${ms(b.p99_ms)} | ${ms(b.max_ms)} | ${ms(b.place.p50_ms)} / ${ms(b.place.p99_ms)} | ` +
          `${ms(b.cancel.p50_ms)} / ${ms(b.cancel.p99_ms)} | ${b.place.count} / ${b.cancel.count} | ${b.errors} | ${ms(b.cpuMs.workerd / b.orders)} | ` +
          `${pct(b.cpuMs.workerd, b.seconds)} / ${pct(b.cpuMs.launcher, b.seconds)} / ${pct(b.cpuMs.others, b.seconds)} |`,
      );
    }
    for (const f of bookFailures) console.log(`\nfailed: ${f}`);
    console.log(
      '\norders: places + cancels; latencies measured inside the Worker around each RPC, in whole ms (workerd\'s clock); ' +
        'an ask\'s cancel answers before its status reaches libSQL through the book\'s outbox (a bid\'s waits for its hold to be released); the Worker driving the book shares workerd\'s thread with it.',
    );

    // A latency over a few successes among many failures says nothing about the route.
    const judge = ({ floor, io, orders }: { floor: Phase; io: Phase; orders: Phase }) => {
      const p50 = percentile(orders.latencies, 50);
      const p99 = percentile(orders.latencies, 99);
      const answered = orders.ok === orders.sent;
      return { rate: orders.rate, floor, io, orders, p50, p99, answered, p50ok: answered && p50 <= GOAL_P50_MS, p99ok: answered && p99 <= GOAL_P99_MS, no5xx: orders.server === 0 };
    };
    const judged = pairs.map(judge);
    const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
    const best = book.reduce<BookRun | undefined>((b, r) => (b && b.orders_per_s >= r.orders_per_s ? b : r), undefined);
    console.log('\n## Goals\n');
    for (const j of judged) {
      const of2xx = j.answered ? '' : `, over only ${j.orders.ok} 2xx of ${j.orders.sent}`;
      console.log(
        `- at ${j.rate}/s: p50 ${ms(j.p50)} ms (≤ ${GOAL_P50_MS}: ${verdict(j.p50ok)}), p99 ${ms(j.p99)} ms (≤ ${GOAL_P99_MS}: ${verdict(j.p99ok)})${of2xx}, ` +
          `${j.orders.server} 5xx and ${j.orders.timeouts} timeouts (zero 5xx: ${verdict(j.no5xx)}); GET /livez at the same rate: p50 ${ms(percentile(j.floor.latencies, 50))} / p99 ${ms(percentile(j.floor.latencies, 99))} ms; ` +
          `the I/O under a buy (POST /v1/dev/bench/floor) at the same rate: p50 ${ms(percentile(j.io.latencies, 50))} / p99 ${ms(percentile(j.io.latencies, 99))} ms` +
          `${j.io.ok === j.io.sent ? '' : ` (only ${j.io.ok} 2xx of ${j.io.sent})`}, so the buy's own work is ≈ ${ms(j.p50 - percentile(j.io.latencies, 50))} ms at p50 (two rows in turn: the machine moves between them)`,
      );
    }
    console.log(`- one at a time: POST /v1/orders p50 ${ms(percentile(single[2]!.latencies, 50))} / p99 ${ms(percentile(single[2]!.latencies, 99))} ms; the I/O under a buy p50 ${ms(percentile(single[1]!.latencies, 50))} / p99 ${ms(percentile(single[1]!.latencies, 99))} ms; GET /livez p50 ${ms(percentile(single[0]!.latencies, 50))} / p99 ${ms(percentile(single[0]!.latencies, 99))} ms`);
    const meeting = judged.filter((j) => j.p50ok && j.p99ok && j.no5xx);
    const failing = judged.filter((j) => !(j.p50ok && j.p99ok && j.no5xx)).map((j) => j.rate);
    console.log(
      `- latency goals (p50 ≤ ${GOAL_P50_MS} ms, p99 ≤ ${GOAL_P99_MS} ms, no 5xx, at one rate): ` +
        (meeting.length > 0 ? `met at ${meeting.map((j) => j.rate).join(', ')}/s; not at ${failing.join(', ') || 'none'}` : `NOT met at any rate tried (${rates.join(', ')}/s)`),
    );
    console.log(`- zero 5xx at every rate: ${verdict(judged.every((j) => j.no5xx))} (${judged.map((j) => `${j.orders.server} at ${j.rate}/s`).join(', ')})`);
    console.log(
      `- one RegionBook ≥ ${GOAL_BOOK_RATE} orders/s: ${best ? `${best.orders_per_s.toFixed(0)} orders/s at concurrency ${best.concurrency}` : 'not run'} → ` +
        `${best && best.orders_per_s >= GOAL_BOOK_RATE && best.errors === 0 ? 'met' : 'NOT met'}`,
    );
  } finally {
    agent.destroy();
    if (platform) await platform.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
