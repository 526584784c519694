// Runs each lease as a detached, confined container:
//   docker run -d --name gridlease-<lease_id> --label gridlease.lease=<lease_id>
//     --label gridlease.ends_at=<iso> --label gridlease.ports=<json> --gpus '"device=1,3"'
//     --restart no <confinement…> [--memory M] [--cpus C] [-p HOST:PORT …] [-e KEY=VALUE …]
//     -- <image> <command…>
// then `docker wait` for its exit code and `docker rm -f -v` once it is over (-v: the anonymous
// volumes of an image's VOLUME lines would otherwise pile up on the provider's disk). Containers
// outlive the runner: after a restart `adopt()` finds them by label and watches them again, the
// lease's end time and host ports coming from the labels. Each workload port is published on a
// free host port of the runner's range (see ports.ts), reported in the `started` event. With a
// log sink, each watched container's output goes to it (docker-logs.ts); the container is
// removed only once that output was read to the end.
import { spawn } from 'node:child_process';
import { oneLine, RunnerError } from '../errors.ts';
import type { LogSink } from '../logs/shipper.ts';
import { sleep } from '../time.ts';
import { followContainerLogs } from './docker-logs.ts';
import { workloadProblem } from '../workload.ts';
import { HostPorts, type PortRange, portIsFree } from './ports.ts';
import { type ExitInfo, type Executor, type RunHandle, type StartSpec, gpuList } from './types.ts';

export interface DockerExecutorOptions {
  /** The docker CLI (default `docker`, looked up on PATH). */
  bin?: string;
  /** Environment of the docker CLI itself (default: the runner's). Never the workload's env. */
  env?: NodeJS.ProcessEnv;
  /** `--memory` for every container, e.g. `64g`. */
  memory?: string;
  /** `--cpus` for every container, e.g. `16`. */
  cpus?: string;
  /** Leave exited containers (and their logs) instead of removing them. */
  keepExited?: boolean;
  /** Host ports for workload ports (default 40000-40999). */
  portRange?: PortRange;
  /** Whether nothing on the machine listens on a host port (default: try to bind it). */
  portIsFree?: (port: number) => Promise<boolean>;
  /** `--pids-limit` for every container (default 16384: room for data loaders' threads, not a fork bomb). */
  pidsLimit?: number;
  /** Where containers' stdout and stderr go; none: not read. */
  logs?: LogSink;
}

interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
}

export const LEASE_LABEL = 'gridlease.lease';
export const ENDS_AT_LABEL = 'gridlease.ends_at';
export const PORTS_LABEL = 'gridlease.ports';
const DEFAULT_PIDS_LIMIT = 16_384;
const PORT_ATTEMPTS = 3;
/** How long the rest of an exited container's output may take to read before it is removed. */
const LOG_DRAIN_MS = 5_000;

