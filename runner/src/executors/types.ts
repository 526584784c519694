import type { Workload } from '../../../src/contracts/runner.ts';

export interface StartSpec {
  leaseId: string;
  workload: Workload;
  /** The only GPUs the workload may see (nvidia-smi indices). */
  gpuIndices: readonly number[];
  endsAt: Date;
}

export interface ExitInfo {
  /** The exit code; 128 + signal number when a signal ended it (as shells report it). */
  exitCode: number;
}

/** A workload the executor started (or found running after a restart). */
export interface RunHandle {
  readonly leaseId: string;
  /** Container (or process) port → host port. */
  readonly ports: Record<string, number>;
  /** When the lease ends, if the executor knows (adopted containers carry it in a label). */
  readonly endsAt: Date | null;
  /** Settles once when the workload ends, whoever ended it. */
  readonly exited: Promise<ExitInfo>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it is gone. */
  stop(graceMs: number): Promise<ExitInfo>;
  /** Stop watching it, leave it running (docker across a runner restart). */
  detach(): void;
}

export interface Executor {
  readonly name: 'docker' | 'process';
  /** True when workloads keep running after the runner exits (docker containers). */
  readonly outlivesRunner: boolean;
  /** Throws (with a one-line message) when the workload could not start. */
  start(spec: StartSpec): Promise<RunHandle>;
  /** Workloads left running by an earlier runner process, to watch again. */
  adopt(): Promise<RunHandle[]>;
}

/** 128 + signal number, like a shell's `$?`. */
export function signalExitCode(signal: NodeJS.Signals | null, signals: Record<string, number>): number {
  if (!signal) return 1;
  const n = signals[signal];
  return typeof n === 'number' ? 128 + n : 1;
}

export const gpuList = (indices: readonly number[]) => [...new Set(indices)].join(',');
