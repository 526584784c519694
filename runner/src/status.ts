// `status`: the config without its secrets, and whether the API answers.
import { ApiClient } from './api.ts';
import { readConfig, statePathFor } from './config.ts';
import { describeError } from './errors.ts';
import { keyFingerprint, publicKeyOf } from './identity.ts';
import { describeSolver } from './inspections/solvers.ts';
import type { Options } from './options.ts';
import { RUNNER_VERSION } from './version.ts';

export async function status(options: Options): Promise<{ text: string; ok: boolean }> {
  const config = readConfig(options.configPath);
  const api = options.api ?? config.api;
  const lines = [
    `runner_version: ${RUNNER_VERSION}`,
    `config: ${options.configPath}`,
    `state: ${statePathFor(options.configPath)}`,
    `api: ${api}`,
    `node_id: ${config.node_id}`,
    `region: ${config.region}`,
    `node_token: (set, not shown)`,
    // The fingerprint is what the owner sees on GET /v1/nodes/{id}: the two should match.
    `node_key: ${config.node_private_key ? `ed25519, fingerprint ${keyFingerprint(publicKeyOf(config.node_private_key))}` : 'none (joined before node keys; run `gridlease-runner join` again)'}`,
    `solver: ${describeSolver(options.solver)}`,
  ];
  if (config.joined_at) lines.push(`joined_at: ${config.joined_at}`);
  let ok = false;
  try {
    const res = await new ApiClient({ api, timeoutMs: 10_000 }).health();
    ok = res.status < 500;
    lines.push(`api_status: ${ok ? 'answers' : 'answers with an error'} (GET /healthz → ${res.status})`);
  } catch (err) {
    lines.push(`api_status: unreachable (${describeError(err)})`);
  }
  return { text: lines.join('\n'), ok };
}
