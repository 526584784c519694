// The log of one lease, kept in its Lease object's SQLite storage (docs/decisions.md, "Lease logs
// in the Lease object"). src/leases/logs.ts decides; this class stores and streams.
//
// Every storage call here is synchronous (ctx.storage.sql), so an append, a read and the hand-off
// of a follower from its backlog to live lines cannot interleave with each other. Followers are
// Server-Sent Events streams with a bounded queue each: one that does not read is closed (it
// resumes from its last event id) rather than buffered without end.
import { LOG_LATE_S, type LogLine } from '../contracts/runner.ts';
import { decideAppend, emptyMeta, LOG_LIMITS, type AppendDecision, type LogLimits, type LogMeta } from '../leases/logs.ts';

export type StoredLine = LogLine;

export interface LogPage {
  lines: StoredLine[];
  /** Pass as `since` to continue after this page. */
  nextSeq: number;
  /** Lines the runner never delivered, and lines dropped as the oldest beyond the kept size. */
  lost: number;
  dropped: number;
}

/** Queued bytes a follower may fall behind by before it is closed. */
const FOLLOWER_QUEUE_BYTES = 1024 * 1024;
/** Followers per lease at most. */
export const MAX_FOLLOWERS = 8;
const KEEPALIVE_MS = 15_000;
/** After the lease ended, a follower gets `end` once no line came for this long (or LOG_LATE_S passed). */
const QUIET_AFTER_END_MS = 3_000;
const BACKLOG_PAGE = 1000;

const STREAMS = ['stdout', 'stderr'] as const;

interface Follower {
  writer: WritableStreamDefaultWriter<Uint8Array>;
  /** The last seq sent; live lines above it are sent as they arrive, once the backlog is out. */
  sentThrough: number;
  live: boolean;
  timer: ReturnType<typeof setInterval> | null;
  lastWriteAt: number;
}

const encoder = new TextEncoder();
/** Lines as one chunk of events: one write per batch, not per line. */
const sseLines = (lines: readonly StoredLine[]) => encoder.encode(lines.map((l) => `id: ${l.seq}\nevent: log\ndata: ${JSON.stringify(l)}\n\n`).join(''));

export interface LeaseView {
  /** When the lease ended, or null while it lives. */
  endedAt: number | null;
  exitCode: number | null;
}

export class LeaseLog {
  private readonly followers = new Set<Follower>();
  private lastAppendAt = 0;
  private ready = false;

  constructor(
    private readonly sql: SqlStorage,
    private readonly view: () => LeaseView,
    private readonly limits: LogLimits = LOG_LIMITS,
  ) {}

