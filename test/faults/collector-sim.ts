// A deterministic fault simulator for the Collector object (docs/testing.md, "Fault injection").
//
// It runs the real Collector class (src/durable/collector.ts, unchanged, with the real
// accumulator, batch builder, heartbeat config and local queue transport) in Node, over a
// SimStorage (do-host.ts: real SQLite as its storage, its alarm a number fired here), and takes
// the place of what surrounds it:
//   - libSQL is real: the Collector's `LIBSQL_HTTP` Fetcher forwards its one read (a node's token
//     version and status, in knownNode) to a migrated test database, whose `nodes` rows the
//     simulation writes as the API routes would (registration, re-registration, revocation);
//   - the queue is the real LocalQueueTransport, whose `SELF` Fetcher is a receiver here: it
//     records each delivery by batch id (the receiver applies each id once) and answers 200;
//   - the transport's retry back-off (setTimeout inside the object) becomes a simulated timer,
//     fired by the scheduler and moving the clock to its due time;
//   - the runtime: it builds instances over the storage, evicts them, fires due alarms (clearing
//     the alarm first) and retries an alarm whose instance was evicted while it ran;
//   - the runners: nodes heartbeat steadily as time passes (increasing seq, new boot ids, acks of
//     the commands they were given, GPU samples, a running lease), and now and then too fast,
//     with an old token, as a redelivery, or not at all for longer than the grace;
//   - the API: commands enqueued (and retried with the same id), revocations and
//     re-registrations (libSQL first, then revoke(), as src/routes/nodes.ts and runner.ts do).
// Every await the Collector makes outside itself (the libSQL read, each queue delivery attempt,
// each back-off timer) becomes an operation that waits for the scheduler, which, drawing from one
// seeded generator, starts entry points, carries out a waiting operation, fails it before it
// runs, runs it and loses the answer (a timeout: the queue got the batch, the Collector thinks it
// did not), or evicts the object there (its in-memory state is gone, its pending calls never
// answer, a running alarm is retried), takes the queue down for a while, and moves the clock
// (small steps, jumps past the grace, small steps back). Storage is immediate and never fails.
// After every step it checks the invariants, numbered in the messages; a broken one throws with
// the seed and the step. A seed replays exactly: the same seed draws the same decisions, and
// every decision waits for the previous one.
//   (1) A batch id is written to the outbox once, as region:shard:epoch:<a flush after the last>
//       with the epoch kept across instances, and the queue only ever carries it with the body
//       written (a replacement on empty storage, at the end, uses another epoch).
//   (2) A batch leaves the outbox only after the queue took it; after the wind-down the outbox
//       is empty and every batch written was delivered.
//   (3) Each flush reports exactly the heartbeats its instance accepted since its last flush
//       (count, last seen, lease confirmations), none twice; at the end every accepted heartbeat
//       was reported or was in the memory of an instance evicted before its flush.
//   (4) Each flush reports offline exactly the nodes silent past the grace as far as the instance
//       knew, and stores what it reported; in the wind-down (alarms on time) within a flush
//       interval of the grace; at the end the last batch about every node says it is offline.
//   (5) The stored mailbox is the one enqueued less what was acknowledged; every answer to a
//       node carries all its open commands, once each, none acknowledged, none of another node.
//   (6) A token older than the newest version libSQL or a revoke() call gave the node is
//       answered `revoked`, by every later instance (the revocation is stored at once).
//   (7) With nothing in flight, an object with work (a batch in the outbox, heartbeats not
//       flushed, a node it watches) has an alarm, set at most a flush interval ahead.
//   (8) A node that libSQL says is revoked, or does not know, is answered `revoked` and is in
//       no batch.
//
// What the simulation knows of the object's memory (Instance.view and Instance.unflushed) is
// what the object can know: the nodes table it loaded when built, plus the heartbeats it
// accepted and the offline reports it made. Eviction loses exactly the heartbeats an instance
// accepted since its last flush (its `pending`), and the node states they set; those are
// counted, and nothing else may be lost.
//
// Not modelled: a revoke() call that fails after the API changed libSQL;
// storage that fails or is slow; two alarm handlers of one object at once.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { SQLInputValue } from 'node:sqlite';
import { createClient } from '@libsql/client/web';
import type { Command, HeartbeatRequest } from '../../src/contracts/runner.ts';
import { HeartbeatBatchSchema, type HeartbeatBatch } from '../../src/heartbeats/batch.ts';
import { heartbeatConfig } from '../../src/heartbeats/config.ts';
import { generator, SimObjectHost, SimStorage, withSimulatedWorld, type FaultRates, type PendingOp, type SimRunReport } from './do-host.ts';

export interface CollectorSimOptions extends FaultRates {
  /** Scheduler decisions before the run winds down. */
  steps: number;
  /** Nodes registered in libSQL; one more is revoked there and one was never registered. */
  nodes: number;
  /** Chance per step that the queue goes down (it comes back at 10 % per step). */
  outageRate: number;
}

export const DEFAULT_COLLECTOR_OPTIONS: CollectorSimOptions = { steps: 1200, nodes: 3, failRate: 0.12, lostRate: 0.15, evictRate: 0.05, outageRate: 0.01 };

export interface CollectorSimReport extends SimRunReport {
  /** Distinct batch ids the queue delivered. */
  delivered: number;
  /** Deliveries, redeliveries included. */
  deliveries: number;
  /** Heartbeats answered `accepted`, reported in a batch, and lost with an evicted instance's memory. */
  heartbeats: { accepted: number; reported: number; lostToEviction: number };
}

/** A broken invariant, with the seed and the step that broke it. */
export class CollectorInvariantError extends Error {}

// ---- The object as the simulation calls it ------------------------------------------------------

type HeartbeatOutcome =
  | { status: 'accepted' | 'ignored'; commands: Command[]; nextIntervalS: number }
  | { status: 'too_fast'; retryAfterMs: number }
  | { status: 'revoked' };

/** The Collector's entry points that the runtime and the API call. */
interface CollectorLike {
  heartbeat(input: { region: string; shard: number; tokenVersion: number; hb: HeartbeatRequest }): Promise<HeartbeatOutcome>;
  enqueueCommand(nodeId: string, command: Command): Promise<void>;
  pendingCommands(nodeId: string): Promise<Command[]>;
  revoke(nodeId: string, version: number): Promise<void>;
  alarm(): Promise<void>;
}
type CollectorClass = new (ctx: unknown, env: unknown) => CollectorLike;