// What every workload container runs with, whatever the renter sends. Its own network, IPC and PID
// namespaces (never the host's), no privilege gain through setuid binaries, no host mounts, a PID
// limit, bounded logs, and of the capabilities only those that act on the container's own files and processes
// and that package managers and entrypoints stepping down to a user (apt-get, gosu) need.
export const CONFINEMENT: readonly string[] = [
  '--network', 'bridge',
  '--ipc', 'private',
  '--security-opt', 'no-new-privileges',
  '--cap-drop', 'ALL',
  ...['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'SETGID', 'SETUID'].flatMap((cap) => ['--cap-add', cap]),
  // Docker's default json-file logs grow without end: a chatty workload would fill the
  // provider's disk. The local driver keeps at most five 20 MB files (and `docker logs` works).
  '--log-driver', 'local',
  '--log-opt', 'max-size=20m',
  '--log-opt', 'max-file=5',
];

export const containerName = (leaseId: string) => `gridlease-${leaseId.replace(/[^A-Za-z0-9_.-]/g, '_')}`;

/**
 * The `docker run` argv (without `docker`) for a lease, its workload ports published on
 * `hostPorts` (container port → host port). Throws when the workload breaks a rule.
 */
export function dockerRunArgs(
  spec: StartSpec,
  hostPorts: Record<string, number>,
  options: Pick<DockerExecutorOptions, 'memory' | 'cpus' | 'pidsLimit'> = {},
): string[] {
  const refused = workloadProblem(spec.workload);
  if (refused) throw new RunnerError(refused);
  const args = ['run', '-d', '--name', containerName(spec.leaseId)];
  args.push('--label', `${LEASE_LABEL}=${spec.leaseId}`, '--label', `${ENDS_AT_LABEL}=${spec.endsAt.toISOString()}`);
  // Always set, so a label baked into the image cannot claim ports at the next adopt().
  args.push('--label', `${PORTS_LABEL}=${JSON.stringify(hostPorts)}`);
  // The value is CSV to docker: without the inner quotes `device=1,3` would mean `device=1` and `3`.
  args.push('--gpus', `"device=${gpuList(spec.gpuIndices)}"`);
  args.push('--restart', 'no');
  args.push(...CONFINEMENT, '--pids-limit', String(options.pidsLimit ?? DEFAULT_PIDS_LIMIT));
  if (options.memory) args.push('--memory', options.memory);
  if (options.cpus) args.push('--cpus', options.cpus);
  for (const port of spec.workload.ports) args.push('-p', `${hostPorts[String(port)]}:${port}`);
  const env = {
    ...spec.workload.env,
    // Read on the host by the NVIDIA container runtime (host indices): pinned to the lease's GPUs so
    // neither the workload env nor an image's `ENV NVIDIA_VISIBLE_DEVICES=all` can widen --gpus.
    NVIDIA_VISIBLE_DEVICES: gpuList(spec.gpuIndices),
    GRIDLEASE_LEASE_ID: spec.leaseId,
    GRIDLEASE_LEASE_ENDS_AT: spec.endsAt.toISOString(),
  };
  // Values go in argv, not in the docker CLI's environment: the workload's env must never steer
  // the CLI (DOCKER_HOST, LD_PRELOAD…).
  for (const [key, value] of Object.entries(env)) args.push('-e', `${key}=${value}`);
  // `--` ends docker's options: whatever the image string is, it cannot be read as one.
  args.push('--', spec.workload.image, ...spec.workload.command);
  return args;
}

export class DockerExecutor implements Executor {
  readonly name = 'docker';
  readonly outlivesRunner = true;
  private readonly bin: string;
  private readonly options: DockerExecutorOptions;
  private readonly hostPorts: HostPorts;

  constructor(options: DockerExecutorOptions = {}) {
    this.options = options;
    this.bin = options.bin || 'docker';
    this.hostPorts = new HostPorts(options.portRange, options.portIsFree ?? portIsFree);
  }

  /** Runs the docker CLI; `signal` kills it (used to stop a `docker wait`). */
  docker(args: string[], signal?: AbortSignal): Promise<DockerResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.bin, args, { env: this.options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true, signal });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
      child.once('error', (err: NodeJS.ErrnoException) => {
        if (err.name === 'AbortError') return reject(err);
        reject(
          new RunnerError(
            err.code === 'ENOENT' ? `docker not found (${this.bin}): install Docker and the NVIDIA Container Toolkit, or use --executor process` : `cannot run docker: ${err.message}`,
          ),
        );
      });
      child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });
  }

  /** `docker version`: the server version, or throws a one-line RunnerError. */
  async check(): Promise<string> {
    const r = await this.docker(['version', '--format', '{{.Server.Version}}']);
    if (r.code !== 0) throw new RunnerError(`docker is not usable: ${lastLine(r.stderr) || `exit ${r.code}`}`);
    return r.stdout.trim();
  }

  async start(spec: StartSpec): Promise<RunHandle> {
    if (!spec.workload.image) throw new RunnerError('workload.image is required by the docker executor');
    const refused = workloadProblem(spec.workload);
    if (refused) throw new RunnerError(refused);
    const name = containerName(spec.leaseId);
    // The bind check cannot see a port docker publishes without a listener (userland proxy off):
    // docker then refuses it, and the lease tries other ports, the refused ones held meanwhile.
    const refusedPorts: number[] = [];
    try {
      for (let attempt = 1; ; attempt++) {
        const taken = await this.hostPorts.take(spec.workload.ports.length);
        const ports = Object.fromEntries(spec.workload.ports.map((port, i) => [String(port), taken[i]!]));
        let r: DockerResult;
        try {
          r = await this.docker(dockerRunArgs(spec, ports, this.options));
        } catch (err) {
          this.hostPorts.release(taken);
          throw err;
        }
        if (r.code === 0) return this.watch(spec.leaseId, name, ports, spec.endsAt);
        // A half-created container (e.g. the GPU request failed) must not block a retry under the same name.
        await this.docker(['rm', '-f', '-v', name]).catch(() => undefined);
        if (attempt < PORT_ATTEMPTS && taken.length > 0 && /port is already allocated|address already in use/i.test(r.stderr)) {
          refusedPorts.push(...taken);
          continue;
        }
        this.hostPorts.release(taken);
        throw new RunnerError(`docker run failed: ${lastLine(r.stderr) || `exit ${r.code}`}`);
      }
    } finally {
      this.hostPorts.release(refusedPorts);
    }
  }

  async adopt(): Promise<RunHandle[]> {
    const labels = [LEASE_LABEL, ENDS_AT_LABEL, PORTS_LABEL].map((l) => `{{.Label "${l}"}}`).join('\t');
    const r = await this.docker(['ps', '-a', '--filter', `label=${LEASE_LABEL}`, '--format', `{{.Names}}\t${labels}`]);
    if (r.code !== 0) throw new RunnerError(`docker ps failed: ${lastLine(r.stderr) || `exit ${r.code}`}`);
    const handles: RunHandle[] = [];
    for (const line of r.stdout.split(/\r?\n/)) {
      const [name, leaseId, endsAt, portsLabel] = line.trim().split('\t');
      if (!name || !leaseId) continue;
      const at = endsAt ? new Date(endsAt) : null;
      const ports = parsePortsLabel(portsLabel);
      this.hostPorts.claim(Object.values(ports));
      handles.push(this.watch(leaseId, name, ports, at && !Number.isNaN(at.getTime()) ? at : null));
    }
    return handles;
  }

  private watch(leaseId: string, name: string, ports: Record<string, number>, endsAt: Date | null): RunHandle {
    const detach = new AbortController();
    const reading = this.readLogs(leaseId, name, detach.signal);
    const exited = this.waitFor(name, detach.signal).then(async (info) => {
      await reading.finish();
      if (!this.options.keepExited) await this.docker(['rm', '-f', '-v', name]).catch(() => undefined);
      this.hostPorts.release(Object.values(ports));
      return info;
    });
    return {
      leaseId,
      ports,
      endsAt,
      exited,
      stop: async (graceMs: number) => {
        const r = await this.docker(['stop', '-t', String(Math.max(0, Math.ceil(graceMs / 1000))), name]).catch((err: Error) => ({ code: 1, stdout: '', stderr: err.message }));
        if (r.code !== 0) await this.docker(['kill', name]).catch(() => undefined);
        return exited;
      },
      detach: () => detach.abort(),
    };
  }

  /**
   * Follows the container's output into the lease's log until detached, or until the container
   * is over and its output read (`finish`: at most a few seconds more, then it stops reading).
   */
  private readLogs(leaseId: string, name: string, detached: AbortSignal): { finish(): Promise<void> } {
    const sink = this.options.logs;
    if (!sink) return { finish: async () => {} };
    const log = sink.open(leaseId);
    const stop = new AbortController();
    const over = new AbortController();
    detached.addEventListener('abort', () => stop.abort(), { once: true });
    const done = followContainerLogs({ bin: this.bin, env: this.options.env ?? process.env, name, log, stop: stop.signal, over: over.signal }).then(() => {
      if (detached.aborted) log.detach();
      else log.end();
    });
    return {
      finish: async () => {
        over.abort();
        const timer = setTimeout(() => stop.abort(), LOG_DRAIN_MS);
        await done;
        clearTimeout(timer);
      },
    };
  }

  /** The container's exit code, via `docker wait`; never settles once detached. */
  private async waitFor(name: string, detached: AbortSignal): Promise<ExitInfo> {
    for (let attempt = 0; ; attempt++) {
      let r: DockerResult;
      try {
        r = await this.docker(['wait', name], detached);
      } catch (err) {
        if (detached.aborted) return new Promise<ExitInfo>(() => {});
        r = { code: 1, stdout: '', stderr: (err as Error).message };
      }
      if (detached.aborted) return new Promise<ExitInfo>(() => {});
      const code = Number.parseInt(r.stdout.trim(), 10);
      if (r.code === 0 && Number.isInteger(code)) return { exitCode: code };
      // `docker wait` itself failed (daemon restarting, container removed by hand): ask docker.
      const inspect = await this.docker(['inspect', '-f', '{{.State.Running}} {{.State.ExitCode}}', name]).catch(() => null);
      const [running, exitCode] = (inspect?.code === 0 ? inspect.stdout.trim() : '').split(' ');
      if (running === 'false' && exitCode !== undefined && /^-?\d+$/.test(exitCode)) return { exitCode: Number(exitCode) };
      if (inspect?.code !== 0 && /no such (object|container)/i.test(inspect?.stderr ?? '')) return { exitCode: 137 };
      await sleep(Math.min(30_000, 1_000 * 2 ** Math.min(attempt, 5)), detached);
    }
  }
}

/** `{"8888":40001}` from the ports label; anything else (older containers: none) → {}. */
function parsePortsLabel(text: string | undefined): Record<string, number> {
  let value: unknown;
  try {
    value = JSON.parse(text || '{}');
  } catch {
    return {};
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
  const valid = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 65_535;
  return Object.fromEntries(Object.entries(value).filter(([k, v]) => /^\d{1,5}$/.test(k) && valid(Number(k)) && valid(v)));
}

const lastLine = (text: string) => oneLine(text.trim().split(/\r?\n/).pop() ?? '');
