// Streams, batons, SQL execution and write serialisation for the local libSQL server.
//
// Concurrency design
// ------------------
// Each Hrana stream gets its own SQLite connection to the same file, in WAL mode, with
// busy_timeout = 0. WAL gives every connection a snapshot of *committed* data, so
// reads never wait and never see another stream's open transaction. Connections go back to
// a small pool when their stream ends, except one that ran SQL that can leave state behind
// (a pragma, a TEMP object, an attached database: MENTIONS_CONNECTION_STATE), which is closed.
//
// SQLite allows one writer. The `libsql` driver is synchronous, so we must never let
// SQLite spin on a lock (it would stall the whole event loop, and with it the lock
// holder, whose next request can then never run). Instead, the server keeps a write
// gate: an async FIFO lock. Before a statement that may write (`BEGIN IMMEDIATE`,
// INSERT, CREATE, ...; see sql-text.ts) a stream takes the gate, waiting
// asynchronously behind other writers, and keeps it until its connection is back in
// autocommit mode (COMMIT/ROLLBACK, the end of an autocommit write, stream close or
// expiry). So two `client.transaction("write")` run one after the other, as sqld/Turso
// serialise them, and a one-shot write waits for an open write transaction to finish
// instead of failing with SQLITE_BUSY.
//
// Writers outside this process (a migration script on the same file, say) do not know
// the gate: their locks surface as SQLITE_BUSY, which we retry asynchronously with
// backoff, re-running the same prepared statement (SQLITE_BUSY happens before the
// statement has done anything). SQLITE_BUSY_SNAPSHOT (a deferred transaction read an
// old snapshot, then tried to write after another commit) cannot succeed by retrying
// and is returned, as SQLite would.
//
// Driver quirk handled here: a statement that is paused (a reader stepped only
// partially, or stopped by SQLITE_BUSY) stays "in progress" until garbage-collected,
// and then COMMIT fails. So readers are always run to completion with all(), writers
// with run(), and a connection that gave up after SQLITE_BUSY is not reused.
// Known driver limitation: TEXT read back is cut at the first NUL character (sqld
// returns it whole). Binding such text is exact. The driver also reports a statement's
// result columns as they were when it was first prepared, so cached statements are
// dropped after a schema change made through this server (one made by another process
// on the same file is not noticed: restart the server after such a migration).
import { randomBytes } from 'node:crypto';
import Database from 'libsql';
import { startCheckpointer, type Checkpointer } from './checkpointer.ts';
import { encodeValue, HranaError } from './proto.ts';
import type { BatchCond, BatchStep, ErrorJson, PipelineRequest, SqlValue, Stmt, StmtResultJson, StreamRequest } from './proto.ts';
import { splitSql, type SqlStatement } from './sql-text.ts';

export interface EngineOptions {
  file: string;
  streamIdleTimeoutMs: number;
  /** How long a statement may wait for the write lock before failing with SQLITE_BUSY. */
  busyTimeoutMs: number;
  logError: (fields: Record<string, unknown>) => void;
  /**
   * WAL checkpoints run on a background thread this often (checkpointer.ts); 0 leaves them to
   * SQLite inside commits. Default 200 ms.
   */
  checkpointIntervalMs?: number;
}

type Db = Database.Database;
type Statement = Database.Statement;
type StreamResult = { type: 'ok'; response: Record<string, unknown> & { type: string } } | { type: 'error'; error: ErrorJson };

const MAX_STORED_SQLS = 50; // sqld's limits (libsql-server/src/hrana/http/request.rs)
const MAX_STORED_SQL_BYTES = 5000;
const EXPIRED_BATON_MEMORY_MS = 5 * 60_000;
const MAX_POOLED_CONNECTIONS = 8;

const MAX_CACHED_STATEMENTS = 256;
const MAX_CLASSIFIED_SQLS = 1024;
const MAX_CLASSIFIED_SQL_LENGTH = 20_000;

/** Statements that change the schema (or what names resolve to): cached statements expire. */
const SCHEMA_KEYWORDS = new Set(['CREATE', 'DROP', 'ALTER', 'ATTACH', 'DETACH']);

