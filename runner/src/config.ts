// The runner's config file: where the API is and who this node is. Holds the node token and the
// node's private key, so it is written 0600 in a 0700 folder, atomically (temp file + rename),
// and refused when group or others may open it (as ssh refuses an open private key).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { RunnerError } from './errors.ts';

export const ConfigSchema = z.object({
  api: z.string().url(),
  node_id: z.string().min(1),
  node_token: z.string().min(1),
  region: z.string().min(1),
  /** Heartbeat period the server asked for at join time. */
  heartbeat_interval_s: z.number().int().min(1).max(300).optional(),
  joined_at: z.string().optional(),
  /** The node's Ed25519 private key (PKCS#8 DER, base64url), made at join; absent in configs from before node keys. */
  node_private_key: z.string().min(1).optional(),
});
export type RunnerConfig = z.infer<typeof ConfigSchema>;

export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(base, 'gridlease', 'runner.json');
}

/** `runner.json` → `runner.state.json`, in the same folder. */
export function statePathFor(configPath: string): string {
  const { dir, name } = path.parse(configPath);
  return path.join(dir, `${name}.state.json`);
}

export function readConfig(file: string): RunnerConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
    // Checked after reading so a missing file keeps its own message; Windows has no such bits.
    const mode = fs.statSync(file).mode & 0o777;
    if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
      throw new RunnerError(`config ${file} is open to group or others (mode ${mode.toString(8)}) and holds the node token and key: run \`chmod 600 ${file}\``);
    }
  } catch (err) {
    if (err instanceof RunnerError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new RunnerError(`no config at ${file}: run \`gridlease-runner join --api URL --token JOIN_TOKEN --region REGION\` first`);
    }
    throw new RunnerError(`cannot read config ${file}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new RunnerError(`config ${file} is not valid JSON: fix it or run \`gridlease-runner join\` again`);
  }
  const parsed = ConfigSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length ? issue.path.join('.') : 'file';
    throw new RunnerError(`config ${file} is invalid (${where}: ${issue.message}): run \`gridlease-runner join\` again`);
  }
  return parsed.data;
}

/** True when group or others may read the file (it holds a secret). */
export function isTooOpen(file: string): boolean {
  try {
    return (fs.statSync(file).mode & 0o077) !== 0;
  } catch {
    return false;
  }
}

export function writeConfig(file: string, config: RunnerConfig): void {
  writePrivateJson(file, ConfigSchema.parse(config));
}

/** Writes JSON readable by the owner only, creating its folder 0700; atomic (temp file + rename). */
export function writePrivateJson(file: string, value: unknown): void {
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700); // umask may have narrowed nothing, but be explicit
  }
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new RunnerError(`cannot write ${file}: ${(err as Error).message}`);
  }
}
