// npm run demo — a market you can watch. Against a running local platform (`npm start`;
// GRIDLEASE_API, default http://127.0.0.1:8787) it signs up a renter (faucet money) and a provider
// per book, joins simulated runners over HTTP (fake GPUs of three models in two regions: they
// heartbeat, acknowledge commands, report `started` for each lease and list it running until its
// paid end), then trades: asks and bids around a drifting mid price per book, some crossing, so
// trades happen every few seconds; old orders are cancelled. Leases last 60–300 s, so GPUs come
// back. One more node claims eight H100s with one card's work: its capacity challenge fails, visibly.
// As the local operator it mints the rewards pool's genesis allocation, so supply-rewards epochs
// close, and prints each closed epoch's top line (`REWARDS_EPOCH_S=120 npm start` for two-minute
// epochs; the Worker's settings are the launcher's to set, not the demo's).
// Ctrl-C stops every timer and exits 0; orders left resting expire within two minutes.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@libsql/client/node';
import type { Challenge } from '../src/contracts/inspections.ts';
import { generateNodeKey, type NodeKey } from '../runner/src/identity.ts';
import { answerChallenge as simAnswer } from './sim-challenge.ts';
import { createCpuSolver } from '../runner/src/inspections/cpu-solver.ts';
import { multiply } from '../src/inspections/matrices.ts';

const API = (process.env.GRIDLEASE_API ?? 'http://127.0.0.1:8787').replace(/\/$/, '');
const REGIONS = ['us-east', 'eu-west'] as const;
const NODES_PER_BOOK = 2;
const GPUS_PER_NODE = 4;
const TICK_MS = 600;

interface Model {
  id: string;
  smiName: string;
  memoryMib: number;
  /** Starting mid price, in cents per GPU-hour. */
  midCents: number;
}

const MODELS: readonly Model[] = [
  { id: 'h100-80gb', smiName: 'NVIDIA H100 80GB HBM3', memoryMib: 81_559, midCents: 245 },
  { id: 'a100-80gb', smiName: 'NVIDIA A100-SXM4-80GB', memoryMib: 81_920, midCents: 160 },
  { id: 'rtx-4090-24gb', smiName: 'NVIDIA GeForce RTX 4090', memoryMib: 24_564, midCents: 45 },
];

interface SimLease {
  id: string;
  gpus: number[];
  endsAt: number;
  /** The next log line's seq (the runner numbers each lease's lines from 0). */
  logSeq: number;
}

/** Host ports handed to simulated workloads, one per lease, as the runner's --port-range does. */
let nextHostPort = 41_000;
const DEMO_PORT = 8888;

interface SimNode {
  id: string;
  token: string;
  region: string;
  model: Model;
  bootId: string;
  seq: number;
  acks: string[];
  leases: Map<string, SimLease>;
  timer: NodeJS.Timeout | null;
  online: boolean;
  key: NodeKey;
  gpuUuids: string[];
  /** Claims more GPUs than it has: one card answers every capacity challenge for all of them. */
  cheat: boolean;
}

interface Book {
  region: string;
  model: Model;
  mid: number;
  nodes: SimNode[];
  /** The book's own provider account: one per book, so that rewards go to several owners. */
  providerKey: string;
  asks: string[];
  bids: string[];
}

