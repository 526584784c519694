// A deterministic fault simulator for the RegionBook object (docs/testing.md, "Fault injection").
//
// It runs the real RegionBook class (src/durable/region-book.ts: matching, its storage layout,
// its outbox, and applyBookEffect's libSQL writes through the real ledger rules and store) in
// Node. Its storage is a real SQLite database that outlives the object's instances
// (do-host.ts); libSQL is the real engine behind the local server. The simulator takes the
// place of everything around the book:
//   - the order routes: a bid's escrow hold is posted before the book sees the order, as the
//     route does; a placement that gets no answer is retried with the same order, or abandoned
//     through `abandonUnplaced` as the sweeper does;
//   - the Lease objects: creating one records its terms and releases the bid's price
//     improvement; ending one releases its amount (billing is the Lease simulator's business)
//     and hands the GPUs back with `leaseEnded`, retried until it answers;
//   - heartbeat batches and trust publications (`setNodes`, `setNodeTrust`);
//   - the runtime: alarms fire when due (a failed or evicted alarm is retried), and the object is
//     evicted at any outside await (what it was doing never resumes); as in workerd, it is
//     rebuilt from storage only when a call or its alarm next comes;
//   - the clock (Date.now, which the outbox and the alarm read), by small steps and jumps.
// Every outside await of the book (each libSQL request, each Lease creation) waits for the
// scheduler, which carries it out, fails it before it runs, runs it and loses the answer, or
// evicts the object there. After every step the invariants are checked (checkInvariants). A
// seed replays exactly: the same seed draws the same decisions.
import type { Client } from '@libsql/client/web';
import type { BidOrder, AskOrder, BookOrder, LeaseTerms } from '../../src/market/orders.ts';
import { maxCost } from '../../src/market/orders.ts';
import { credit, hold, release } from '../../src/ledger/rules.ts';
import { postTransaction } from '../../src/ledger/store.ts';
import { SimObjectHost, SimStorage, carryOutOp, generator, quiesce, withSimulatedWorld, type FaultRates, type PendingOp, type SimRunReport } from './do-host.ts';

export interface BookSimOptions extends FaultRates {
  /** Scheduler decisions before the run winds down. */
  steps: number;
  renters: number;
  nodes: number;
}

export const DEFAULT_BOOK_OPTIONS: BookSimOptions = { steps: 500, renters: 2, nodes: 3, failRate: 0.08, lostRate: 0.15, evictRate: 0.04 };

export interface BookSimReport extends SimRunReport {
  trades: number;
  /** The book's own log lines, by message. */
  logged: Record<string, number>;
}

/** A broken invariant, with the seed and the step that broke it. */
export class BookInvariantError extends Error {}

// The book's entry points as the simulator calls them (the class is loaded at run time, so
// the Node type check does not follow it into Workers types).
interface PlaceAnswer {
  ok: boolean;
  reason?: string;
  order?: { id: string; status: string; freeGpus: number };
}
interface BookLike {
  place(order: BookOrder, now: number): Promise<PlaceAnswer>;
  cancel(id: string, accountId: string, placed: BookOrder | undefined, now: number): Promise<{ status: string } | null>;
  abandonUnplaced(orders: BookOrder[], now: number): Promise<string[]>;
  setNodes(update: { online: string[]; offline: string[]; trust?: Record<string, { reliabilityPpm: number; verified: boolean }> }, now: number): Promise<number>;
  setNodeTrust(nodeId: string, trust: { reliabilityPpm: number; verified: boolean }, now: number): Promise<number>;
  leaseEnded(leaseId: string, now: number, opts: { nodeSilent?: boolean }): Promise<number>;
  snapshot(levels: number): Promise<unknown>;
  openAsks(now: number): Promise<unknown>;
  alarm(): Promise<void>;
}
interface EngineView {
  queueOrder(): { bids: string[]; asks: string[] };
  isNodeOnline(nodeId: string): boolean;
  trustOf(nodeId: string): { reliability: number; verified: boolean } | undefined;
}
const REGION_BOOK_MODULE: string = '../../src/durable/region-book.ts';
type BookClass = new (ctx: SimObjectHost, env: unknown) => BookLike;

