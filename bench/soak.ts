// npm run bench:soak — mixed traffic modelled on the demo against a fresh local platform (`npm
// start`'s launcher in a temp folder) for a stated time at a stated rate; does anything fail,
// leak or lose money over time?
//
//   --minutes N  (BENCH_SOAK_MINUTES, default 10)   how long the traffic runs
//   --rate R     (BENCH_SOAK_RATE, default 30)      actions per second, open loop (below)
//   BENCH_SOAK_NODES (12, 4 GPUs each, three per book), BENCH_SOAK_RSS_BOUND_MIB (64),
//   BENCH_SOAK_INFLIGHT (48): an action due while this many requests are in flight is skipped
//   and counted, so an overloaded platform shows up as skips instead of an ever-growing queue.
//   BENCH_PLATFORM_LOG=<file> keeps the platform's whole output; BENCH_SOAK_KEEP=1 keeps its data
//   folder (libSQL file, Durable Object storage) for a look afterwards.
//
// Setup over HTTP: two providers, three renters (dev faucet: 100,000 USD twice, and 0.30 USD
// for one so that some of its buys are refused 402), four books (us-east and eu-west × h100-80gb and
// a100-80gb), BENCH_SOAK_NODES simulated runners (soak-runners.ts: heartbeats every 2 s, acks,
// `started`, log lines, `exited`) online before trading starts.
// Traffic (soak-traffic.ts), drawn by weight R times a second: asks (and cancelling a
// provider's oldest past four per book), buys of one GPU for 60–120 s (some cross and fill, some
// rest 30 s and expire, some are cancelled), market reads (summary, offers, book, trades,
// candles), account reads (orders, leases, balances), lease and log reads. 15% of leases are
// terminated and 15% extended by 60 s, 10–30 s after they fill. Besides: the runners' requests,
// four price-widget WebSockets kept open (reopened when closed) and three renters following
// lease logs (soak-streams.ts).
// Platform settings: HEARTBEAT_INTERVAL_S=2, LEASE_SETTLE_S=10 (settlements within a short
// run), request logging off, credential rate limits raised for setup; order, offer and stream
// rate limits as shipped, so 429s are real and counted apart.
//
// Each minute a row: requests by status class, p50/p99 latency, workerd RSS (Linux /proc), open
// orders and live leases (from libSQL). At the end the traffic stops, the remaining orders are
// cancelled and the live leases terminated through the API, and once they have ended (at most
// 90 s) the ledger is checked straight in libSQL (soak-ledger.ts). Goals: no 5xx, no unexpected
// 4xx, every ledger check holds, workerd RSS growth after the first minute ≤ the bound.
// Ctrl-C: the report so far (the ledger read as it is, mid-flight); a second Ctrl-C quits.
import { createClient, type Client } from '@libsql/client/node';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, launch, type Platform } from '../test/support/platform.ts';
import { findWorkerd } from './proc.ts';
import { checkLedger, describeLedger, marketCounts, type LedgerCheck } from './soak-ledger.ts';
import { emptyWindow, SoakClient, type Window } from './soak-http.ts';
import { Runners, type Book } from './soak-runners.ts';
import { Streams } from './soak-streams.ts';
import { bookName, Traffic, type Provider, type Renter } from './soak-traffic.ts';
import { num, percentile, rssMib } from './support.ts';

const { values: args } = parseArgs({ options: { minutes: { type: 'string' }, rate: { type: 'string' } } });
const MINUTES = Number(args.minutes ?? num('BENCH_SOAK_MINUTES', 10));
const RATE = Number(args.rate ?? num('BENCH_SOAK_RATE', 30));
const NODES = num('BENCH_SOAK_NODES', 12);
const RSS_BOUND_MIB = num('BENCH_SOAK_RSS_BOUND_MIB', 64);
const INFLIGHT = num('BENCH_SOAK_INFLIGHT', 48);
const PLATFORM_LOG = process.env.BENCH_PLATFORM_LOG ?? '';
const INTERVAL_S = 2;
const DRAIN_S = 90;
if (!(MINUTES > 0) || !(RATE > 0)) throw new Error('--minutes and --rate must be positive numbers');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const clock = () => new Date().toISOString().slice(11, 19);
const progress = (s: string) => console.error(`${clock()} ${s}`);

interface Row {
  label: string;
  w: Window;
  rss: number;
  openAsks: number | null;
  openBids: number | null;
  liveLeases: number | null;
  skipped: number;
  streams: number;
  seconds: number;
}

