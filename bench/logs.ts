// npm run bench:logs — a workload's log lines from one runner to a following renter, on the local
// platform (`npm start`'s launcher in a fresh temp folder), next to the heartbeat path as a
// baseline measured in the same run.
//
// Setup over HTTP: a provider and a renter (dev faucet), BENCH_NODES (default 50) nodes with one
// H100 each; node 0 sells its GPU and the renter buys it with a workload; node 0 reports the lease
// started. Then three phases of BENCH_PHASE_S (default 20) s each, the platform otherwise idle:
//
//  1. heartbeats: every node heartbeats every 1.1 s (the runner's path: route → Collector),
//     the baseline: requests/s, latency p50/p99, workerd CPU per 1,000 heartbeats;
//  2. logs at BENCH_RATE (default 5,000) lines/s: a simulated runner (the wire contract the real
//     one speaks: POST /v1/runner/leases/{id}/logs, one batch in flight, a batch every 100 ms or
//     sooner when 1,000 lines wait, each line stamped with the time it was written) while the
//     renter follows GET /v1/leases/{id}/logs/stream; lag = when the follower parsed a line −
//     the line's `at` (one clock: same machine). Lines/s delivered to the follower, lag p50/p99/
//     max, workerd CPU per 1,000 lines, 429s, and whether every line arrived once, in order;
//  3. logs as fast as the platform takes them (the same sender with no rate), for the ceiling.
//
// Memory: workerd's RSS before and after each phase (Linux /proc). Lines are BENCH_LINE_BYTES
// (default 120) characters. Goal: ≥ 5,000 lines/s per lease with p99 lag ≤ 2 s.
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateNodeKey } from '../runner/src/identity.ts';
import { freePort, launch } from '../test/support/platform.ts';
import { findWorkerd, ticks } from './proc.ts';
import { h100Machine, num, percentile, rssMib } from './support.ts';

const NODES = num('BENCH_NODES', 50);
const PHASE_S = num('BENCH_PHASE_S', 20);
const RATE = num('BENCH_RATE', 5000);
const LINE_BYTES = num('BENCH_LINE_BYTES', 120);
const BATCH_MAX = 1000;
const FLUSH_MS = 100;

const agent = new Agent({ keepAlive: true, maxSockets: 32 });
let base: URL;

interface Reply {
  status: number;
  body: any;
  headers: Record<string, string | string[] | undefined>;
  ms: number;
}

function call(method: string, path: string, opts: { auth?: string; body?: unknown; key?: string } = {}): Promise<Reply> {
  const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, base),
      {
        method,
        agent,
        headers: {
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
          ...(opts.auth ? { authorization: `Bearer ${opts.auth}` } : {}),
          ...(opts.key ? { 'idempotency-key': opts.key } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, body, headers: res.headers, ms: performance.now() - started });
        });
      },
    );
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