type Op = PendingOp;

interface SimOrder {
  order: BookOrder;
  /** The book answered a placement of it (ok or refused). */
  answered: boolean;
  /** The book refused it (a sell on a node with too few free GPUs): the route deletes it. */
  refused: boolean;
}

interface SimLease {
  terms: LeaseTerms;
  ended: boolean;
  /** `leaseEnded` has answered since the lease ended. */
  returned: boolean;
  nodeSilent: boolean;
}

interface SimNode {
  id: string;
  providerId: string;
  gpus: number;
  reliabilityPpm: number;
  verified: boolean;
}

const REGION = 'sim';
const MODEL = 'h100-80gb';
const PRICING = { gridUsdRate: 1_000_000n, gridDiscountBps: 0n };

export async function runBookSeed(money: Client, libsqlUrl: string, seed: number, options: Partial<BookSimOptions> = {}): Promise<BookSimReport> {
  const { RegionBook } = (await import(REGION_BOOK_MODULE)) as { RegionBook: BookClass };
  const opt = { ...DEFAULT_BOOK_OPTIONS, ...options };
  const rng = generator(seed);
  const tag = `b${seed}_${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  let clock = Date.UTC(2026, 0, 1) + seed * 1000;
  const report: BookSimReport = { seed, steps: 0, operations: 0, faults: { failed: 0, lost: 0, evicted: 0 }, calls: {}, outcomes: {}, quiescentChecks: 0, trades: 0, logged: {} };
  const storage = new SimStorage();
  const pending: Op[] = [];
  let instances = 0;
  let instance = 0;
  /** The live instance; none after an eviction until a call or the alarm makes the runtime build one. */
  let book: BookLike | null = null;
  let host: SimObjectHost | null = null;
  let building: Promise<void> | null = null;
  /** Entry points running on the current instance. */
  let inFlight = 0;
  /** The alarm handler running (the runtime retries it if its instance is evicted or it throws). */
  let alarmRunning = false;
  let faultsOn = true;
  let orderSeq = 0;
  const orders = new Map<string, SimOrder>();
  const leases = new Map<string, SimLease>();
  const renters = Array.from({ length: opt.renters }, (_, i) => `acc_r${tag}_${i}`);
  const funded = new Map<string, bigint>();
  const nodes: SimNode[] = Array.from({ length: opt.nodes }, (_, i) => ({ id: `node_${tag}_${i}`, providerId: `acc_p${tag}_${i}`, gpus: 1 + (i % 4), reliabilityPpm: 1_000_000, verified: true }));
  const seenTrades = new Set<string>();

  /** The first broken invariant: kept, since one found inside a call's callback cannot be thrown to the run. */
  let broken: BookInvariantError | null = null;
  const fail = (what: string): never => {
    broken ??= new BookInvariantError(`seed ${seed}, step ${report.steps}: ${what}`);
    throw broken;
  };
  const count = (bag: Record<string, number>, key: string) => {
    bag[key] = (bag[key] ?? 0) + 1;
  };

  /** An outside call of the instance `inst`: it waits for the scheduler. */
  function op<T>(inst: number, label: string, run: () => Promise<T>): Promise<T> {
    if (inst !== instance) return new Promise<T>(() => {}); // an evicted instance never resumes
    return new Promise<T>((resolve, reject) => pending.push({ instance: inst, label, run, resolve: resolve as (v: unknown) => void, reject }));
  }

  /** The world as one instance sees it: libSQL through the scheduler, and the Lease objects. */
  function envFor(inst: number) {
    return {
      LIBSQL_URL: libsqlUrl,
      LIBSQL_HTTP: {
        // The operation waits in line from the moment of the call (reading the body first would
        // take turns of the event loop that the scheduler does not wait for).
        fetch: (request: Request) =>
          op(inst, 'libsql', async () => {
            const res = await fetch(new URL(new URL(request.url).pathname, libsqlUrl), { method: request.method, headers: request.headers, body: await request.text() });
            // Read whole here: a lost answer is lost after the request was carried out.
            return new Response(await res.arrayBuffer(), { status: res.status, headers: res.headers });
          }),
      },
      LEASE: {
        getByName: (leaseId: string) => ({
          create: (terms: LeaseTerms) => op(inst, 'lease.create', () => createLease(leaseId, terms)),
        }),
      },
    };
  }

  /** What a Lease object does with its terms that the book can observe: its money, once. */
  async function createLease(leaseId: string, terms: LeaseTerms): Promise<void> {
    if (leaseId !== terms.leaseId) fail(`lease ${leaseId} created with the terms of ${terms.leaseId}`);
    const known = leases.get(leaseId);
    if (known) {
      if (JSON.stringify(known.terms) !== JSON.stringify(terms)) fail(`lease ${leaseId} created twice with different terms`);
      return;
    }
    const [trade] = storage.sql.exec<{ bid_id: string; ask_id: string; price: number; gpus: number }>('SELECT * FROM trades WHERE lease_id = ?', leaseId).toArray();
    if (!trade) fail(`lease ${leaseId} created without a trade in the book`);
    if (trade!.bid_id !== terms.bidId || trade!.ask_id !== terms.askId || trade!.price !== terms.price || trade!.gpus !== terms.gpus) fail(`lease ${leaseId}'s terms differ from its trade`);
    const improvement = BigInt(terms.improvement);
    if (improvement > 0n) await posted(release({ owner: terms.renterId, asset: terms.asset, amount: improvement, idempotencyKey: `lease:${leaseId}:improvement`, reference: leaseId }));
    leases.set(leaseId, { terms, ended: false, returned: false, nodeSilent: false });
  }

  async function posted(rule: ReturnType<typeof credit>): Promise<boolean> {
    if (!rule.ok) throw new Error(rule.problem);
    const p = await postTransaction(money, rule.spec, { now: clock });
    return p.ok;
  }

  async function newInstance(): Promise<void> {
    instance = ++instances;
    host = new SimObjectHost(storage);
    book = new RegionBook(host, envFor(instance));
    await host.ready;
  }

  /** The object is gone: what it was doing never resumes, and nothing is rebuilt until it is needed. */
  function evict(): void {
    report.faults.evicted += 1;
    pending.length = 0;
    if (alarmRunning && storage.alarmAt === null) storage.alarmAt = clock;
    alarmRunning = false;
    instance = ++instances;
    inFlight = 0;
    book = null;
    host = null;
  }

  /** The runtime builds the object for a call or an alarm when none is live. */
  const live = (): Promise<BookLike> =>
    book ? Promise.resolve(book) : (building ??= newInstance().finally(() => (building = null))).then(() => book!);

  /** Starts an entry point (on a live instance, built for it if need be); its outcome is counted, never awaited. */
  function call<T>(name: string, fn: (b: BookLike) => Promise<T>, onSettled?: (answer: T | undefined, ok: boolean) => void): void {
    count(report.calls, name);
    inFlight += 1;
    const inst = book ? instance : null;
    live().then((b) => {
      if (inst !== null && inst !== instance) return; // evicted before it started: the caller gets no answer
      start(b, instance);
    });
    const start = (b: BookLike, inst: number) => fn(b).then(
      (v) => {
        if (inst !== instance) return;
        inFlight -= 1;
        const a = v as { ok?: boolean; reason?: string } | null;
        count(report.outcomes, `${name}:${a && typeof a === 'object' && a.ok === false ? a.reason : 'ok'}`);
        try {
          onSettled?.(v, true);
        } catch {
          // kept in `broken`
        }
      },
      (err: unknown) => {
        if (err instanceof BookInvariantError) return;
        if (inst !== instance) return;
        inFlight -= 1;
        count(report.outcomes, `${name}:threw`);
        onSettled?.(undefined, false);
      },
    );
  }

  function fireAlarm(): void {
    alarmRunning = true;
    storage.alarmAt = null;
    call('alarm', (b) => b.alarm(), (_v, ok) => {
      if (!ok && storage.alarmAt === null) storage.alarmAt = clock;
      alarmRunning = false;
    });
  }

  // ---- The market's participants ------------------------------------------------------------

  const price = () => rng.int(20, 40) * 100_000; // 2.00–4.00 USD per GPU-hour

  async function newBid(): Promise<void> {
    const renterId = rng.pick(renters);
    const gpus = rng.int(1, 3);
    const durationS = rng.pick([600, 1800, 3600]);
    const p = price();
    const id = `ord_${tag}_${++orderSeq}`;
    const holdAmount = maxCost({ price: p, gpus, durationS, payWith: 'USD' }, PRICING);
    const order: BidOrder = {
      id,
      side: 'buy',
      accountId: renterId,
      region: REGION,
      gpuModel: MODEL,
      gpus,
      price: p,
      durationS,
      minReliability: rng.pick([0, 0, 0.5, 0.9]),
      verifiedOnly: rng.chance(0.2),
      tif: rng.chance(0.15) ? 'ioc' : 'gtc',
      expiresAt: clock + rng.int(5_000, 1_800_000),
      payWith: 'USD',
      holdAmount: holdAmount.toString(),
      gridUsdRate: PRICING.gridUsdRate.toString(),
      gridDiscountBps: PRICING.gridDiscountBps.toString(),
      workload: { image: 'sim/workload:1', command: [], env: {}, ports: [] } as unknown as BidOrder['workload'],
    };
    // The route holds the escrow first; without the funds it answers 402 and the book never hears.
    if (!(await posted(hold({ owner: renterId, asset: 'USD', amount: holdAmount, idempotencyKey: `order:${id}:hold`, reference: id })))) {
      count(report.outcomes, 'bid:no-funds');
      return;
    }
    orders.set(id, { order, answered: false, refused: false });
    place(order);
  }

  function newAsk(): void {
    const node = rng.pick(nodes);
    const id = `ord_${tag}_${++orderSeq}`;
    const order: AskOrder = {
      id,
      side: 'sell',
      accountId: node.providerId,
      region: REGION,
      gpuModel: MODEL,
      nodeId: node.id,
      gpus: rng.int(1, node.gpus),
      // Few ask prices, so asks share levels and their time priority decides who is matched.
      price: rng.int(20, 24) * 100_000,
      minDurationS: rng.pick([60, 600]),
      maxDurationS: rng.pick([1800, 7200]),
      expiresAt: clock + rng.int(60_000, 3_600_000),
      reliability: node.reliabilityPpm / 1_000_000,
      verified: node.verified,
      nodeGpuIndices: Array.from({ length: node.gpus }, (_, g) => g),
    };
    orders.set(id, { order, answered: false, refused: false });
    place(order);
  }

  function place(order: BookOrder): void {
    call(`place:${order.side}`, (b) => b.place(order, clock), (answer, ok) => {
      if (!ok || !answer) return;
      const o = orders.get(order.id)!;
      if (!answer.ok) {
        if (order.side === 'buy') fail(`the book refused bid ${order.id}: ${answer.reason}`);
        // Only a first placement may be refused: the route then deletes the order.
        if (!o.answered) o.refused = true;
      }
      o.answered = true;
    });
  }

  function cancel(): void {
    const open = [...orders.values()].filter((o) => !o.refused);
    if (open.length === 0) return;
    const o = rng.pick(open);
    if (rng.chance(0.1)) {
      // Another account's cancel changes nothing.
      const other = `acc_x${tag}`;
      call('cancel:foreign', (b) => b.cancel(o.order.id, other, undefined, clock), (answer, ok) => {
        if (ok && answer !== null) fail(`another account cancelled ${o.order.id}`);
      });
      return;
    }
    call(`cancel:${o.order.side}`, (b) => b.cancel(o.order.id, o.order.accountId, o.answered ? undefined : o.order, clock));
  }

  function abandon(): void {
    const unanswered = [...orders.values()].filter((o) => !o.answered && !o.refused).map((o) => o.order);
    if (unanswered.length === 0) return;
    call('abandonUnplaced', (b) => b.abandonUnplaced(unanswered, clock));
  }

  function nodeUpdate(): void {
    const online: string[] = [];
    const offline: string[] = [];
    for (const n of nodes) {
      const r = rng.next();
      if (r < 0.2) offline.push(n.id);
      else if (r < 0.8) online.push(n.id);
    }
    const trust: Record<string, { reliabilityPpm: number; verified: boolean }> = {};
    if (rng.chance(0.3)) for (const n of nodes) trust[n.id] = { reliabilityPpm: n.reliabilityPpm, verified: n.verified };
    call('setNodes', (b) => b.setNodes({ online, offline, trust }, clock));
  }

  function trustChange(): void {
    const n = rng.pick(nodes);
    n.reliabilityPpm = rng.pick([400_000, 700_000, 950_000, 1_000_000]);
    n.verified = rng.chance(0.6);
    const t = { reliabilityPpm: n.reliabilityPpm, verified: n.verified };
    call('setNodeTrust', (b) => b.setNodeTrust(n.id, t, clock));
  }

  /** A lease ends (its money goes back: billing is not this simulator's business) and its GPUs return. */
  async function endLease(): Promise<void> {
    const live = [...leases.values()].filter((l) => !l.ended);
    const waiting = [...leases.values()].filter((l) => l.ended && !l.returned);
    if (waiting.length > 0 && (live.length === 0 || rng.chance(0.5))) return returnGpus(rng.pick(waiting));
    if (live.length === 0) return;
    const l = rng.pick(live);
    await posted(release({ owner: l.terms.renterId, asset: l.terms.asset, amount: BigInt(l.terms.amount), idempotencyKey: `lease:${l.terms.leaseId}:refund`, reference: l.terms.leaseId }));
    l.ended = true;
    l.nodeSilent = rng.chance(0.2);
    returnGpus(l);
  }

  function returnGpus(l: SimLease): void {
    call('leaseEnded', (b) => b.leaseEnded(l.terms.leaseId, clock, { nodeSilent: l.nodeSilent }), (_v, ok) => {
      if (ok) l.returned = true;
    });
  }

  // ---- Faults ---------------------------------------------------------------------------------

  async function carryOut(i: number): Promise<void> {
    const o = pending.splice(i, 1)[0]!;
    report.operations += 1;
    const r = faultsOn ? rng.next() : 1;
    if (r < opt.evictRate) {
      // Evicted at this await: the call may or may not have been carried out.
      if (rng.chance(0.5)) await o.run().catch(() => undefined);
      evict();
      return;
    }
    await carryOutOp(o, r, opt, report.faults, { rethrow: (err) => err instanceof BookInvariantError });
  }

  /** Lets every call run up to its next outside await. */
  const settle = () => quiesce(() => `${pending.length}:${inFlight}:${alarmRunning}:${host?.background ?? 0}:${instance}:${book !== null}:${leases.size}:${Object.values(report.outcomes).reduce((a, b) => a + b, 0)}`).then(() => {
    if (broken) throw broken;
  });

  // ---- The invariants -------------------------------------------------------------------------

  const big = (v: unknown) => (v === null || v === undefined ? 0n : BigInt(v as number | bigint));
  async function balances(owner: string): Promise<{ available: bigint; held: bigint }> {
    const rows = (await money.execute({ sql: "SELECT kind, balance FROM ledger_accounts WHERE owner_id = ? AND asset = 'USD'", args: [owner] })).rows;
    return { available: big(rows.find((r) => r.kind === 'available')?.balance), held: big(rows.find((r) => r.kind === 'held')?.balance) };
  }
  const sql = storage.sql;

  async function checkInvariants(final: boolean): Promise<void> {
    for (const r of (await money.execute('SELECT asset, SUM(balance) AS s FROM ledger_accounts GROUP BY asset')).rows) if (big(r.s) !== 0n) fail(`Σ ${String(r.asset)} balances = ${String(r.s)}, not 0`);
    for (const renter of renters) {
      const b = await balances(renter);
      if (b.available < 0n || b.held < 0n) fail(`${renter} has a negative balance`);
    }

    // The book's memory is what it would rebuild from its storage.
    const probeHost = new SimObjectHost(storage);
    const probe = new RegionBook(probeHost, envFor(-1));
    await probeHost.ready;
    // With no live instance (evicted, not yet rebuilt) there is no memory to compare.
    const liveBook = book ?? probe;
    const [liveSnap, probeSnap] = [JSON.stringify(await liveBook.snapshot(1000)), JSON.stringify(await probe.snapshot(1000))];
    if (liveSnap !== probeSnap) fail(`the book's memory differs from its storage:\n  memory  ${liveSnap}\n  storage ${probeSnap}`);
    const byId = (asks: unknown) => JSON.stringify((asks as Array<{ id: string }>).toSorted((a, b) => a.id.localeCompare(b.id)));
    const [liveAsks, probeAsks] = [byId(await liveBook.openAsks(clock)), byId(await probe.openAsks(clock))];
    if (liveAsks !== probeAsks) fail(`the book's open asks differ from its storage:\n  memory  ${liveAsks}\n  storage ${probeAsks}`);
    const liveEngine = (liveBook as unknown as { book: EngineView }).book;
    const probeEngine = (probe as unknown as { book: EngineView }).book;
    // And it would match in the same order: price, then time priority.
    const [liveQueue, probeQueue] = [JSON.stringify(liveEngine.queueOrder()), JSON.stringify(probeEngine.queueOrder())];
    if (liveQueue !== probeQueue) fail(`the book would match in another order after a restart:\n  memory  ${liveQueue}\n  storage ${probeQueue}`);
    for (const n of nodes) {
      if (liveEngine.isNodeOnline(n.id) !== probeEngine.isNodeOnline(n.id)) fail(`node ${n.id}: online ${liveEngine.isNodeOnline(n.id)} in memory, ${probeEngine.isNodeOnline(n.id)} in storage`);
      if (JSON.stringify(liveEngine.trustOf(n.id)) !== JSON.stringify(probeEngine.trustOf(n.id))) fail(`node ${n.id}: trust differs between memory and storage`);
    }

    // No GPU is offered or leased twice.
    for (const n of nodes) {
      const offered = sql.exec<{ s: number | null }>("SELECT sum(free_gpus) AS s FROM orders WHERE node_id = ? AND status = 'open'", n.id).one().s ?? 0;
      const leased = sql.exec<{ c: number }>('SELECT count(*) AS c FROM allocations WHERE node_id = ?', n.id).one().c;
      if (offered + leased > n.gpus) fail(`node ${n.id} has ${n.gpus} GPUs, ${offered} offered and ${leased} leased`);
    }

    // Every new trade honours both orders and the node's trust, and fills its bid once.
    const offline = new Set(sql.exec<{ node_id: string }>('SELECT node_id FROM nodes_offline').toArray().map((r) => r.node_id));
    for (const t of sql.exec<{ id: string; bid_id: string; ask_id: string; lease_id: string; price: number; gpus: number; duration_s: number }>('SELECT * FROM trades').toArray()) {
      if (seenTrades.has(t.id)) continue;
      seenTrades.add(t.id);
      report.trades += 1;
      const bid = orders.get(t.bid_id)?.order as BidOrder | undefined;
      const ask = orders.get(t.ask_id)?.order as AskOrder | undefined;
      if (!bid || !ask || bid.side !== 'buy' || ask.side !== 'sell') fail(`trade ${t.id} joins orders that are not a bid and an ask`);
      if (t.price < ask!.price || t.price > bid!.price) fail(`trade ${t.id} at ${t.price} outside ask ${ask!.price} and bid ${bid!.price}`);
      if (t.gpus !== bid!.gpus || t.duration_s !== bid!.durationS || t.duration_s < ask!.minDurationS || t.duration_s > ask!.maxDurationS) fail(`trade ${t.id} does not fit its orders`);
      if (offline.has(ask!.nodeId)) fail(`trade ${t.id} matched node ${ask!.nodeId}, which the book has offline`);
      const trust = liveEngine.trustOf(ask!.nodeId) ?? { reliability: ask!.reliability, verified: ask!.verified };
      if (trust.reliability < bid!.minReliability || (bid!.verifiedOnly && !trust.verified)) fail(`trade ${t.id} matched bid ${bid!.id} (min ${bid!.minReliability}, verified only ${bid!.verifiedOnly}) to a node trusted ${JSON.stringify(trust)}`);
      const fills = sql.exec<{ c: number }>('SELECT count(*) AS c FROM trades WHERE bid_id = ?', t.bid_id).one().c;
      if (fills !== 1) fail(`bid ${t.bid_id} filled ${fills} times`);
      const status = sql.exec<{ status: string }>('SELECT status FROM orders WHERE id = ?', t.bid_id).one().status;
      if (status !== 'filled') fail(`bid ${t.bid_id} traded but is ${status}`);
    }

    const effects = sql.exec<{ c: number }>('SELECT count(*) AS c FROM effects').one().c;
    const dead = sql.exec<{ body: string; error: string }>('SELECT body, error FROM dead_effects').toArray();
    if (dead.length > 0) fail(`an effect was refused for good: ${dead[0]!.error} ${dead[0]!.body}`);
    const quiescent = pending.length === 0 && inFlight === 0 && !alarmRunning && (host?.background ?? 0) === 0;
    if (!quiescent) return;
    report.quiescentChecks += 1;
    // Nothing in flight: whatever the outbox still holds must have an alarm to carry it out
    // when it is due (not, say, at the expiry of an order half an hour away).
    if (effects > 0) {
      // Only the oldest effect of each key may run; those behind it wait for it.
      const due = sql.exec<{ t: number }>('SELECT min(e.not_before) AS t FROM effects e WHERE NOT EXISTS (SELECT 1 FROM effects p WHERE p.key = e.key AND p.seq < e.seq)').one().t;
      // A drain that failed sets the alarm at most one backoff (60 s) ahead, possibly while
      // other effects fell due; anything later leaves money waiting for an unrelated alarm.
      if (storage.alarmAt === null || storage.alarmAt > Math.max(due, clock) + 60_000) fail(`${effects} effect(s) due at ${due - clock} ms wait in the outbox with nothing in flight and the alarm ${storage.alarmAt === null ? 'unset' : `${storage.alarmAt - clock} ms away`}`);
      return;
    }

    // The outbox is empty: every lease exists, and each renter holds exactly what its open
    // bids, its unplaced bids and its live leases account for.
    for (const t of sql.exec<{ lease_id: string }>('SELECT lease_id FROM trades').toArray()) if (!leases.has(t.lease_id)) fail(`trade's lease ${t.lease_id} was never created`);
    const status = new Map(sql.exec<{ id: string; status: string }>("SELECT id, status FROM orders WHERE side = 'buy'").toArray().map((r) => [r.id, r.status]));
    for (const renter of renters) {
      let expected = 0n;
      for (const o of orders.values()) {
        if (o.order.side !== 'buy' || o.order.accountId !== renter) continue;
        const s = status.get(o.order.id);
        if (s === undefined || s === 'open') expected += BigInt(o.order.holdAmount);
      }
      for (const l of leases.values()) if (l.terms.renterId === renter && !l.ended) expected += BigInt(l.terms.amount);
      const b = await balances(renter);
      if (b.held !== expected) fail(`${renter} holds ${b.held}; its open bids and live leases account for ${expected}`);
      if (final && (b.held !== 0n || b.available !== funded.get(renter))) fail(`${renter} ends with ${b.available} available and ${b.held} held, funded with ${funded.get(renter)}`);
    }
    if (final) {
      const open = sql.exec<{ c: number }>("SELECT count(*) AS c FROM orders WHERE status = 'open'").one().c;
      const allocated = sql.exec<{ c: number }>('SELECT count(*) AS c FROM allocations').one().c;
      if (open > 0 || allocated > 0) fail(`after the wind-down ${open} order(s) are open and ${allocated} GPU(s) allocated`);
    }
  }

  // ---- The run --------------------------------------------------------------------------------

  return withSimulatedWorld(() => clock, report.logged, async () => {
    for (const renter of renters) {
      const amount = BigInt(rng.int(20, 60)) * 1_000_000n;
      funded.set(renter, amount);
      await posted(credit({ owner: renter, asset: 'USD', amount, source: 'faucet', idempotencyKey: `sim:${tag}:${renter}`, reference: null }));
    }
    await live();
    try {
      await settle();
      for (report.steps = 1; report.steps <= opt.steps; report.steps++) {
        // Every step ends settled (below), so each decision sees all that came before it.
        const r = rng.next();
        const due = storage.alarmAt !== null && storage.alarmAt <= clock && !alarmRunning;
        if (pending.length > 0 && r < 0.45) await carryOut(rng.int(0, pending.length - 1));
        else if (due && r < 0.55) fireAlarm();
        else if (r < 0.62) await newBid();
        else if (r < 0.69) newAsk();
        else if (r < 0.71) {
          const again = [...orders.values()].filter((o) => !o.refused);
          if (again.length > 0) place(rng.pick(again).order);
        } else if (r < 0.75) cancel();
        else if (r < 0.77) abandon();
        else if (r < 0.82) nodeUpdate();
        else if (r < 0.85) trustChange();
        else if (r < 0.9) await endLease();
        else if (r < 0.985) clock += rng.int(500, 20_000);
        else if (r < 0.995) clock += rng.int(60_000, 1_200_000);
        else clock -= rng.int(1_000, 10_000);
        await settle();
        await checkInvariants(false);
      }

      // Wind down: no more faults; unplaced orders are abandoned, open orders cancelled, leases
      // ended; alarms fire until the outbox is empty.
      faultsOn = false;
      const idle = async () => {
        for (let guard = 0; guard < 10_000; guard++) {
          await settle();
          if (pending.length > 0) {
            await carryOut(0);
            continue;
          }
          if (inFlight > 0 || alarmRunning || (host?.background ?? 0) > 0) continue;
          const effects = sql.exec<{ c: number }>('SELECT count(*) AS c FROM effects').one().c;
          if (effects === 0) return;
          if (storage.alarmAt === null) fail(`${effects} effect(s) wait in the outbox with nothing in flight and no alarm set`);
          clock = Math.max(clock, storage.alarmAt!);
          fireAlarm();
        }
        fail('the wind-down did not settle');
      };
      await idle();
      abandon();
      await idle();
      for (const o of orders.values()) if (!o.refused) call('cancel:wind-down', (b) => b.cancel(o.order.id, o.order.accountId, o.answered ? undefined : o.order, clock));
      await idle();
      for (const l of leases.values()) {
        if (!l.ended) {
          await posted(release({ owner: l.terms.renterId, asset: l.terms.asset, amount: BigInt(l.terms.amount), idempotencyKey: `lease:${l.terms.leaseId}:refund`, reference: l.terms.leaseId }));
          l.ended = true;
        }
        if (!l.returned) returnGpus(l);
      }
      await idle();
      // GPUs that went back may have reopened asks, and those may have matched again.
      for (let round = 0; round < 5 && [...leases.values()].some((l) => !l.ended); round++) {
        for (const o of orders.values()) if (!o.refused) call('cancel:wind-down', (b) => b.cancel(o.order.id, o.order.accountId, o.answered ? undefined : o.order, clock));
        await idle();
        for (const l of leases.values()) {
          if (l.ended) continue;
          await posted(release({ owner: l.terms.renterId, asset: l.terms.asset, amount: BigInt(l.terms.amount), idempotencyKey: `lease:${l.terms.leaseId}:refund`, reference: l.terms.leaseId }));
          l.ended = true;
          returnGpus(l);
        }
        await idle();
      }
      await settle();
      await checkInvariants(true);
      if (report.quiescentChecks === 0) fail('no step was quiescent');
      return report;
    } finally {
      storage.close();
    }
  });
}