// Not a literal: the Node type check stays out of the Worker's code, which it cannot type.
const COLLECTOR_MODULE: string = '../../src/durable/collector.ts';
let collectorClass: Promise<CollectorClass> | undefined;
const loadCollector = () => (collectorClass ??= (import(COLLECTOR_MODULE) as Promise<{ Collector: CollectorClass }>).then((m) => m.Collector));

const REGION = 'sim';
const SHARD = 1;
const PUBLIC_URL = 'https://gridlease.sim';
const CALLBACK_URL = `${PUBLIC_URL}/internal/queue/heartbeats`;
/** Small values, so that a few hundred steps see many flushes and nodes going offline. */
const CONFIG_ENV = { HEARTBEAT_INTERVAL_S: '5', HEARTBEAT_MIN_INTERVAL_S: '2', HEARTBEAT_FLUSH_S: '3', NODE_GRACE_S: '20', COLLECTOR_SHARDS: '4' };
/** The largest step back the clock takes. */
const MAX_BACK_STEP_MS = 3_000;
/** The longest back-off timer of the local transport (its last retry waits 4 s). */
const MAX_TIMER_MS = 4_000;

/** Storage that also notes the clock when the object last set its alarm. */
class WatchedStorage extends SimStorage {
  setAt: number | null = null;
  private readonly now: () => number;
  constructor(now: () => number) {
    super();
    this.now = now;
  }
  override async setAlarm(at: number | Date): Promise<void> {
    this.setAt = this.now();
    await super.setAlarm(at);
  }
}

/** What an instance's memory says about a node, as far as offline reports go. */
interface NodeView {
  lastSeen: number | null;
  reportedOffline: boolean;
  /**
   * The clock when the instance came to hold this lastSeen: a heartbeat that waited for libSQL
   * is recorded as seen when it arrived, so it may be overdue the moment it is accepted.
   */
  since: number;
}

/** A heartbeat an instance answered `accepted`, waiting in its memory for the next flush. */
interface Accepted {
  nodeId: string;
  at: number;
  /** node/boot/seq: the same heartbeat redelivered has the same key. */
  key: string;
  /** Leases the heartbeat reported running. */
  running: string[];
}

interface Instance {
  n: number;
  host: SimObjectHost;
  object: CollectorLike;
  /** Calls made on this instance that have not answered. */
  inFlight: number;
  view: Map<string, NodeView>;
  /** Heartbeats accepted since this instance's last flush: its in-memory `pending`. */
  unflushed: Accepted[];
}

type OpLabel = 'libsql' | 'queue' | 'timer';

type Op = PendingOp<Instance, OpLabel>;

