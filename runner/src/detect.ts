// What the runner reports about its machine at join time (the `Machine` contract).
import fs from 'node:fs';
import os from 'node:os';
import { MAX_GPUS_PER_NODE, type DetectedGpu, type Machine } from '../../src/contracts/runner.ts';
import { RunnerError } from './errors.ts';
import { queryGpus, type SmiOptions } from './nvidia-smi.ts';
import { RUNNER_VERSION } from './version.ts';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

export interface DetectResult {
  machine: Machine;
  /** Human-readable problems that are not fatal (skipped nvidia-smi lines, unknown models). */
  warnings: string[];
}

export interface DetectOptions extends SmiOptions {
  /** The folder whose free disk space is reported (default: the working directory). */
  dir?: string;
}

export async function detectMachine(options: DetectOptions = {}): Promise<DetectResult> {
  const { rows, skipped } = await queryGpus(options);
  const warnings = skipped.map((s) => `ignored a line of nvidia-smi output: ${s}`);
  if (rows.length === 0) throw new RunnerError('no NVIDIA GPU found: nvidia-smi lists none');
  let gpus = rows;
  if (gpus.length > MAX_GPUS_PER_NODE) {
    warnings.push(`${gpus.length} GPUs found; a node reports at most ${MAX_GPUS_PER_NODE}, the rest are ignored`);
    gpus = gpus.slice(0, MAX_GPUS_PER_NODE);
  }
  for (const gpu of gpus) if (gpu.model === null) warnings.push(unknownModelMessage(gpu));
  return {
    machine: {
      hostname: (os.hostname() || 'unknown').slice(0, 253),
      os: osName(),
      arch: process.arch.slice(0, 32),
      cpu_cores: Math.max(1, typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length),
      ram_mib: Math.floor(os.totalmem() / MIB),
      disk_free_gib: diskFreeGib(options.dir ?? process.cwd()),
      gpus,
      runner_version: RUNNER_VERSION,
    },
    warnings,
  };
}

export function unknownModelMessage(gpu: DetectedGpu): string {
  return `GPU ${gpu.index} (${gpu.name}, ${gpu.memory_mib} MiB) is not in the Gridlease catalog: reported as unknown, it cannot be listed`;
}

export const listableGpus = (machine: Machine) => machine.gpus.filter((g) => g.model !== null);

/** `Ubuntu 22.04.4 LTS` from /etc/os-release on Linux, else `Darwin 23.4.0` and the like. */
function osName(): string {
  if (process.platform === 'linux') {
    try {
      const pretty = /^PRETTY_NAME=("?)(.*)\1$/m.exec(fs.readFileSync('/etc/os-release', 'utf8'));
      if (pretty?.[2]) return pretty[2].slice(0, 64);
    } catch {
      // fall through
    }
  }
  return `${os.type()} ${os.release()}`.slice(0, 64);
}

function diskFreeGib(dir: string): number {
  try {
    // statfsSync arrived in Node 18.15; older Nodes report 0.
    if (typeof fs.statfsSync !== 'function') return 0;
    const s = fs.statfsSync(dir);
    return Math.floor((Number(s.bavail) * Number(s.bsize)) / GIB);
  } catch {
    return 0;
  }
}
