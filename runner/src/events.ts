// Lease events (started / failed / exited) to the API, in order, in the background. Network
// errors and 5xx are retried with back-off for a while; 404 means the API does not know the
// lease on this node: logged, the event dropped (heartbeats carry each lease's state anyway).
import type { LeaseEvent } from '../../src/contracts/runner.ts';
import { ApiError, type ApiClient } from './api.ts';
import { Backoff } from './backoff.ts';
import { describeError } from './errors.ts';
import type { Logger } from './log.ts';
import { sleep } from './time.ts';

export interface EventSink {
  report(leaseId: string, event: LeaseEvent): void;
}

const MAX_ATTEMPTS = 8;

export class EventReporter implements EventSink {
  private readonly queue: { leaseId: string; event: LeaseEvent }[] = [];
  private running: Promise<void> | null = null;
  private readonly closing = new AbortController();
  private failing = false;

  private readonly api: Pick<ApiClient, 'leaseEvent'>;
  private readonly log: Logger;
  private readonly backoff: Backoff;

  constructor(api: Pick<ApiClient, 'leaseEvent'>, log: Logger, backoff: Backoff = new Backoff({ baseMs: 1_000, maxMs: 30_000 })) {
    this.api = api;
    this.log = log;
    this.backoff = backoff;
  }

  report(leaseId: string, event: LeaseEvent): void {
    this.queue.push({ leaseId, event });
    this.running ??= this.drain().finally(() => (this.running = null));
  }

  /** Sends what is queued; after `timeoutMs` aborts what is in flight and drops the rest. */
  async flush(timeoutMs: number): Promise<void> {
    const timer = setTimeout(() => this.closing.abort(), timeoutMs);
    try {
      await (this.running ?? Promise.resolve());
    } finally {
      clearTimeout(timer);
    }
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const { leaseId, event } = this.queue[0]!;
      await this.deliver(leaseId, event);
      this.queue.shift();
    }
  }

  private async deliver(leaseId: string, event: LeaseEvent): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (this.closing.signal.aborted) {
        this.log.warn(`lease ${leaseId}: ${event.type} event not delivered (shutting down)`);
        return;
      }
      try {
        await this.api.leaseEvent(leaseId, event, this.closing.signal);
        this.backoff.reset();
        if (this.failing) this.log.info('lease events are delivered again');
        this.failing = false;
        return;
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) {
          this.log.warn(`lease ${leaseId}: the API does not know this lease on this node (404); ${event.type} event dropped`);
          return;
        }
        const retryable = !(err instanceof ApiError) || err.status >= 500 || err.status === 429;
        if (!retryable) {
          this.log.warn(`lease ${leaseId}: the API refused the ${event.type} event: ${err.message}`);
          return;
        }
        if (attempt >= MAX_ATTEMPTS || this.closing.signal.aborted) {
          this.log.warn(`lease ${leaseId}: ${event.type} event not delivered (${describeError(err)})`);
          return;
        }
        if (!this.failing) this.log.warn(`lease events: ${describeError(err)}; retrying with back-off`);
        this.failing = true;
        const retryAfter = err instanceof ApiError ? (err.retryAfterMs ?? 0) : 0;
        await sleep(Math.max(retryAfter, this.backoff.next()), this.closing.signal);
      }
    }
  }
}