/** A node as its runner, libSQL and the API see it. */
interface SimNode {
  id: string;
  /** What libSQL says at the start: registered, revoked there, or never registered. */
  kind: 'registered' | 'revoked' | 'unknown';
  /** The node's token version in libSQL: its newest token. */
  version: number;
  /** Whether its newest token still works (false once libSQL marks the node revoked). */
  valid: boolean;
  /** Tokens below this version were revoked by a revoke() call that reached the Collector. */
  revokedBelow: number;
  revokes: number[];
  boot: string;
  seq: number;
  /** This boot's last heartbeats, for redelivery (each with the token it was sent with). */
  recent: Array<{ hb: HeartbeatRequest; version: number }>;
  /** Commands the last answer gave it, which it acknowledges. */
  received: Set<string>;
  silentUntil: number;
  nextBeatAt: number;
  lease: string;
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Whether an error came from a simulated fault (its message, or one of its causes, says so). */
function simulated(err: unknown): boolean {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 6; depth++) {
    if (String(e instanceof Error ? e.message : e).includes('simulated')) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

export async function runCollectorSeed(url: string, seed: number, options: Partial<CollectorSimOptions> = {}): Promise<CollectorSimReport> {
  const opt = { ...DEFAULT_COLLECTOR_OPTIONS, ...options };
  const Collector = await loadCollector();
  const rng = generator(seed);
  const config = heartbeatConfig(CONFIG_ENV);
  // Ids unique in the shared database; no decision depends on them.
  const tag = `s${seed}_${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const setup = createClient({ url, intMode: 'number' });
  let clock = Date.UTC(2026, 0, 1) + seed * 1000;
  const report: CollectorSimReport = {
    seed,
    steps: 0,
    operations: 0,
    faults: { failed: 0, lost: 0, evicted: 0 },
    calls: {},
    outcomes: {},
    quiescentChecks: 0,
    delivered: 0,
    deliveries: 0,
    heartbeats: { accepted: 0, reported: 0, lostToEviction: 0 },
  };
  const count = (key: string) => {
    report.outcomes[key] = (report.outcomes[key] ?? 0) + 1;
  };
  const fail: (what: string) => never = (what) => {
    throw new CollectorInvariantError(`seed ${seed}, ${report.steps <= opt.steps ? `step ${report.steps}` : 'wind-down'}: ${what}`);
  };
  /** Broken invariants found inside callbacks; thrown after the step. */
  const problems: string[] = [];
  const breach = (what: string) => {
    problems.push(what);
  };

  const storage = new WatchedStorage(() => clock);
  const peek = <T>(query: string, ...args: SQLInputValue[]) => storage.sql.db.prepare(query).all(...args) as T[];
  const pending: Op[] = [];
  const inObject = new AsyncLocalStorage<Instance>();
  let current: Instance | null = null;
  let instances = 0;
  let faultsOn = true;
  let queueDown = false;
  /** The instance whose alarm handler is running. */
  let alarmRunning: Instance | null = null;
  /** The flush the alarm started in this step made, as the simulation expects it. */
  let flush: { inst: Instance; at: number; nodes: Accepted[]; offline: Array<{ node_id: string; last_seen: number }> } | null = null;

  // What went through the outbox and the queue.
  const written = new Map<string, string>();
  const delivered = new Map<string, string>();
  const reportedKeys = new Set<string>();
  /** Per node, the written batches that mention it, in order: 'online' or 'offline'. */
  const mentions = new Map<string, Array<'online' | 'offline'>>();
  let logSeq = 0;
  let epoch: string | null = null;
  let lastFlushNumber = 0;
  /** The mailbox as it must be: command id → its node and body. */
  const commands = new Map<string, { nodeId: string; body: string }>();
  const enqueued: Array<{ nodeId: string; command: Command }> = [];

  /** An outside call of the instance running this code: it waits for the scheduler. */
  function op<T>(label: OpLabel, run: () => Promise<T>): Promise<T> {
    const inst = inObject.getStore();
    if (!inst) throw new Error(`the Collector made an outside call (${label}) that the simulation cannot place`);
    if (inst !== current) return new Promise<T>(() => {}); // an evicted instance never resumes
    return new Promise<T>((resolve, reject) => pending.push({ instance: inst, label, run, resolve: resolve as (v: unknown) => void, reject }));
  }

  /** The queue's receiver: applies each batch id once, as /internal/queue/heartbeats does. */
  function deliver(target: string, init: RequestInit | undefined): Response {
    const headers = (init?.headers ?? {}) as Record<string, string>;
    const body = String(init?.body);
    const parsed = HeartbeatBatchSchema.safeParse(JSON.parse(body));
    if (!parsed.success) {
      breach(`the queue carried a batch the receiver refuses: ${parsed.error.message}`);
      return new Response('', { status: 400 });
    }
    const id = parsed.data.batch_id;
    report.deliveries += 1;
    if (target !== CALLBACK_URL) breach(`batch ${id} was sent to ${target}`);
    if (headers['upstash-message-id'] !== `msg_${id.replaceAll(':', '_')}`) breach(`batch ${id} carried message id ${headers['upstash-message-id']}`);
    if (!headers['upstash-signature']) breach(`batch ${id} was delivered unsigned`);
    const before = delivered.get(id);
    // (1) One id, one body.
    if (before !== undefined && before !== body) breach(`batch id ${id} was delivered with two different bodies`);
    const w = written.get(id);
    if (!w) breach(`batch ${id} was delivered but never written to the outbox`);
    else if (JSON.stringify(JSON.parse(w)) !== body) breach(`batch ${id} was delivered with a body other than the one in its outbox row`);
    if (before === undefined) delivered.set(id, body);
    return new Response('{"outcome":"applied"}', { status: 200, headers: { 'content-type': 'application/json' } });
  }

  const env = {
    ...CONFIG_ENV,
    LIBSQL_URL: url,
    LIBSQL_HTTP: {
      fetch: (request: Request) =>
        op('libsql', async () => {
          // Read the whole answer here, so the object's reading of it waits on nothing real.
          const res = await fetch(request);
          return new Response(await res.arrayBuffer(), { status: res.status, headers: res.headers });
        }),
    },
    QUEUE_TRANSPORT: 'local',
    QSTASH_CURRENT_SIGNING_KEY: 'sim-signing-key',
    PUBLIC_URL,
    SELF: { fetch: (target: string, init?: RequestInit) => op('queue', async () => deliver(target, init)) },
  };

  function storedView(): Map<string, NodeView> {
    const rows = peek<{ node_id: string; last_seen: number | null; reported_offline: number }>('SELECT node_id, last_seen, reported_offline FROM nodes');
    return new Map(rows.map((r) => [r.node_id, { lastSeen: r.last_seen, reportedOffline: r.reported_offline === 1, since: clock }]));
  }

  /** The current instance, or a new one built over the storage (after an eviction). */
  function instance(): Instance {
    if (current) return current;
    const host = new SimObjectHost(storage);
    const object = new Collector(host, env);
    // The constructor's tables are made before its first await, so they can be read now.
    current = { n: ++instances, host, object, inFlight: 0, view: storedView(), unflushed: [] };
    return current;
  }

  /** Starts an entry point on the current instance; its answer is checked, never awaited. */
  function call<T>(name: string, fn: (c: CollectorLike) => Promise<T>, settled: (r: Settled<T>, inst: Instance) => void = () => {}): void {
    const inst = instance();
    report.calls[name] = (report.calls[name] ?? 0) + 1;
    inst.inFlight += 1;
    const done = (r: Settled<T>) => {
      if (inst !== current) return; // an evicted instance's calls never answer
      inst.inFlight -= 1;
      try {
        settled(r, inst);
      } catch (err) {
        breach(`checking ${name}: ${String(err)}`);
      }
    };
    inObject
      .run(inst, async () => {
        await inst.host.ready; // the runtime holds calls until blockConcurrencyWhile is done
        return fn(inst.object);
      })
      .then(
        (value) => done({ ok: true, value }),
        (error: unknown) => done({ ok: false, error }),
      );
  }

  function evict(): void {
    const inst = current;
    if (!inst) return;
    report.faults.evicted += 1;
    for (let i = pending.length - 1; i >= 0; i--) if (pending[i]!.instance === inst) pending.splice(i, 1);
    // Its memory is gone: the heartbeats it accepted and had not flushed, and nothing else.
    report.heartbeats.lostToEviction += inst.unflushed.length;
    // The runtime retries an alarm whose handler did not finish.
    if (alarmRunning === inst) {
      if (storage.alarmAt === null) {
        storage.alarmAt = clock;
        storage.setAt = clock;
      }
      alarmRunning = null;
    }
    current = null;
  }

  /** Carries out (or fails, or loses, or evicts at) one waiting operation. */
  async function carryOut(i: number): Promise<void> {
    const o = pending.splice(i, 1)[0]!;
    report.operations += 1;
    const r = faultsOn ? rng.next() : 1;
    if (r < opt.evictRate) {
      // Evicted at this await: the call may or may not have reached libSQL or the queue.
      if (o.label !== 'timer' && rng.chance(0.5)) await o.run().catch(() => undefined);
      count(`op:${o.label}:evicted`);
      evict();
      return;
    }
    const fallible = o.label !== 'timer';
    if (fallible && ((o.label === 'queue' && queueDown) || r < opt.evictRate + opt.failRate)) {
      report.faults.failed += 1;
      count(`op:${o.label}:failed`);
      // The queue refuses with a status as often as the connection fails.
      if (o.label === 'queue' && rng.chance(0.5)) o.resolve(new Response('simulated: unavailable', { status: 503 }));
      else o.reject(new Error(`simulated: ${o.label} unavailable`));
      return;
    }
    if (fallible && r < opt.evictRate + opt.failRate + opt.lostRate) {
      report.faults.lost += 1;
      count(`op:${o.label}:lost`);
      await o.run().catch(() => undefined);
      o.reject(new Error(`simulated: ${o.label} timed out after it was carried out`));
      return;
    }
    count(`op:${o.label}:ok`);
    try {
      o.resolve(await o.run());
    } catch (err) {
      o.reject(err);
    }
  }

  /**
   * Lets every call of the current instance run until it waits on an operation or answers. The
   * object's calls await one outside thing at a time, so that is when the operations waiting
   * match the calls in flight. Some of the object's work (signing a delivery) finishes on
   * Node's thread pool, hence a loop rather than a fixed number of turns.
   */
  async function settle(): Promise<void> {
    const started = performance.now();
    for (;;) {
      await new Promise<void>((r) => setImmediate(r));
      const running = current ? current.inFlight - pending.length : 0;
      if (running === 0) return;
      if (running < 0) fail(`${pending.length} operations wait for ${current?.inFlight} calls`);
      if (performance.now() - started > 10_000) fail(`${running} call(s) neither answered nor reached an outside await`);
    }
  }

  // ---- The flush, and the outbox as it changes ----------------------------------------------

  /** The nodes an instance's alarm must report offline: silent past the grace, not yet reported. */
  function overdueIn(view: Map<string, NodeView>, now: number) {
    const out: Array<{ node_id: string; last_seen: number }> = [];
    for (const [id, v] of view) if (!v.reportedOffline && v.lastSeen !== null && now - v.lastSeen > config.graceMs) out.push({ node_id: id, last_seen: v.lastSeen });
    return out;
  }

  function fireAlarm(): void {
    const inst = instance();
    storage.alarmAt = null;
    alarmRunning = inst;
    // The handler takes its memory's pending heartbeats and the overdue nodes before its first
    // await, in this step: that is the flush, and what it must contain is known now.
    flush = { inst, at: clock, nodes: inst.unflushed, offline: overdueIn(inst.view, clock) };
    inst.unflushed = [];
    for (const o of flush.offline) inst.view.get(o.node_id)!.reportedOffline = true;
    call(
      'alarm',
      (c) => c.alarm(),
      (r) => {
        alarmRunning = null;
        // It catches a failed delivery and keeps the batch; anything else is a defect.
        if (!r.ok) breach(`the alarm handler threw: ${String(r.error)}`);
      },
    );
  }

  /** (3, 4, 8) The batches a flush wrote say exactly what the instance knew. */
  function checkFlush(f: NonNullable<typeof flush>, batches: HeartbeatBatch[]): void {
    if (f.nodes.length === 0 && f.offline.length === 0) {
      if (batches.length > 0) fail(`a flush with nothing to report wrote ${batches.length} batch(es)`);
      return;
    }
    if (batches.length === 0) fail(`a flush at ${f.at} with ${f.nodes.length} heartbeat(s) and ${f.offline.length} offline node(s) wrote no batch`);
    const expected = new Map<string, { heartbeats: number; lastSeen: number; leases: Map<string, number[]> }>();
    for (const a of f.nodes) {
      const e = expected.get(a.nodeId) ?? { heartbeats: 0, lastSeen: a.at, leases: new Map<string, number[]>() };
      e.heartbeats += 1;
      e.lastSeen = a.at;
      for (const l of a.running) {
        const points = e.leases.get(l) ?? [];
        if (points.length < 100) points.push(a.at);
        e.leases.set(l, points);
      }
      expected.set(a.nodeId, e);
      // A heartbeat counted in two batches would be billed and credited twice.
      if (reportedKeys.has(a.key)) fail(`heartbeat ${a.key} was reported in two flushes (3)`);
      reportedKeys.add(a.key);
    }
    const seenNodes = new Set<string>();
    const offline: string[] = [];
    for (const [i, b] of batches.entries()) {
      if (b.flushed_at !== f.at || b.region !== REGION || b.shard !== SHARD) fail(`batch ${b.batch_id} says ${b.region}:${b.shard} at ${b.flushed_at}; the flush was ${REGION}:${SHARD} at ${f.at}`);
      if (i > 0 && b.offline.length > 0) fail(`batch ${b.batch_id}, not the flush's first, repeats offline reports`);
      for (const n of b.nodes) {
        if (seenNodes.has(n.node_id)) fail(`node ${n.node_id} appears twice in one flush`);
        seenNodes.add(n.node_id);
        const e = expected.get(n.node_id);
        if (!e) fail(`batch ${b.batch_id} reports node ${n.node_id}, which this instance accepted no heartbeat from since its last flush (3)`);
        else {
          if (n.heartbeats !== e.heartbeats || n.last_seen !== e.lastSeen) fail(`batch ${b.batch_id} reports ${n.heartbeats} heartbeat(s) of ${n.node_id} last seen ${n.last_seen}; it accepted ${e.heartbeats}, the last at ${e.lastSeen} (3)`);
          const minuteBeats = n.minutes.reduce((s, m) => s + m.heartbeats, 0);
          if (minuteBeats !== e.heartbeats) fail(`batch ${b.batch_id}: the minute roll-ups of ${n.node_id} count ${minuteBeats} heartbeats, not ${e.heartbeats}`);
          const got = JSON.stringify(n.leases.map((l) => [l.lease_id, l.seen]).sort());
          const want = JSON.stringify([...e.leases].sort());
          if (got !== want) fail(`batch ${b.batch_id}: lease confirmations of ${n.node_id} are ${got}, not ${want}`);
        }
      }
      for (const o of b.offline) offline.push(`${o.node_id}@${o.last_seen}`);
    }
    for (const id of expected.keys()) if (!seenNodes.has(id)) fail(`the flush at ${f.at} left out node ${id}, whose heartbeats the instance accepted (3)`);
    // (4) Offline: exactly the nodes silent past the grace as far as this instance knew.
    const want = f.offline.map((o) => `${o.node_id}@${o.last_seen}`).sort();
    if (JSON.stringify(offline.sort()) !== JSON.stringify(want)) fail(`the flush at ${f.at} reported offline [${offline.join(', ')}]; silent past the grace were [${want.join(', ')}] (4)`);
    for (const id of new Set([...seenNodes, ...f.offline.map((o) => o.node_id)])) {
      const kind = nodes.find((n) => n.id === id)?.kind;
      if (kind !== 'registered') fail(`node ${id}, which libSQL ${kind === 'revoked' ? 'says is revoked' : 'does not know'}, was reported (8)`);
      // What was reported is in storage, for the next instance.
      const v = f.inst.view.get(id);
      const [row] = peek<{ last_seen: number | null; reported_offline: number }>('SELECT last_seen, reported_offline FROM nodes WHERE node_id = ?', id);
      if (!row || !v || row.last_seen !== v.lastSeen || (row.reported_offline === 1) !== v.reportedOffline) {
        fail(`after the flush, node ${id} is stored as ${JSON.stringify(row)}; the instance held ${JSON.stringify(v)}`);
      }
    }
    count('flush');
    report.outcomes['flush:offline reports'] = (report.outcomes['flush:offline reports'] ?? 0) + f.offline.length;
    for (const b of batches) {
      for (const n of b.nodes) mentions.set(n.node_id, [...(mentions.get(n.node_id) ?? []), 'online']);
      for (const o of b.offline) mentions.set(o.node_id, [...(mentions.get(o.node_id) ?? []), 'offline']);
    }
    report.heartbeats.reported += f.nodes.length;
  }

