// `join`: detect the machine, make a new node key, register both with a one-time join token,
// save the node credentials and key.
import fs from 'node:fs';
import { REGION_IDS, isRegion } from '../../src/catalog/regions.ts';
import { MachineSchema } from '../../src/contracts/runner.ts';
import { ApiClient, ApiError, NetworkError, ProtocolError, normaliseApiUrl } from './api.ts';
import { statePathFor, writeConfig } from './config.ts';
import { detectMachine, listableGpus } from './detect.ts';
import { EXIT, RunnerError } from './errors.ts';
import { generateNodeKey } from './identity.ts';
import type { Logger } from './log.ts';
import type { Options } from './options.ts';
import { CommandState } from './state.ts';

export async function join(options: Options, log: Logger): Promise<string> {
  const missing = (['api', 'token', 'region'] as const).filter((k) => !options[k]);
  if (missing.length > 0) {
    throw new RunnerError(`join needs ${missing.map((k) => `--${k}`).join(', ')} (see gridlease-runner --help)`, EXIT.usage);
  }
  const api = normaliseApiUrl(options.api!);
  const region = options.region!;
  // The server decides (it may know regions this runner does not); this only sharpens its message.
  const regionHint = isRegion(region) ? '' : ` (regions known to this runner: ${REGION_IDS.join(', ')})`;

  const { machine, warnings } = await detectMachine({ bin: options.nvidiaSmi });
  for (const w of warnings) log.warn(w);
  const listable = listableGpus(machine);
  if (listable.length === 0) {
    const names = [...new Set(machine.gpus.map((g) => g.name))].join(', ');
    throw new RunnerError(`no listable GPU: ${names} ${machine.gpus.length === 1 ? 'is' : 'are'} not in the Gridlease catalog`);
  }
  const valid = MachineSchema.safeParse(machine);
  if (!valid.success) {
    const issue = valid.error.issues[0]!;
    throw new RunnerError(`the detected machine cannot be registered (${issue.path.map(String).join('.')}: ${issue.message})`);
  }

  // A new key at every join: a machine that joins again (new owner, reinstalled) never inherits
  // a key another copy of the config may hold.
  const key = generateNodeKey();
  const client = new ApiClient({ api });
  let reply;
  try {
    reply = await client.register({ join_token: options.token!, region, machine, public_key: key.publicKey });
  } catch (err) {
    if (err instanceof NetworkError) throw new RunnerError(`API unreachable: ${err.message}`);
    if (err instanceof ApiError && err.status === 401) throw new RunnerError(`join token refused: ${err.message}`);
    if (err instanceof ApiError && err.status === 400) throw new RunnerError(`registration refused: ${err.message}${regionHint}`);
    if (err instanceof ApiError) throw new RunnerError(`registration failed (HTTP ${err.status} ${err.code}): ${err.message}`);
    if (err instanceof ProtocolError) throw new RunnerError(err.message);
    throw err;
  }

  if (fs.existsSync(options.configPath)) log.info(`replacing the node in ${options.configPath}`);
  writeConfig(options.configPath, {
    api,
    node_id: reply.node_id,
    node_token: reply.node_token,
    region,
    heartbeat_interval_s: Math.min(300, Math.max(1, reply.heartbeat_interval_s)),
    joined_at: new Date().toISOString(),
    node_private_key: key.privateKey,
  });
  CommandState.reset(statePathFor(options.configPath), reply.node_id);
  const models = listable.map((g) => g.model).join(', ');
  return `joined ${api} as node ${reply.node_id} in ${region} with ${listable.length} listable GPU${listable.length === 1 ? '' : 's'} (${models}); config saved to ${options.configPath}`;
}
