// One lease's log lines on disk, from the moment they are read until the API has them. Every line
// goes through here (not only when the API is slow): ordering, a runner restart and back-pressure
// then need nothing more, and memory holds at most one write buffer and one batch per lease.
//
// Layout, in <spool>/<lease_id>/ (0700): segments `<first seq, 16 digits>.jsonl`, one LogLine per
// line, and meta.json {next_seq, acked, cursor, ended_at}. A segment is deleted once the API has
// every line in it (`acked`: its next_seq). The folder is bounded: past `maxBytes` the oldest
// segment goes, unsent or not, and the API sees the gap in seqs. meta.json is written lazily;
// after a crash next_seq and cursor are recovered from the last line on disk.
import fs from 'node:fs';
import path from 'node:path';
import { LogLineSchema, type LogLine } from '../../../src/contracts/runner.ts';

export const SPOOL_MAX_BYTES = 16 * 1024 * 1024;
/** Lines wait in memory at most this long in bytes before they are appended to disk. */
const WRITE_BUFFER_BYTES = 64 * 1024;

export interface SpoolLimits {
  /** Bytes on disk per lease before the oldest lines are dropped (default 16 MiB). */
  maxBytes?: number;
  /** Bytes per segment file (default maxBytes / 16). */
  segmentBytes?: number;
}

interface Segment {
  first: number;
  file: string;
  bytes: number;
}

interface Meta {
  next_seq: number;
  acked: number;
  cursor: string | null;
  ended_at: string | null;
}

const SEGMENT_NAME = /^(\d{16})\.jsonl$/;

export class LeaseSpool {
  readonly dir: string;
  /** The seq the next line gets. */
  nextSeq = 0;
  /** The API has every line below this (its next_seq): they may be forgotten. */
  acked = 0;
  /** Docker's timestamp of the last line taken (resume point after a restart). */
  cursor: string | null = null;
  /** When the lease's output ended (ISO), as far as this runner knows. */
  endedAt: string | null = null;
  /** Lines dropped to keep the bound, since the last call to takeDropped(). */
  private dropped = 0;
  private readonly segments: Segment[] = [];
  private buffer = '';
  /** Every line of `file` before byte `offset` has a seq below `seq`. */
  private hint: { file: string; offset: number; seq: number } | null = null;
  /** The seq of the first line in `buffer`. */
  private bufferFirst = 0;
  private readonly maxBytes: number;
  private readonly segmentBytes: number;

  private constructor(dir: string, limits: SpoolLimits) {
    this.dir = dir;
    this.maxBytes = limits.maxBytes ?? SPOOL_MAX_BYTES;
    this.segmentBytes = Math.max(1, limits.segmentBytes ?? Math.floor(this.maxBytes / 16));
  }

  /** Opens (creating, or finding what an earlier runner left) the spool in `dir`. */
  static open(dir: string, limits: SpoolLimits = {}): LeaseSpool {
    const spool = new LeaseSpool(dir, limits);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const meta = readMeta(path.join(dir, 'meta.json'));
    if (meta) {
      spool.nextSeq = meta.next_seq;
      spool.acked = meta.acked;
      spool.cursor = meta.cursor;
      spool.endedAt = meta.ended_at;
    }
    for (const name of fs.readdirSync(dir).sort()) {
      const m = SEGMENT_NAME.exec(name);
      if (!m) continue;
      const file = path.join(dir, name);
      spool.segments.push({ first: Number(m[1]), file, bytes: fs.statSync(file).size });
    }
    const tail = spool.tail();
    if (tail && tail.bytes > 0 && !endsWithNewline(tail.file)) {
      // A crash cut the last write short: what follows starts on a line of its own.
      fs.appendFileSync(tail.file, '\n');
      tail.bytes += 1;
    }
    const last = spool.lastLineOnDisk();
    if (last) {
      spool.nextSeq = Math.max(spool.nextSeq, last.seq + 1);
      if (last.cursor && (!spool.cursor || compareTimestamps(last.cursor, spool.cursor) > 0)) spool.cursor = last.cursor;
    }
    return spool;
  }

  /** Takes a line: it gets the next seq. `cursor`: docker's timestamp of it, when known. */
  append(line: Omit<LogLine, 'seq'>, cursor?: string): number {
    const seq = this.nextSeq++;
    const record: LogLine = { seq, at: line.at, stream: line.stream, text: line.text, ...(line.partial ? { partial: true } : {}) };
    if (this.buffer === '') this.bufferFirst = seq;
    this.buffer += `${JSON.stringify(record)}\n`;
    if (cursor) this.cursor = cursor;
    if (this.buffer.length >= WRITE_BUFFER_BYTES) this.flush();
    return seq;
  }

  /** Appends the buffered lines to disk, then drops the oldest segments past the bound. */
  flush(): void {
    if (this.buffer === '') return;
    let segment = this.tail();
    if (!segment || segment.bytes >= this.segmentBytes) {
      segment = { first: this.bufferFirst, file: path.join(this.dir, `${String(this.bufferFirst).padStart(16, '0')}.jsonl`), bytes: 0 };
      this.segments.push(segment);
    }
    const bytes = Buffer.byteLength(this.buffer);
    fs.appendFileSync(segment.file, this.buffer, { mode: 0o600 });
    segment.bytes += bytes;
    this.buffer = '';
    let total = this.segments.reduce((sum, s) => sum + s.bytes, 0);
    while (total > this.maxBytes && this.segments.length > 0) {
      const oldest = this.segments.shift()!;
      const end = this.segments[0]?.first ?? this.nextSeq;
      this.dropped += Math.max(0, end - Math.max(oldest.first, this.acked));
      fs.rmSync(oldest.file, { force: true });
      total -= oldest.bytes;
    }
  }

