// What the offline verifiers (verify-report, verify-epoch) share: their I/O (a report from a
// file or an API, bounded), one check line each, and the usage error they exit 2 on.
import fs from 'node:fs';
import { readConfig } from './config.ts';

/** The largest report read, from a file or an answer. */
export const MAX_BYTES = 64 * 1024 * 1024;

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface VerifyIo {
  env: NodeJS.ProcessEnv;
  configPath: string;
  out: (line: string) => void;
  err: (line: string) => void;
  fetch?: typeof fetch;
}

/** A usage error: the command exits 2 with its usage line. */
export class Usage extends Error {}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function readFile(file: string): string {
  let stat;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new Usage(`no such file: ${file}`);
  }
  if (!stat.isFile() || stat.size > MAX_BYTES) throw new Usage(`not a readable report file: ${file}`);
  return fs.readFileSync(file, 'utf8');
}

/** GETs `url` as text; a non-2xx answer is an error naming its status and our error message. */
export async function fetchText(io: { fetch?: typeof fetch }, url: string, timeoutMs = 30_000): Promise<string> {
  const res = await (io.fetch ?? fetch)(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (!res.ok) {
    const message = (parseJson(text) as { error?: { message?: unknown } } | undefined)?.error?.message;
    throw new Error(`${url} answered ${res.status}${typeof message === 'string' ? `: ${message}` : ''}`);
  }
  if (text.length > MAX_BYTES) throw new Error(`${url} answered more than ${MAX_BYTES} bytes`);
  return text;
}

/** The API URL of the joined node's config, if there is one. */
export function configApi(file: string): string | undefined {
  try {
    return readConfig(file).api;
  } catch {
    return undefined;
  }
}