const state = {
  rows: [] as Row[],
  rowStartedAt: 0,
  skipped: 0,
  rssAfterWarmup: NaN,
  rssPeak: 0,
  rssLast: NaN,
  platformWarnings: 0,
  platformErrors: 0,
  /** libSQL's error line for the CHECK that refuses an overdraft: one per 402, by design. */
  overdraftRefusals: 0,
  logSamples: [] as string[],
  trafficStopped: false,
  interrupted: false,
  startedAt: 0,
  /** When the traffic stopped (the drain follows). */
  stoppedAt: 0,
};

const BOOKS: Book[] = [
  { region: 'us-east', gpuModel: 'h100-80gb', smiName: 'NVIDIA H100 80GB HBM3', midCents: 245, startCents: 245 },
  { region: 'us-east', gpuModel: 'a100-80gb', smiName: 'NVIDIA A100-SXM4-80GB', midCents: 160, startCents: 160 },
  { region: 'eu-west', gpuModel: 'h100-80gb', smiName: 'NVIDIA H100 80GB HBM3', midCents: 235, startCents: 235 },
  { region: 'eu-west', gpuModel: 'a100-80gb', smiName: 'NVIDIA A100-SXM4-80GB', midCents: 150, startCents: 150 },
];

async function account(http: SoakClient, role: 'provider' | 'renter', usd?: string): Promise<string> {
  const body = { email: `soak.${role}.${crypto.randomUUID().slice(0, 8)}@example.com`, password: 'Soak-Test-Lantern-8812', roles: [role] };
  const r = await http.call('setup', 'POST', '/v1/accounts', { body });
  if (r.status !== 201) throw new Error(`account: ${r.status} ${JSON.stringify(r.body)}`);
  const key = r.body.api_key.key as string;
  if (usd) {
    const f = await http.call('setup', 'POST', '/v1/dev/faucet', { auth: key, key: true, body: { asset: 'USD', amount: usd } });
    if (f.status !== 201) throw new Error(`faucet: ${f.status} ${JSON.stringify(f.body)}`);
  }
  return key;
}

async function setup(http: SoakClient, runners: Runners) {
  const providers: Provider[] = [];
  for (let i = 0; i < 2; i++) providers.push({ key: await account(http, 'provider'), nodes: [], asks: new Map() });
  const renters: Renter[] = [];
  for (const usd of ['100000', '100000', '0.30']) renters.push({ key: await account(http, 'renter', usd), bids: [], leases: [] });
  for (let i = 0; i < NODES; i++) {
    const provider = providers[i % providers.length]!;
    provider.nodes.push(await runners.register(provider.key, BOOKS[i % BOOKS.length]!, `soak-${i}`, 4));
  }
  runners.start();
  const by = Date.now() + 60_000;
  for (;;) {
    let online = 0;
    for (const p of providers) {
      const r = await http.call('setup', 'GET', '/v1/nodes', { auth: p.key });
      if (r.status === 200) online += (r.body.data as Array<{ status: string }>).filter((n) => n.status === 'online').length;
    }
    if (online >= NODES) break;
    if (Date.now() > by) throw new Error(`only ${online} of ${NODES} nodes online after 60 s`);
    await sleep(500);
  }
  progress(`${NODES} nodes online in ${BOOKS.length} books; ${providers.length} providers, ${renters.length} renters`);
  return { providers, renters };
}

/** Workerd's RSS every 5 s: the peak between rows, the latest for each row. */
function sampleRss(workerd: number): NodeJS.Timeout {
  return setInterval(() => {
    const rss = rssMib(workerd);
    if (Number.isFinite(rss)) {
      state.rssLast = rss;
      if (state.rssPeak < rss) state.rssPeak = rss;
    }
  }, 5000);
}

async function row(label: string, http: SoakClient, db: Client, workerd: number, streams: Streams): Promise<void> {
  const w = http.roll();
  const skipped = state.skipped;
  state.skipped = 0;
  const rss = rssMib(workerd);
  if (Number.isFinite(rss)) state.rssLast = rss;
  const counts = await marketCounts(db).catch(() => null);
  const now = performance.now();
  const seconds = (now - state.rowStartedAt) / 1000;
  state.rowStartedAt = now;
  const r: Row = { label, w, rss, openAsks: counts?.openAsks ?? null, openBids: counts?.openBids ?? null, liveLeases: counts?.liveLeases ?? null, skipped, streams: streams.open(), seconds };
  state.rows.push(r);
  if (state.rows.length === 1) {
    state.rssAfterWarmup = rss;
    console.log(TABLE_HEAD.join('\n'));
  }
  console.log(formatRow(r));
}