  /** Reads what the outbox saw since the last step (a trigger logs each change). */
  function observeOutbox(): void {
    const rows = peek<{ seq: number; op: string; batch_id: string; body: string }>('SELECT seq, op, batch_id, body FROM sim_outbox_log WHERE seq > ? ORDER BY seq', logSeq);
    const inserted: HeartbeatBatch[] = [];
    for (const row of rows) {
      logSeq = row.seq;
      if (row.op === 'update') fail(`batch ${row.batch_id} was rewritten in the outbox`);
      if (row.op === 'delete') {
        // (2) A batch leaves the outbox only once the queue has it.
        if (!delivered.has(row.batch_id)) fail(`batch ${row.batch_id} was removed from the outbox before the queue took it (2)`);
        continue;
      }
      // (1) Never an id written before, by this instance or an earlier one.
      if (written.has(row.batch_id)) fail(`batch id ${row.batch_id} was written to the outbox a second time (1)`);
      const parts = row.batch_id.split(':');
      const [meta] = peek<{ v: string }>("SELECT v FROM meta WHERE k = 'epoch'");
      epoch ??= meta?.v ?? null;
      const n = Number(parts[3]);
      if (parts.length !== 4 || parts[0] !== REGION || parts[1] !== String(SHARD) || parts[2] !== epoch || !(n > lastFlushNumber)) {
        fail(`batch id ${row.batch_id} is not ${REGION}:${SHARD}:${epoch}:<a flush after ${lastFlushNumber}> (1)`);
      }
      lastFlushNumber = n;
      written.set(row.batch_id, row.body);
      const batch = JSON.parse(row.body) as HeartbeatBatch;
      if (batch.batch_id !== row.batch_id) fail(`outbox row ${row.batch_id} holds batch ${batch.batch_id}`);
      inserted.push(batch);
    }
    const f = flush;
    flush = null;
    if (f) checkFlush(f, inserted);
    else if (inserted.length > 0) fail(`the outbox was written outside a flush: ${inserted.map((b) => b.batch_id).join(', ')}`);
  }

