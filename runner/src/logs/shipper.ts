// Ships each lease's output to the API: POST /v1/runner/leases/{id}/logs, in seq order, one
// request in flight per lease, at most LOG_MAX_BATCH_LINES lines and LOG_MAX_BATCH_CHARS
// characters a batch, at least every `flushMs` while there are lines. Lines wait in the lease's
// spool (spool.ts) until the API's next_seq says it has them, so a slow or unreachable API, a
// 429 or a runner restart loses nothing but what the spool's bound drops (the oldest first).
//
// Answers: 429 waits Retry-After; network errors, 5xx and 401 retry with back-off (a refused
// token ends the runner through its heartbeat); 404 (not this node's lease) and 409 lease_ended
// drop the lease's spool; any other 4xx is a bug on one side or the other: logged, the batch
// dropped. A lease's shipping stops once its output ended and everything was sent, or
// LOG_LATE_S after its end (the API takes nothing later).
import fs from 'node:fs';
import path from 'node:path';
import { LOG_LATE_S, LOG_MAX_BATCH_CHARS, LOG_MAX_BATCH_LINES, type LogLine } from '../../../src/contracts/runner.ts';
import { ApiError, type ApiClient } from '../api.ts';
import { Backoff } from '../backoff.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { sleep } from '../time.ts';
import { LeaseSpool, type SpoolLimits } from './spool.ts';

export type LogStream = 'stdout' | 'stderr';

/** One capture of a lease's output (an executor holds one per workload it watches). */
export interface LeaseLog {
  /** Docker's timestamp of the last line taken, to read on from after a restart; null: none. */
  readonly cursor: string | null;
  /** A line (or a piece of one); `timestamp`: docker's, else the time now. */
  line(stream: LogStream, text: string, partial: boolean, timestamp?: string): void;
  /** The workload's output ended: ship the rest, then forget the lease. */
  end(): void;
  /** The runner stops watching a workload that goes on: the next runner reads on. */
  detach(): void;
}

export interface LogSink {
  open(leaseId: string): LeaseLog;
}

/** Lease ids name spool folders: only these. */
const LEASE_ID = /^[A-Za-z0-9_-]{1,64}$/;

interface Shipment {
  id: string;
  spool: LeaseSpool;
  /** The first seq to send next. */
  sendFrom: number;
  busy: boolean;
  retryAt: number;
  backoff: Backoff;
  /** Captures still open. */
  writers: number;
  /** When its output ended (ms); null while captured. */
  endedAt: number | null;
  /** Dropped (404, 409, late): lines are no longer kept. */
  gone: boolean;
  failing: boolean;
  diskFailing: boolean;
  /** Lines the spool's bound dropped, not logged yet, and when that was last logged. */
  dropped: number;
  droppedLoggedAt: number;
}

export interface LogShipperOptions {
  api: Pick<ApiClient, 'logs'>;
  /** Spool folder: one sub-folder per lease. */
  dir: string;
  log: Logger;
  limits?: SpoolLimits;
  flushMs?: number;
  now?: () => number;
  backoff?: () => Backoff;
}

export class LogShipper implements LogSink {
  private readonly shipments = new Map<string, Shipment>();
  private readonly closing = new AbortController();
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly now: () => number;
  private readonly o: LogShipperOptions;

  constructor(o: LogShipperOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
    this.timer = setInterval(() => this.tick(), o.flushMs ?? 250);
    this.timer.unref?.();
  }

  open(leaseId: string): LeaseLog {
    const s = LEASE_ID.test(leaseId) ? this.shipment(leaseId) : null;
    if (!s) {
      if (!LEASE_ID.test(leaseId)) this.o.log.warn(`lease ${JSON.stringify(leaseId.slice(0, 80))}: its id cannot name a spool folder; its logs are not kept`);
      return DISCARD;
    }
    s.writers++;
    s.endedAt = null;
    s.spool.endedAt = null;
    let open = true;
    const close = (ended: boolean) => {
      if (!open) return;
      open = false;
      s.writers--;
      if (s.writers > 0) return;
      if (s.gone) return this.forget(s);
      if (ended) {
        s.endedAt = this.now();
        s.spool.endedAt = new Date(s.endedAt).toISOString();
      }
      this.disk(s, () => s.spool.saveMeta());
      if (ended) this.kick(s);
    };
    return {
      get cursor() {
        return s.spool.cursor;
      },
      line: (stream, text, partial, timestamp) => {
        if (!open || s.gone) return;
        const at = timestamp ?? new Date(this.now()).toISOString();
        this.disk(s, () => s.spool.append({ at, stream, text, partial }, timestamp));
      },
      end: () => close(true),
      detach: () => close(false),
    };
  }

