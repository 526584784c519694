// Where the CLI keeps the API URL and the credential `login` saved: a JSON file readable by its
// owner only (0600 in a 0700 folder, written atomically), refused when group or others may read
// it, as ssh refuses an open private key. GRIDLEASE_API and GRIDLEASE_TOKEN override the file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CliError, EXIT } from './exit.ts';

export interface SavedConfig {
  api: string;
  /** An API key (glk_…) made at login, or the one given with --api-key. */
  token: string;
  account_id?: string;
  email?: string;
  api_key_id?: string;
  saved_at?: string;
}

/** The local platform of `npm start`. */
export const DEFAULT_API = 'http://127.0.0.1:8787';

export function defaultConfigPath(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(base, 'gridlease', 'cli.json');
}

export function readSaved(file: string): SavedConfig | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const mode = fs.statSync(file).mode & 0o777;
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new CliError(`${file} is open to group or others (mode ${mode.toString(8)}) and holds your API key: run \`chmod 600 ${file}\``, EXIT.auth);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CliError(`${file} is not valid JSON: run \`gridlease login\` again`);
  }
  const v = value as Partial<SavedConfig>;
  if (typeof v.api !== 'string' || typeof v.token !== 'string') throw new CliError(`${file} lacks api or token: run \`gridlease login\` again`);
  return v as SavedConfig;
}

export function writeSaved(file: string, config: SavedConfig): void {
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
  }
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new CliError(`cannot write ${file}: ${(err as Error).message}`);
  }
}

export interface Credentials {
  api: string;
  token: string | undefined;
}

/** Flag, then environment, then the saved file, then the local platform. */
export function resolveCredentials(flags: { api?: string }, env: NodeJS.ProcessEnv, file: string): Credentials {
  const envApi = env.GRIDLEASE_API || undefined;
  const envToken = env.GRIDLEASE_TOKEN || undefined;
  // The file is only read when something is still missing: a script with both variables set
  // works whatever state the file is in.
  const saved = (flags.api ?? envApi) && envToken ? null : readSaved(file);
  return { api: normalizeApi(flags.api ?? envApi ?? saved?.api ?? DEFAULT_API), token: envToken ?? saved?.token };
}

export function normalizeApi(api: string): string {
  let url: URL;
  try {
    url = new URL(api);
  } catch {
    throw new CliError(`--api must be a URL such as https://api.gridlease.example, got "${api}"`, EXIT.usage);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new CliError(`--api must be an http(s) URL, got "${api}"`, EXIT.usage);
  return url.origin + url.pathname.replace(/\/+$/, '');
}
