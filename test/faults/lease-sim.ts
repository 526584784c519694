// A deterministic fault simulator for the Lease object (docs/testing.md, "Fault injection").
//
// It runs the Lease's own code (LeaseCore, runLease and performStep from src/leases/steps.ts, the
// pure lifecycle, the ledger rules and store) against the real libSQL engine, and takes the
// place of everything around it: the object's storage and alarm, the runtime that evicts it, the
// node's mailbox, the book, the webhook queue and the clock. Every await the lease makes outside
// itself (each libSQL call, each storage write, each port) becomes an operation that waits for
// the scheduler, which, drawing from one seeded generator:
//   - starts entry points on random leases (runner events, heartbeat confirmations and their
//     redeliveries, terminate, extend, due alarms), so calls on different leases interleave at
//     every await and compete for one renter's money;
//   - carries out a waiting operation, or fails it before it runs (libSQL unavailable), or runs
//     it and loses the answer (a timeout), or evicts its object there (the object is rebuilt from
//     storage; what it was doing never resumes; an alarm that was running is retried);
//   - moves the clock, by small steps and by jumps, forward and back.
// After every step it checks the invariants (checkInvariants below). A seed replays exactly:
// the same seed draws the same decisions, and every decision waits for the previous one.
import type { Client, InStatement } from '@libsql/client/web';
import type { Command } from '../../src/contracts/runner.ts';
import { leaseConfig, type LeaseConfig } from '../../src/leases/config.ts';
import { isTerminal, nextStep, type LeaseRecord } from '../../src/leases/lifecycle.ts';
import { addPoint, billFor, confirmedMs, type Span } from '../../src/leases/metering.ts';
import { LeaseCore, RELIABILITY_PENALTY_PPM, type LeasePorts, type LeaseStorage } from '../../src/leases/steps.ts';
import { credit, hold } from '../../src/ledger/rules.ts';
import { postTransaction } from '../../src/ledger/store.ts';
import type { LeaseTerms } from '../../src/market/orders.ts';
import { carryOutOp, generator, quiesce, withInlineDigest, type FaultRates, type PendingOp, type SimRunReport } from './do-host.ts';

export interface SimOptions extends FaultRates {
  /** Scheduler decisions before the run winds down. */
  steps: number;
  /** Leases of the one renter (each on its own node). */
  leases: number;
}

export const DEFAULT_OPTIONS: SimOptions = { steps: 600, leases: 3, failRate: 0.08, lostRate: 0.15, evictRate: 0.04 };

export interface SimReport extends SimRunReport {
  /** How each lease ended: its state, the reason, what it billed and refunded. */
  endings: string[];
}

/** A broken invariant, with the seed and the step that broke it. */
export class InvariantError extends Error {}

interface Op extends PendingOp {
  owner: string;
}

/** One lease as the simulation holds it: its storage, its current instance and what was sent to it. */
interface SimLease {
  id: string;
  terms: LeaseTerms;
  nodeId: string;
  stored: LeaseRecord | undefined;
  alarmAt: number | null;
  /** The alarm handler running (retried if its instance is evicted or it throws). */
  alarmRunning: number | null;
  core: LeaseCore;
  instance: number;
  /** Calls made on the current instance that have not settled. */
  inFlight: number;
  /** Every confirmation point and the started report sent (the upper bound of what may be billed). */
  points: number[];
  startedAt: number | null;
  /** Confirmation batches sent, for redelivery. */
  batches: number[][];
  extensionKeys: string[];
}

const MICRO = 1_000_000n;

export function runLeaseSeed(money: Client, seed: number, options: Partial<SimOptions> = {}): Promise<SimReport> {
  return withInlineDigest(() => runSeed(money, seed, options));
}