  // ---- The nodes and the API ------------------------------------------------------------------

  const uuid = () => {
    const h = (n: number) => Array.from({ length: n }, () => rng.int(0, 15).toString(16)).join('');
    return `${h(8)}-${h(4)}-4${h(3)}-8${h(3)}-${h(12)}`;
  };
  const nodes: SimNode[] = [];
  const kinds: Array<SimNode['kind']> = [...Array.from({ length: opt.nodes }, () => 'registered' as const), 'revoked', 'unknown'];
  for (const [i, kind] of kinds.entries()) {
    const version = kind === 'unknown' ? 1 : rng.int(1, 3) + (kind === 'revoked' ? 1 : 0);
    const node: SimNode = {
      id: `node_${tag}_${i}`,
      kind,
      version,
      valid: kind === 'registered',
      revokedBelow: 0,
      revokes: [],
      boot: uuid(),
      seq: -1,
      recent: [],
      received: new Set(),
      silentUntil: 0,
      nextBeatAt: clock + rng.int(0, 5_000),
      lease: `lse_${tag}_${i}`,
    };
    nodes.push(node);
    if (kind === 'unknown') continue;
    await setup.execute({
      sql: "INSERT INTO nodes (id, account_id, region, hostname, machine, status, token_version) VALUES (?, ?, 'sim', 'sim', '{}', ?, ?)",
      args: [node.id, `acc_p${tag}`, kind === 'revoked' ? 'revoked' : 'online', version],
    });
  }
  const registered = nodes.filter((n) => n.kind === 'registered');

  /** A node's next heartbeat on its current boot, and the token it is sent with. */
  function nextHeartbeat(node: SimNode): { hb: HeartbeatRequest; version: number } {
    node.seq += rng.chance(0.1) ? rng.int(2, 4) : 1;
    const acks = [...node.received].filter(() => rng.chance(0.7));
    if (rng.chance(0.05)) {
      // Another node's command, or an id nobody has: neither may be removed.
      const others = [...commands].filter(([, c]) => c.nodeId !== node.id);
      acks.push(others.length > 0 && rng.chance(0.5) ? rng.pick(others)[0] : `cmd_${tag}_none_${rng.int(0, 99)}`);
    }
    const stale = rng.chance(0.03);
    const hb: HeartbeatRequest = {
      node_id: node.id,
      boot_id: node.boot,
      seq: node.seq,
      sent_at: new Date(stale ? clock - rng.int(6, 30) * 60_000 : clock - rng.int(0, 1_500)).toISOString(),
      draining: rng.chance(0.05),
      gpus: Array.from({ length: rng.int(0, 2) }, (_, index) => ({
        index,
        utilization_pct: rng.chance(0.1) ? null : rng.int(0, 100),
        memory_used_mib: rng.int(0, 81_920),
        temperature_c: rng.chance(0.1) ? null : rng.int(30, 90),
        power_w: rng.int(60, 700),
      })),
      leases: rng.chance(0.2) ? [] : [{ lease_id: node.lease, state: rng.chance(0.8) ? 'running' : 'starting' }],
      acks,
    };
    // Mostly its newest token; now and then one it had before (refused once revoked).
    const version = node.valid && (node.version === 1 || !rng.chance(0.08)) ? node.version : Math.max(1, node.version - rng.int(1, 2));
    const sent = { hb, version };
    node.recent = [...node.recent.slice(-3), sent];
    return sent;
  }

