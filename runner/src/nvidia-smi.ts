// Runs nvidia-smi and parses its CSV. Parsing is lenient about what drivers actually print:
// a header line or not, units (`81559 MiB`, `45 %`, `250.12 W`) or not, `[N/A]` and
// `[Not Supported]`, extra spaces, CRLF line ends.
import { execFile } from 'node:child_process';
import { matchGpuModel } from '../../src/catalog/gpus.ts';
import type { DetectedGpu, GpuMetrics } from '../../src/contracts/runner.ts';
import { RunnerError, oneLine } from './errors.ts';

export const GPU_QUERY = ['--query-gpu=index,uuid,name,memory.total,driver_version', '--format=csv,noheader,nounits'];
export const METRICS_QUERY = ['--query-gpu=index,utilization.gpu,memory.used,temperature.gpu,power.draw', '--format=csv,noheader,nounits'];

export interface ParseResult<T> {
  rows: T[];
  /** Lines that could not be read, with the reason (for a warning; never fatal). */
  skipped: string[];
}

function lines(csv: string): string[] {
  return csv
    .replace(/^\uFEFF/, '')
    .split(/\r\n|\r|\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

const fields = (line: string) => line.split(',').map((f) => f.trim());

/** A header line starts with a column name, not with a GPU index. */
const isHeader = (line: string) => /^index\b/i.test(line);

/** A number, ignoring a trailing unit; null for `[N/A]`, `[Not Supported]`, `N/A`, empty or junk. */
export function parseNumber(field: string | undefined): number | null {
  if (field === undefined) return null;
  const match = /^(-?\d+(?:\.\d+)?)\s*(?:[a-z%°]+)?$/i.exec(field.trim());
  if (!match) return null;
  const value = Number(match[1]);
  return Number.isFinite(value) ? value : null;
}

function parseIndex(field: string | undefined): number | null {
  const n = parseNumber(field);
  return n !== null && Number.isInteger(n) && n >= 0 && n <= 63 ? n : null;
}

const na = (field: string) => /^\[?(n\/a|not supported|unknown error|gpu is lost|insufficient permissions)\]?$/i.test(field.trim());

/** Output of `--query-gpu=index,uuid,name,memory.total,driver_version`. */
export function parseGpuList(csv: string): ParseResult<DetectedGpu> {
  const rows: DetectedGpu[] = [];
  const skipped: string[] = [];
  for (const line of lines(csv)) {
    if (isHeader(line)) continue;
    const f = fields(line);
    if (f.length < 5) {
      skipped.push(`${line} (expected 5 fields)`);
      continue;
    }
    // A name with a comma in it would split into more fields: index and uuid lead, memory and driver trail.
    const index = parseIndex(f[0]);
    const uuid = f[1]!;
    const name = f.slice(2, f.length - 2).join(', ');
    const memoryField = f[f.length - 2]!;
    const driverField = f[f.length - 1]!;
    if (index === null) {
      skipped.push(`${line} (bad index)`);
      continue;
    }
    if (!/^GPU-[0-9a-fA-F-]{8,64}$/.test(uuid)) {
      skipped.push(`${line} (bad uuid)`);
      continue;
    }
    if (!name || na(name)) {
      skipped.push(`${line} (no name)`);
      continue;
    }
    const memory = parseNumber(memoryField);
    const memoryMib = memory === null ? null : Math.max(0, Math.round(memory));
    rows.push({
      index,
      uuid,
      name: name.slice(0, 128),
      memory_mib: memoryMib ?? 0,
      driver: na(driverField) ? '' : driverField.slice(0, 64),
      model: matchGpuModel(name, memoryMib)?.id ?? null,
    });
  }
  rows.sort((a, b) => a.index - b.index);
  return { rows, skipped };
}

const inRange = (v: number | null, min: number, max: number) => (v !== null && v >= min && v <= max ? v : null);

/** Output of `--query-gpu=index,utilization.gpu,memory.used,temperature.gpu,power.draw`. Out-of-range values become null. */
export function parseMetrics(csv: string): ParseResult<GpuMetrics> {
  const rows: GpuMetrics[] = [];
  const skipped: string[] = [];
  for (const line of lines(csv)) {
    if (isHeader(line)) continue;
    const f = fields(line);
    const index = parseIndex(f[0]);
    if (f.length !== 5 || index === null) {
      skipped.push(`${line} (expected index and 4 metrics)`);
      continue;
    }
    const mem = inRange(parseNumber(f[2]), 0, 4_194_304);
    rows.push({
      index,
      utilization_pct: inRange(parseNumber(f[1]), 0, 100),
      memory_used_mib: mem === null ? null : Math.round(mem),
      temperature_c: inRange(parseNumber(f[3]), -50, 200),
      power_w: inRange(parseNumber(f[4]), 0, 5_000),
    });
  }
  rows.sort((a, b) => a.index - b.index);
  return { rows, skipped };
}

export interface SmiOptions {
  /** Path or command name (default `nvidia-smi`, looked up on PATH). */
  bin?: string;
  timeoutMs?: number;
}

/** Runs nvidia-smi; one-line RunnerErrors when it is missing, fails or hangs. */
export function runNvidiaSmi(args: string[], options: SmiOptions = {}): Promise<string> {
  const bin = options.bin || 'nvidia-smi';
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: options.timeoutMs ?? 15_000, maxBuffer: 4 * 1024 * 1024, windowsHide: true }, (err, stdout, stderr) => {
      if (!err) return resolve(String(stdout));
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        return reject(
          new RunnerError(
            bin === 'nvidia-smi'
              ? 'nvidia-smi not found on PATH: install the NVIDIA driver, or set GRIDLEASE_NVIDIA_SMI to its path'
              : `nvidia-smi not found at ${bin} (GRIDLEASE_NVIDIA_SMI)`,
          ),
        );
      }
      if (code === 'EACCES') return reject(new RunnerError(`cannot run ${bin}: permission denied`));
      if ((err as { killed?: boolean }).killed) return reject(new RunnerError(`${bin} did not answer within ${options.timeoutMs ?? 15_000} ms`));
      const said = firstLine(String(stderr)) || firstLine(String(stdout)) || err.message;
      reject(new RunnerError(`nvidia-smi failed: ${said}`));
    });
  });
}

const firstLine = (text: string) => oneLine(text.split(/\r?\n/).find((l) => l.trim()) ?? '');

export async function queryGpus(options: SmiOptions = {}): Promise<ParseResult<DetectedGpu>> {
  return parseGpuList(await runNvidiaSmi(GPU_QUERY, options));
}

export async function queryMetrics(options: SmiOptions = {}): Promise<ParseResult<GpuMetrics>> {
  return parseMetrics(await runNvidiaSmi(METRICS_QUERY, { timeoutMs: 5_000, ...options }));
}
