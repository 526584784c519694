// Small pieces every bench script shares: settings from the environment, percentiles, the
// machine description a simulated runner registers with, and a process's memory.
import { readFileSync } from 'node:fs';

/** A numeric setting from the environment, or `fallback` when unset or empty. */
export function num(name: string, fallback: number): number {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : Number(v);
}

/** The p-th percentile (0–100) of ascending `sorted`, nearest rank; NaN when empty. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** A runner's machine report: `gpus` H100s, each with a fresh UUID. */
export function h100Machine(hostname: string, gpus: number, size: { cpu_cores: number; ram_mib: number; disk_free_gib: number } = { cpu_cores: 32, ram_mib: 256_000, disk_free_gib: 900 }) {
  return {
    hostname,
    os: 'linux',
    arch: 'x64',
    ...size,
    runner_version: '0.1.0',
    gpus: Array.from({ length: gpus }, (_, index) => ({
      index,
      uuid: `GPU-${crypto.randomUUID()}`,
      name: 'NVIDIA H100 80GB HBM3',
      memory_mib: 81_559,
      driver: '550.54.15',
      model: null,
    })),
  };
}

/** Resident memory of a process in MiB, from Linux /proc (NaN elsewhere or once it is gone). */
export function rssMib(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}