  function send(node: SimNode, sent: { hb: HeartbeatRequest; version: number }, label: string): void {
    const { hb, version } = sent;
    const startedAt = clock;
    // Tokens below the newest version libSQL holds, or below a revocation the object was told
    // of, are refused: the API bumps libSQL before it calls revoke(), in the same step here.
    const libsqlVersion = node.kind === 'unknown' ? 0 : node.version;
    call(
      label,
      (c) => c.heartbeat({ region: REGION, shard: SHARD, tokenVersion: version, hb }),
      (r, inst) => {
        if (!r.ok) {
          // Only the libSQL read can make a heartbeat fail.
          if (!simulated(r.error)) breach(`a heartbeat of ${node.id} threw: ${String(r.error)}`);
          count(`${label}:threw`);
          return;
        }
        const answer = r.value;
        count(`${label}:${answer.status}`);
        // (8) libSQL says revoked, or does not know the node.
        if (node.kind !== 'registered' && answer.status !== 'revoked') breach(`node ${node.id} (${node.kind} in libSQL) was answered ${answer.status} (8)`);
        // (6) Revoked tokens stay revoked, whatever instance answers.
        const floor = Math.max(node.revokedBelow, libsqlVersion);
        if (version < floor && answer.status !== 'revoked') breach(`node ${node.id}'s token version ${version}, revoked below ${floor}, was answered ${answer.status} (6)`);
        if (answer.status === 'accepted') {
          report.heartbeats.accepted += 1;
          inst.unflushed.push({ nodeId: node.id, at: startedAt, key: `${hb.node_id}/${hb.boot_id}/${hb.seq}`, running: hb.leases.filter((l) => l.state === 'running').map((l) => l.lease_id) });
          inst.view.set(node.id, { lastSeen: startedAt, reportedOffline: false, since: clock });
          for (const id of hb.acks) if (commands.get(id)?.nodeId === node.id) commands.delete(id);
        }
        if (answer.status === 'accepted' || answer.status === 'ignored') {
          checkCommands(node.id, answer.commands, 32, label);
          node.received = new Set(answer.commands.map((c) => c.id));
        }
      },
    );
  }

  /** (5) An answer carries the node's open commands: each once, none acknowledged, none of another node. */
  function checkCommands(nodeId: string, got: Command[], limit: number, what: string): void {
    const ids = got.map((c) => c.id);
    if (new Set(ids).size !== ids.length) breach(`${what} to ${nodeId} carried a command twice: ${ids.join(', ')} (5)`);
    for (const c of got) {
      const open = commands.get(c.id);
      if (!open) breach(`${what} to ${nodeId} carried command ${c.id}, which is acknowledged or was never enqueued (5)`);
      else if (open.nodeId !== nodeId) breach(`${what} to ${nodeId} carried command ${c.id} of node ${open.nodeId} (5)`);
      else if (JSON.stringify(c) !== open.body) breach(`${what} to ${nodeId} carried command ${c.id} changed: ${JSON.stringify(c)} (5)`);
    }
    const open = [...commands.values()].filter((c) => c.nodeId === nodeId).length;
    if (ids.length !== Math.min(open, limit)) breach(`${what} to ${nodeId} carried ${ids.length} command(s); ${open} are open (5)`);
  }

  function enqueue(): void {
    const retry = enqueued.length > 0 && rng.chance(0.3);
    const node = retry ? null : rng.pick(registered);
    const { nodeId, command } = retry
      ? rng.pick(enqueued)
      : { nodeId: node!.id, command: { id: `cmd_${tag}_${enqueued.length}`, type: 'stop_lease', lease_id: node!.lease, reason: `simulated ${enqueued.length}` } as Command };
    if (!retry) {
      // Well under the 32 an answer carries, so each answer must carry them all.
      if ([...commands.values()].filter((c) => c.nodeId === nodeId).length >= 24) return;
      enqueued.push({ nodeId, command });
    }
    call(
      retry ? 'enqueueCommand:retry' : 'enqueueCommand',
      (c) => c.enqueueCommand(nodeId, command),
      (r) => {
        if (!r.ok) breach(`enqueueCommand threw: ${String(r.error)}`);
        // A retry of an acknowledged command puts it back: it is a new mail with the same id.
        if (!commands.has(command.id)) commands.set(command.id, { nodeId, body: JSON.stringify(command) });
      },
    );
  }

  /** Re-registration or revocation: libSQL first, then the Collector, as the API does. */
  async function revokeInput(): Promise<void> {
    const node = rng.pick(registered);
    let version: number;
    if (node.revokes.length > 0 && rng.chance(0.2)) {
      version = rng.pick(node.revokes); // the API's call again (a retry): changes nothing
    } else {
      if (!node.valid) return;
      // One node at most is revoked for good; the others re-register.
      const revoke = rng.chance(0.2) && registered.every((n) => n.valid);
      node.version += 1;
      await setup.execute({ sql: 'UPDATE nodes SET token_version = ?, status = ? WHERE id = ?', args: [node.version, revoke ? 'revoked' : 'registered', node.id] });
      count(revoke ? 'api:revoked' : 'api:re-registered');
      if (revoke) node.valid = false;
      else {
        // The runner starts over with its new token.
        node.boot = uuid();
        node.seq = -1;
        node.recent = [];
      }
      version = node.version;
      node.revokes.push(version);
    }
    call(
      'revoke',
      (c) => c.revoke(node.id, version),
      (r, inst) => {
        if (!r.ok) {
          breach(`revoke threw: ${String(r.error)}`);
          return;
        }
        node.revokedBelow = Math.max(node.revokedBelow, version);
        if (!inst.view.has(node.id)) inst.view.set(node.id, { lastSeen: null, reportedOffline: true, since: clock });
        // (6) In storage at once, for every later instance.
        const [row] = peek<{ token_version: number; last_seen: number | null }>('SELECT token_version, last_seen FROM nodes WHERE node_id = ?', node.id);
        if (!row || row.token_version < version) breach(`after revoke(${node.id}, ${version}) storage holds token version ${row?.token_version} (6)`);
        else if (row.last_seen !== inst.view.get(node.id)!.lastSeen) breach(`revoke(${node.id}) stored last_seen ${row.last_seen}; the instance held ${inst.view.get(node.id)!.lastSeen}`);
      },
    );
  }

