// The heartbeat loop: every next_interval_s (±10 % jitter) it sends GPU metrics, lease states
// and acks, and hands the reply's commands to the processor. When the API does not answer, or
// answers 5xx/429, it backs off (full jitter, bounded) and resumes by itself; it logs one line
// per change of state, not one per failure. A 401 ends it: the node token was revoked.
import type { GpuMetrics, HeartbeatRequest } from '../../src/contracts/runner.ts';
import { ApiError, NetworkError, type ApiClient, type LooseHeartbeatResponse } from './api.ts';
import { Backoff, jitter } from './backoff.ts';
import type { CommandProcessor } from './commands.ts';
import { EXIT, RunnerError, describeError } from './errors.ts';
import type { LeaseManager } from './leases.ts';
import type { Logger } from './log.ts';
import type { CommandState } from './state.ts';
import { sleep as defaultSleep } from './time.ts';

/** Never retry sooner than this, whatever the jitter draws. */
const MIN_RETRY_MS = 200;

type Link = 'starting' | 'ok' | 'down' | 'throttled' | 'refused';

export interface HeartbeatOptions {
  api: Pick<ApiClient, 'heartbeat' | 'api'>;
  nodeId: string;
  bootId: string;
  metrics: () => Promise<GpuMetrics[]>;
  leases: Pick<LeaseManager, 'snapshot' | 'delivered'>;
  state: CommandState;
  commands: Pick<CommandProcessor, 'handle'>;
  log: Logger;
  /** Until the server says otherwise (default 10). */
  intervalS?: number;
  backoff?: Backoff;
  random?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  now?: () => Date;
  /** Called once, after the first heartbeat the API answered (the node token works). */
  onFirstReply?: () => void;
}

export class HeartbeatLoop {
  private seq = 0;
  private intervalS: number;
  private link: Link = 'starting';
  private answered = false;
  private readonly backoff: Backoff;
  private readonly random: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly now: () => Date;

  private readonly o: HeartbeatOptions;

  constructor(o: HeartbeatOptions) {
    this.o = o;
    this.intervalS = o.intervalS ?? 10;
    this.random = o.random ?? Math.random;
    this.backoff = o.backoff ?? new Backoff({ random: this.random });
    this.sleep = o.sleep ?? defaultSleep;
    this.now = o.now ?? (() => new Date());
  }

  /** Heartbeats until `signal` aborts; throws a RunnerError (exit 3) when the token is refused. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let delayMs: number;
      try {
        const reply = await this.beat(false, signal);
        delayMs = this.succeeded(reply);
      } catch (err) {
        if (signal.aborted) break;
        delayMs = this.failed(err);
      }
      await this.sleep(delayMs, signal);
    }
  }

  /** The last heartbeat, `draining: true`, once, within `timeoutMs`. True when it was delivered. */
  async final(timeoutMs = 5_000): Promise<boolean> {
    try {
      const reply = await this.beat(true, AbortSignal.timeout(timeoutMs));
      this.o.log.info(`sent the final (draining) heartbeat${reply.accepted ? '' : ' (not accepted)'}`);
      return true;
    } catch (err) {
      this.o.log.warn(`final (draining) heartbeat not delivered: ${describeError(err)}`);
      return false;
    }
  }

  /** The next heartbeat's body (advances seq). */
  async request(draining: boolean): Promise<HeartbeatRequest> {
    let gpus: GpuMetrics[] = [];
    try {
      gpus = (await this.o.metrics()).slice(0, 16);
    } catch {
      // The metrics source logs its own state changes.
    }
    return {
      node_id: this.o.nodeId,
      boot_id: this.o.bootId,
      seq: ++this.seq,
      sent_at: this.now().toISOString(),
      draining,
      gpus,
      leases: this.o.leases.snapshot().slice(0, 16),
      acks: this.o.state.pendingAcks(100),
    };
  }

  private async beat(draining: boolean, signal: AbortSignal): Promise<LooseHeartbeatResponse> {
    const body = await this.request(draining);
    const reply = await this.o.api.heartbeat(body, signal);
    if (reply.accepted) {
      this.o.state.acknowledged(body.acks);
      this.o.leases.delivered(body.leases);
    }
    return reply;
  }

  private succeeded(reply: LooseHeartbeatResponse): number {
    const { log } = this.o;
    if (this.link !== 'ok') {
      if (!this.answered) {
        this.answered = true;
        this.o.onFirstReply?.();
      }
      if (this.link === 'starting') log.info(`heartbeating to ${this.o.api.api} as node ${this.o.nodeId} every ${reply.next_interval_s} s`);
      else log.info(`API answers again (after ${this.backoff.failures} failed heartbeat${this.backoff.failures === 1 ? '' : 's'})`);
    } else if (reply.next_interval_s !== this.intervalS) {
      log.info(`heartbeat interval is now ${reply.next_interval_s} s`);
    }
    if (!reply.accepted) log.warn(`heartbeat ${this.seq} not accepted (replay or out of order); acks will be sent again`);
    this.link = 'ok';
    this.backoff.reset();
    this.intervalS = reply.next_interval_s;
    if (reply.commands.length > 0) void this.o.commands.handle(reply.commands);
    return jitter(this.intervalS * 1000, this.random);
  }

  private failed(err: unknown): number {
    if (err instanceof ApiError && err.status === 401) {
      throw new RunnerError(
        `the API refused this node's token (${err.message}): the node was revoked or joined again elsewhere; run \`gridlease-runner join\` to register it again`,
        EXIT.revoked,
      );
    }
    let next: Link;
    let delayMs = this.backoff.next();
    if (err instanceof ApiError && err.status === 429) {
      next = 'throttled';
      delayMs = Math.max(delayMs, err.retryAfterMs ?? 0);
    } else if (err instanceof NetworkError || (err instanceof ApiError && err.status >= 500)) {
      next = 'down';
    } else {
      next = 'refused';
    }
    if (next !== this.link) {
      const max = `${Math.round(this.backoff.maxMs / 1000)} s`;
      const why = err instanceof ApiError ? `HTTP ${err.status} ${err.code}: ${err.message}` : describeError(err);
      if (next === 'throttled') this.o.log.warn(`API rate-limits heartbeats (${why}); backing off`);
      else if (next === 'down') this.o.log.warn(`API unreachable (${why}); retrying with back-off (at most ${max} apart)`);
      else this.o.log.error(`API refused the heartbeat (${why}); retrying with back-off (at most ${max} apart)`);
      this.link = next;
    }
    return Math.max(MIN_RETRY_MS, delayMs);
  }
}
