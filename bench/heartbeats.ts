// npm run bench:heartbeats — the heartbeat path end to end on the local platform:
//   POST /v1/runner/heartbeats (node JWT verified, per-isolate cache) → Collector Durable Object
//   (region × shard, in memory) → one batch per shard every HEARTBEAT_FLUSH_S through the local
//   queue transport → POST /internal/queue/heartbeats → libSQL (`heartbeat_batches` + roll-ups).
//
// Starts a fresh platform (temp data folder), registers BENCH_NODES (2000) nodes with 4 GPUs
// each across BENCH_REGIONS (us-east,eu-central), BENCH_REGISTER_CONCURRENCY (8) at a time, then:
//   1. the floor: GET /livez with autocannon, BENCH_CONNECTIONS (64) connections, BENCH_FLOOR_SECONDS (5) s
//      (saturated), and GET /livez driven exactly like the heartbeats below at BENCH_RATE for
//      BENCH_FLOOR_SECONDS (the latency any route gets at that rate on this machine);
//   2. every node's first heartbeat (cold: ES256 verification of a new token, the Collector's
//      database lookup of a node new to it), offered at BENCH_RATE;
//   3. BENCH_SECONDS (15) s at BENCH_RATE (1200) heartbeats/s, and, unless BENCH_RATE2=0, the
//      same at BENCH_RATE2 (default 2 × BENCH_RATE) to look for the knee.
// The load is open-loop: heartbeat k is due at k / rate s and goes to node k mod N, so each node
// heartbeats every N / rate s with its own token, boot_id, increasing seq and per-GPU metrics.
// At most BENCH_CONNECTIONS requests are in flight (keep-alive node:http agent); a heartbeat
// whose node still has one queued or in flight is skipped and counted (a runner waits for its
// reply). Latency is the HTTP round trip; "lag" is how late requests left against the schedule.
// HEARTBEAT_MIN_INTERVAL_S is set to half the shortest per-node interval, so a 429 means a bug.
//
// Queue messages are counted in libSQL: rows added to `heartbeat_batches` by a phase, read after
// waiting ≥ 2 flush intervals (and until the sum stops changing); their `heartbeats` sum must
// equal the heartbeats the API accepted in that phase.
//
// CPU per request (Linux /proc): the workerd process (Worker + Durable Objects, one JS thread,
// the bottleneck locally) and the launcher (local libSQL server, log forwarding).
// Request logging: on unless LOG_REQUESTS=false is in the environment (passed through).
// Other knobs passed through: COLLECTOR_SHARDS (platform default 4), BENCH_FLUSH_S (→ HEARTBEAT_FLUSH_S, 5).
// BENCH_URL is not supported: the bench needs a fresh database it can count in.
import autocannon from 'autocannon';
import { createClient, type Client } from '@libsql/client/web';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { findWorkerd, ticks } from './proc.ts';
import { freePort, launch, type Platform } from '../test/support/platform.ts';
import { h100Machine, num, percentile } from './support.ts';
import { generateNodeKey } from '../runner/src/identity.ts';

const NODES = num('BENCH_NODES', 2000);
const RATE = num('BENCH_RATE', 1200);
const RATE2 = num('BENCH_RATE2', 2 * RATE);
const SECONDS = num('BENCH_SECONDS', 15);
const CONNECTIONS = num('BENCH_CONNECTIONS', 64);
const FLOOR_SECONDS = num('BENCH_FLOOR_SECONDS', 5);
const REGISTER_CONCURRENCY = num('BENCH_REGISTER_CONCURRENCY', 8);
const FLUSH_S = num('BENCH_FLUSH_S', 5);
const GPUS_PER_NODE = 4;
const REGIONS = (process.env.BENCH_REGIONS ?? 'us-east,eu-central').split(',').filter(Boolean);
const LOG_REQUESTS = process.env.LOG_REQUESTS === 'false' ? 'false' : 'true';
const SHARDS = num('COLLECTOR_SHARDS', 4);
const REQUEST_TIMEOUT_MS = 10_000;

const GOAL_RATE = 1000;
const GOAL_P99_MS = 25;
const GOAL_MSGS_PER_1000 = 10;