  /** One input from a runner or the API. */
  async function input(): Promise<void> {
    const r = rng.next();
    if (r < 0.12) {
      // A redelivery of one of the last heartbeats (the runner retrying), of this boot or the one before.
      const node = rng.pick(registered);
      if (node.recent.length === 0) return;
      send(node, rng.pick(node.recent), 'heartbeat:redelivered');
    } else if (r < 0.2) {
      // A node libSQL says is revoked, or does not know.
      const node = rng.pick(nodes.filter((n) => n.kind !== 'registered'));
      send(node, nextHeartbeat(node), `heartbeat:${node.kind}`);
    } else if (r < 0.4) {
      enqueue();
    } else if (r < 0.43) {
      await revokeInput();
    } else if (r < 0.5) {
      const node = rng.pick(registered);
      call('pendingCommands', (c) => c.pendingCommands(node.id), (res) => {
        if (!res.ok) breach(`pendingCommands threw: ${String(res.error)}`);
        else checkCommands(node.id, res.value, 1_000, 'pendingCommands');
      });
    } else if (r < 0.53) {
      // Falls silent, mostly for longer than the grace.
      const node = rng.pick(registered);
      node.silentUntil = clock + rng.int(config.graceMs / 2, config.graceMs * 3);
      count('input:falls silent');
    } else if (r < 0.56) {
      // The runner restarts: a new boot id, seq from 0. Heartbeats of the boot before may still
      // arrive late (a retry in flight when it stopped), so they stay among those redelivered.
      const node = rng.pick(registered);
      node.boot = uuid();
      node.seq = -1;
      count('input:reboot');
    } else {
      // An extra heartbeat, often too soon after the last one.
      const node = rng.pick(registered);
      if (clock < node.silentUntil || (!node.valid && rng.chance(0.8))) return count('input:silent');
      send(node, nextHeartbeat(node), 'heartbeat:extra');
    }
  }

  /**
   * Time passes; each runner that is not silent heartbeats at its interval (a few are lost). A
   * runner whose node was revoked keeps trying now and then with the token it has.
   */
  function advance(ms: number): void {
    clock += ms;
    for (const node of registered) {
      if (clock < node.silentUntil || clock < node.nextBeatAt) continue;
      node.nextBeatAt = clock + config.intervalS * 1000 + rng.int(-1_500, 1_500);
      if (rng.chance(node.valid ? 0.08 : 0.8)) continue;
      send(node, nextHeartbeat(node), 'heartbeat');
    }
  }

  // ---- The invariants that hold after every step ---------------------------------------------

  function checkInvariants(): void {
    // (5) The mailbox in storage is the one the answers must come from.
    const stored = peek<{ id: string; node_id: string; body: string }>('SELECT id, node_id, body FROM commands ORDER BY id');
    const want = [...commands].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (JSON.stringify(stored.map((c) => [c.id, c.node_id, c.body])) !== JSON.stringify(want.map(([id, c]) => [id, c.nodeId, c.body]))) {
      fail(`the stored mailbox holds ${stored.map((c) => c.id).join(', ') || 'nothing'}; open are ${want.map(([id]) => id).join(', ') || 'none'} (5)`);
    }
    // (6) Revocations are stored.
    for (const node of nodes) {
      if (node.revokedBelow === 0) continue;
      const [row] = peek<{ token_version: number }>('SELECT token_version FROM nodes WHERE node_id = ?', node.id);
      if (!row || row.token_version < node.revokedBelow) fail(`node ${node.id} was revoked below ${node.revokedBelow}; storage holds ${row?.token_version} (6)`);
    }
    const quiescent = pending.length === 0 && (current?.inFlight ?? 0) === 0 && alarmRunning === null;
    if (!quiescent) return;
    report.quiescentChecks += 1;
    // (7) Work to do means an alarm, set within a flush interval.
    const view = current?.view ?? storedView();
    const watched = [...view].filter(([, v]) => !v.reportedOffline && v.lastSeen !== null).map(([id]) => id);
    const outbox = peek<{ n: number }>('SELECT count(*) AS n FROM outbox')[0]!.n;
    const unflushed = current?.unflushed.length ?? 0;
    if (outbox > 0 || unflushed > 0 || watched.length > 0) {
      const what = `${outbox} batch(es) in the outbox, ${unflushed} heartbeat(s) not flushed, watching [${watched.join(', ')}]`;
      if (storage.alarmAt === null) fail(`the Collector has ${what} and no alarm (7)`);
      if (storage.alarmAt - (storage.setAt ?? storage.alarmAt) > config.flushMs + MAX_BACK_STEP_MS) fail(`the Collector has ${what} and its alarm is ${storage.alarmAt - storage.setAt!} ms ahead of when it was set (7)`);
    }
  }

  async function afterStep(): Promise<void> {
    await settle();
    if (problems.length > 0) fail(problems[0]!);
    observeOutbox();
    checkInvariants();
  }

  // ---- The run ------------------------------------------------------------------------------