class ApiFailure extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(`${status} ${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

let stopping = false;
const timers = new Set<NodeJS.Timeout>();
const children = new Set<ChildProcess>();
const RUNNER = join(import.meta.dirname, '..', 'runner', 'dist', 'gridlease-runner.js');
const INSPECTORS = 2;
const work = mkdtempSync(join(tmpdir(), 'gridlease-demo-'));

async function api(path: string, init: { method?: string; body?: unknown; auth?: string; idempotent?: boolean } = {}): Promise<any> {
  const headers: Record<string, string> = {};
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (init.auth) headers.authorization = `Bearer ${init.auth}`;
  if (init.idempotent) headers['idempotency-key'] = crypto.randomUUID();
  const res = await fetch(API + path, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  const body = text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text;
  if (!res.ok) throw new ApiFailure(res.status, body?.error?.code ?? 'unknown', body?.error?.message ?? text);
  return body;
}

const cents = (c: number) => `${Math.floor(c / 100)}.${String(c % 100).padStart(2, '0')}`;
const randInt = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString();

async function signUp(role: 'provider' | 'renter'): Promise<string> {
  const email = `demo.${role}.${crypto.randomUUID().slice(0, 8)}@example.com`;
  const created = await api('/v1/accounts', { body: { email, password: 'Demo-Market-Lantern-8812', roles: [role] } });
  return created.api_key.key as string;
}

async function joinNode(providerKey: string, region: string, model: Model, n: number | string, gpus = GPUS_PER_NODE, cheat = false): Promise<SimNode> {
  const { join_token } = await api('/v1/nodes/join-tokens', { method: 'POST', auth: providerKey });
  const machine = {
    hostname: `demo-${region}-${model.id}-${n}`,
    os: 'linux',
    arch: 'x64',
    cpu_cores: 64,
    ram_mib: 512_000,
    disk_free_gib: 2_000,
    runner_version: 'demo',
    gpus: Array.from({ length: gpus }, (_, i) => ({
      index: i,
      uuid: `GPU-${crypto.randomUUID()}`,
      name: model.smiName,
      memory_mib: model.memoryMib,
      driver: '550.54.15',
      model: model.id,
    })),
  };
  const key = generateNodeKey();
  const reg = await api('/v1/runner/register', { body: { join_token, region, machine, public_key: key.publicKey } });
  const gpuUuids = machine.gpus.map((g) => g.uuid);
  // As `gridlease-runner start --public-host 127.0.0.1`: renters see endpoints on this machine.
  await api('/v1/runner/public-host', { method: 'PUT', auth: reg.node_token, body: { public_host: '127.0.0.1' } });
  return { id: reg.node_id, token: reg.node_token, region, model, bootId: crypto.randomUUID(), seq: 0, acks: [], leases: new Map(), timer: null, online: false, key, gpuUuids, cheat };
}

/** Answers a platform challenge as gridlease-runner does (local/sim-challenge.ts), and says how it went. */
async function answerChallenge(node: SimNode, challenge: Challenge): Promise<void> {
  try {
    const post = (path: string, body: unknown, token: string) => api(path, { body, auth: token });
    const outcome = await simAnswer({ id: node.id, token: node.token, privateKey: node.key.privateKey, gpuUuids: node.gpuUuids }, challenge, post, node.cheat ? oneCardForAll() : undefined);
    const who = node.cheat ? `node ${node.id} (claims ${node.gpuUuids.length} × ${node.model.id}, has one)` : `node ${node.id}`;
    const why = outcome.reasons.length > 0 ? `: ${outcome.reasons[0]}${outcome.reasons.length > 1 ? ` (+${outcome.reasons.length - 1} more)` : ''}` : '';
    console.log(`  ${who}: ${challenge.kind} challenge ${outcome.outcome.toUpperCase()}${why}`);
    if (node.cheat && outcome.outcome === 'failed') void pointAtReport(node);
  } catch (err) {
    if (!stopping) console.error(`  node ${node.id}: ${challenge.kind} challenge not answered: ${String(err)}`);
  }
}

/** Once the inspectors have decided the cheater's failed challenge, where its public report is and how to check it. */
async function pointAtReport(node: SimNode): Promise<void> {
  for (let tries = 0; tries < 80 && !stopping; tries++) {
    await sleep(3_000);
    const list = await api(`/v1/nodes/${node.id}/inspections`).catch(() => ({ data: [] }));
    const failed = (list.data as Array<{ id: string; kind: string; outcome: string }>).find((i) => i.kind === 'capacity' && i.outcome === 'fail');
    if (!failed) continue;
    console.log(`  node ${node.id} inspected: capacity FAILED; public report ${API}/v1/inspections/${failed.id}`);
    console.log(`    check it yourself: node runner/dist/gridlease-runner.js verify-report ${failed.id} --api ${API}`);
    return;
  }
}

/**
 * The cheater's solver: it computes the product of GPU 0 and sends it for every GPU it claims, as
 * a machine with one card listing eight would. Each GPU's matrices come from its own seed, so the
 * openings of every other GPU are wrong under valid paths, and the challenge fails.
 */
function oneCardForAll() {
  let first: Int32Array | null = null;
  return createCpuSolver({ product: (a, b, n) => (first ??= multiply(a, b, n)) });
}

/** What a runner does with a command; it is acknowledged in the next heartbeat either way. */
async function execute(node: SimNode, cmd: any): Promise<void> {
  if (cmd.type === 'start_lease') {
    const durationMs = (cmd.duration_s ?? 60) * 1000;
    const lease: SimLease = { id: cmd.lease_id, gpus: cmd.gpu_indices, endsAt: Math.min(Date.parse(cmd.ends_at), Date.now() + durationMs), logSeq: 0 };
    node.leases.set(cmd.lease_id, lease);
    const ports = Object.fromEntries((cmd.workload?.ports ?? []).map((p: number) => [String(p), nextHostPort++]));
    await leaseEvent(node, cmd.lease_id, { type: 'started', at: new Date().toISOString(), ports });
    await workloadSays(node, lease, [`loading weights onto ${cmd.gpu_indices.length} GPU(s)`, `serving on :${DEMO_PORT}`]);
  } else if (cmd.type === 'stop_lease') {
    node.leases.delete(cmd.lease_id);
  } else if (cmd.type === 'extend_lease') {
    const lease = node.leases.get(cmd.lease_id);
    if (lease) lease.endsAt = Date.parse(cmd.ends_at);
  } else if (cmd.type === 'challenge') {
    // At once, beside the heartbeats, as the runner does.
    void answerChallenge(node, cmd.challenge);
  }
  node.acks.push(cmd.id);
}

/** Ships a simulated workload's output lines, as the runner ships a real workload's stdout. */
async function workloadSays(node: SimNode, lease: SimLease, texts: string[]): Promise<void> {
  const at = new Date().toISOString();
  const lines = texts.map((text) => ({ seq: lease.logSeq++, at, stream: 'stdout', text }));
  try {
    await api(`/v1/runner/leases/${lease.id}/logs`, { body: { lines }, auth: node.token });
  } catch (err) {
    console.error(`  node ${node.id}: lease ${lease.id} logs failed: ${String(err)}`);
  }
}

async function leaseEvent(node: SimNode, leaseId: string, event: object): Promise<void> {
  try {
    await api(`/v1/runner/leases/${leaseId}/events`, { body: event, auth: node.token });
  } catch (err) {
    console.error(`  node ${node.id}: lease ${leaseId} event failed: ${String(err)}`);
  }
}

async function heartbeat(node: SimNode): Promise<number> {
  const now = Date.now();
  for (const lease of [...node.leases.values()]) {
    if (lease.endsAt > now) continue;
    node.leases.delete(lease.id);
    await leaseEvent(node, lease.id, { type: 'exited', at: new Date(now).toISOString(), exit_code: 0 });
  }
  for (const lease of node.leases.values()) await workloadSays(node, lease, [`step ${lease.logSeq}: ${randInt(900, 1400)} tokens/s, loss ${(2 + Math.random()).toFixed(3)}`]);
  const busy = new Set([...node.leases.values()].flatMap((l) => l.gpus));
  const acks = node.acks.splice(0, 100);
  const reply = await api('/v1/runner/heartbeats', {
    auth: node.token,
    body: {
      node_id: node.id,
      boot_id: node.bootId,
      seq: node.seq++,
      sent_at: new Date().toISOString(),
      draining: false,
      gpus: Array.from({ length: node.gpuUuids.length }, (_, i) => ({
        index: i,
        utilization_pct: busy.has(i) ? randInt(85, 100) : randInt(0, 3),
        memory_used_mib: busy.has(i) ? randInt(20_000, node.model.memoryMib) : 0,
        temperature_c: busy.has(i) ? randInt(65, 80) : randInt(35, 45),
        power_w: busy.has(i) ? randInt(250, 650) : randInt(50, 80),
      })),
      leases: [...node.leases.values()].map((l) => ({ lease_id: l.id, state: 'running' })),
      acks,
    },
  });
  for (const cmd of reply.commands) await execute(node, cmd);
  return reply.next_interval_s;
}

function runNode(node: SimNode): void {
  const beat = async () => {
    let next = 3;
    try {
      next = await heartbeat(node);
    } catch (err) {
      if (!stopping) console.error(`  node ${node.id}: heartbeat failed: ${String(err)}`);
    }
    if (stopping) return;
    node.timer = setTimeout(beat, next * 1000);
    timers.add(node.timer);
  };
  void beat();
}

/**
 * Two inspectors, each the real `gridlease-runner inspect` with its own account, bond and key,
 * and a funded rewards pool: every challenge the nodes answer is re-checked by both, and their
 * verdict lines are printed. The pool is minted by an operator whose role is set in the local
 * libSQL database (LIBSQL_URL, default the launcher's http://127.0.0.1:8081), as only a local
 * platform allows; elsewhere the demo runs without inspectors.
 */
async function startInspectors(): Promise<void> {
  const operatorKey = await signUp('renter');
  const me = await api('/v1/accounts/me', { auth: operatorKey });
  const db = createClient({ url: process.env.LIBSQL_URL ?? `http://127.0.0.1:${process.env.LIBSQL_PORT ?? 8081}`, authToken: process.env.LIBSQL_AUTH_TOKEN || undefined });
  try {
    await db.execute({ sql: `UPDATE accounts SET roles = '["renter","admin"]' WHERE id = ?`, args: [me.account.id] });
  } catch (err) {
    console.log(`demo: no inspectors (the platform's database is not reachable here: ${String(err)})`);
    return;
  } finally {
    db.close();
  }
  await api('/v1/admin/rewards-pool/mint', { auth: operatorKey, idempotent: true, body: { amount: '1000', reason: 'demo rewards pool' } });
  // The genesis allocation (once per platform; 200 with the same transaction after): supply-rewards epochs close only after it.
  const genesis = await api('/v1/admin/rewards/genesis', { method: 'POST', auth: operatorKey });
  console.log(`demo: rewards pool genesis allocation ${genesis.amount} GRID (transaction ${genesis.transaction_id})`);
  const { min_bond } = await api('/v1/inspectors/me', { auth: operatorKey });
  for (let i = 1; i <= INSPECTORS; i++) {
    const key = await signUp('renter');
    await api('/v1/dev/faucet', { auth: key, idempotent: true, body: { asset: 'GRID', amount: String(Number(min_bond) + 100) } });
    await api('/v1/inspectors/bond', { auth: key, idempotent: true, body: { amount: min_bond } });
    const env = { ...process.env, GRIDLEASE_INSPECTOR_CONFIG: join(work, `inspector-${i}`, 'inspector.json') };
    const login = spawnSync(process.execPath, [RUNNER, 'inspect', 'login', '--api', API, '--token', key], { env, encoding: 'utf8' });
    if (login.status !== 0) throw new Error(`inspector ${i} could not log in: ${login.stderr.trim() || login.error}`);
    const child = spawn(process.execPath, [RUNNER, 'inspect', 'run', '--interval', '2'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    children.add(child);
    let rest = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop() ?? '';
      // The verdict lines (and anything that went wrong), without the timestamps.
      for (const line of lines) if (/ (warn|error) |\): (pass|fail)/.test(line)) console.log(`  inspector ${i}: ${line.replace(/^\S+ (info )?/, '')}`);
    });
  }
  console.log(`demo: ${INSPECTORS} inspectors (gridlease-runner inspect) bonded ${min_bond} GRID each; the rewards pool holds 1000 GRID`);
}

