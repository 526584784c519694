// The leases this runner is running: starts them with the executor on exactly the GPUs given,
// enforces ends_at locally (no API needed), stops them, and reports events and states.
import type { Command, LEASE_STATES } from '../../src/contracts/runner.ts';
import { describeError } from './errors.ts';
import type { EventSink } from './events.ts';
import type { Executor, ExitInfo, RunHandle } from './executors/types.ts';
import type { Logger } from './log.ts';
import { setTimer } from './time.ts';
import { workloadProblem } from './workload.ts';

export type LeaseState = (typeof LEASE_STATES)[number];
export type StartLease = Extract<Command, { type: 'start_lease' }>;

interface Lease {
  id: string;
  state: LeaseState;
  handle: RunHandle | null;
  gpus: readonly number[];
  timer: { cancel(): void } | null;
  /** Why it is being stopped (stop_lease reason, `ends_at`, `shutdown`); null when not. */
  stopping: string | null;
  /** A stop that arrived while it was still starting. */
  stopWhenStarted: boolean;
  /** Settles once its exit has been handled (state, event). */
  done: Promise<void> | null;
}

export interface LeaseManagerOptions {
  executor: Executor;
  events: EventSink;
  log: Logger;
  /** SIGTERM → SIGKILL grace (default 10 s). */
  graceMs?: number;
  /** GPU indices on this machine, when known: a lease asking for others fails. */
  gpuIndices?: () => readonly number[] | null;
  now?: () => number;
}

const TERMINAL: readonly LeaseState[] = ['exited', 'failed', 'stopped'];

export class LeaseManager {
  private readonly leases = new Map<string, Lease>();
  private readonly graceMs: number;
  private readonly now: () => number;

  private readonly options: LeaseManagerOptions;