const rates = [RATE, ...(RATE2 > 0 ? [RATE2] : [])];
/** Half the shortest per-node interval: a well-behaved node never trips it. */
const MIN_INTERVAL_S = Math.max(0.05, (0.5 * NODES) / Math.max(...rates));

interface SimNode {
  nodeId: string;
  token: string;
  region: string;
  bootId: string;
  seq: number;
  gpus: Array<{ util: number; mem: number; temp: number; power: number }>;
  busy: boolean;
}

interface Phase {
  name: string;
  offeredRate: number;
  scheduled: number;
  sent: number;
  skipped: number;
  elapsedS: number;
  statuses: Map<number, number>;
  accepted: number;
  ignored: number;
  errors: number;
  latencies: number[];
  lags: number[];
  batches?: number;
  batchHeartbeats?: number;
  /** CPU time of the workerd process (Worker + Durable Objects) during the phase. */
  workerdCpuMs: number;
  /** CPU time of the launcher (libSQL server, log forwarding) during the phase. */
  launcherCpuMs: number;
}

/** Process CPU times, Linux only (NaN elsewhere); `launcherPid` is set once the platform runs. */
let launcherPid = 0;
let workerdPid = 0;
function cpu(): { workerd: number; launcher: number } {
  return { workerd: workerdPid ? ticks(workerdPid) : NaN, launcher: launcherPid ? ticks(launcherPid) : NaN };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function json(res: Response): Promise<any> {
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
  return res.json();
}

const machine = (index: number) => h100Machine(`bench-${index}-${crypto.randomUUID().slice(0, 6)}`, GPUS_PER_NODE, { cpu_cores: 64, ram_mib: 512_000, disk_free_gib: 2_000 });

async function register(base: string, count: number): Promise<SimNode[]> {
  const password = 'Benchmark-Quartz-9042';
  const apiKeys: string[] = [];
  for (const region of REGIONS) {
    const account = await json(
      await fetch(`${base}/v1/accounts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: `bench.${region}.${Date.now()}@example.com`, password, roles: ['provider'] }),
      }),
    );
    apiKeys.push(account.api_key.key as string);
  }
  const nodes: SimNode[] = new Array(count);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const r = i % REGIONS.length;
      const { join_token } = await json(await fetch(`${base}/v1/nodes/join-tokens`, { method: 'POST', headers: { authorization: `Bearer ${apiKeys[r]}` } }));
      const reg = await json(
        await fetch(`${base}/v1/runner/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ join_token, region: REGIONS[r], machine: machine(i), public_key: generateNodeKey().publicKey }),
        }),
      );
      nodes[i] = {
        nodeId: reg.node_id,
        token: reg.node_token,
        region: REGIONS[r]!,
        bootId: crypto.randomUUID(),
        seq: 0,
        gpus: Array.from({ length: GPUS_PER_NODE }, () => ({ util: 40 + Math.random() * 60, mem: 20_000 + Math.random() * 60_000, temp: 55 + Math.random() * 20, power: 300 + Math.random() * 350 })),
        busy: false,
      };
    }
  };
  await Promise.all(Array.from({ length: REGISTER_CONCURRENCY }, worker));
  return nodes;
}

const walk = (v: number, step: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v + (Math.random() - 0.5) * 2 * step));

function heartbeatBody(n: SimNode): string {
  for (const g of n.gpus) {
    g.util = walk(g.util, 8, 0, 100);
    g.mem = walk(g.mem, 2_000, 0, 81_559);
    g.temp = walk(g.temp, 1.5, 30, 90);
    g.power = walk(g.power, 40, 60, 700);
  }
  return JSON.stringify({
    node_id: n.nodeId,
    boot_id: n.bootId,
    seq: n.seq++,
    sent_at: new Date().toISOString(),
    draining: false,
    gpus: n.gpus.map((g, index) => ({
      index,
      utilization_pct: Math.round(g.util * 10) / 10,
      memory_used_mib: Math.round(g.mem),
      temperature_c: Math.round(g.temp * 10) / 10,
      power_w: Math.round(g.power * 10) / 10,
    })),
    leases: [],
    acks: [],
  });
}