const ppmPercent = (ppm: number) => `${Math.floor(ppm / 10_000)}${ppm % 10_000 ? `.${String(ppm % 10_000).padStart(4, '0').replace(/0+$/, '')}` : ''}%`;

/**
 * Prints the supply-rewards schedule, then each epoch's top line as it closes (GET
 * /v1/rewards/schedule every 10 s; GET /v1/rewards/epochs/{n} for each one newly closed).
 */
async function watchRewards(): Promise<void> {
  let schedule: any;
  try {
    schedule = await api('/v1/rewards/schedule');
  } catch (err) {
    console.log(`demo: no rewards schedule (${String(err)})`);
    return;
  }
  const ends = schedule.current_epoch_end ?? schedule.start;
  console.log(
    `demo: rewards epochs of ${schedule.epoch_s} s, ${schedule.current_emission} GRID each now; epoch ${schedule.current_epoch ?? '0'} ${schedule.current_epoch === null ? 'starts' : 'ends'} ${ends}, ` +
      `its report ${API}/v1/rewards/epochs/${schedule.current_epoch ?? 0} about 2 minutes later` +
      (schedule.epoch_s > 300 ? ' (`REWARDS_EPOCH_S=120 npm start` for two-minute epochs)' : ''),
  );
  let next = schedule.closed_epochs as number;
  const poll = async () => {
    try {
      const { closed_epochs: closed } = await api('/v1/rewards/schedule');
      for (; next < closed && !stopping; next++) {
        const e = await api(`/v1/rewards/epochs/${next}?limit=1000`);
        const paidLines: Array<{ owner_id: string }> = [];
        for (let page = e; ; ) {
          paidLines.push(...page.lines.filter((l: { amount: string }) => Number(l.amount) > 0));
          if (!page.next_cursor) break;
          page = await api(`/v1/rewards/epochs/${next}?limit=1000&cursor=${encodeURIComponent(page.next_cursor)}`);
        }
        const nodes = paidLines.length;
        const owners = new Set(paidLines.map((l) => l.owner_id)).size;
        console.log(
          `${new Date().toISOString().slice(11, 19)}  rewards epoch ${e.epoch} closed: emission ${e.emission} GRID, paid ${e.paid} GRID to ${nodes} node${nodes === 1 ? '' : 's'} of ${owners} owner${owners === 1 ? '' : 's'} ` +
            `(utilisation ${ppmPercent(e.utilisation_ppm)}, taper ${ppmPercent(e.taper_ppm)}, each owner at most ${ppmPercent(schedule.owner_cap_ppm)} of the providers' ${e.providers_emission}), ` +
            `inspectors ${e.inspector_pay}, back to the pool ${e.returned}; ${API}/v1/rewards/epochs/${e.epoch}`,
        );
      }
    } catch (err) {
      if (!stopping) console.error(`  rewards: ${String(err)}`);
    }
    if (stopping) return;
    const t = setTimeout(poll, 10_000);
    timers.add(t);
  };
  void poll();
}

