// The GPU challenge solver: a long-lived process (runner/gpu/capacity.cu, by default in its CUDA
// image through `docker run --gpus all`) that computes the products with int8 tensor-core GEMM and
// keeps them in VRAM between the commitment and the openings. This side speaks its JSON lines,
// one request at a time, bounds what it reads, restarts the process when it dies or hangs, and
// checks every answer against the wire contracts before handing it on.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  CapacityChallengeSchema,
  CapacityCommitmentSchema,
  MAX_LEAF_BASE64,
  MAX_PATH_LENGTH,
  OpeningRequestSchema,
  OpeningsAnswerSchema,
  type CapacityCommitment,
  type OpeningsAnswer,
} from '../../../src/contracts/inspections.ts';
import { MAX_GPU_COUNT, MAX_OPENINGS } from '../../../src/inspections/openings.ts';
import { MAX_CAPACITY_N } from '../../../src/inspections/sizing.ts';
import { RUNNER_VERSION } from '../version.ts';
import { SolverError, type ChallengeSolver, type SolverErrorCode } from './solver.ts';

export const DEFAULT_GPU_SOLVER_IMAGE = `gridlease/capacity-solver:${RUNNER_VERSION}`;

/**
 * The solver in its image: all GPUs, no network, a read-only root. `--init` puts a PID 1 in front
 * of it, so the SIGTERM that docker forwards when we stop it actually stops it.
 */
export const dockerSolverCommand = (image = DEFAULT_GPU_SOLVER_IMAGE): string[] => [
  'docker',
  'run',
  '--rm',
  '-i',
  '--init',
  '--gpus',
  'all',
  '--network',
  'none',
  '--read-only',
  image,
  '/capacity',
];

/** The longest legitimate answer: every GPU and opening at the largest leaf and path, plus punctuation. */
export const MAX_ANSWER_LINE_BYTES = MAX_GPU_COUNT * MAX_OPENINGS * (MAX_LEAF_BASE64 + MAX_PATH_LENGTH * 67 + 64) + 4096;
const DEFAULT_COMMIT_TIMEOUT_MS = 10 * 60_000;
/** How long past a challenge's deadline a commitment is still awaited before the process is restarted. */
const DEFAULT_LATE_GRACE_MS = 30_000;
const DEFAULT_OPEN_TIMEOUT_MS = 2 * 60_000;
const DEFAULT_KILL_GRACE_MS = 5_000;
/** Committed challenges whose GPU count is remembered, to check the openings' shape. */
const KEPT_CHALLENGES = 2;
const STDERR_TAIL = 600;

export interface GpuSolverOptions {
  /** argv of the solver process; default `dockerSolverCommand(image)`. */
  command?: readonly string[];
  image?: string;
  maxN?: number;
  /** The longest a commitment is awaited; less when the challenge's deadline plus `lateGraceMs` comes first. */
  commitTimeoutMs?: number;
  /** A commitment that late cannot be sent anyway; the process is restarted to free the GPUs. */
  lateGraceMs?: number;
  openTimeoutMs?: number;
  /** Longest answer line accepted; a longer one kills the process. */
  maxLineBytes?: number;
  /** SIGTERM → SIGKILL grace when the process is stopped. */
  killGraceMs?: number;
  /** Start the process now (its CUDA contexts are then ready when a challenge comes) rather than at the first request. */
  warm?: boolean;
}

export interface GpuSolver extends ChallengeSolver {
  /** Answers what is queued, then ends the process (stdin closed, then SIGTERM, then SIGKILL). */
  close(): Promise<void>;
}

interface Waiter {
  resolve(line: string): void;
  reject(err: Error): void;
}

interface Proc {
  child: ChildProcess;
  dead: boolean;
  chunks: Buffer[];
  size: number;
  stderr: string;
  waiter: Waiter | null;
  closed: Promise<void>;
}

const fault = (message: string) => new SolverError('invalid', `the GPU solver ${message}`);
const CODES: readonly SolverErrorCode[] = ['too_large', 'unknown_challenge', 'invalid'];