  private init(): void {
    if (this.ready) return;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS log_lines (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, stream INTEGER NOT NULL, text TEXT NOT NULL, partial INTEGER NOT NULL)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS log_meta (id INTEGER PRIMARY KEY CHECK (id = 1), meta TEXT NOT NULL)`);
    this.ready = true;
  }

  private meta(now: number): LogMeta {
    this.init();
    const row = this.sql.exec<{ meta: string }>('SELECT meta FROM log_meta WHERE id = 1').toArray()[0];
    return row ? (JSON.parse(row.meta) as LogMeta) : emptyMeta(now, this.limits);
  }

  hasLines(): boolean {
    this.init();
    return this.sql.exec('SELECT 1 FROM log_lines LIMIT 1').toArray().length > 0;
  }

  /** Stores what decideAppend keeps, evicts the oldest beyond the kept size, and feeds the followers. */
  append(lines: readonly LogLine[], now: number): AppendDecision {
    const before = this.meta(now);
    const decision = decideAppend(before, lines, now, this.view().endedAt, this.limits);
    if (!decision.ok) return decision;
    let meta = decision.meta;
    for (const l of decision.store) {
      this.sql.exec('INSERT OR IGNORE INTO log_lines (seq, at, stream, text, partial) VALUES (?, ?, ?, ?, ?)', l.seq, Date.parse(l.at), STREAMS.indexOf(l.stream), l.text, l.partial ? 1 : 0);
    }
    if (decision.evict > 0) meta = this.evict(meta, decision.evict);
    this.sql.exec('INSERT INTO log_meta (id, meta) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET meta = excluded.meta', JSON.stringify(meta));
    if (decision.store.length > 0) this.lastAppendAt = now;
    for (const f of this.followers) if (f.live) this.push(f, decision.store);
    return { ...decision, meta };
  }

  /** Drops the oldest lines until at least `cost` is freed. */
  private evict(meta: LogMeta, cost: number): LogMeta {
    let freed = 0;
    let through = -1;
    let count = 0;
    for (const r of this.sql.exec<{ seq: number; len: number }>('SELECT seq, length(text) AS len FROM log_lines ORDER BY seq')) {
      if (freed >= cost) break;
      freed += r.len + 64;
      through = r.seq;
      count++;
    }
    if (through >= 0) this.sql.exec('DELETE FROM log_lines WHERE seq <= ?', through);
    return { ...meta, storedCost: meta.storedCost - freed, dropped: meta.dropped + count };
  }

  /** Lines from `since` (at most `limit`), or the last `tail` of them. */
  read(opts: { since?: number; tail?: number; limit: number }, now: number): LogPage {
    const meta = this.meta(now);
    const since = opts.since ?? 0;
    let rows: Record<string, SqlStorageValue>[];
    if (opts.tail !== undefined) {
      rows = this.sql.exec('SELECT * FROM (SELECT * FROM log_lines WHERE seq >= ? ORDER BY seq DESC LIMIT ?) ORDER BY seq', since, Math.min(opts.tail, opts.limit)).toArray();
    } else {
      rows = this.sql.exec('SELECT * FROM log_lines WHERE seq >= ? ORDER BY seq LIMIT ?', since, opts.limit).toArray();
    }
    const lines = rows.map(lineOf);
    const last = lines[lines.length - 1];
    // After the last line returned; with none, nothing at or after `since` is stored yet.
    const nextSeq = last ? last.seq + 1 : since;
    return { lines, nextSeq, lost: meta.lost, dropped: meta.dropped };
  }

  /** The last lines, for the lease record once it ended. */
  tail(n: number, now: number): StoredLine[] {
    return this.read({ tail: n, limit: n }, now).lines;
  }

  /** Deletes every line (the lease ended more than the retention ago). */
  purge(): void {
    this.init();
    this.sql.exec('DELETE FROM log_lines');
    this.sql.exec('DELETE FROM log_meta');
    for (const f of [...this.followers]) this.close(f, false);
  }

  retainUntil(endedAt: number): number {
    return endedAt + this.limits.retainMs;
  }

  /** A Server-Sent Events response that sends the lines from `since`, then live ones, then `end`. */
  follow(since: number): Response | null {
    if (this.followers.size >= MAX_FOLLOWERS) return null;
    this.init();
    const stream = new TransformStream<Uint8Array, Uint8Array>(undefined, new ByteLengthQueuingStrategy({ highWaterMark: FOLLOWER_QUEUE_BYTES }));
    const f: Follower = { writer: stream.writable.getWriter(), sentThrough: since - 1, live: false, timer: null, lastWriteAt: Date.now() };
    this.followers.add(f);
    f.writer.closed.catch(() => undefined).finally(() => this.forget(f));
    void this.backlog(f);
    f.timer = setInterval(() => this.tick(f), 1000);
    return new Response(stream.readable, {
      headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' },
    });
  }

  /** Sends stored lines page by page, waiting for the follower to read; then turns it live. */
  private async backlog(f: Follower): Promise<void> {
    try {
      await f.writer.write(encoder.encode(': gridlease lease log\n\n'));
      for (;;) {
        if (!this.followers.has(f)) return;
        // Read and hand off without an await in between: no append can slip past.
        const rows = this.sql.exec('SELECT * FROM log_lines WHERE seq > ? ORDER BY seq LIMIT ?', f.sentThrough, BACKLOG_PAGE).toArray().map(lineOf);
        if (rows.length === 0) {
          f.live = true;
          return;
        }
        void f.writer.write(sseLines(rows)).catch(() => undefined);
        f.sentThrough = rows[rows.length - 1]!.seq;
        f.lastWriteAt = Date.now();
        await f.writer.ready;
      }
    } catch {
      this.close(f, false);
    }
  }

  private push(f: Follower, lines: readonly StoredLine[]): void {
    const fresh = lines.filter((l) => l.seq > f.sentThrough);
    if (fresh.length === 0) return;
    if ((f.writer.desiredSize ?? 0) <= 0) {
      // It stopped reading: drop it rather than queue without bound; it resumes from its last id.
      this.close(f, false);
      return;
    }
    void f.writer.write(sseLines(fresh)).catch(() => undefined);
    f.sentThrough = fresh[fresh.length - 1]!.seq;
    f.lastWriteAt = Date.now();
  }

  private tick(f: Follower): void {
    const now = Date.now();
    const { endedAt, exitCode } = this.view();
    if (f.live && endedAt !== null && (now - Math.max(endedAt, this.lastAppendAt) >= QUIET_AFTER_END_MS || now > endedAt + LOG_LATE_S * 1000)) {
      void f.writer.write(encoder.encode(`event: end\ndata: ${JSON.stringify({ exit_code: exitCode })}\n\n`)).catch(() => undefined);
      this.close(f, true);
      return;
    }
    if (now - f.lastWriteAt >= KEEPALIVE_MS && (f.writer.desiredSize ?? 0) > 0) {
      void f.writer.write(encoder.encode(': keepalive\n\n')).catch(() => undefined);
      f.lastWriteAt = now;
    }
  }

  /** Gracefully (what is queued is still delivered), or at once, discarding the queue. */
  private close(f: Follower, graceful: boolean): void {
    this.forget(f);
    if (graceful) f.writer.close().catch(() => undefined);
    else f.writer.abort(new Error('follower closed')).catch(() => undefined);
  }

  private forget(f: Follower): void {
    if (f.timer !== null) clearInterval(f.timer);
    f.timer = null;
    this.followers.delete(f);
  }

  followerCount(): number {
    return this.followers.size;
  }
}

function lineOf(r: Record<string, SqlStorageValue>): StoredLine {
  const line: StoredLine = { seq: Number(r.seq), at: new Date(Number(r.at)).toISOString(), stream: STREAMS[Number(r.stream)] ?? 'stdout', text: String(r.text) };
  if (Number(r.partial) === 1) line.partial = true;
  return line;
}