  /** Spools an earlier runner left whose workloads no one watches now: their output ended. */
  resume(): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.o.dir);
    } catch {
      return; // no spool yet
    }
    for (const name of names) {
      if (!LEASE_ID.test(name) || this.shipments.has(name)) continue;
      const s = this.shipment(name);
      if (!s) continue;
      const ended = s.spool.endedAt ? Date.parse(s.spool.endedAt) : NaN;
      s.endedAt = Number.isNaN(ended) ? this.now() : Math.min(ended, this.now());
      if (!s.spool.empty()) this.o.log.info(`lease ${name}: sending the log lines an earlier run left unsent`);
      this.kick(s);
    }
  }

  /** Sends what it can within `timeoutMs`, then keeps the rest on disk for the next start. */
  async close(timeoutMs: number): Promise<void> {
    const until = this.now() + timeoutMs;
    while (this.now() < until && [...this.shipments.values()].some((s) => !s.gone && !s.spool.empty() && this.now() >= s.retryAt)) {
      this.tick();
      await sleep(20);
    }
    clearInterval(this.timer);
    this.closing.abort();
    while ([...this.shipments.values()].some((s) => s.busy)) await sleep(5);
    for (const s of [...this.shipments.values()]) {
      this.forgetIfDone(s);
      if (!s.gone) this.disk(s, () => s.spool.saveMeta());
    }
  }

  /** A lease whose output ended and was all sent is forgotten, its spool removed. */
  private forgetIfDone(s: Shipment): void {
    if (!s.gone && s.writers === 0 && s.endedAt !== null && s.spool.empty()) this.drop(s, null);
  }

  /** Leases still shipping (for tests and status). */
  pending(): string[] {
    return [...this.shipments.keys()];
  }

  private shipment(id: string): Shipment | null {
    const known = this.shipments.get(id);
    if (known && !known.gone) return known;
    let spool: LeaseSpool;
    try {
      spool = LeaseSpool.open(path.join(this.o.dir, id), this.o.limits);
    } catch (err) {
      this.o.log.warn(`lease ${id}: cannot open its log spool (${describeError(err)}); its logs are not kept`);
      return null;
    }
    const s: Shipment = {
      id,
      spool,
      sendFrom: spool.acked,
      busy: false,
      retryAt: 0,
      backoff: this.o.backoff?.() ?? new Backoff({ baseMs: 1_000, maxMs: 30_000 }),
      writers: 0,
      endedAt: null,
      gone: false,
      failing: false,
      diskFailing: false,
      dropped: 0,
      droppedLoggedAt: -Infinity,
    };
    this.shipments.set(id, s);
    return s;
  }

  private tick(): void {
    for (const s of this.shipments.values()) {
      if (s.gone) continue;
      this.disk(s, () => s.spool.flush());
      s.dropped += s.spool.takeDropped();
      // At most one line a minute, however fast a chatty workload overflows the spool.
      if (s.dropped > 0 && this.now() - s.droppedLoggedAt >= 60_000) {
        this.o.log.warn(`lease ${s.id}: ${s.dropped} log line${s.dropped === 1 ? '' : 's'} dropped, the oldest first (its spool is full while the API is slow or out of reach)`);
        s.dropped = 0;
        s.droppedLoggedAt = this.now();
      }
      this.kick(s);
    }
  }

  private kick(s: Shipment): void {
    if (!s.busy && !s.gone && !this.closing.signal.aborted && this.now() >= s.retryAt) void this.ship(s);
  }

  private async ship(s: Shipment): Promise<void> {
    s.busy = true;
    try {
      for (;;) {
        if (s.gone || this.closing.signal.aborted) return;
        if (s.writers === 0 && s.endedAt !== null && this.now() - s.endedAt > LOG_LATE_S * 1000) {
          return this.drop(s, s.spool.empty() ? null : `lease ${s.id}: log lines not delivered within ${LOG_LATE_S} s of its end dropped`);
        }
        let batch: LogLine[] = [];
        this.disk(s, () => (batch = s.spool.read(s.sendFrom, LOG_MAX_BATCH_LINES, LOG_MAX_BATCH_CHARS)));
        if (batch.length === 0) return this.forgetIfDone(s);
        const first = batch[0]!.seq;
        const last = batch[batch.length - 1]!.seq;
        let next: number;
        try {
          next = (await this.o.api.logs(s.id, { lines: batch }, this.closing.signal)).next_seq;
        } catch (err) {
          if (this.closing.signal.aborted) return;
          if (this.refused(s, err, first, last)) continue;
          return;
        }
        if (s.failing) this.o.log.info(`lease ${s.id}: logs are delivered again`);
        s.failing = false;
        s.backoff.reset();
        // Never past what was sent: a next_seq beyond it would skip lines not sent yet. Below
        // the batch: the API lost lines it had, and gets them again from there (if still here).
        next = Math.min(next, last + 1);
        s.sendFrom = next;
        this.disk(s, () => {
          s.spool.ack(next);
          s.spool.saveMeta();
        });
        const full = batch.length >= LOG_MAX_BATCH_LINES || batch.reduce((n, l) => n + l.text.length, 0) > LOG_MAX_BATCH_CHARS - 8192;
        // A backlog goes out at once; a rewind waits for the next tick (an API that keeps asking
        // for the same lines must not get them in a tight loop).
        if (!full || next <= first) return this.forgetIfDone(s);
      }
    } finally {
      s.busy = false;
    }
  }

  /** The request failed: true when the batch was dropped and the next may go at once. */
  private refused(s: Shipment, err: unknown, first: number, last: number): boolean {
    const { log } = this.o;
    const status = err instanceof ApiError ? err.status : 0;
    if (status === 404) {
      log.warn(`lease ${s.id}: the API knows no such lease of this node (404); its logs are dropped`);
      this.drop(s, null);
      return false;
    }
    if (status === 409 && (err as ApiError).code === 'lease_ended') {
      log.info(`lease ${s.id}: the API takes no more of its logs (the lease ended); the rest is dropped`);
      this.drop(s, null);
      return false;
    }
    if (status === 429) {
      s.retryAt = this.now() + ((err as ApiError).retryAfterMs ?? s.backoff.next());
      return false;
    }
    if (status >= 400 && status < 500 && status !== 401 && status !== 408) {
      log.error(`lease ${s.id}: the API refused log lines ${first}-${last} (HTTP ${status}: ${(err as ApiError).message}); they are dropped`);
      s.sendFrom = last + 1;
      this.disk(s, () => s.spool.ack(last + 1));
      return true;
    }
    if (!s.failing) log.warn(`lease ${s.id}: logs not delivered (${describeError(err)}); they wait on disk, retrying with back-off`);
    s.failing = true;
    s.retryAt = this.now() + Math.max(200, s.backoff.next());
    return false;
  }

  private drop(s: Shipment, why: string | null): void {
    if (why) this.o.log.warn(why);
    s.gone = true;
    try {
      s.spool.remove();
    } catch {
      // it goes with the next start's resume at worst
    }
    if (s.writers === 0) this.forget(s);
  }

  private forget(s: Shipment): void {
    // A capture opened since may have a new shipment under the same id: that one stays.
    if (this.shipments.get(s.id) === s) this.shipments.delete(s.id);
  }

  /** Disk errors (full, removed by hand) cost lines, never the runner: logged once a spell. */
  private disk(s: Shipment, op: () => void): void {
    try {
      op();
      s.diskFailing = false;
    } catch (err) {
      if (!s.diskFailing) this.o.log.warn(`lease ${s.id}: cannot write its log spool (${describeError(err)}); lines are lost until it can`);
      s.diskFailing = true;
    }
  }
}

const DISCARD: LeaseLog = { cursor: null, line: () => {}, end: () => {}, detach: () => {} };
