// Runs `workload.command` (an argv array, no shell) as a child process on the host, as the
// runner's own user: NO isolation, so for trusted workloads and development only (the runner warns
// when it is chosen). The child gets a minimal environment of its own, never the runner's, and a
// private home folder (0700, removed when it exits) as HOME, TMPDIR and working folder; it can
// still read whatever the runner's user can, the node token file included. The image is not used.
// Children die with the runner: the runner stops them cleanly on shutdown (they have their own
// process group, so a terminal's Ctrl-C reaches the runner only, and a stop reaches the
// workload's own children too).
//
// Each workload port gets its own free host port of the runner's range (ports.ts), as docker
// publishes them: two leases may both ask for 8888. The process cannot be remapped from outside,
// so it is told where to listen: GRIDLEASE_PORT_<port>=<host port> for every port, and PORT
// when there is exactly one. The host ports are released when the process exits.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RunnerError } from '../errors.ts';
import { captureStream } from '../logs/capture.ts';
import type { LogSink } from '../logs/shipper.ts';
import { HostPorts, type PortRange, portIsFree } from './ports.ts';
import { type ExitInfo, type Executor, type RunHandle, type StartSpec, gpuList, signalExitCode } from './types.ts';

/** How long a workload's pipes are read after it exited. */
const PIPE_DRAIN_MS = 2_000;

export const WORKLOAD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ProcessExecutorOptions {
  /** Where the workload's stdout and stderr go; none: discarded. */
  logs?: LogSink;
  /** Host ports for workload ports (default 40000-40999). */
  portRange?: PortRange;
  /** Whether nothing on the machine listens on a host port (default: try to bind it). */
  portIsFree?: (port: number) => Promise<boolean>;
}

/** Process groups of live workloads, killed if the runner exits without stopping them. */
const live = new Set<number>();
let exitHookInstalled = false;
function killLeftovers(): void {
  for (const pid of live) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export class ProcessExecutor implements Executor {
  readonly name = 'process';
  readonly outlivesRunner = false;

  private readonly options: ProcessExecutorOptions;
  private readonly hostPorts: HostPorts;

  constructor(options: ProcessExecutorOptions = {}) {
    this.options = options;
    this.hostPorts = new HostPorts(options.portRange, options.portIsFree ?? portIsFree);
  }

  async adopt(): Promise<RunHandle[]> {
    return [];
  }

  async start(spec: StartSpec): Promise<RunHandle> {
    const [cmd, ...args] = spec.workload.command;
    if (!cmd) throw new RunnerError('the process executor needs workload.command (an argv array)');
    const taken = await this.hostPorts.take(spec.workload.ports.length);
    try {
      return await this.run(spec, cmd, args, taken);
    } catch (err) {
      this.hostPorts.release(taken);
      throw err;
    }
  }

  private async run(spec: StartSpec, cmd: string, args: string[], taken: number[]): Promise<RunHandle> {
    const ports = Object.fromEntries(spec.workload.ports.map((port, i) => [String(port), taken[i]!]));
    const portEnv: Record<string, string> = Object.fromEntries(Object.entries(ports).map(([port, host]) => [`GRIDLEASE_PORT_${port}`, String(host)]));
    if (taken.length === 1) portEnv.PORT = String(taken[0]);
    const home = fs.mkdtempSync(path.join(os.tmpdir(), `gridlease-lease-${safeName(spec.leaseId)}-`));
    const removeHome = () => {
      try {
        fs.rmSync(home, { recursive: true, force: true });
      } catch {
        // best effort: it is in the temp folder
      }
    };
    const devices = gpuList(spec.gpuIndices);
    // Built from nothing: the runner's environment may hold the node token or other secrets.
    const env: NodeJS.ProcessEnv = {
      PATH: WORKLOAD_PATH,
      HOME: home,
      TMPDIR: home,
      LANG: 'C.UTF-8',
      ...spec.workload.env,
      CUDA_VISIBLE_DEVICES: devices,
      NVIDIA_VISIBLE_DEVICES: devices,
      GRIDLEASE_LEASE_ID: spec.leaseId,
      GRIDLEASE_LEASE_ENDS_AT: spec.endsAt.toISOString(),
      ...portEnv,
    };
    const out = this.options.logs ? 'pipe' : 'ignore';
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(cmd, args, { env, cwd: home, stdio: ['ignore', out, out], detached: true, windowsHide: true });
    } catch (err) {
      removeHome();
      throw new RunnerError(`cannot start ${cmd}: ${(err as Error).message}`);
    }
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err: NodeJS.ErrnoException) => {
        removeHome();
        reject(new RunnerError(err.code === 'ENOENT' ? `command not found: ${cmd}` : `cannot start ${cmd}: ${err.message}`));
      });
    });
    const pid = child.pid!;
    live.add(pid);
    if (this.options.logs && child.stdout && child.stderr) {
      const log = this.options.logs.open(spec.leaseId);
      const pipes = [child.stdout, child.stderr];
      void Promise.all([captureStream(child.stdout, 'stdout', log), captureStream(child.stderr, 'stderr', log)]).then(() => log.end());
      // Something the workload started may hold its pipes open after it exited: read a little
      // longer, then close them, so the lease's log ends.
      child.once('exit', () => setTimeout(() => pipes.forEach((p) => p.destroy()), PIPE_DRAIN_MS).unref());
    }
    if (!exitHookInstalled) {
      // A runner that exits abruptly (second Ctrl-C, fatal error) must not leave workloads behind.
      process.on('exit', killLeftovers);
      exitHookInstalled = true;
    }
    const exited = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(pid);
        removeHome();
        this.hostPorts.release(taken);
        resolve({ exitCode: code ?? signalExitCode(signal, os.constants.signals) });
      });
    });
    let gone = false;
    void exited.then(() => (gone = true));
    const kill = (signal: NodeJS.Signals) => {
      if (gone) return;
      try {
        process.kill(-pid, signal); // the whole process group
      } catch {
        try {
          child.kill(signal);
        } catch {
          // already gone
        }
      }
    };
    return {
      leaseId: spec.leaseId,
      ports,
      endsAt: spec.endsAt,
      exited,
      async stop(graceMs: number) {
        kill('SIGTERM');
        const timer = setTimeout(() => kill('SIGKILL'), graceMs);
        try {
          return await exited;
        } finally {
          clearTimeout(timer);
        }
      },
      detach() {
        // A child cannot outlive the runner's watch; nothing to do.
      },
    };
  }
}

const safeName = (id: string) => id.replace(/[^A-Za-z0-9._-]/g, '_');