  const logged: Record<string, number> = {};
  const realSetTimeout = globalThis.setTimeout;
  // The local transport's back-off is a timer inside the object: an await like the others. Any
  // other timer (the test runner's, the libSQL client's network) is left alone.
  const simulatedSetTimeout = (fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const inst = inObject.getStore();
    if (!inst) return (realSetTimeout as (f: (...a: unknown[]) => void, t?: number, ...a: unknown[]) => unknown)(fn, ms, ...args);
    if ((ms ?? 0) > MAX_TIMER_MS) breach(`the Collector waited ${ms} ms on a timer`);
    const due = clock + (ms ?? 0);
    op('timer', async () => {
      if (clock < due) clock = due;
    }).then(() => fn(...args), () => undefined);
    const handle = { ref: () => handle, unref: () => handle, hasRef: () => false, refresh: () => handle, [Symbol.toPrimitive]: () => 0 };
    return handle;
  };
  globalThis.setTimeout = simulatedSetTimeout as unknown as typeof setTimeout;
  try {
    await withSimulatedWorld(() => clock, logged, async () => {
      // The first instance makes the tables; a trigger then logs every change to the outbox.
      await instance().host.ready;
      storage.sql.db.exec(`CREATE TABLE sim_outbox_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL, batch_id TEXT NOT NULL, body TEXT);
        CREATE TRIGGER sim_outbox_insert AFTER INSERT ON outbox BEGIN INSERT INTO sim_outbox_log (op, batch_id, body) VALUES ('insert', NEW.batch_id, NEW.body); END;
        CREATE TRIGGER sim_outbox_update AFTER UPDATE ON outbox BEGIN INSERT INTO sim_outbox_log (op, batch_id, body) VALUES ('update', NEW.batch_id, NEW.body); END;
        CREATE TRIGGER sim_outbox_delete AFTER DELETE ON outbox BEGIN INSERT INTO sim_outbox_log (op, batch_id, body) VALUES ('delete', OLD.batch_id, OLD.body); END;`);

      for (report.steps = 1; report.steps <= opt.steps; report.steps++) {
        if (rng.chance(queueDown ? 0.1 : opt.outageRate)) {
          queueDown = !queueDown;
          if (queueDown) count('queue outage');
        }
        const r = rng.next();
        const due = storage.alarmAt !== null && storage.alarmAt <= clock && alarmRunning === null;
        if (pending.length > 0 && r < 0.45) await carryOut(rng.int(0, pending.length - 1));
        else if (due && r < 0.62) fireAlarm();
        else if (r < 0.76) await input();
        else if (r < 0.97) advance(rng.int(300, 2_500));
        else if (r < 0.978) advance(rng.int(config.graceMs / 2, config.graceMs * 4));
        else if (r < 0.99) clock -= rng.int(500, MAX_BACK_STEP_MS);
        else if (faultsOn && current && pending.length === 0) evict(); // evicted while idle
        await afterStep();
      }

      // Wind down: no more faults or inputs, the queue up, the runners silent; time runs on and
      // alarms fire when due, until the object sets none.
      faultsOn = false;
      queueDown = false;
      const windDownAt = clock;
      for (let guard = 0; ; guard++) {
        if (guard > 5_000) fail('the Collector kept setting alarms after every node fell silent');
        if (pending.length > 0) await carryOut(0);
        else {
          if ((current?.inFlight ?? 0) > 0 || alarmRunning !== null) fail('a call is in flight with no operation waiting');
          if (storage.alarmAt === null) break;
          if (storage.alarmAt > clock) clock = storage.alarmAt;
          // (4) On time: alarms fire when due now (before, the scheduler may have let one wait),
          // so a node is reported within a flush interval of going past the grace, give or take a
          // step back of the clock and a back-off timer.
          for (const [id, v] of instance().view) {
            if (v.reportedOffline || v.lastSeen === null) continue;
            const deadline = Math.max(v.lastSeen + config.graceMs, v.since, windDownAt) + config.flushMs + MAX_BACK_STEP_MS + MAX_TIMER_MS;
            if (clock > deadline) fail(`node ${id}, last seen at ${v.lastSeen}, is still not reported offline ${clock - deadline} ms after its deadline (4)`);
          }
          fireAlarm();
        }
        await afterStep();
      }
    });
  } finally {
    globalThis.setTimeout = realSetTimeout;
  }

  // ---- The end: everything written was delivered, everything accepted was reported or lost ---
  const left = peek<{ batch_id: string }>('SELECT batch_id FROM outbox');
  if (left.length > 0) fail(`after the wind-down the outbox still holds ${left.map((r) => r.batch_id).join(', ')} (2)`);
  for (const id of written.keys()) if (!delivered.has(id)) fail(`batch ${id} was written but never delivered (2)`);
  const { accepted, reported, lostToEviction } = report.heartbeats;
  const unflushed = (current as Instance | null)?.unflushed.length ?? 0;
  if (accepted !== reported + lostToEviction + unflushed || unflushed > 0) fail(`${accepted} heartbeats accepted, ${reported} reported, ${lostToEviction} lost with evicted instances, ${unflushed} still in memory (3)`);
  for (const [id, seq] of mentions) if (seq.at(-1) !== 'offline') fail(`node ${id} fell silent for good, but the last batch about it says it is online (4)`);
  report.delivered = delivered.size;
  for (const [msg, n] of Object.entries(logged)) report.outcomes[`log:${msg}`] = n;

  // ---- A replacement on empty storage (the object's storage lost) reuses no batch id ---------
  const node = registered.find((n) => n.valid)!;
  const fresh = new SimStorage();
  const freshIds: string[] = [];
  const host = new SimObjectHost(fresh);
  await withSimulatedWorld(() => clock, logged, async () => {
    const replacement = new Collector(host, {
      ...env,
      LIBSQL_HTTP: { fetch: (request: Request) => fetch(request) },
      SELF: {
        fetch: async (_target: string, init?: RequestInit) => {
          freshIds.push((JSON.parse(String(init?.body)) as HeartbeatBatch).batch_id);
          return new Response('{"outcome":"applied"}', { status: 200 });
        },
      },
    });
    await host.ready;
    clock += config.graceMs;
    const hb = { node_id: node.id, boot_id: uuid(), seq: 0, sent_at: new Date(clock).toISOString(), draining: false, gpus: [], leases: [], acks: [] };
    const answer = await replacement.heartbeat({ region: REGION, shard: SHARD, tokenVersion: node.version, hb });
    if (answer.status !== 'accepted') fail(`a replacement Collector answered ${answer.status} to a current token`);
    clock += config.flushMs;
    fresh.alarmAt = null;
    await replacement.alarm();
  });
  fresh.close();
  if (freshIds.length !== 1) fail(`a replacement Collector delivered ${freshIds.length} batches for one heartbeat`);
  if (delivered.has(freshIds[0]!) || freshIds[0]!.split(':')[2] === epoch) fail(`a replacement Collector on empty storage reused batch id ${freshIds[0]} (1)`);

  storage.close();
  setup.close();
  report.steps = opt.steps;
  return report;
}
