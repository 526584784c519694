// A Durable Object's state for the fault simulators: the object's SQLite storage is a real SQLite
// database (node:sqlite, the engine Durable Objects use), kept across the object's instances so
// that an eviction rebuilds the object from exactly what it had written; its alarm is a number
// the simulator reads and fires. The object is built with this as its `ctx` and runs its own code
// unchanged (the `cloudflare:workers` import is workers-shim.ts).
//
// Writes are durable at once. In workerd an object's outgoing calls wait for its earlier writes
// to be confirmed (the output gate), so at every await the world sees the same thing it sees
// here: the writes before the call, and the call.
import { createHash } from 'node:crypto';
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';

type Row = Record<string, unknown>;

export interface SqlCursor<T> extends Iterable<T> {
  toArray(): T[];
  one(): T;
}

function cursor<T>(rows: T[]): SqlCursor<T> {
  return {
    [Symbol.iterator]: () => rows[Symbol.iterator](),
    toArray: () => rows,
    one: () => {
      if (rows.length !== 1) throw new Error(`Expected exactly one result from SQL query, but got ${rows.length}.`);
      return rows[0]!;
    },
  };
}

export class SimSql {
  readonly db: DatabaseSync;
  /** Statements run, for the report. */
  statements = 0;
  constructor(db: DatabaseSync) {
    this.db = db;
  }
  exec<T = Row>(query: string, ...bindings: unknown[]): SqlCursor<T> {
    this.statements += 1;
    for (const b of bindings) {
      // As Durable Object storage does: only SQL values are bound.
      if (b === undefined || typeof b === 'boolean' || (typeof b === 'object' && b !== null && !(b instanceof Uint8Array))) {
        throw new TypeError(`unsupported binding ${String(b)} in ${query}`);
      }
    }
    const rows = this.db.prepare(query).all(...(bindings as SQLInputValue[]));
    return cursor(rows.map((r) => ({ ...r })) as T[]);
  }
}

/** The storage of one object: lives across instances, as an object's storage does across evictions. */
export class SimStorage {
  readonly sql: SimSql;
  alarmAt: number | null = null;
  private depth = 0;
  constructor() {
    this.sql = new SimSql(new DatabaseSync(':memory:'));
  }
  transactionSync<T>(fn: () => T): T {
    const name = `t${++this.depth}`;
    this.sql.db.exec(`SAVEPOINT ${name}`);
    try {
      const result = fn();
      this.sql.db.exec(`RELEASE ${name}`);
      return result;
    } catch (err) {
      this.sql.db.exec(`ROLLBACK TO ${name}`);
      this.sql.db.exec(`RELEASE ${name}`);
      throw err;
    } finally {
      this.depth -= 1;
    }
  }
  async getAlarm(): Promise<number | null> {
    return this.alarmAt;
  }
  async setAlarm(at: number | Date): Promise<void> {
    this.alarmAt = typeof at === 'number' ? at : at.getTime();
  }
  async deleteAlarm(): Promise<void> {
    this.alarmAt = null;
  }
  close(): void {
    this.sql.db.close();
  }
}

/** One instance's `ctx`: the shared storage, and what the instance started that outlives a call. */
export class SimObjectHost {
  readonly storage: SimStorage;
  /** The constructor's blockConcurrencyWhile: calls wait for it, as the runtime makes them. */
  ready: Promise<unknown> = Promise.resolve();
  /** waitUntil promises not yet settled. */
  background = 0;
  constructor(storage: SimStorage) {
    this.storage = storage;
  }
  blockConcurrencyWhile<T>(fn: () => Promise<T>): Promise<T> {
    const p = fn();
    this.ready = p;
    return p;
  }
  waitUntil(p: Promise<unknown>): void {
    this.background += 1;
    p.catch(() => undefined).finally(() => {
      this.background -= 1;
    });
  }
  getWebSockets(): never[] {
    return [];
  }
  setWebSocketAutoResponse(): void {}
  acceptWebSocket(): never {
    throw new Error('the simulator carries no WebSockets');
  }
}

/**
 * Lets every call run up to its next outside await, so that a seed's decisions never depend on
 * timing. Between two operations the objects' code may wait on more than promises: a libSQL
 * answer is read through streams, and the ledger hashes with Web Crypto on a thread pool, each
 * taking a varying number of turns of the event loop. So: turns until `signature` (what the
 * simulator can see move) is still for several turns, then a short timer for whatever the thread
 * pool still holds, and again until nothing moves across the timer either.
 */