/** A heartbeat from `token` with `body`; without them, GET /livez (the floor at the same rate). */
function send(agent: Agent, url: URL, token?: string, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: body === undefined ? '/livez' : '/v1/runner/heartbeats',
        method: body === undefined ? 'GET' : 'POST',
        headers:
          body === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${token}` },
        timeout: REQUEST_TIMEOUT_MS,
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

/**
 * Open-loop: request k is due at t0 + k / rate; `total` requests. With nodes, request k is node
 * k mod N's next heartbeat; with none, it is GET /livez.
 */
async function drive(base: string, agent: Agent, nodes: SimNode[], name: string, rate: number, total: number): Promise<Phase> {
  const url = new URL(base);
  const phase: Phase = {
    name,
    offeredRate: rate,
    scheduled: total,
    sent: 0,
    skipped: 0,
    elapsedS: 0,
    statuses: new Map(),
    accepted: 0,
    ignored: 0,
    errors: 0,
    latencies: [],
    lags: [],
    workerdCpuMs: NaN,
    launcherCpuMs: NaN,
  };
  const queue: Array<{ node: SimNode | undefined; dueAt: number }> = [];
  const cpuBefore = cpu();
  let head = 0;
  let active = 0;
  let dispatched = 0;
  const t0 = performance.now() + 20;
  let lastDone = t0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));

  const pump = () => {
    while (active < CONNECTIONS && head < queue.length) {
      const { node, dueAt } = queue[head++]!;
      active++;
      const started = performance.now();
      phase.lags.push(started - dueAt);
      phase.sent++;
      (node ? send(agent, url, node.token, heartbeatBody(node)) : send(agent, url))
        .then(({ status, text }) => {
          phase.statuses.set(status, (phase.statuses.get(status) ?? 0) + 1);
          if (status === 200) phase.accepted++;
          if (status === 202) {
            if ((JSON.parse(text) as { accepted: boolean }).accepted) phase.accepted++;
            else phase.ignored++;
          }
        })
        .catch(() => {
          phase.errors++;
        })
        .finally(() => {
          phase.latencies.push(performance.now() - started);
          lastDone = performance.now();
          if (node) node.busy = false;
          active--;
          pump();
          if (dispatched >= total && active === 0 && head >= queue.length) finish();
        });
    }
    if (head > 4096 && head * 2 > queue.length) {
      queue.splice(0, head);
      head = 0;
    }
  };
  const tick = () => {
    const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
    for (; dispatched < due; dispatched++) {
      const node = nodes.length > 0 ? nodes[dispatched % nodes.length]! : undefined;
      if (node?.busy) {
        phase.skipped++;
        continue;
      }
      if (node) node.busy = true;
      queue.push({ node, dueAt: t0 + (dispatched * 1000) / rate });
    }
    pump();
    if (dispatched < total) setTimeout(tick, 2);
    else if (active === 0 && head >= queue.length) finish();
  };
  setTimeout(tick, 20);
  await finished;
  phase.elapsedS = (lastDone - t0) / 1000;
  const cpuAfter = cpu();
  phase.workerdCpuMs = cpuAfter.workerd - cpuBefore.workerd;
  phase.launcherCpuMs = cpuAfter.launcher - cpuBefore.launcher;
  phase.latencies.sort((a, b) => a - b);
  phase.lags.sort((a, b) => a - b);
  return phase;
}

async function batchTotals(db: Client): Promise<{ batches: number; heartbeats: number }> {
  const rs = await db.execute('SELECT count(*) AS n, coalesce(sum(heartbeats), 0) AS h FROM heartbeat_batches');
  return { batches: Number(rs.rows[0]!.n), heartbeats: Number(rs.rows[0]!.h) };
}

/** Waits ≥ 2 flush intervals, then until the batch totals stop changing for one interval. */
async function settledTotals(db: Client): Promise<{ batches: number; heartbeats: number }> {
  await sleep(2 * FLUSH_S * 1000 + 1000);
  let last = await batchTotals(db);
  for (let i = 0; i < 6; i++) {
    await sleep(FLUSH_S * 1000 + 500);
    const now = await batchTotals(db);
    if (now.batches === last.batches && now.heartbeats === last.heartbeats) return now;
    last = now;
  }
  return last;
}

async function measured(db: Client, run: () => Promise<Phase>): Promise<Phase> {
  const before = await batchTotals(db);
  const phase = await run();
  const after = await settledTotals(db);
  phase.batches = after.batches - before.batches;
  phase.batchHeartbeats = after.heartbeats - before.heartbeats;
  return phase;
}

async function floor(base: string) {
  await autocannon({ url: `${base}/livez`, connections: CONNECTIONS, duration: 1 });
  const r = await autocannon({ url: `${base}/livez`, connections: CONNECTIONS, duration: FLOOR_SECONDS });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.non2xx + r.errors + r.timeouts };
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'gridlease-bench-hb-'));
  const libsqlPort = await freePort();
  let platform: Platform | undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS, maxFreeSockets: CONNECTIONS });
  let db: Client | undefined;
  let notSent = 0;
  try {
    platform = await launch({
      dataDir,
      port: await freePort(),
      libsqlPort,
      env: {
        LOG_REQUESTS,
        COLLECTOR_SHARDS: String(SHARDS),
        HEARTBEAT_FLUSH_S: String(FLUSH_S),
        HEARTBEAT_MIN_INTERVAL_S: MIN_INTERVAL_S.toFixed(3),
        NODE_GRACE_S: '3600',
        AUTH_IP_RATE_LIMIT: '1000000/60',
        WRITE_IP_RATE_LIMIT: 'off',
        AUTH_RATE_LIMIT: '1000000/60',
      },
    });
    // Batches the Collector failed to hand to the queue (it retries them at the next flush).
    let tail = '';
    platform.child.stderr!.on('data', (d: Buffer) => {
      const text = tail + d.toString();
      notSent += text.split('heartbeat batch not sent').length - 1;
      tail = text.slice(-64);
    });
    const base = platform.url;
    launcherPid = platform.child.pid ?? 0;
    workerdPid = findWorkerd(launcherPid);
    db = createClient({ url: `http://127.0.0.1:${libsqlPort}` });

    const loadAtStart = loadavg()[0]!;
    const regStarted = performance.now();
    const nodes = await register(base, NODES);
    const regS = (performance.now() - regStarted) / 1000;
    console.error(`registered ${NODES} nodes in ${regS.toFixed(1)} s (${(NODES / regS).toFixed(0)}/s)`);

    const floorRow = await floor(base);
    console.error(`floor: ${floorRow.rps.toFixed(0)} req/s`);
    const floorPhase = await drive(base, agent, [], `GET /livez at ${RATE}/s (floor, same load shape)`, RATE, Math.round(RATE * FLOOR_SECONDS));
    const phases: Phase[] = [];
    phases.push(await measured(db, () => drive(base, agent, nodes, 'first heartbeat per node (cold: ES256 + Collector lookup)', RATE, NODES)));
    console.error('cold pass done');
    for (const rate of rates) {
      phases.push(await measured(db, () => drive(base, agent, nodes, `heartbeats at ${rate}/s for ${SECONDS} s`, rate, Math.round(rate * SECONDS))));
      console.error(`${rate}/s done`);
    }

    const collectors = REGIONS.length * SHARDS;
    const logging = LOG_REQUESTS === 'true' ? 'on' : 'off';
    console.log(
      `\n${NODES} nodes × ${GPUS_PER_NODE} GPUs in ${REGIONS.join(', ')}; ${collectors} Collectors (${REGIONS.length} regions × ${SHARDS} shards); ` +
        `flush every ${FLUSH_S} s; HEARTBEAT_MIN_INTERVAL_S=${MIN_INTERVAL_S.toFixed(3)}; ≤ ${CONNECTIONS} connections; request logging ${logging}; ` +
        `${cpus().length} CPUs shared by this load generator, the launcher and workerd; 1-min load average ${loadAtStart.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after\n`,
    );
    const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');
    console.log('| row | offered/s | sent | ok/s | p50 ms | p99 ms | lag p99 ms | CPU ms/req workerd / launcher | accepted / ignored | 429 | other / errors | skipped (node busy) | queue msgs | msgs / 1,000 hb | Σ batch hb − accepted |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    console.log(`| GET /livez (floor, autocannon ${CONNECTIONS} conns, closed loop) | — | — | ${floorRow.rps.toFixed(0)} | ${floorRow.p50} | ${floorRow.p99} | — | — | — | — | ${floorRow.errors} | — | — | — | — |`);
    const fOther = [...floorPhase.statuses].filter(([st]) => st !== 200).reduce((n, [, c]) => n + c, 0);
    console.log(
      `| ${floorPhase.name} | ${RATE} | ${floorPhase.sent} | ${(floorPhase.accepted / floorPhase.elapsedS).toFixed(0)} | ${ms(percentile(floorPhase.latencies, 50))} | ${ms(percentile(floorPhase.latencies, 99))} | ` +
        `${percentile(floorPhase.lags, 99).toFixed(1)} | ${ms(floorPhase.workerdCpuMs / floorPhase.sent)} / ${ms(floorPhase.launcherCpuMs / floorPhase.sent)} | — | — | ${fOther} / ${floorPhase.errors} | — | — | — | — |`,
    );
    for (const p of phases) {
      const r429 = p.statuses.get(429) ?? 0;
      const other = [...p.statuses].filter(([st]) => st !== 202 && st !== 429).reduce((n, [, c]) => n + c, 0);
      const perK = p.accepted > 0 ? ((p.batches! * 1000) / p.accepted).toFixed(2) : 'n/a';
      console.log(
        `| ${p.name} | ${p.offeredRate} | ${p.sent} | ${(p.accepted / p.elapsedS).toFixed(0)} | ${ms(percentile(p.latencies, 50))} | ${ms(percentile(p.latencies, 99))} | ${percentile(p.lags, 99).toFixed(1)} | ` +
          `${ms(p.workerdCpuMs / p.sent)} / ${ms(p.launcherCpuMs / p.sent)} | ${p.accepted} / ${p.ignored} | ${r429} | ${other} / ${p.errors} | ${p.skipped} | ${p.batches} | ${perK} | ${p.batchHeartbeats! - p.accepted} |`,
      );
    }
    console.log(
      '\nok/s: 200s (floor) or accepted heartbeats per second of the phase; lag: how late requests left against the open-loop schedule ' +
        '(all connections busy); skipped: due heartbeats whose node still had one queued or in flight (offered − sent); workerd CPU: the ' +
        'Worker and its Durable Objects (one process) per request sent, including flushes during the load; launcher: the local libSQL ' +
        'server and the log forwarding (Node).',
    );
    if (notSent > 0) console.log(`\n${notSent} batch publish failures logged (retried at the next flush)`);

    const target = phases[1]!;
    const rateNow = target.accepted / target.elapsedS;
    const p99 = percentile(target.latencies, 99);
    const perK = (target.batches! * 1000) / Math.max(1, target.accepted);
    const failed = target.errors + [...target.statuses].filter(([st]) => st !== 202).reduce((n, [, c]) => n + c, 0);
    console.log(`\nper Collector shard at ${RATE}/s offered: ${(rateNow / collectors).toFixed(0)} heartbeats/s (${collectors} shards)`);
    console.log(`\ngoals at ${RATE}/s offered (node token verification on, request logging ${logging}):`);
    console.log(`  ≥ ${GOAL_RATE} heartbeats/s accepted: ${rateNow.toFixed(0)} → ${rateNow >= GOAL_RATE ? 'met' : 'NOT met'}`);
    const floorP99 = percentile(floorPhase.latencies, 99);
    console.log(
      `  p99 ≤ ${GOAL_P99_MS} ms: ${p99.toFixed(2)} ms → ${p99 <= GOAL_P99_MS ? 'met' : 'NOT met'} ` +
        `(GET /livez at the same rate: p99 ${floorP99.toFixed(2)} ms${floorP99 > GOAL_P99_MS ? ', so this machine cannot show it' : ''})`,
    );
    console.log(`  ≤ ${GOAL_MSGS_PER_1000} queue messages per 1,000 heartbeats: ${perK.toFixed(2)} → ${perK <= GOAL_MSGS_PER_1000 ? 'met' : 'NOT met'}`);
    console.log(
      `  every heartbeat answered 202, none skipped, batches add up: ${failed} not 202, ${target.skipped} skipped, Σ batch − accepted = ${target.batchHeartbeats! - target.accepted} → ` +
        `${failed === 0 && target.skipped === 0 && target.batchHeartbeats === target.accepted ? 'yes' : 'NO'}`,
    );
  } finally {
    agent.destroy();
    db?.close();
    if (platform) await platform.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