/**
 * SQL that may leave state on its connection for the next stream: a pragma (SQLite applies
 * `PRAGMA x = y` when preparing it), a TEMP table, view or trigger, an attached database. A
 * connection that prepared such SQL is closed when its stream ends, never pooled, so every
 * stream starts as on a fresh connection, as on sqld. A false match (a column named `temp`)
 * costs only the pooling.
 */
const MENTIONS_CONNECTION_STATE = /pragma|\btemp(?:orary)?\b|\battach\b/i;

/** What splitSql says about one SQL text; `single` is the statement an `execute` of it runs. */
interface Classified {
  statements: readonly SqlStatement[];
  single: SqlStatement | undefined;
}

/**
 * splitSql results by SQL text. Splitting and classifying depends on the text alone (not on
 * the schema or any connection), and clients send the same statements over and over.
 * Results are frozen: they are shared by every request with that text.
 */
class SqlClassifier {
  private readonly byText = new Map<string, Classified>();

  classify(sql: string): Classified {
    let found = this.byText.get(sql);
    if (found === undefined) {
      const statements = splitSql(sql).map(freezeStatement);
      const first = statements[0];
      // An execute runs the whole text as given (with its trailing `;` or comments).
      const single = statements.length === 1 && first !== undefined ? freezeStatement({ ...first, text: sql }) : undefined;
      found = Object.freeze({ statements: Object.freeze(statements), single });
      if (sql.length <= MAX_CLASSIFIED_SQL_LENGTH) {
        if (this.byText.size >= MAX_CLASSIFIED_SQLS) this.byText.delete(this.byText.keys().next().value!);
        this.byText.set(sql, found);
      }
    }
    return found;
  }
}

function freezeStatement(info: SqlStatement): SqlStatement {
  Object.freeze(info.params);
  return Object.freeze(info);
}

/** A prepared statement and what the driver fixed about it when it was prepared. */
interface Prepared {
  stmt: Statement;
  /** Returns rows (has result columns): run with all(), in raw mode. Otherwise run with run(). */
  reader: boolean;
  /** Result columns, read once: the driver reports the ones it saw when preparing. */
  cols: StmtResultJson['cols'] | undefined;
}

/** The driver's run() result. `lastInsertRowid` arrives as a JS number (exact only up to 2^53). */
interface RunInfo {
  changes: number;
  lastInsertRowid: number | bigint;
}

class Conn {
  readonly db: Db;
  /** Set when a statement may have been left paused: close instead of pooling. */
  tainted = false;
  /** Set when SQL that may leave connection state was prepared here: close instead of pooling. */
  stateful = false;
  /** Set when this connection changed the schema in its current transaction. */
  schemaChanged = false;
  /** The engine's schema epoch the cached statements were prepared under. */
  private schemaEpoch = 0;
  private statsStmt: Statement | undefined;
  /**
   * Prepared statements by SQL text. Preparing costs more than running a small statement,
   * and every statement here is run to completion, so reuse is safe.
   */
  private readonly statements = new Map<string, Prepared>();

  /** Whether commits on this connection checkpoint the WAL themselves (SQLite's default). */
  autoCheckpoint = true;

  constructor(file: string, autoCheckpoint: boolean) {
    this.db = new Database(file, { timeout: 0 });
    this.db.exec('PRAGMA busy_timeout = 0');
    this.db.exec('PRAGMA foreign_keys = ON');
    this.db.exec('PRAGMA synchronous = NORMAL');
    this.setAutoCheckpoint(autoCheckpoint);
  }

  setAutoCheckpoint(on: boolean): void {
    if (on === this.autoCheckpoint) return;
    this.db.exec(`PRAGMA wal_autocheckpoint = ${on ? 1000 : 0}`);
    this.autoCheckpoint = on;
  }

  get inTransaction(): boolean {
    return this.db.inTransaction;
  }