/** One step of the trading loop: the mid drifts, and the provider or renter acts on one book. */
async function trade(book: Book, renterKey: string): Promise<void> {
  const { providerKey } = book;
  const base = book.model.midCents;
  book.mid = Math.min(Math.round(base * 1.4), Math.max(Math.round(base * 0.6), book.mid + randInt(-2, 2)));
  const label = `${book.region}:${book.model.id}`;
  if (book.asks.length > 4) await cancel(book.asks.shift()!, providerKey);
  if (book.bids.length > 3) await cancel(book.bids.shift()!, renterKey);

  if (Math.random() < 0.5) {
    const node = pick(book.nodes);
    try {
      const placed = await api('/v1/orders', {
        auth: providerKey,
        idempotent: true,
        body: { side: 'sell', region: book.region, gpu_model: book.model.id, gpus: randInt(1, 2), price: cents(book.mid + randInt(1, 6)), node_id: node.id, max_duration_s: 3600, expires_at: inSeconds(120) },
      });
      if (placed.order.status === 'open') book.asks.push(placed.order.id);
      report(label, placed);
    } catch (err) {
      // A node whose GPUs are all offered or leased, or not yet seen online: try another time.
      if (!(err instanceof ApiFailure && err.status === 409)) throw err;
    }
  } else {
    const placed = await api('/v1/orders', {
      auth: renterKey,
      idempotent: true,
      body: {
        side: 'buy',
        region: book.region,
        gpu_model: book.model.id,
        gpus: 1,
        price: cents(book.mid + randInt(-6, 5)),
        duration_s: randInt(1, 5) * 60,
        pay_with: 'USD',
        workload: { image: 'ghcr.io/gridlease/demo:latest', command: ['serve', '--port', String(DEMO_PORT)], env: {}, ports: [DEMO_PORT] },
        expires_at: inSeconds(45),
      },
    });
    if (placed.order.status === 'open') book.bids.push(placed.order.id);
    report(label, placed);
    for (const lease of placed.leases ?? []) setTimeout(() => void peek(lease.id, renterKey), 8_000);
  }
}