  constructor(options: LeaseManagerOptions) {
    this.options = options;
    this.graceMs = options.graceMs ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Lease states for the next heartbeat: live leases, and ended ones not yet delivered. */
  snapshot(): { lease_id: string; state: LeaseState }[] {
    return [...this.leases.values()].map((l) => ({ lease_id: l.id, state: l.state }));
  }

  /** A heartbeat carrying `sent` was accepted: ended leases in it are forgotten. */
  delivered(sent: readonly { lease_id: string; state: LeaseState }[]): void {
    for (const { lease_id, state } of sent) {
      const lease = this.leases.get(lease_id);
      if (lease && lease.state === state && TERMINAL.includes(state)) this.leases.delete(lease_id);
    }
  }

  running(): string[] {
    return [...this.leases.values()].filter((l) => !TERMINAL.includes(l.state)).map((l) => l.id);
  }

  async start(cmd: StartLease): Promise<void> {
    const { log, executor, events } = this.options;
    const existing = this.leases.get(cmd.lease_id);
    if (existing && !TERMINAL.includes(existing.state)) {
      log.info(`lease ${cmd.lease_id} is already ${existing.state}; start ignored`);
      return;
    }
    const lease: Lease = { id: cmd.lease_id, state: 'starting', handle: null, gpus: cmd.gpu_indices, timer: null, stopping: null, stopWhenStarted: false, done: null };
    this.leases.set(cmd.lease_id, lease);
    const fail = (reason: string) => {
      lease.state = 'failed';
      log.warn(`lease ${lease.id}: failed to start: ${reason}`);
      events.report(lease.id, { type: 'failed', at: new Date(this.now()).toISOString(), reason: reason.slice(0, 1000) });
    };

    const refused = workloadProblem(cmd.workload);
    if (refused) return fail(refused);
    const endsAt = new Date(cmd.ends_at);
    if (endsAt.getTime() <= this.now()) return fail(`the lease already ended at ${cmd.ends_at}`);
    const problem = this.gpuProblem(lease);
    if (problem) return fail(problem);

    log.info(`lease ${lease.id}: starting on GPU ${cmd.gpu_indices.join(',')} with the ${executor.name} executor until ${cmd.ends_at}`);
    let handle: RunHandle;
    try {
      handle = await executor.start({ leaseId: lease.id, workload: cmd.workload, gpuIndices: cmd.gpu_indices, endsAt });
    } catch (err) {
      return fail(describeError(err));
    }
    lease.handle = handle;
    lease.state = 'running';
    // Paid time counts from the start: the runner ends it then, even with the API out of reach.
    const paidEnd = cmd.duration_s === undefined ? endsAt : new Date(Math.min(endsAt.getTime(), this.now() + cmd.duration_s * 1000));
    const ports = Object.keys(handle.ports).length > 0 ? handle.ports : undefined;
    log.info(`lease ${lease.id}: running${ports ? ` (ports ${Object.entries(ports).map(([c, h]) => `${h}→${c}`).join(', ')})` : ''}`);
    events.report(lease.id, { type: 'started', at: new Date(this.now()).toISOString(), ...(ports ? { ports } : {}) });
    this.watch(lease, handle, paidEnd);
    if (lease.stopWhenStarted) await this.stop(lease.id, lease.stopping ?? 'stop_lease');
  }

  /** A start_lease that could not even be read: the lease failed (a live lease is left alone). */
  async refuse(leaseId: string, reason: string): Promise<void> {
    const existing = this.leases.get(leaseId);
    if (existing && !TERMINAL.includes(existing.state)) return;
    this.leases.set(leaseId, { id: leaseId, state: 'failed', handle: null, gpus: [], timer: null, stopping: null, stopWhenStarted: false, done: null });
    this.options.log.warn(`lease ${leaseId}: failed to start: ${reason}`);
    this.options.events.report(leaseId, { type: 'failed', at: new Date(this.now()).toISOString(), reason: reason.slice(0, 1000) });
  }

  /** Workloads an earlier runner left running (docker): watch them again, enforce their end. */
  async adopt(): Promise<void> {
    const { log, executor } = this.options;
    let handles: RunHandle[];
    try {
      handles = await executor.adopt();
    } catch (err) {
      log.warn(`cannot look for workloads left running: ${describeError(err)}`);
      return;
    }
    for (const handle of handles) {
      if (this.leases.has(handle.leaseId)) continue;
      const lease: Lease = { id: handle.leaseId, state: 'running', handle, gpus: [], timer: null, stopping: null, stopWhenStarted: false, done: null };
      this.leases.set(lease.id, lease);
      log.info(`lease ${lease.id}: found its workload from an earlier run${handle.endsAt ? `; ends at ${handle.endsAt.toISOString()}` : ''}`);
      this.watch(lease, handle, handle.endsAt);
    }
  }

  /** SIGTERM, SIGKILL after the grace; resolves once it has exited. */
  async stop(leaseId: string, reason: string): Promise<void> {
    const lease = this.leases.get(leaseId);
    if (!lease || TERMINAL.includes(lease.state)) {
      this.options.log.info(`lease ${leaseId}: stop (${reason}) ignored, it is not running`);
      return;
    }
    lease.stopping ??= reason;
    if (!lease.handle) {
      lease.stopWhenStarted = true;
      return;
    }
    this.options.log.info(`lease ${leaseId}: stopping (${reason})`);
    await lease.handle.stop(this.graceMs);
    await lease.done;
  }

  /**
   * Runner shutdown. Workloads that cannot outlive the runner (process executor), or all when
   * `stopWorkloads`, are stopped and awaited; the others are left running and unwatched.
   */
  async shutdown(stopWorkloads: boolean): Promise<void> {
    const stopAll = stopWorkloads || !this.options.executor.outlivesRunner;
    const live = [...this.leases.values()].filter((l) => !TERMINAL.includes(l.state));
    await Promise.all(
      live.map(async (lease) => {
        if (stopAll) return this.stop(lease.id, 'runner shutdown');
        // Still listed (running) in the final heartbeat: the lease goes on without the runner.
        lease.timer?.cancel();
        lease.handle?.detach();
        this.options.log.info(`lease ${lease.id}: left running (the next runner start picks it up)`);
      }),
    );
  }

  /** Resolves once the lease's exit has been handled (for tests). */
  async exited(leaseId: string): Promise<void> {
    await this.leases.get(leaseId)?.done;
  }

  private gpuProblem(lease: Lease): string | null {
    const known = this.options.gpuIndices?.();
    const missing = known ? lease.gpus.filter((i) => !known.includes(i)) : [];
    if (missing.length > 0) return `GPU ${missing.join(',')} is not on this machine`;
    for (const other of this.leases.values()) {
      if (other === lease || TERMINAL.includes(other.state)) continue;
      const shared = other.gpus.filter((i) => lease.gpus.includes(i));
      if (shared.length > 0) return `GPU ${shared.join(',')} is in use by lease ${other.id}`;
    }
    return null;
  }

  /** Moves a running lease's end (the renter extended it); unknown or ended leases are ignored. */
  async extend(leaseId: string, endsAt: Date): Promise<void> {
    const lease = this.leases.get(leaseId);
    if (!lease || lease.state !== 'running' || lease.stopping) {
      this.options.log.info(`lease ${leaseId}: extension ignored (${lease ? lease.state : 'unknown'})`);
      return;
    }
    lease.timer?.cancel();
    lease.timer = setTimer(endsAt.getTime(), () => void this.stop(lease.id, 'the lease ended (ends_at)'), this.now);
    this.options.log.info(`lease ${leaseId}: extended until ${endsAt.toISOString()}`);
  }

  private watch(lease: Lease, handle: RunHandle, endsAt: Date | null): void {
    lease.done = handle.exited.then((info: ExitInfo) => {
      lease.timer?.cancel();
      lease.state = lease.stopping ? 'stopped' : 'exited';
      this.options.log.info(`lease ${lease.id}: ${lease.state}, exit code ${info.exitCode}`);
      this.options.events.report(lease.id, { type: 'exited', at: new Date(this.now()).toISOString(), exit_code: info.exitCode });
    });
    if (endsAt) {
      lease.timer = setTimer(endsAt.getTime(), () => void this.stop(lease.id, 'the lease ended (ends_at)'), this.now);
    }
  }
}