  /**
   * The cached statement for `sql`, prepared again after a schema change anywhere in the
   * server (`schemaEpoch` moved): SQLite re-prepares an expired statement by itself, but the
   * driver keeps reporting the result columns it saw the first time.
   */
  prepare(sql: string, schemaEpoch: number): Prepared {
    if (schemaEpoch !== this.schemaEpoch) {
      this.statements.clear();
      this.schemaEpoch = schemaEpoch;
    }
    let prepared = this.statements.get(sql);
    if (prepared === undefined) {
      // Cached statements live and die with their connection, and this one is not pooled once
      // it is stateful: checking the text when it is first prepared here is enough.
      if (MENTIONS_CONNECTION_STATE.test(sql)) this.stateful = true;
      const stmt = this.db.prepare(sql).safeIntegers(true);
      const reader = stmt.reader;
      if (reader) stmt.raw(true);
      prepared = { stmt, reader, cols: undefined };
      if (this.statements.size >= MAX_CACHED_STATEMENTS) this.statements.delete(this.statements.keys().next().value!);
      this.statements.set(sql, prepared);
    }
    return prepared;
  }

  /** A statement prepared once, not cached (describe). */
  prepareOnce(sql: string): Statement {
    if (MENTIONS_CONNECTION_STATE.test(sql)) this.stateful = true;
    return this.db.prepare(sql);
  }

  /** changes() and last_insert_rowid() of the last statement, as exact integers. */
  stats(): { changes: bigint; lastInsertRowid: bigint } {
    this.statsStmt ??= this.db.prepare('SELECT changes(), last_insert_rowid()').safeIntegers(true).raw(true);
    // get() reads the one row and resets the statement, so it is not left paused.
    const row = (this.statsStmt.get() as unknown[] | undefined) ?? [];
    return { changes: BigInt(row[0] as bigint), lastInsertRowid: BigInt(row[1] as bigint) };
  }

  close(): void {
    try {
      this.db.close();
    } catch {
      // already closed
    }
  }
}

/** Async FIFO lock held by at most one stream: the right to write. */
class WriteGate {
  holder: Stream | null = null;
  private waiters: { stream: Stream; grant: (ok: boolean) => void }[] = [];