const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : 'n/a');
const TABLE_HEAD = [
  '| minute | requests | req/s | 2xx | 4xx | of them unexpected | 429 | 5xx | no reply | p50 ms | p99 ms | workerd RSS MiB | open asks / bids | live leases | widget sockets | skipped actions |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
];
function formatRow(r: Row): string {
  const l = r.w.latencies.sort((a, b) => a - b);
  const orders = r.openAsks === null ? 'n/a' : `${r.openAsks} / ${r.openBids}`;
  return `| ${r.label} | ${f(r.w.requests)} | ${f(r.w.requests / r.seconds, 1)} | ${f(r.w.ok2xx)} | ${f(r.w.c4xx)} | ${f(r.w.unexpected4xx)} | ${f(r.w.limited)} | ${f(r.w.c5xx)} | ${f(r.w.failed)} | ${f(percentile(l, 50), 1)} | ${f(percentile(l, 99), 1)} | ${f(r.rss)} | ${orders} | ${r.liveLeases ?? 'n/a'} | ${r.streams} | ${r.skipped} |`;
}

/** Cancels every open order and terminates every live lease through the API, then waits for the ledger to settle. */
async function drain(http: SoakClient, db: Client, providers: Provider[], renters: Renter[]): Promise<boolean> {
  for (const key of [...providers.map((p) => p.key), ...renters.map((r) => r.key)]) {
    const open = await http.call('drain', 'GET', '/v1/orders?status=open&limit=100', { auth: key });
    for (const o of open.status === 200 ? (open.body.data as Array<{ id: string }>) : []) {
      await http.call('drain', 'DELETE', `/v1/orders/${o.id}`, { auth: key, expect: [409] });
    }
  }
  for (const renter of renters) {
    const list = await http.call('drain', 'GET', '/v1/leases?role=renter&limit=100', { auth: renter.key });
    for (const l of list.status === 200 ? (list.body.data as Array<{ id: string; state: string }>) : []) {
      if (l.state === 'provisioning' || l.state === 'running') await http.call('drain', 'POST', `/v1/leases/${l.id}/terminate`, { auth: renter.key });
    }
  }
  const by = Date.now() + DRAIN_S * 1000;
  while (Date.now() < by) {
    const c = await marketCounts(db).catch(() => null);
    const held = await db.execute("SELECT coalesce(sum(balance), 0) AS s FROM ledger_accounts WHERE kind = 'held'").catch(() => null);
    if (c && c.openAsks + c.openBids + c.liveLeases === 0 && held && BigInt(held.rows[0]!.s as number) === 0n) return true;
    await sleep(1000);
  }
  return false;
}