async function runSeed(money: Client, seed: number, options: Partial<SimOptions>): Promise<SimReport> {
  const opt = { ...DEFAULT_OPTIONS, ...options };
  const rng = generator(seed);
  const config: LeaseConfig = leaseConfig({ LEASE_PROVISION_TIMEOUT_S: '120', LEASE_SETTLE_S: '60', NODE_GRACE_S: '45', PLATFORM_FEE_BPS: '500' });
  const tag = `s${seed}_${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const renterId = `acc_r${tag}`;
  const providerId = `acc_p${tag}`;
  let clock = Date.UTC(2026, 0, 1) + seed * 1000;
  const pending: Op[] = [];
  const report: SimReport = { seed, steps: 0, operations: 0, faults: { failed: 0, lost: 0, evicted: 0 }, calls: {}, outcomes: {}, quiescentChecks: 0, endings: [] };
  let instances = 0;
  let faultsOn = true;
  const mailbox = new Map<string, Command>();
  const returned = new Map<string, number>();
  const emitted = new Set<string>();
  const fail = (what: string): never => {
    throw new InvariantError(`seed ${seed}, step ${report.steps}: ${what}`);
  };

  /** An outside call of `owner`'s current instance: it waits for the scheduler. */
  function op<T>(lease: SimLease, instance: number, label: string, run: () => Promise<T>): Promise<T> {
    if (instance !== lease.instance) return new Promise<T>(() => {}); // an evicted instance never resumes
    return new Promise<T>((resolve, reject) => pending.push({ owner: lease.id, instance, label, run, resolve: resolve as (v: unknown) => void, reject }));
  }

  function faultyClient(lease: SimLease, instance: number): Client {
    const wrap = {
      execute: (stmt: InStatement) => op(lease, instance, 'libsql.execute', () => money.execute(stmt)),
      batch: (stmts: InStatement[], mode?: 'write' | 'read' | 'deferred') => op(lease, instance, 'libsql.batch', () => money.batch(stmts, mode)),
    };
    return new Proxy(wrap, {
      get(target, prop) {
        if (prop in target) return target[prop as keyof typeof target];
        if (prop === 'then') return undefined;
        return () => {
          throw new Error(`the lease used libSQL's ${String(prop)}, which the simulator does not carry`);
        };
      },
    }) as unknown as Client;
  }

  function newCore(lease: SimLease): LeaseCore {
    const instance = ++instances;
    lease.instance = instance;
    lease.inFlight = 0;
    const storage: LeaseStorage = {
      get: async () => (lease.stored ? structuredClone(lease.stored) : undefined),
      put: (rec) =>
        op(lease, instance, 'storage.put', async () => {
          lease.stored = structuredClone(rec);
        }),
      setAlarm: (at) =>
        op(lease, instance, 'storage.setAlarm', async () => {
          lease.alarmAt = at;
        }),
    };
    const client = faultyClient(lease, instance);
    const ports: LeasePorts = {
      money: client,
      client,
      now: () => clock,
      mail: (nodeId, _region, command) =>
        op(lease, instance, 'mailbox', async () => {
          if (nodeId !== lease.nodeId) fail(`lease ${lease.id} mailed node ${nodeId}`);
          if (!mailbox.has(command.id)) mailbox.set(command.id, command);
        }),
      returnGpus: (t) =>
        op(lease, instance, 'book.leaseEnded', async () => {
          returned.set(t.leaseId, (returned.get(t.leaseId) ?? 0) + 1);
        }),
      publishTrust: () => op(lease, instance, 'book.trust', async () => undefined),
      emit: (event) =>
        op(lease, instance, 'webhooks', async () => {
          emitted.add(event.id);
        }),
      leaseToken: async () => 'token',
      warn: () => undefined,
    };
    return new LeaseCore(storage, () => ports, config);
  }

  // The renter's money: enough for every lease, and a little for extensions, so that some
  // extensions are refused for want of funds while others compete for what is left.
  const leases: SimLease[] = [];
  const posted = (r: ReturnType<typeof credit>) => {
    if (!r.ok) throw new Error(r.problem);
    return postTransaction(money, r.spec, { now: clock }).then((p) => {
      if (!p.ok) throw new Error(`setup posting refused: ${p.reason}`);
    });
  };
  const price = 3_600_000; // 3.60 USD per GPU-hour: 1,000 micro-USD per GPU-second
  let total = 0n;
  const plans = Array.from({ length: opt.leases }, (_, i) => ({ i, gpus: rng.int(1, 4), durationS: rng.pick([120, 300, 600]), improvement: BigInt(rng.int(0, 3)) * 10_000n }));
  for (const p of plans) total += BigInt(price) * BigInt(p.gpus) * BigInt(p.durationS) / 3600n + p.improvement;
  await posted(credit({ owner: renterId, asset: 'USD', amount: total + BigInt(rng.int(0, 600)) * 1000n, source: 'faucet', idempotencyKey: `sim:${tag}:credit`, reference: null }));
  for (const p of plans) {
    const id = `lse_${tag}_${p.i}`;
    const nodeId = `node_${tag}_${p.i}`;
    const amount = BigInt(price) * BigInt(p.gpus) * BigInt(p.durationS) / 3600n;
    const bidId = `ord_b${tag}_${p.i}`;
    // The bid's hold, as the book placed it when the order was accepted.
    await posted(hold({ owner: renterId, asset: 'USD', amount: amount + p.improvement, idempotencyKey: `sim:${tag}:bid:${p.i}`, reference: bidId }));
    await money.execute({
      sql: "INSERT INTO nodes (id, account_id, region, hostname, machine, status, reliability_ppm) VALUES (?, ?, 'sim', 'sim', '{}', 'online', 1000000)",
      args: [nodeId, providerId],
    });
    const terms: LeaseTerms = {
      leaseId: id,
      tradeId: `trd_${tag}_${p.i}`,
      bidId,
      askId: `ord_a${tag}_${p.i}`,
      renterId,
      providerId,
      nodeId,
      region: 'sim',
      gpuModel: 'h100-80gb',
      gpus: p.gpus,
      gpuIndices: Array.from({ length: p.gpus }, (_, g) => g),
      price,
      durationS: p.durationS,
      asset: 'USD',
      amount: amount.toString(),
      improvement: p.improvement.toString(),
      gridUsdRate: '1000000',
      gridDiscountBps: '0',
      maxDurationS: p.durationS + 600,
      workload: { image: 'sim', command: [], env: {}, ports: [] } as unknown as LeaseTerms['workload'],
      createdAt: clock,
    };
    const lease = { id, terms, nodeId, stored: undefined, alarmAt: null, alarmRunning: null, instance: 0, inFlight: 0, points: [], startedAt: null, batches: [], extensionKeys: [] } as unknown as SimLease;
    lease.core = newCore(lease);
    leases.push(lease);
  }

  /** Starts an entry point on the lease's current instance; its outcome is counted, never awaited. */
  function call(lease: SimLease, name: string, fn: (core: LeaseCore) => Promise<unknown>, onSettled?: (ok: boolean) => void) {
    report.calls[name] = (report.calls[name] ?? 0) + 1;
    const instance = lease.instance;
    lease.inFlight += 1;
    fn(lease.core).then(
      (v) => {
        if (instance !== lease.instance) return;
        lease.inFlight -= 1;
        const answer = v as { ok?: boolean; reason?: string } | null;
        const key = `${name}:${answer && typeof answer === 'object' && answer.ok === false ? answer.reason : 'ok'}`;
        report.outcomes[key] = (report.outcomes[key] ?? 0) + 1;
        onSettled?.(true);
      },
      () => {
        if (instance !== lease.instance) return;
        lease.inFlight -= 1;
        report.outcomes[`${name}:threw`] = (report.outcomes[`${name}:threw`] ?? 0) + 1;
        onSettled?.(false);
      },
    );
  }

  function evict(lease: SimLease) {
    report.faults.evicted += 1;
    for (let i = pending.length - 1; i >= 0; i--) if (pending[i]!.owner === lease.id) pending.splice(i, 1);
    // The runtime retries an alarm whose handler did not finish.
    if (lease.alarmRunning !== null && lease.alarmAt === null) lease.alarmAt = clock;
    lease.alarmRunning = null;
    lease.core = newCore(lease);
  }

  function fireAlarm(lease: SimLease) {
    lease.alarmRunning = lease.alarmAt;
    lease.alarmAt = null;
    call(lease, 'alarm', (core) => core.alarm(), (ok) => {
      if (!ok && lease.alarmAt === null) lease.alarmAt = clock;
      lease.alarmRunning = null;
    });
  }

  /** The runner and the renter: one input to one lease. */
  function input(lease: SimLease) {
    const r = rng.next();
    const iso = (t: number) => new Date(t).toISOString();
    if (r < 0.05) {
      call(lease, 'create', (core) => core.create(lease.terms));
    } else if (r < 0.15) {
      // `started`, sometimes repeated, with a clock that may be off either way.
      const at = clock + rng.int(-5_000, 2_000);
      lease.startedAt ??= Math.max(at, lease.terms.createdAt);
      lease.points.push(Math.min(Math.max(at, lease.terms.createdAt), clock));
      call(lease, 'event:started', (core) => core.event(lease.nodeId, { type: 'started', at: iso(at), ports: { '8080': 40_000 } }, clock));
    } else if (r < 0.6) {
      // A heartbeat batch's confirmations: recent points, sometimes out of order; or a redelivery.
      if (lease.batches.length > 0 && rng.chance(0.25)) {
        call(lease, 'confirm:redelivered', (core) => core.confirm(lease.nodeId, rng.pick(lease.batches), clock));
      } else {
        const points = Array.from({ length: rng.int(1, 4) }, () => clock - rng.int(0, 8_000));
        lease.batches.push(points);
        lease.points.push(...points);
        call(lease, 'confirm', (core) => core.confirm(lease.nodeId, points, clock));
      }
    } else if (r < 0.64) {
      call(lease, 'confirm:other-node', (core) => core.confirm(`node_other_${tag}`, [clock], clock));
    } else if (r < 0.68) {
      call(lease, 'event:exited', (core) => core.event(lease.nodeId, { type: 'exited', at: iso(clock - rng.int(0, 3_000)), exit_code: rng.int(0, 2) }, clock));
    } else if (r < 0.7) {
      call(lease, 'event:failed', (core) => core.event(lease.nodeId, { type: 'failed', at: iso(clock), reason: 'simulated failure' }, clock));
    } else if (r < 0.74) {
      call(lease, 'terminate', (core) => core.terminate(clock));
    } else {
      // Extensions, each paid at the lease's price; a retry reuses its key.
      const retry = lease.extensionKeys.length > 0 && rng.chance(0.3);
      const key = retry ? rng.pick(lease.extensionKeys) : `lease:${lease.id}:extend:${lease.extensionKeys.length}`;
      if (!retry) lease.extensionKeys.push(key);
      const seconds = Number(key.split(':').at(-1)) % 3 === 0 ? 120 : 60;
      const amount = (BigInt(price) * BigInt(lease.terms.gpus) * BigInt(seconds)) / 3600n;
      call(lease, 'extend', (core) => core.extend(key, seconds, amount, clock));
    }
  }

  /** Carries out (or fails, or loses) one waiting operation. */
  async function carryOut(i: number) {
    const o = pending.splice(i, 1)[0]!;
    const lease = leases.find((l) => l.id === o.owner)!;
    report.operations += 1;
    const r = faultsOn ? rng.next() : 1;
    if (r < opt.evictRate) {
      // Evicted at this await: the call may or may not have reached libSQL.
      if (rng.chance(0.5) && o.label.startsWith('libsql')) await o.run().catch(() => undefined);
      evict(lease);
      return;
    }
    const fallible = o.label.startsWith('libsql') || o.label === 'mailbox' || o.label.startsWith('book') || o.label === 'webhooks';
    await carryOutOp(o, r, opt, report.faults, { fallible });
  }

  /** Lets every call run up to its next outside await. */
  const settle = () =>
    quiesce(() => `${pending.length}:${leases.map((l) => `${l.inFlight}/${l.alarmRunning}`).join(',')}:${Object.values(report.outcomes).reduce((a, b) => a + b, 0)}:${mailbox.size}:${emitted.size}`);

  // ---- The invariants ----------------------------------------------------------------------

  const rowsOf = async (sql: string, args: Array<string | number | bigint> = []) => (await money.execute({ sql, args })).rows;
  const big = (v: unknown) => (v === null || v === undefined ? 0n : BigInt(v as number | bigint));

  async function balances(owner: string): Promise<{ available: bigint; held: bigint }> {
    const rows = await rowsOf("SELECT kind, balance FROM ledger_accounts WHERE owner_id = ? AND asset = 'USD'", [owner]);
    return { available: big(rows.find((r) => r.kind === 'available')?.balance), held: big(rows.find((r) => r.kind === 'held')?.balance) };
  }

  /** What the renter paid for the lease (captures from held), per the ledger. */
  async function captured(leaseId: string): Promise<bigint> {
    const rows = await rowsOf(
      `SELECT COALESCE(SUM(-e.amount), 0) AS s FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id
       WHERE t.reference = ? AND t.kind = 'capture' AND e.owner_id = ? AND e.account_kind = 'held'`,
      [leaseId, renterId],
    );
    return big(rows[0]!.s);
  }

  /** The most the lease may have billed: every point ever sent counted, up to its paid amount. */
  function billBound(lease: SimLease, rec: LeaseRecord | undefined): bigint {
    if (lease.startedAt === null) return 0n;
    let spans: Span[] = [];
    for (const p of lease.points) spans = addPoint(spans, p, config.graceMs);
    const ms = confirmedMs(spans, lease.terms.createdAt, Number.MAX_SAFE_INTEGER);
    const bill = billFor({ price, gpus: lease.terms.gpus, asset: 'USD', gridUsdRate: MICRO, gridDiscountBps: 0n }, ms);
    const cap = BigInt(rec?.terms.amount ?? lease.terms.amount);
    return bill < cap ? bill : cap;
  }

  async function checkInvariants(final: boolean) {
    // Σ of every asset's balances is zero; no account that may not go negative is negative.
    for (const r of await rowsOf('SELECT asset, SUM(balance) AS s FROM ledger_accounts GROUP BY asset')) if (big(r.s) !== 0n) fail(`Σ ${String(r.asset)} balances = ${String(r.s)}, not 0`);
    for (const owner of [renterId, providerId]) {
      const b = await balances(owner);
      if (b.available < 0n || b.held < 0n) fail(`${owner} has a negative balance: ${JSON.stringify({ available: String(b.available), held: String(b.held) })}`);
    }
    let expectedHeld = 0n;
    let quiescent = pending.length === 0;
    for (const lease of leases) {
      const rec = lease.stored;
      const paid = await captured(lease.id);
      // Never billed beyond what heartbeats confirmed, nor beyond the paid time; never twice.
      const bound = billBound(lease, rec);
      if (paid > bound) fail(`lease ${lease.id} captured ${paid} µUSD, more than its confirmed time allows (${bound})`);
      const [node] = await rowsOf('SELECT reliability_ppm FROM nodes WHERE id = ?', [lease.nodeId]);
      if (Number(node!.reliability_ppm) < 1_000_000 - RELIABILITY_PENALTY_PPM) fail(`node ${lease.nodeId} penalised more than once: ${String(node!.reliability_ppm)}`);
      if ((returned.get(lease.id) ?? 0) > 0 && !(rec && isTerminal(rec.state))) fail(`lease ${lease.id}'s GPUs were returned while it is ${rec?.state ?? 'not created'}`);
      if (lease.inFlight > 0 || (rec && nextStep(rec, clock, config) !== null)) quiescent = false;
      if (rec) {
        if (BigInt(rec.billed) > BigInt(rec.terms.amount)) fail(`lease ${lease.id} billed ${rec.billed}, more than its amount ${rec.terms.amount}`);
        // What the record says the lease still holds: the improvement until booked, then the
        // amount (with applied extensions) less what was billed, until the refund.
        expectedHeld += (rec.steps.booked ? 0n : BigInt(rec.terms.improvement)) + (rec.steps.refunded ? 0n : BigInt(rec.terms.amount) - BigInt(rec.billed));
      } else {
        expectedHeld += BigInt(lease.terms.amount) + BigInt(lease.terms.improvement);
      }
    }
    if (quiescent) {
      // Nothing in flight and nothing due: the ledger and the records agree exactly.
      report.quiescentChecks += 1;
      const held = (await balances(renterId)).held;
      if (held !== expectedHeld) fail(`the renter holds ${held} µUSD; the leases' records account for ${expectedHeld}`);
      for (const lease of leases) {
        const rec = lease.stored;
        if (!rec) continue;
        const paid = await captured(lease.id);
        if (paid !== BigInt(rec.billed)) fail(`lease ${lease.id}: the ledger captured ${paid}, the record billed ${rec.billed}`);
      }
    }
    if (final) {
      if (!quiescent) fail(`the run did not settle: ${pending.length} operations waiting, ${leases.map((l) => `${l.id}=${l.stored?.state}/${l.inFlight}`).join(', ')}`);
      const renter = await balances(renterId);
      if (renter.held !== 0n) fail(`the renter still holds ${renter.held} µUSD after every lease ended`);
      const [paid] = await rowsOf(
        `SELECT COALESCE(SUM(CASE WHEN e.owner_id = ? AND e.account_kind = 'held' THEN -e.amount ELSE 0 END), 0) AS debit,
                COALESCE(SUM(CASE WHEN e.owner_id = ? THEN e.amount ELSE 0 END), 0) AS provider,
                COALESCE(SUM(CASE WHEN e.account_kind = 'fees' THEN e.amount ELSE 0 END), 0) AS fees
         FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id WHERE t.kind = 'capture' AND t.reference IN (${leases.map(() => '?').join(',')})`,
        [renterId, providerId, ...leases.map((l) => l.id)],
      );
      if (big(paid!.debit) !== big(paid!.provider) + big(paid!.fees)) fail(`renter debit ${String(paid!.debit)} ≠ provider credit ${String(paid!.provider)} + fees ${String(paid!.fees)}`);
      for (const lease of leases) {
        const rec = lease.stored;
        if (!rec) continue;
        if (!isTerminal(rec.state) || !rec.steps.refunded) fail(`lease ${lease.id} did not reach a final state: ${rec.state}`);
        if (returned.get(lease.id) === undefined) fail(`lease ${lease.id} ended without its GPUs going back to the book`);
        const [row] = await rowsOf('SELECT state FROM leases WHERE id = ?', [lease.id]);
        if (row?.state !== rec.state) fail(`lease ${lease.id}'s row says ${String(row?.state)}, its record ${rec.state}`);
        const [node] = await rowsOf('SELECT reliability_ppm FROM nodes WHERE id = ?', [lease.nodeId]);
        const penalty = rec.state === 'failed' ? RELIABILITY_PENALTY_PPM : 0;
        if (Number(node!.reliability_ppm) !== 1_000_000 - penalty) fail(`node ${lease.nodeId} has reliability ${String(node!.reliability_ppm)} after a ${rec.state} lease`);
        if (rec.steps.commanded && !mailbox.has(`start_${lease.id}`)) fail(`lease ${lease.id} recorded start_lease that the mailbox never got`);
        if (rec.state !== 'cancelled' || rec.steps.commanded) {
          if (!mailbox.has(`stop_${lease.id}`)) fail(`lease ${lease.id} ended without stop_lease`);
        }
      }
    }
  }

  // ---- The run ------------------------------------------------------------------------------

  // Most runners heartbeat steadily while their workload runs (a batch for the time the clock
  // moved, now and then lost); the others only when the draw says so, and fall silent.
  const beating = new Set(leases.filter(() => rng.chance(0.7)).map((l) => l.id));
  function advance(ms: number) {
    const from = clock;
    clock += ms;
    if (ms <= 0) return;
    for (const l of leases) {
      if (!beating.has(l.id) || l.stored?.state !== 'running' || rng.chance(0.1)) continue;
      const points: number[] = [];
      for (let t = Math.min(clock, from + 10_000); t <= clock && points.length < 100; t += 10_000) points.push(t);
      if (points.length === 0) continue;
      l.points.push(...points);
      call(l, 'confirm:heartbeat', (core) => core.confirm(l.nodeId, points, clock));
    }
  }

  // The book creates every lease from its fill (and retries it).
  for (const lease of leases) call(lease, 'create', (core) => core.create(lease.terms));
  await settle();
  for (report.steps = 1; report.steps <= opt.steps; report.steps++) {
    // Every step ends settled (below), so each decision sees all that came before it.
    const r = rng.next();
    const due = leases.filter((l) => l.alarmAt !== null && l.alarmAt <= clock && l.alarmRunning === null);
    if (pending.length > 0 && r < 0.55) await carryOut(rng.int(0, pending.length - 1));
    else if (due.length > 0 && r < 0.7) fireAlarm(rng.pick(due));
    else if (r < 0.88) input(rng.pick(leases));
    else if (r < 0.986) advance(rng.int(500, 6_000));
    else if (r < 0.99) advance(rng.int(60_000, 600_000));
    else clock -= rng.int(1_000, 10_000);
    await settle();
    await checkInvariants(false);
  }

  // Wind down: no more faults or inputs; time runs on, alarms fire, every operation completes.
  faultsOn = false;
  for (let guard = 0; guard < 20_000; guard++) {
    await settle();
    if (pending.length > 0) {
      await carryOut(0);
      continue;
    }
    const due = leases.filter((l) => l.alarmAt !== null && l.alarmRunning === null);
    if (leases.some((l) => l.inFlight > 0 || l.alarmRunning !== null)) continue;
    const live = leases.filter((l) => !l.stored || nextStep(l.stored, clock, config) !== null || !isTerminal(l.stored.state) || (l.stored.state !== 'cancelled' && !l.stored.steps.refunded));
    if (due.length === 0 && live.length === 0) break;
    if (due.length === 0) {
      // Nothing will wake a lease that was never created (its creation was lost every time):
      // the book retries creation, as it does for a fill whose lease did not answer.
      for (const l of live) if (!l.stored) call(l, 'create', (core) => core.create(l.terms));
      if (live.every((l) => l.stored)) fail(`leases ${live.map((l) => `${l.id} (${l.stored?.state})`).join(', ')} have nothing due and no alarm`);
      continue;
    }
    const next = Math.min(...due.map((l) => l.alarmAt!));
    if (leases.some((l) => beating.has(l.id) && l.stored?.state === 'running') && next > clock + 10_000) {
      advance(10_000);
      continue;
    }
    if (next > clock) advance(next - clock);
    fireAlarm(due.find((l) => l.alarmAt === next) ?? due[0]!);
  }
  await settle();
  await checkInvariants(true);
  report.outcomes.final = leases.length;
  for (const l of leases) report.endings.push(`${l.id}: ${l.stored?.state} (${l.stored?.history.at(-1)?.reason ?? ''}), billed ${l.stored?.billed} of ${l.stored?.terms.amount} in ${l.stored?.settlements} settlement(s), ${l.stored?.extensions.length} extension(s)`);
  for (const l of leases) report.outcomes[`final:${l.stored?.state}`] = (report.outcomes[`final:${l.stored?.state}`] ?? 0) + 1;
  return report;
}