  acquire(stream: Stream, timeoutMs: number): Promise<boolean> {
    if (this.holder === stream) return Promise.resolve(true);
    if (this.holder === null && this.waiters.length === 0) {
      this.holder = stream;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const waiter = {
        stream,
        grant: (ok: boolean) => {
          clearTimeout(timer);
          resolve(ok);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  release(stream: Stream): void {
    if (this.holder !== stream) return;
    const next = this.waiters.shift();
    this.holder = next?.stream ?? null;
    next?.grant(true);
  }

  failAll(): void {
    for (const w of this.waiters.splice(0)) w.grant(false);
  }
}

class Stream {
  conn: Conn | null = null;
  readonly sqls = new Map<number, string>();
  closed = false;
  idleTimer: NodeJS.Timeout | undefined;
}

class SqlError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
  toJSON(): ErrorJson {
    return { message: this.message, code: this.code };
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function driverCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Lock contention that waiting can resolve (not BUSY_SNAPSHOT, not "statements in progress"). */
function isRetryableBusy(e: unknown): boolean {
  const code = driverCode(e);
  return (code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_RECOVERY') && /database is locked/i.test(String((e as Error).message));
}

/** Maps a driver SqliteError like sqld does: primary code (SQLITE_CONSTRAINT_UNIQUE ->
 *  SQLITE_CONSTRAINT, libsql-server/src/hrana/stmt.rs) and "SQLite error: ..." text. */
function sqlErrorFrom(e: unknown): SqlError {
  const message = e instanceof Error ? e.message : String(e);
  const code = driverCode(e);
  if (code === undefined || !code.startsWith('SQLITE_')) return new SqlError('SQLITE_UNKNOWN', `SQLite error: ${message}`);
  if (code === 'SQLITE_ERROR' && /syntax error|incomplete input|unrecognized token/.test(message)) {
    return new SqlError('SQL_PARSE_ERROR', `SQL string could not be parsed: ${message}`);
  }
  return new SqlError(/^SQLITE_[A-Z]+/.exec(code)?.[0] ?? code, `SQLite error: ${message}`);
}

const busyError = () => new SqlError('SQLITE_BUSY', 'SQLite error: database is locked');

const NO_NAMED_ARGS: ReadonlyMap<string, SqlValue> = new Map();

/** Binds arguments like sqld (libsql-server/src/query.rs): every parameter needs a value,
 *  named args match with or without their prefix, no mixing of positional and named. */
function bindArgs(info: SqlStatement, stmt: Pick<Stmt, 'args' | 'namedArgs'>): SqlValue[] | Record<string, SqlValue> {
  const { args, namedArgs } = stmt;
  if (args.length > 0 && namedArgs.length > 0) {
    throw new SqlError('ARGS_BOTH_POSITIONAL_AND_NAMED', 'Specifying both positional and named arguments is not supported');
  }
  const count = info.params.length;
  const given = args.length > 0 ? args.length : new Set(namedArgs.map((a) => a.name)).size;
  if (given > count) {
    throw new SqlError('ARGS_INVALID', `Arguments do not match SQL parameters: too many parameters, expected ${count} found ${given}`);
  }
  const missing = (name: string): never => {
    throw new SqlError('ARGS_INVALID', `Arguments do not match SQL parameters: value for parameter ${name} not found`);
  };
  const named = namedArgs.length === 0 ? NO_NAMED_ARGS : new Map(namedArgs.map((a) => [a.name, a.value] as const));
  const positional: SqlValue[] = [];
  const byName: Record<string, SqlValue> = {};
  for (let index = 1; index <= count; index++) {
    const name = info.params[index - 1] ?? null;
    let value: SqlValue | undefined;
    if (name === null) value = args[index - 1];
    else if (name.startsWith('?')) value = args[Number(name.slice(1)) - 1];
    else value = named.get(name) ?? named.get(name.slice(1));
    if (value === undefined) {
      if (!info.isExplain) missing(name ?? String(index));
      value = null;
    }
    positional.push(value);
    if (name !== null && !name.startsWith('?')) byName[name.slice(1)] = value;
  }
  // The driver binds an object by parameter name without its prefix, and an array by
  // index. (It aborts the process if given an object for a statement with `?`.)
  return namedArgs.length > 0 && info.params.every((p) => p !== null && !p.startsWith('?')) ? byName : positional;
}

function evalCond(cond: BatchCond, results: boolean[], autocommit: boolean): boolean {
  switch (cond.type) {
    case 'ok':
    case 'error': {
      const ok = results[cond.step];
      if (ok === undefined) throw new SqlError('INVALID_BATCH_STEP', 'Invalid reference to step in a batch condition');
      return cond.type === 'ok' ? ok : !ok;
    }
    case 'not':
      return !evalCond(cond.cond, results, autocommit);
    case 'and':
      return cond.conds.map((c) => evalCond(c, results, autocommit)).every(Boolean);
    case 'or':
      return cond.conds.map((c) => evalCond(c, results, autocommit)).some(Boolean);
    case 'is_autocommit':
      return autocommit;
  }
}

export class Engine {
  private readonly opts: EngineOptions;
  private readonly batons = new Map<string, Stream>();
  private readonly expiredBatons = new Map<string, number>();
  private readonly streams = new Set<Stream>();
  private readonly pool: Conn[] = [];
  private readonly gate = new WriteGate();
  private readonly classifier = new SqlClassifier();
  /**
   * Moves when any stream changes the schema, and again when that stream's transaction
   * ends (other connections see the change only then): connections drop their cached
   * statements when it has moved.
   */
  private schemaEpoch = 0;
  private closed = false;
  /** Set while the checkpoint thread runs: connections then leave checkpoints to it. */
  private checkpointer: Checkpointer | null = null;

  constructor(opts: EngineOptions) {
    this.opts = opts;
    const conn = new Conn(opts.file, true); // fails early on a bad path / not a database
    const mode = (conn.db.prepare('PRAGMA journal_mode = WAL').raw(true).all() as unknown[][])[0]?.[0];
    if (mode !== 'wal') {
      conn.close();
      throw new Error(`could not enable WAL mode on ${opts.file} (journal_mode is ${String(mode)})`);
    }
    const interval = opts.checkpointIntervalMs ?? 200;
    if (interval > 0) {
      try {
        this.checkpointer = startCheckpointer(opts.file, interval, (reason) => this.checkpointerStopped(reason));
        conn.setAutoCheckpoint(false);
      } catch (err) {
        this.checkpointerStopped(`checkpoint thread did not start: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    this.pool.push(conn);
  }

  /**
   * Back to SQLite's own checkpoints, so the WAL cannot grow without bound: each connection
   * turns them on again when it next serves a stream (connFor).
   */
  private checkpointerStopped(reason: string): void {
    this.checkpointer = null;
    if (!this.closed) this.opts.logError({ msg: 'WAL checkpoints back in commits', reason });
  }

  /** Runs one pipeline request. Throws HranaError for an unknown or expired baton. */
  async pipeline(body: PipelineRequest): Promise<{ baton: string | null; base_url: null; results: StreamResult[] }> {
    if (this.closed) throw new HranaError('SERVER_CLOSED', 'The server is shutting down', 503);
    let stream: Stream;
    if (body.baton === null) {
      stream = new Stream();
      this.streams.add(stream);
    } else {
      const found = this.batons.get(body.baton);
      if (found === undefined) {
        if (this.expiredBatons.has(body.baton)) throw new HranaError('STREAM_EXPIRED', 'The stream has expired due to inactivity');
        throw new HranaError('BATON_INVALID', 'Received an invalid baton (unknown, already used, or its stream was closed)');
      }
      // Batons are single-use: a concurrent or replayed request with it is rejected.
      this.batons.delete(body.baton);
      clearTimeout(found.idleTimer);
      stream = found;
    }
    const results: StreamResult[] = [];
    try {
      for (const request of body.requests) results.push(await this.handle(stream, request));
    } catch (err) {
      this.closeStream(stream); // unknown state after an internal error
      throw err;
    }
    if (this.closed) this.closeStream(stream);
    if (stream.closed) return { baton: null, base_url: null, results };
    const baton = randomBytes(24).toString('base64url');
    this.batons.set(baton, stream);
    stream.idleTimer = setTimeout(() => this.expire(stream, baton), this.opts.streamIdleTimeoutMs);
    stream.idleTimer.unref();
    return { baton, base_url: null, results };
  }

  /** Closes every connection; resolves once the checkpoint thread has exited too. */
  async close(): Promise<void> {
    this.closed = true;
    const checkpointer = this.checkpointer;
    this.checkpointer = null;
    this.gate.failAll();
    for (const stream of [...this.streams]) this.closeStream(stream);
    for (const conn of this.pool.splice(0)) conn.close();
    this.batons.clear();
    this.expiredBatons.clear();
    await checkpointer?.stop();
  }

  private expire(stream: Stream, baton: string): void {
    if (this.batons.get(baton) !== stream) return;
    this.batons.delete(baton);
    this.closeStream(stream);
    const now = Date.now();
    this.expiredBatons.set(baton, now);
    for (const [old, at] of this.expiredBatons) {
      if (now - at < EXPIRED_BATON_MEMORY_MS) break;
      this.expiredBatons.delete(old);
    }
  }

  /** Rolls back whatever is open, frees the write gate and the connection. */
  private closeStream(stream: Stream): void {
    clearTimeout(stream.idleTimer);
    stream.closed = true;
    this.streams.delete(stream);
    stream.sqls.clear();
    const conn = stream.conn;
    stream.conn = null;
    if (conn !== null) {
      if (conn.inTransaction) {
        try {
          conn.db.exec('ROLLBACK');
        } catch {
          conn.tainted = true;
        }
      }
      if (conn.schemaChanged) {
        this.schemaEpoch++; // a rolled-back schema change
        conn.schemaChanged = false;
      }
      if (conn.tainted || conn.stateful || conn.inTransaction || this.closed || this.pool.length >= MAX_POOLED_CONNECTIONS) conn.close();
      else this.pool.push(conn);
    }
    this.gate.release(stream);
  }

  private connFor(stream: Stream): Conn {
    if (stream.conn === null) {
      const pooled = this.pool.pop();
      pooled?.setAutoCheckpoint(this.checkpointer === null);
      stream.conn = pooled ?? new Conn(this.opts.file, this.checkpointer === null);
    }
    return stream.conn;
  }

  private async handle(stream: Stream, req: StreamRequest): Promise<StreamResult> {
    if (stream.closed) return { type: 'error', error: { message: 'The stream is closed', code: 'STREAM_CLOSED' } };
    try {
      switch (req.type) {
        case 'close':
          this.closeStream(stream);
          return ok({ type: 'close' });
        case 'execute':
          return ok({ type: 'execute', result: await this.execute(stream, req.stmt) });
        case 'batch':
          return ok({ type: 'batch', result: await this.batch(stream, req.steps) });
        case 'sequence': {
          for (const info of this.classifier.classify(this.resolveSql(stream, req.sql, req.sqlId)).statements) {
            await this.run(stream, info, bindArgs(info, { args: [], namedArgs: [] }), false);
          }
          return ok({ type: 'sequence' });
        }
        case 'describe':
          return ok({ type: 'describe', result: this.describe(stream, this.resolveSql(stream, req.sql, req.sqlId)) });
        case 'store_sql':
          if (stream.sqls.has(req.sqlId)) throw new SqlError('SQL_EXISTS', `SQL text ${req.sqlId} already exists`);
          if (stream.sqls.size >= MAX_STORED_SQLS) throw new SqlError('SQL_STORE_TOO_MANY', `The server already stores ${stream.sqls.size} SQL texts, it cannot store more`);
          if (Buffer.byteLength(req.sql) > MAX_STORED_SQL_BYTES) throw new SqlError('SQL_STORE_TOO_LARGE', `The statement is too large to be stored: ${Buffer.byteLength(req.sql)}/${MAX_STORED_SQL_BYTES} B`);
          stream.sqls.set(req.sqlId, req.sql);
          return ok({ type: 'store_sql' });
        case 'close_sql':
          stream.sqls.delete(req.sqlId);
          return ok({ type: 'close_sql' });
        case 'get_autocommit':
          return ok({ type: 'get_autocommit', is_autocommit: !(stream.conn?.inTransaction ?? false) });
      }
    } catch (err) {
      if (!(err instanceof SqlError)) throw err;
      this.opts.logError({ event: 'sql_error', request: req.type, code: err.code, message: err.message });
      return { type: 'error', error: err.toJSON() };
    }
  }

  private resolveSql(stream: Stream, sql: string | undefined, sqlId: number | undefined): string {
    if (sql !== undefined && sqlId !== undefined) throw new SqlError('SQL_ID_AND_SQL_GIVEN', 'Either `sql` or `sql_id` are required, but not both');
    if (sql !== undefined) return sql;
    if (sqlId === undefined) throw new SqlError('SQL_ID_OR_SQL_NOT_GIVEN', 'Either `sql` or `sql_id` are required');
    const stored = stream.sqls.get(sqlId);
    if (stored === undefined) throw new SqlError('SQL_NOT_FOUND', `SQL text ${sqlId} not found`);
    return stored;
  }

  private async execute(stream: Stream, stmt: Stmt): Promise<StmtResultJson> {
    const sql = this.resolveSql(stream, stmt.sql, stmt.sqlId);
    const { statements, single } = this.classifier.classify(sql);
    if (statements.length === 0) throw new SqlError('SQL_NO_STATEMENT', 'SQL string does not contain any statement');
    if (single === undefined) throw new SqlError('SQL_MANY_STATEMENTS', 'SQL string contains more than one statement');
    return this.run(stream, single, bindArgs(single, stmt), stmt.wantRows);
  }

  private async batch(stream: Stream, steps: BatchStep[]) {
    const results: boolean[] = [];
    const stepResults: (StmtResultJson | null)[] = [];
    const stepErrors: (ErrorJson | null)[] = [];
    for (const step of steps) {
      let result: StmtResultJson | null = null;
      let error: ErrorJson | null = null;
      try {
        const autocommit = !(stream.conn?.inTransaction ?? false);
        if (step.condition === undefined || evalCond(step.condition, results, autocommit)) {
          result = await this.execute(stream, step.stmt);
        }
      } catch (err) {
        if (!(err instanceof SqlError)) throw err;
        this.opts.logError({ event: 'sql_error', request: 'batch', step: results.length, code: err.code, message: err.message });
        error = err.toJSON();
      }
      results.push(result !== null);
      stepResults.push(result);
      stepErrors.push(error);
    }
    return { step_results: stepResults, step_errors: stepErrors };
  }

  private describe(stream: Stream, sql: string) {
    const info = this.classifier.classify(sql).statements[0];
    if (info === undefined) throw new SqlError('SQL_NO_STATEMENT', 'SQL string does not contain any statement');
    let stmt: Statement;
    try {
      stmt = this.connFor(stream).prepareOnce(sql);
    } catch (err) {
      throw sqlErrorFrom(err);
    }
    return {
      params: info.params.map((name) => ({ name })),
      cols: stmt.columns().map((c) => ({ name: c.name, decltype: c.type })),
      is_explain: info.isExplain,
      is_readonly: !info.writes,
    };
  }

  /** Executes one statement on the stream's connection, taking the write gate if needed. */
  private async run(stream: Stream, info: SqlStatement, params: SqlValue[] | Record<string, SqlValue>, wantRows: boolean): Promise<StmtResultJson> {
    const conn = this.connFor(stream);
    const deadline = Date.now() + this.opts.busyTimeoutMs;
    try {
      if (info.writes && !(await this.gate.acquire(stream, this.opts.busyTimeoutMs))) throw busyError();
      let prepared: Prepared | undefined;
      for (let attempt = 0; ; attempt++) {
        const start = performance.now();
        try {
          prepared ??= conn.prepare(info.text, this.schemaEpoch);
          const { stmt, reader } = prepared;
          // A statement without result columns has none to report: skip the driver call.
          const cols = (prepared.cols ??= reader ? stmt.columns().map((c) => ({ name: c.name, decltype: c.type })) : []);
          let rows: unknown[][] = NO_ROWS;
          let runInfo: RunInfo | undefined;
          // Readers are always run to completion (see the note on paused statements).
          if (reader) rows = stmt.all(params) as unknown[][];
          else runInfo = stmt.run(params) as RunInfo;
          const queryMs = performance.now() - start;
          let affected = 0;
          let lastInsertRowid: string | null = null;
          if (info.isIud) {
            // run() reports changes() (0 unless the statement changed rows) and
            // last_insert_rowid(); a rowid beyond 2^53 needs the exact query.
            if (runInfo !== undefined && (!info.isInsert || isExactInteger(runInfo.lastInsertRowid))) {
              affected = runInfo.changes;
              if (info.isInsert) lastInsertRowid = String(runInfo.lastInsertRowid);
            } else {
              const stats = conn.stats();
              affected = Number(stats.changes);
              if (info.isInsert) lastInsertRowid = stats.lastInsertRowid.toString();
            }
          }
          return {
            cols,
            rows: wantRows && rows.length > 0 ? rows.map((row) => row.map(encodeValue)) : [],
            affected_row_count: affected,
            last_insert_rowid: lastInsertRowid,
            rows_read: rows.length,
            rows_written: affected,
            query_duration_ms: queryMs,
          };
        } catch (err) {
          if (!isRetryableBusy(err)) throw sqlErrorFrom(err);
          // Another process holds the lock. Queue behind our own writers, then retry.
          const left = deadline - Date.now();
          if (left <= 0 || !(await this.gate.acquire(stream, left))) {
            conn.tainted = true;
            throw busyError();
          }
          await sleep(Math.min(5 * 2 ** attempt, 100));
        }
      }
    } finally {
      if (SCHEMA_KEYWORDS.has(info.keyword)) conn.schemaChanged = true;
      if (conn.schemaChanged) {
        this.schemaEpoch++;
        if (!safeInTransaction(conn)) conn.schemaChanged = false;
      }
      if (this.gate.holder === stream && !safeInTransaction(conn)) this.gate.release(stream);
    }
  }
}

const NO_ROWS: unknown[][] = [];

function isExactInteger(n: number | bigint): boolean {
  return typeof n === 'bigint' || Number.isSafeInteger(n);
}

function safeInTransaction(conn: Conn): boolean {
  try {
    return conn.inTransaction;
  } catch {
    return false; // closed under us (server shutdown)
  }
}

function ok(response: Record<string, unknown> & { type: string }): StreamResult {
  return { type: 'ok', response };
}