/** What the renter sees of a lease a few seconds after the trade: its endpoints and last log lines. */
async function peek(leaseId: string, renterKey: string): Promise<void> {
  try {
    const { lease } = await api(`/v1/leases/${leaseId}`, { auth: renterKey });
    const where = lease.endpoints_state === 'ready' ? lease.endpoints.map((e: { port: number; url: string }) => `:${e.port} → ${e.url}`).join(', ') : lease.endpoints_state;
    console.log(`${new Date().toISOString().slice(11, 19)}  lease  ${leaseId} ${lease.state}, endpoints: ${where}`);
    const logs = await api(`/v1/leases/${leaseId}/logs?tail=2`, { auth: renterKey });
    for (const l of logs.data) console.log(`          ${leaseId} | ${l.text}`);
  } catch (err) {
    console.error(`  lease ${leaseId}: ${String(err)}`);
  }
}

function report(label: string, placed: any): void {
  for (const lease of placed.leases ?? []) {
    console.log(`${new Date().toISOString().slice(11, 19)}  trade  ${label.padEnd(24)} ${lease.gpus} GPU × ${lease.duration_s} s at ${placed.order.price}`);
  }
}

async function cancel(orderId: string, key: string): Promise<void> {
  try {
    await api(`/v1/orders/${orderId}`, { method: 'DELETE', auth: key });
  } catch (err) {
    // Filled or expired meanwhile.
    if (!(err instanceof ApiFailure && (err.status === 409 || err.status === 404))) throw err;
  }
}