function report(http: SoakClient, runners: Runners, traffic: Traffic | null, streams: Streams | null, ledger: LedgerCheck | null, settled: boolean, ledgerNote: string): boolean {
  const t = http.total;
  const elapsedS = ((state.stoppedAt || performance.now()) - state.startedAt) / 1000;
  console.log('');
  console.log(`bench:soak — traffic for ${f(elapsedS / 60, 1)} of ${MINUTES} min at ${RATE} actions/s${state.interrupted ? ' (interrupted)' : ''}; ${NODES} nodes × 4 GPUs; ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, Node ${process.versions.node}; load ${loadavg().map((x) => x.toFixed(2)).join(' / ')} at the end.`);
  console.log('');
  console.log('| route | requests | statuses | p50 ms | p99 ms |');
  console.log('|---|---:|---|---:|---:|');
  for (const [route, r] of [...http.routes].sort((a, b) => b[1].count - a[1].count)) {
    const l = r.latencies.sort((a, b) => a - b);
    const statuses = [...r.statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(' ');
    console.log(`| ${route} | ${f(r.count)} | ${statuses} | ${f(percentile(l, 50), 1)} | ${f(percentile(l, 99), 1)} |`);
  }
  const all = t.latencies.sort((a, b) => a - b);
  console.log('');
  console.log(`All: ${f(t.requests)} requests, ${f(t.ok2xx)} 2xx, ${f(t.c4xx)} 4xx (${f(t.unexpected4xx)} unexpected), ${f(t.limited)} 429, ${f(t.c5xx)} 5xx, ${f(t.failed)} without a reply; p50 ${f(percentile(all, 50), 1)} ms, p99 ${f(percentile(all, 99), 1)} ms.`);
  const c = runners.counts;
  console.log(`Runners: ${f(c.heartbeats)} heartbeats (${c.skipped} skipped: previous still in flight), ${c.starts} started, ${c.exits} exited, ${c.stops} stop_lease, ${c.extends} extend_lease, ${f(c.logLines)} log lines stored, ${c.challengesPassed} of ${c.challenges} challenges passed.`);
  if (traffic) {
    const k = traffic.counts;
    console.log(`Market: ${k.asks} asks and ${k.bids} bids placed, ${k.fills} leases seen by their renters, ${k.cancelled} orders cancelled, ${k.terminated} leases terminated early, ${k.extended} extended.`);
  }
  if (streams) {
    const s = streams.counts;
    console.log(`Streams: widget WebSockets ${s.wsOpened} opened, ${s.wsDropped} closed by the platform while the soak ran, ${s.wsFailed} refused, ${f(s.wsMessages)} messages; log follows ${s.followsOpened} opened, ${s.followEnds} ended with \`end\`, ${f(s.followedLines)} lines.`);
  }
  console.log(`Platform log: ${state.platformWarnings} warn lines, ${state.platformErrors} error lines (besides ${state.overdraftRefusals} libSQL errors for the overdraft CHECK, one per 402)${state.logSamples.length ? `; first: ${state.logSamples.map((s) => `\n    ${s}`).join('')}` : ''}`);
  if (http.refusals.size > 0) {
    console.log('Expected refusals, first and latest answer:');
    for (const [key, r] of http.refusals) console.log(`  ${key}: ${r.first}${r.latest !== r.first ? `\n    latest: ${r.latest}` : ''}`);
  }
  if (http.samples.length > 0) {
    console.log('Unexpected 4xx and 5xx (samples):');
    for (const s of http.samples) console.log(`  ${s.route} → ${s.status}: ${s.body}`);
  }
  console.log('');
  console.log(`Ledger, read from libSQL ${ledgerNote}:`);
  let ledgerOk = false;
  if (ledger) {
    const d = describeLedger(ledger, settled);
    ledgerOk = d.ok;
    for (const line of d.lines) console.log(line);
  } else console.log('- not read (libSQL did not answer)');
  const growth = state.rssLast - state.rssAfterWarmup;
  const rssOk = Number.isFinite(growth) && growth <= RSS_BOUND_MIB;
  console.log('');
  console.log(`Goals: 5xx = 0 → ${t.c5xx === 0 ? 'met' : `NOT met (${t.c5xx})`}; unexpected 4xx = 0 → ${t.unexpected4xx === 0 ? 'met' : `NOT met (${t.unexpected4xx})`}; ledger checks → ${ledgerOk ? 'met' : 'NOT met'};`);
  console.log(
    `workerd RSS growth after the first minute ≤ ${RSS_BOUND_MIB} MiB → ${Number.isFinite(growth) ? `${rssOk ? 'met' : 'NOT met'} (${f(state.rssAfterWarmup)} → ${f(state.rssLast)} MiB, ${growth >= 0 ? '+' : ''}${f(growth, 1)}; peak ${f(state.rssPeak)})` : 'n/a (fewer than one minute, or no /proc)'}.`,
  );
  return t.c5xx === 0 && t.unexpected4xx === 0 && ledgerOk && rssOk;
}

async function main(): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), 'gridlease-bench-soak-'));
  const libsqlPort = await freePort();
  if (PLATFORM_LOG) writeFileSync(PLATFORM_LOG, '');
  let platform: Platform | undefined;
  let http: SoakClient | undefined;
  let db: Client | undefined;
  let runners: Runners | undefined;
  let streams: Streams | null = null;
  let traffic: Traffic | null = null;
  const timers: NodeJS.Timeout[] = [];
  let tail = '';
  const scan = (text: string) => {
    if (PLATFORM_LOG) appendFileSync(PLATFORM_LOG, text);
    const lines = (tail + text).split('\n');
    tail = lines.pop() ?? '';
    for (const line of lines) {
      const level = /"level":"(warn|error)"/.exec(line)?.[1];
      if (!level) continue;
      if (line.includes('CHECK constraint failed: ledger_balance_non_negative')) state.overdraftRefusals++;
      else if (level === 'warn') state.platformWarnings++;
      else state.platformErrors++;
      if (state.logSamples.length < 5) state.logSamples.push(line.slice(0, 300));
    }
  };

  let interrupt: () => void = () => {};
  const interrupted = new Promise<void>((resolve) => (interrupt = resolve));
  process.on('SIGINT', () => {
    if (state.interrupted) process.exit(130);
    state.interrupted = true;
    progress('interrupted: the report so far (Ctrl-C again to quit at once)');
    interrupt();
  });

  try {
    platform = await launch({
      dataDir,
      port: await freePort(),
      libsqlPort,
      onOutput: scan,
      env: {
        LOG_REQUESTS: 'false',
        AUTH_IP_RATE_LIMIT: '1000000/60',
        WRITE_IP_RATE_LIMIT: 'off',
        AUTH_RATE_LIMIT: '1000000/60',
        HEARTBEAT_INTERVAL_S: String(INTERVAL_S),
        HEARTBEAT_MIN_INTERVAL_S: '1',
        HEARTBEAT_FLUSH_S: '2',
        LEASE_SETTLE_S: '10',
      },
    });
    const base = new URL(platform.url);
    const workerd = findWorkerd(platform.child.pid ?? 0);
    http = new SoakClient(base);
    db = createClient({ url: `http://127.0.0.1:${libsqlPort}`, intMode: 'bigint' });
    runners = new Runners(http, INTERVAL_S * 1000);
    progress(`platform at ${platform.url}, data in ${dataDir}`);
    const { providers, renters } = await setup(http, runners);
    traffic = new Traffic(http, BOOKS, providers, renters);
    streams = new Streams(http, base);
    const names = BOOKS.map(bookName);
    streams.widgets([names[0]!, names[3]!, names.join(','), `${names[0]},${names[1]}`]);
    streams.followers(3, () => traffic!.knownLeases());

    // Setup's requests are not the soak's.
    http.roll();
    Object.assign(http.total, emptyWindow());
    http.routes.clear();
    state.startedAt = state.rowStartedAt = performance.now();
    progress(`traffic for ${MINUTES} min at ${RATE} actions/s`);
    timers.push(sampleRss(workerd));
    let issued = 0;
    const t = traffic;
    const scheduler = setInterval(() => {
      if (state.trafficStopped) return;
      const due = Math.floor(((performance.now() - state.startedAt) / 1000) * RATE) - issued;
      for (let i = 0; i < due; i++) {
        issued++;
        if (http!.inFlight >= INFLIGHT) state.skipped++;
        else t.next().catch(() => undefined);
      }
      for (const p of t.due(Date.now())) p.catch(() => undefined);
    }, 20);
    timers.push(scheduler);

    const end = state.startedAt + MINUTES * 60_000;
    for (let minute = 1; performance.now() < end && !state.interrupted; minute++) {
      const at = Math.min(end, state.startedAt + minute * 60_000);
      await Promise.race([sleep(Math.max(0, at - performance.now())), interrupted]);
      if (state.interrupted) break;
      await row(String(minute), http, db, workerd, streams);
    }
    state.trafficStopped = true;
    state.stoppedAt = performance.now();
    clearInterval(scheduler);
    streams.stop();

    let settled = false;
    let ledgerNote = 'mid-flight';
    if (!state.interrupted) {
      progress('traffic stopped; cancelling open orders and terminating live leases');
      settled = await Promise.race([drain(http, db, providers, renters), interrupted.then(() => false)]);
      await row('drain', http, db, workerd, streams);
      ledgerNote = settled ? 'after every order closed and every lease ended' : `after ${DRAIN_S} s of waiting for every order to close and every lease to end, which did not happen`;
      progress(settled ? 'every order closed, every lease ended, nothing held' : 'drain did not settle');
    } else if (http.minute.requests > 0) await row('partial', http, db, workerd, streams).catch(() => undefined);

    runners.stop();
    let ledger = await checkLedger(db).catch(() => null);
    if (!ledger && platform) {
      // Ctrl-C in a terminal reaches the launcher too: read the database file once it has stopped.
      await platform.stop();
      const file = createClient({ url: `file:${join(dataDir, 'gridlease.db')}`, intMode: 'bigint' });
      ledger = await checkLedger(file).catch(() => null);
      file.close();
      ledgerNote += ', from the database file after the platform stopped';
    }
    return report(http, runners, traffic, streams, ledger, settled, ledgerNote) ? 0 : 1;
  } catch (err) {
    if (platform) console.error(`platform output (start and latest lines):\n${platform.output().slice(-6000)}`);
    throw err;
  } finally {
    for (const timer of timers) clearInterval(timer);
    runners?.stop();
    streams?.stop();
    db?.close();
    await platform?.stop();
    http?.close();
    if (process.env.BENCH_SOAK_KEEP === '1') console.log(`platform data kept in ${dataDir}`);
    else rmSync(dataDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