export async function quiesce(signature: () => string): Promise<void> {
  let last = signature();
  for (let rounds = 0; rounds < 100; rounds++) {
    for (let still = 0, turns = 0; still < 5 && turns < 1_000; turns++) {
      await new Promise<void>((r) => setImmediate(r));
      const now = signature();
      still = now === last ? still + 1 : 0;
      last = now;
    }
    await new Promise<void>((r) => setTimeout(r, 1));
    if (signature() === last) return;
    last = signature();
  }
}

/** The rates at which a simulator fails each waiting operation (0–1). */
export interface FaultRates {
  /** Fails before it runs (the store or service unavailable). */
  failRate: number;
  /** Runs, then its answer is lost (a timeout after the work was done). */
  lostRate: number;
  /** The object is evicted at that await. */
  evictRate: number;
}

/** What every simulator reports of one seed. */
export interface SimRunReport {
  seed: number;
  steps: number;
  operations: number;
  faults: { failed: number; lost: number; evicted: number };
  calls: Record<string, number>;
  outcomes: Record<string, number>;
  quiescentChecks: number;
}

/** An outside call of one object instance, waiting for the scheduler to carry it out. */
export interface PendingOp<I = number, L extends string = string> {
  /** The instance that made the call (an evicted one's calls never settle). */
  instance: I;
  label: L;
  run: () => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * Carries out a waiting operation, or, by the draw `r` (past the eviction band, which the caller
 * handles), fails it before it runs or runs it and loses the answer; counts the fault. An
 * operation that is not `fallible` (it stands for in-process work) is always carried out. Errors
 * that `rethrow` picks (a broken invariant raised inside the operation) go to the run.
 */
export async function carryOutOp(
  o: PendingOp<unknown>,
  r: number,
  rates: FaultRates,
  faults: SimRunReport['faults'],
  opts: { fallible?: boolean; rethrow?: (err: unknown) => boolean } = {},
): Promise<void> {
  const fallible = opts.fallible ?? true;
  if (fallible && r < rates.evictRate + rates.failRate) {
    faults.failed += 1;
    o.reject(new Error(`simulated: ${o.label} unavailable`));
    return;
  }
  if (fallible && r < rates.evictRate + rates.failRate + rates.lostRate) {
    faults.lost += 1;
    await o.run().catch(() => undefined);
    o.reject(new Error(`simulated: ${o.label} timed out after it was carried out`));
    return;
  }
  try {
    o.resolve(await o.run());
  } catch (err) {
    if (opts.rethrow?.(err)) throw err;
    o.reject(err);
  }
}

/** mulberry32: small, fast, and the same everywhere. */
export function generator(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
    chance: (p: number) => next() < p,
  };
}
export type Generator = ReturnType<typeof generator>;

/**
 * Runs `fn` with the process clock (Date.now, which the objects read) set to the simulator's,
 * and the objects' log lines counted instead of printed.
 */
export async function withSimulatedWorld<T>(clock: () => number, logged: Record<string, number>, fn: () => Promise<T>): Promise<T> {
  return withInlineDigest(() => inWorld(clock, logged, fn));
}

/**
 * Runs `fn` with Web Crypto's SHA-256 computed at once (node:crypto, the same bytes) instead of
 * on the thread pool, whose timing would otherwise decide when the ledger's next call is made.
 */
export async function withInlineDigest<T>(fn: () => Promise<T>): Promise<T> {
  const subtle = globalThis.crypto.subtle;
  const own = Object.getOwnPropertyDescriptor(subtle, 'digest');
  const real = subtle.digest.bind(subtle);
  Object.defineProperty(subtle, 'digest', {
    configurable: true,
    writable: true,
    value: (algorithm: AlgorithmIdentifier, data: BufferSource) => {
      const name = typeof algorithm === 'string' ? algorithm : algorithm.name;
      if (name.toUpperCase() !== 'SHA-256') return real(algorithm, data);
      const bytes = ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
      const out = createHash('sha256').update(bytes).digest();
      return Promise.resolve(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength));
    },
  });
  try {
    return await fn();
  } finally {
    if (own) Object.defineProperty(subtle, 'digest', own);
    else delete (subtle as { digest?: unknown }).digest;
  }
}

async function inWorld<T>(clock: () => number, logged: Record<string, number>, fn: () => Promise<T>): Promise<T> {
  const realNow = Date.now;
  const { warn, error, log } = console;
  const count = (line: unknown) => {
    let msg = String(line);
    try {
      msg = (JSON.parse(String(line)) as { msg?: string }).msg ?? msg;
    } catch {
      // not one of ours
    }
    logged[msg] = (logged[msg] ?? 0) + 1;
  };
  Date.now = clock;
  console.warn = count;
  console.error = count;
  console.log = count;
  try {
    return await fn();
  } finally {
    Date.now = realNow;
    Object.assign(console, { warn, error, log });
  }
}