async function ok(reply: Promise<Reply>, status: number, what: string): Promise<any> {
  const r = await reply;
  if (r.status !== status) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  return r.body;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface SimNode {
  nodeId: string;
  token: string;
  bootId: string;
  seq: number;
  leases: Map<string, string>;
}

function heartbeatBody(n: SimNode) {
  return {
    node_id: n.nodeId,
    boot_id: n.bootId,
    seq: n.seq++,
    sent_at: new Date().toISOString(),
    draining: false,
    gpus: [{ index: 0, utilization_pct: 91.5, memory_used_mib: 60_000, temperature_c: 65, power_w: 600 }],
    leases: [...n.leases].map(([lease_id, state]) => ({ lease_id, state })),
    acks: [],
  };
}

async function setup(progress: (s: string) => void) {
  const account = async (role: string) => {
    const body = { email: `bench.logs.${role}.${crypto.randomUUID().slice(0, 8)}@example.com`, password: 'Benchmark-Logs-7731', roles: [role] };
    return (await ok(call('POST', '/v1/accounts', { body }), 201, 'account')).api_key.key as string;
  };
  const providerKey = await account('provider');
  const renterKey = await account('renter');
  await ok(call('POST', '/v1/dev/faucet', { auth: renterKey, key: crypto.randomUUID(), body: { asset: 'USD', amount: '1000' } }), 201, 'faucet');
  const nodes: SimNode[] = [];
  for (let i = 0; i < NODES; i++) {
    const { join_token } = await ok(call('POST', '/v1/nodes/join-tokens', { auth: providerKey }), 201, 'join token');
    const reg = await ok(
      call('POST', '/v1/runner/register', { body: { join_token, region: 'us-east', machine: h100Machine(`bench-logs-${i}`, 1), public_key: generateNodeKey().publicKey } }),
      201,
      'register',
    );
    nodes.push({ nodeId: reg.node_id, token: reg.node_token, bootId: crypto.randomUUID(), seq: 0, leases: new Map() });
  }
  progress(`${NODES} nodes registered`);
  const node = nodes[0]!;
  for (let i = 0; i < 30; i++) {
    await ok(call('POST', '/v1/runner/heartbeats', { auth: node.token, body: heartbeatBody(node) }), 202, 'heartbeat');
    const list = await ok(call('GET', '/v1/nodes', { auth: providerKey }), 200, 'nodes');
    if (list.data.some((x: any) => x.id === node.nodeId && x.status === 'online')) break;
    await sleep(1000);
  }
  await ok(
    call('POST', '/v1/orders', { auth: providerKey, key: crypto.randomUUID(), body: { side: 'sell', region: 'us-east', gpu_model: 'h100-80gb', gpus: 1, price: '3.60', node_id: node.nodeId, max_duration_s: 86_400 } }),
    201,
    'sell',
  );
  const workload = { image: 'busybox', command: ['sh', '-c', 'yes'], env: {}, ports: [] };
  const placed = await ok(
    call('POST', '/v1/orders', { auth: renterKey, key: crypto.randomUUID(), body: { side: 'buy', region: 'us-east', gpu_model: 'h100-80gb', gpus: 1, price: '3.60', duration_s: 3600, pay_with: 'USD', workload } }),
    201,
    'buy',
  );
  const leaseId = placed.leases[0].id as string;
  await ok(call('POST', `/v1/runner/leases/${leaseId}/events`, { auth: node.token, body: { type: 'started', at: new Date().toISOString() } }), 202, 'started');
  node.leases.set(leaseId, 'running');
  progress(`lease ${leaseId} running`);
  return { nodes, renterKey, leaseId };
}

interface Measure {
  name: string;
  count: number;
  seconds: number;
  cpuMs: number;
  latencies: number[];
  rssBefore: number;
  rssAfter: number;
  limited: number;
  complete?: string;
}

async function heartbeatPhase(nodes: SimNode[], workerd: number): Promise<Measure> {
  const rssBefore = rssMib(workerd);
  const cpu0 = ticks(workerd);
  const latencies: number[] = [];
  let count = 0;
  let limited = 0;
  const end = Date.now() + PHASE_S * 1000;
  const t0 = performance.now();
  await Promise.all(
    nodes.map(async (n, i) => {
      await sleep((i / nodes.length) * 1000);
      while (Date.now() < end) {
        // Just over the minimum interval (HEARTBEAT_MIN_INTERVAL_S = 1), which refuses sooner ones.
        const next = Date.now() + 1100;
        const r = await call('POST', '/v1/runner/heartbeats', { auth: n.token, body: heartbeatBody(n) });
        if (r.status === 202) {
          count++;
          latencies.push(r.ms);
        } else limited++;
        await sleep(Math.max(0, next - Date.now()));
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return { name: `heartbeats (${NODES} nodes, each every 1.1 s)`, count, seconds, cpuMs: ticks(workerd) - cpu0, latencies: latencies.sort((a, b) => a - b), rssBefore, rssAfter: rssMib(workerd), limited };
}

/** The renter's follower: parses SSE and records each line's lag; resumes from its last id if cut. */
function follow(leaseId: string, renterKey: string, from: number, seen: { seqs: number[]; lags: number[]; reconnects: number; lastAt: number }, stop: { done: boolean }) {
  return (async () => {
    let last = from - 1;
    while (!stop.done) {
      const res = await fetch(new URL(`/v1/leases/${leaseId}/logs/stream?since=${from}`, base), {
        headers: { authorization: `Bearer ${renterKey}`, ...(last >= 0 ? { 'last-event-id': String(last) } : {}) },
      }).catch(() => null);
      if (!res || res.status !== 200 || !res.body) {
        await sleep(200);
        continue;
      }
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buf = '';
      try {
        while (!stop.done) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += decoder.decode(value, { stream: true });
          let at: number;
          while ((at = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, at);
            buf = buf.slice(at + 2);
            const data = block.split('\n').find((l) => l.startsWith('data: '));
            if (!block.includes('event: log') || !data) continue;
            const line = JSON.parse(data.slice(6)) as { seq: number; at: string };
            seen.lastAt = Date.now();
            seen.lags.push(seen.lastAt - Date.parse(line.at));
            seen.seqs.push(line.seq);
            last = line.seq;
          }
        }
      } catch {
        // cut: reconnect from the last id
      }
      await reader.cancel().catch(() => undefined);
      if (!stop.done) seen.reconnects++;
    }
  })();
}

async function logPhase(name: string, rate: number | null, ctx: { leaseId: string; node: SimNode; renterKey: string; nextSeq: number }, workerd: number): Promise<Measure> {
  const seen = { seqs: [] as number[], lags: [] as number[], reconnects: 0, lastAt: 0 };
  const stop = { done: false };
  const from = ctx.nextSeq;
  // The follower starts at the current end of the log.
  const following = follow(ctx.leaseId, ctx.renterKey, from, seen, stop);
  await sleep(500);
  const rssBefore = rssMib(workerd);
  const cpu0 = ticks(workerd);
  const text = 'x'.repeat(LINE_BYTES);
  const pending: Array<{ seq: number; at: string; stream: 'stdout'; text: string }> = [];
  let produced = 0;
  let limited = 0;
  const t0 = performance.now();
  const wall0 = Date.now();
  const end = t0 + PHASE_S * 1000;
  const produce = () => {
    // Lines written by the workload up to now, at `rate` (or to keep a full batch waiting).
    const due = rate === null ? produced + Math.max(0, BATCH_MAX * 2 - pending.length) : Math.floor(((performance.now() - t0) / 1000) * rate);
    const at = new Date().toISOString();
    while (produced < due) pending.push({ seq: ctx.nextSeq + produced++, at, stream: 'stdout', text });
  };
  let sent = 0;
  /** One batch as the runner sends it: forget what the platform has; wait out a 429. */
  const ship = async () => {
    const r = await call('POST', `/v1/runner/leases/${ctx.leaseId}/logs`, { auth: ctx.node.token, body: { lines: pending.slice(0, BATCH_MAX) } });
    if (r.status === 200) {
      const next = r.body.next_seq as number;
      while (pending.length > 0 && pending[0]!.seq < next) pending.shift();
      sent = next - from;
    } else if (r.status === 429) {
      limited++;
      await sleep(Number(r.headers['retry-after'] ?? 1) * 1000);
    } else throw new Error(`logs: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
  };
  while (performance.now() < end) {
    produce();
    if (pending.length === 0 || (pending.length < BATCH_MAX && rate !== null)) {
      await sleep(FLUSH_MS);
      produce();
    }
    if (pending.length > 0) await ship();
  }
  // Drain what is still pending (without producing more), then let the follower catch up.
  while (pending.length > 0) await ship();
  const sentAt = performance.now();
  const caughtUpBy = Date.now() + 30_000;
  while (seen.seqs.length < sent && Date.now() < caughtUpBy) await sleep(50);
  const drainedS = (performance.now() - sentAt) / 1000;
  const cpuMs = ticks(workerd) - cpu0;
  stop.done = true;
  await Promise.race([following, sleep(2000)]);
  // From the first line written to the last one the follower received.
  const seconds = (seen.lastAt - wall0) / 1000;
  ctx.nextSeq = from + sent;
  const seqs = seen.seqs.slice();
  const inOrder = seqs.every((s, i) => s === from + i);
  return {
    name,
    count: seqs.length,
    seconds,
    cpuMs,
    latencies: seen.lags.slice(0, seqs.length).sort((a, b) => a - b),
    rssBefore,
    rssAfter: rssMib(workerd),
    limited,
    complete: `${seqs.length === sent && inOrder ? 'yes' : 'NO'} (${sent} sent, ${seqs.length} received${inOrder ? ', in order' : ', NOT in order'}, ${seen.reconnects} reconnects; the follower had them all ${drainedS.toFixed(2)} s after the last batch was stored)`,
  };
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'gridlease-bench-logs-'));
  const progress = (s: string) => console.error(`${new Date().toISOString().slice(11, 19)} ${s}`);
  const platform = await launch({
    dataDir,
    port: await freePort(),
    libsqlPort: await freePort(),
    env: { LOG_REQUESTS: 'false', AUTH_IP_RATE_LIMIT: '1000000/60', AUTH_RATE_LIMIT: '1000000/60', ORDER_RATE_LIMIT: 'off', WRITE_RATE_LIMIT: 'off', WRITE_IP_RATE_LIMIT: 'off', HEARTBEAT_MIN_INTERVAL_S: '1', HEARTBEAT_INTERVAL_S: '1' },
  });
  base = new URL(platform.url);
  const workerd = findWorkerd(platform.child.pid ?? 0);
  try {
    const load0 = loadavg();
    const { nodes, renterKey, leaseId } = await setup(progress);
    const rows: Measure[] = [];
    progress('phase 1: heartbeats');
    rows.push(await heartbeatPhase(nodes, workerd));
    const ctx = { leaseId, node: nodes[0]!, renterKey, nextSeq: 0 };
    progress(`phase 2: logs at ${RATE} lines/s`);
    rows.push(await logPhase(`logs at ${RATE.toLocaleString('en-US')} lines/s`, RATE, ctx, workerd));
    progress('phase 3: logs as fast as taken');
    rows.push(await logPhase('logs as fast as taken', null, ctx, workerd));

    const f = (n: number, d = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }) : 'n/a');
    console.log(`\nbench:logs — ${PHASE_S} s per phase, ${LINE_BYTES}-character lines, one lease; ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, Node ${process.versions.node}; load ${load0.map((x) => x.toFixed(2)).join(' / ')} before.\n`);
    console.log('| phase | delivered | per s | latency or lag p50 ms | p99 ms | max ms | workerd CPU ms per 1,000 | 429s | workerd RSS MiB before → after | every line once, in order |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const r of rows) {
      const l = r.latencies;
      console.log(
        `| ${r.name} | ${f(r.count)} | ${f(r.count / r.seconds)} | ${f(percentile(l, 50), 1)} | ${f(percentile(l, 99), 1)} | ${f(l.at(-1) ?? NaN, 1)} | ${f((r.cpuMs / Math.max(1, r.count)) * 1000, 1)} | ${r.limited} | ${f(r.rssBefore)} → ${f(r.rssAfter)} | ${r.complete ?? 'n/a (requests)'} |`,
      );
    }
    const paced = rows[1]!;
    const p99 = percentile(paced.latencies, 99);
    const whole = paced.complete?.startsWith('yes') ?? false;
    console.log(
      `\nGoal: ≥ 5,000 lines/s per lease with p99 lag ≤ 2 s → ${RATE >= 5000 && whole && p99 <= 2000 ? 'met' : 'NOT met'} (written at ${f(RATE)} lines/s for ${PHASE_S} s: every line delivered once and in order: ${whole ? 'yes' : 'NO'}; p99 lag ${f(p99)} ms).`,
    );
    console.log("'per s' = lines the follower received ÷ the time from the first line written to the last one received (the end's drain included).");
    console.log('Heartbeat latency is the request round trip; log lag is from the line being written to the follower parsing it. Over the ceiling, the');
    console.log('follower falls more than its 1 MiB queue behind and is disconnected (reconnects); lines older than the 8 MiB kept are dropped by design.');
  } finally {
    await platform.stop();
    rmSync(dataDir, { recursive: true, force: true });
    agent.destroy();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