  /** Lines dropped to keep the bound since the last call. */
  takeDropped(): number {
    const n = this.dropped;
    this.dropped = 0;
    return n;
  }

  /**
   * Lines from seq `from` on (or from the oldest still here when those are gone), at most
   * `maxLines` and `maxChars` of text, in seq order.
   */
  read(from: number, maxLines: number, maxChars: number): LogLine[] {
    this.flush();
    const lines: LogLine[] = [];
    let chars = 0;
    for (let i = 0; i < this.segments.length; i++) {
      const segment = this.segments[i]!;
      const next = this.segments[i + 1]?.first ?? this.nextSeq;
      if (next <= from) continue;
      // Where the last read stopped: a segment's sent lines are not read and parsed again.
      const offset = this.hint && this.hint.file === segment.file && this.hint.seq <= from ? this.hint.offset : 0;
      let bytes: Buffer;
      try {
        bytes = readFrom(segment.file, offset);
      } catch {
        continue; // removed under us: its lines are lost, the API sees the gap
      }
      let start = 0;
      for (let nl = bytes.indexOf(0x0a); nl >= 0; nl = bytes.indexOf(0x0a, start)) {
        const row = bytes.toString('utf8', start, nl);
        const seq = /^\{"seq":(\d+),/.exec(row);
        const line = seq && Number(seq[1]) < from ? null : parseLine(row);
        if (line && (lines.length >= maxLines || chars + line.text.length > maxChars)) {
          this.hint = { file: segment.file, offset: offset + start, seq: line.seq };
          return lines;
        }
        start = nl + 1;
        if (!line) continue;
        lines.push(line);
        chars += line.text.length;
      }
      this.hint = { file: segment.file, offset: offset + start, seq: next };
    }
    return lines;
  }

  /** The API has every line below `nextSeq`: segments wholly below it go. */
  ack(nextSeq: number): void {
    this.acked = Math.max(this.acked, nextSeq);
    if (this.acked >= this.nextSeq) this.buffer = ''; // all of it is there already
    while (this.segments.length > 0) {
      const end = this.segments[1]?.first ?? (this.buffer === '' ? this.nextSeq : this.bufferFirst);
      if (end > this.acked) break;
      fs.rmSync(this.segments.shift()!.file, { force: true });
    }
  }

  /** Nothing left to send. */
  empty(): boolean {
    return this.buffer === '' && (this.segments.length === 0 || this.acked >= this.nextSeq);
  }

  saveMeta(): void {
    this.flush();
    const meta: Meta = { next_seq: this.nextSeq, acked: this.acked, cursor: this.cursor, ended_at: this.endedAt };
    const file = path.join(this.dir, 'meta.json');
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(meta), { mode: 0o600 });
    fs.renameSync(tmp, file);
  }

  remove(): void {
    this.buffer = '';
    this.segments.length = 0;
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private tail(): Segment | undefined {
    return this.segments[this.segments.length - 1];
  }

  private lastLineOnDisk(): { seq: number; cursor: string | null } | null {
    for (let i = this.segments.length - 1; i >= 0; i--) {
      let text: string;
      try {
        text = fs.readFileSync(this.segments[i]!.file, 'utf8');
      } catch {
        continue;
      }
      const rows = text.split('\n');
      for (let j = rows.length - 1; j >= 0; j--) {
        const line = parseLine(rows[j]!);
        if (line) return { seq: line.seq, cursor: DOCKER_TIMESTAMP.test(line.at) ? line.at : null };
      }
    }
    return null;
  }
}

/** RFC 3339 in UTC with up to nanoseconds, as `docker logs --timestamps` writes it. */
export const DOCKER_TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z$/;

/** Orders two DOCKER_TIMESTAMPs (docker trims trailing zeros of the fraction). */
export function compareTimestamps(a: string, b: string): number {
  const norm = (t: string) => {
    const [whole, fraction = ''] = t.slice(0, -1).split('.');
    return `${whole}.${fraction.padEnd(9, '0')}`;
  };
  const x = norm(a);
  const y = norm(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function readFrom(file: string, offset: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const bytes = Buffer.alloc(Math.max(0, size - offset));
    let read = 0;
    while (read < bytes.length) {
      const n = fs.readSync(fd, bytes, read, bytes.length - read, offset + read);
      if (n === 0) break;
      read += n;
    }
    return bytes.subarray(0, read);
  } finally {
    fs.closeSync(fd);
  }
}

function endsWithNewline(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const byte = Buffer.alloc(1);
    const size = fs.fstatSync(fd).size;
    return size === 0 || (fs.readSync(fd, byte, 0, 1, size - 1) === 1 && byte[0] === 0x0a);
  } finally {
    fs.closeSync(fd);
  }
}

function parseLine(row: string): LogLine | null {
  if (row === '') return null;
  try {
    const parsed = LogLineSchema.safeParse(JSON.parse(row));
    return parsed.success ? parsed.data : null;
  } catch {
    return null; // a line cut by a crash mid-write
  }
}

function readMeta(file: string): Meta | null {
  try {
    const value = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<Meta>;
    const seq = (n: unknown) => (Number.isSafeInteger(n) && (n as number) >= 0 ? (n as number) : 0);
    const text = (s: unknown, ok: (t: string) => boolean) => (typeof s === 'string' && ok(s) ? s : null);
    return {
      next_seq: seq(value.next_seq),
      acked: seq(value.acked),
      cursor: text(value.cursor, (t) => DOCKER_TIMESTAMP.test(t)),
      ended_at: text(value.ended_at, (t) => !Number.isNaN(Date.parse(t))),
    };
  } catch {
    return null;
  }
}
