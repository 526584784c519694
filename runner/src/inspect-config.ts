// The inspector's own files, apart from the node's: inspector.json (the API, the bearer credential,
// the account id and the Ed25519 key that signs verdicts; 0600, refused when group or others may
// read it) and inspector.state.json (verdicts committed and not yet revealed, with their salts; 0600),
// so that a restart between commit and reveal still reveals.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { VerdictSchema } from '../../src/contracts/inspector-verdicts.ts';
import { defaultConfigPath, statePathFor, writePrivateJson } from './config.ts';
import { RunnerError } from './errors.ts';

export const InspectorConfigSchema = z
  .object({
    api: z.string().url(),
    /** An access token or API key of the inspector's account (scopes inspections:read/write). */
    token: z.string().min(1),
    /** The account id: every verdict names it. */
    inspector_id: z.string().min(1).max(64),
    /** Ed25519, PKCS#8 DER, base64url. */
    private_key: z.string().min(1),
    /** Its raw public key, base64url: what PUT /v1/inspectors/key registered. */
    public_key: z.string().min(1),
    registered_at: z.string().optional(),
  })
  .strict();
export type InspectorConfig = z.infer<typeof InspectorConfigSchema>;

export const PendingVerdictSchema = z
  .object({
    inspection_id: z.string().min(1),
    verdict: VerdictSchema,
    salt: z.string().regex(/^[0-9a-f]{64}$/),
    signature: z.string().min(1),
    /** The key that made `signature`: a login in between makes a new one, and the reveal re-signs. */
    public_key: z.string().min(1),
    commitment: z.string().regex(/^[0-9a-f]{64}$/),
    committed: z.boolean(),
    reveal_deadline: z.string(),
  })
  .strict();
export type PendingVerdict = z.infer<typeof PendingVerdictSchema>;

export interface InspectorState {
  version: 1;
  pending: Record<string, PendingVerdict>;
}

/** Next to the runner's config: ~/.config/gridlease/inspector.json. */
export function defaultInspectorConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(path.dirname(env.GRIDLEASE_CONFIG || defaultConfigPath(env)), 'inspector.json');
}

export const inspectorStatePath = (configPath: string) => statePathFor(configPath);

export function readInspectorConfig(file: string): InspectorConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
    const mode = fs.statSync(file).mode & 0o777;
    if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
      throw new RunnerError(`inspector config ${file} is open to group or others (mode ${mode.toString(8)}) and holds the inspector's token and key: run \`chmod 600 ${file}\``);
    }
  } catch (err) {
    if (err instanceof RunnerError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new RunnerError(`no inspector config at ${file}: run \`gridlease-runner inspect login --api URL --token TOKEN\` first`);
    }
    throw new RunnerError(`cannot read inspector config ${file}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new RunnerError(`inspector config ${file} is not valid JSON: run \`gridlease-runner inspect login\` again`);
  }
  const parsed = InspectorConfigSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new RunnerError(`inspector config ${file} is invalid (${issue.path.join('.') || 'file'}: ${issue.message}): run \`gridlease-runner inspect login\` again`);
  }
  return parsed.data;
}

export function writeInspectorConfig(file: string, config: InspectorConfig): void {
  writePrivateJson(file, InspectorConfigSchema.parse(config));
}

/** The saved pending verdicts; entries that no longer parse are dropped (an unreadable file is empty, with a warning). */
export function readInspectorState(file: string, warn: (message: string) => void): InspectorState {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') warn(`cannot read ${file}: ${(err as Error).message}`);
    return { version: 1, pending: {} };
  }
  let json: { pending?: unknown } | undefined;
  try {
    json = JSON.parse(text) as { pending?: unknown };
  } catch {
    warn(`${file} is not JSON: starting with no pending verdicts`);
    return { version: 1, pending: {} };
  }
  const pending: Record<string, PendingVerdict> = {};
  if (json && typeof json.pending === 'object' && json.pending !== null) {
    for (const [id, entry] of Object.entries(json.pending as Record<string, unknown>)) {
      const parsed = PendingVerdictSchema.safeParse(entry);
      if (parsed.success && parsed.data.inspection_id === id) pending[id] = parsed.data;
      else warn(`${file}: dropped an unreadable pending verdict for ${id.slice(0, 64)}`);
    }
  }
  return { version: 1, pending };
}

export function writeInspectorState(file: string, state: InspectorState): void {
  writePrivateJson(file, state);
}