export function createGpuSolver(options: GpuSolverOptions = {}): GpuSolver {
  const command = [...(options.command ?? dockerSolverCommand(options.image))];
  if (command.length === 0 || !command[0]) throw new TypeError('the GPU solver command is empty');
  const maxN = options.maxN ?? MAX_CAPACITY_N;
  const commitTimeoutMs = options.commitTimeoutMs ?? DEFAULT_COMMIT_TIMEOUT_MS;
  const lateGraceMs = options.lateGraceMs ?? DEFAULT_LATE_GRACE_MS;
  const openTimeoutMs = options.openTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS;
  const maxLineBytes = options.maxLineBytes ?? MAX_ANSWER_LINE_BYTES;
  const killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const gpuCounts = new Map<string, number>();
  let proc: Proc | null = null;
  let chain: Promise<unknown> = Promise.resolve();
  let closing = false;

  const withStderr = (p: Proc, message: string) => {
    const tail = p.stderr.trim().replace(/\s+/g, ' ');
    return tail ? `${message} (stderr: ${tail.slice(-STDERR_TAIL)})` : message;
  };

  /** Ends a process for good: the waiting request fails, and the next one starts a fresh process. */
  function kill(p: Proc, reason: string): void {
    if (p.dead) return;
    p.dead = true;
    if (proc === p) proc = null;
    const waiter = p.waiter;
    p.waiter = null;
    waiter?.reject(fault(withStderr(p, reason)));
    if (p.child.exitCode === null && p.child.signalCode === null) {
      p.child.kill('SIGTERM');
      const hard = setTimeout(() => {
        if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      }, killGraceMs);
      hard.unref();
    }
  }

  function onData(p: Proc, chunk: Buffer): void {
    let start = 0;
    while (!p.dead && start <= chunk.length) {
      const newline = chunk.indexOf(10, start);
      const end = newline < 0 ? chunk.length : newline;
      if (p.size + (end - start) > maxLineBytes) return kill(p, `printed a line longer than ${maxLineBytes} bytes; restarted`);
      if (end > start) {
        p.chunks.push(chunk.subarray(start, end));
        p.size += end - start;
      }
      if (newline < 0) return;
      const line = Buffer.concat(p.chunks).toString('utf8');
      p.chunks = [];
      p.size = 0;
      start = newline + 1;
      const waiter = p.waiter;
      if (!waiter) return kill(p, 'printed a line nobody asked for; restarted');
      p.waiter = null;
      waiter.resolve(line);
    }
  }

  function startProcess(): Proc {
    const child = spawn(command[0]!, command.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let closed!: () => void;
    const p: Proc = { child, dead: false, chunks: [], size: 0, stderr: '', waiter: null, closed: new Promise((resolve) => (closed = resolve)) };
    child.on('error', (err) => {
      kill(p, `could not be run (${command[0]}: ${err.message})`);
      closed();
    });
    child.on('close', (code, signal) => {
      kill(p, `exited (${signal ?? `code ${code}`})`);
      closed();
    });
    child.stdout!.on('data', (chunk: Buffer) => onData(p, chunk));
    child.stderr!.on('data', (chunk: Buffer) => {
      p.stderr = (p.stderr + chunk.toString('utf8')).slice(-4 * STDERR_TAIL);
    });
    child.stdin!.on('error', () => undefined); // EPIPE when it died: the 'close' above reports it
    // An idle solver must not keep the runner alive; a request in flight holds its timer.
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as unknown as { unref?: () => void }).unref?.();
    return p;
  }

  /** One request, one answer line, parsed; refusals of the solver become SolverErrors. */
  function call(message: object, timeoutMs: number): Promise<Record<string, unknown>> {
    const p = proc ?? (proc = startProcess());
    const line = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => kill(p, `gave no answer within ${timeoutMs} ms; restarted`), timeoutMs);
      p.waiter = {
        resolve: (value) => (clearTimeout(timer), resolve(value)),
        reject: (err) => (clearTimeout(timer), reject(err)),
      };
      if (p.dead) return p.waiter.reject(fault('is not running'));
      p.child.stdin!.write(`${JSON.stringify(message)}\n`);
    });
    return line.then((text) => {
      let answer: unknown;
      try {
        answer = JSON.parse(text);
      } catch {
        kill(p, 'printed a line that is not JSON; restarted');
        throw fault('printed a line that is not JSON');
      }
      if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) throw fault('answered something other than a JSON object');
      const record = answer as Record<string, unknown>;
      if (record.ok === true) return record;
      const code = CODES.find((c) => c === record.code);
      const text2 = typeof record.message === 'string' ? record.message.slice(0, 300) : 'no message';
      if (record.ok === false && code) throw new SolverError(code, text2);
      throw fault('answered neither ok nor a known refusal');
    });
  }

  function enqueue<T>(task: () => Promise<T>): Promise<T> {
    if (closing) return Promise.reject(fault('is closed'));
    const run = chain.then(task);
    chain = run.catch(() => undefined);
    return run;
  }

  if (options.warm) proc = startProcess();

  return {
    name: 'gpu',
    maxN,
    commit(input) {
      const parsed = CapacityChallengeSchema.safeParse(input);
      if (!parsed.success) return Promise.reject(new SolverError('invalid', 'the capacity challenge is malformed'));
      const challenge = parsed.data;
      if (challenge.n > maxN) return Promise.reject(new SolverError('too_large', `n = ${challenge.n} is above this solver's ${maxN}`));
      return enqueue(async (): Promise<CapacityCommitment> => {
        const left = Date.parse(challenge.deadline) - Date.now();
        const timeoutMs = Math.min(commitTimeoutMs, Math.max(left, 0) + lateGraceMs);
        const answer = await call({ op: 'commit', challenge }, timeoutMs);
        const commitment = CapacityCommitmentSchema.safeParse(answer.commitment);
        if (!commitment.success) throw fault('answered a malformed commitment');
        if (commitment.data.challenge_id !== challenge.challenge_id) throw fault('committed to another challenge');
        if (commitment.data.roots.length !== challenge.gpu_count) throw fault(`gave ${commitment.data.roots.length} roots for ${challenge.gpu_count} GPUs`);
        gpuCounts.delete(challenge.challenge_id);
        gpuCounts.set(challenge.challenge_id, challenge.gpu_count);
        for (const id of gpuCounts.keys()) if (gpuCounts.size > KEPT_CHALLENGES) gpuCounts.delete(id);
        return commitment.data;
      });
    },
    open(input) {
      const parsed = OpeningRequestSchema.safeParse(input);
      if (!parsed.success) return Promise.reject(new SolverError('invalid', 'the opening request is malformed'));
      const request = parsed.data;
      return enqueue(async (): Promise<OpeningsAnswer> => {
        const gpuCount = gpuCounts.get(request.challenge_id);
        gpuCounts.delete(request.challenge_id);
        const answer = await call({ op: 'open', request }, openTimeoutMs);
        const openings = OpeningsAnswerSchema.safeParse(answer.openings);
        if (!openings.success) throw fault('answered malformed openings');
        if (openings.data.challenge_id !== request.challenge_id) throw fault('opened another challenge');
        if (gpuCount !== undefined && openings.data.gpus.length !== gpuCount) throw fault(`opened ${openings.data.gpus.length} GPUs of ${gpuCount}`);
        if (openings.data.gpus.some((gpu) => gpu.length !== request.count)) throw fault(`did not open ${request.count} entries on every GPU`);
        return openings.data;
      });
    },
    async close() {
      closing = true;
      await chain;
      const p = proc;
      if (!p) return;
      proc = null;
      p.child.stdin!.end();
      const timer = setTimeout(() => kill(p, 'was stopped'), killGraceMs);
      await p.closed;
      clearTimeout(timer);
    },
  };
}