async function main(): Promise<void> {
  try {
    await api('/livez');
  } catch (err) {
    console.error(`No platform at ${API} (${String(err)}). Start one with \`npm start\`, or set GRIDLEASE_API.`);
    process.exit(1);
  }
  const renterKey = await signUp('renter');
  await api('/v1/dev/faucet', { auth: renterKey, idempotent: true, body: { asset: 'USD', amount: '100000.00' } });

  // Inspectors first, so the challenges sent at join are inspected.
  await startInspectors();

  const books: Book[] = [];
  for (const region of REGIONS) {
    for (const model of MODELS) {
      const nodes: SimNode[] = [];
      const providerKey = await signUp('provider');
      for (let n = 0; n < NODES_PER_BOOK; n++) nodes.push(await joinNode(providerKey, region, model, n));
      books.push({ region, model, mid: model.midCents, nodes, providerKey, asks: [], bids: [] });
    }
  }
  // A machine with one H100 whose (fake) nvidia-smi lists eight: it fails its capacity challenge
  // visibly, loses any chance of `verified`, and its sells are refused. It does not trade.
  const cheater = await joinNode(await signUp('provider'), REGIONS[0], MODELS[0]!, 'fake-smi', 8, true);
  const nodes = [...books.flatMap((b) => b.nodes), cheater];
  console.log(`demo: ${nodes.length} simulated nodes (${MODELS.map((m) => m.id).join(', ')}) in ${REGIONS.join(', ')}; trading starts once they are online`);
  for (const node of nodes) runNode(node);

  console.log(`
  market page   ${API}/
  API docs      ${API}/docs
  summary       ${API}/v1/market/summary
  live stream   ${API.replace(/^http/, 'ws')}/v1/market/stream?books=${books.map((b) => `${b.region}:${b.model.id}`).join(',')}

Ctrl-C stops the demo.
`);
  await watchRewards();

  let failures = 0;
  while (!stopping) {
    try {
      await trade(pick(books), renterKey);
      failures = 0;
    } catch (err) {
      if (stopping) break;
      console.error(`  trading step failed: ${String(err)}`);
      if (++failures >= 10) throw new Error('ten trading steps in a row failed; is the platform still running?');
    }
    await sleep(TICK_MS);
  }
}

function stop(): void {
  if (stopping) return;
  stopping = true;
  for (const t of timers) clearTimeout(t);
  for (const child of children) child.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
  console.log('\ndemo: stopped (resting orders expire by themselves within two minutes)');
  process.exit(0);
}

process.on('SIGINT', stop);
process.on('SIGTERM', stop);
main().catch((err) => {
  if (stopping) return;
  console.error(`demo: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
