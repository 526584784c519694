// `status`: the config without its secrets, whether the API answers, and the node's supply rewards
// in the last closed epochs (from the public epoch reports: the node token cannot read GET /v1/rewards).
import { formatAmount } from '../../src/money/amount.ts';
import { modelWeightPpm } from '../../src/rewards/weights.ts';
import { ApiClient, normaliseApiUrl } from './api.ts';
import { readConfig, statePathFor } from './config.ts';
import { describeError } from './errors.ts';
import { keyFingerprint, publicKeyOf } from './identity.ts';
import { describeSolver } from './inspections/solvers.ts';
import type { Options } from './options.ts';
import { EpochReportSchema, ScheduleSchema, configFromSchedule, micro, type EpochLine } from './verify-epoch.ts';
import { fetchText } from './verify-common.ts';
import { RUNNER_VERSION } from './version.ts';

/** How many of the newest closed epochs `status` shows. */
export const STATUS_EPOCHS = 3;
/** Report pages read per epoch at most, when looking for the node's line. */
const PAGES_PER_EPOCH = 3;

export async function status(options: Options, io: { fetch?: typeof fetch } = {}): Promise<{ text: string; ok: boolean }> {
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
    const res = await new ApiClient({ api, timeoutMs: 10_000, fetch: io.fetch }).health();
    ok = res.status < 500;
    lines.push(`api_status: ${ok ? 'answers' : 'answers with an error'} (GET /healthz → ${res.status})`);
  } catch (err) {
    lines.push(`api_status: unreachable (${describeError(err)})`);
  }
  // Rewards never change the exit status: they are information, and an older API has no such routes.
  if (ok) {
    try {
      lines.push(...(await nodeRewards(normaliseApiUrl(api), config.node_id, io)));
    } catch (err) {
      lines.push(`rewards: unavailable (${describeError(err)})`);
    }
  } else lines.push('rewards: not checked (the API does not answer)');
  return { text: lines.join('\n'), ok };
}

/**
 * The node's lines in the newest STATUS_EPOCHS closed epochs, one `rewards:` line each. Epochs
 * close in order from 0, so the closed ones are 0 … closed_epochs − 1: one schedule request, then
 * per epoch one report page that starts just before the node's id (a few more only if other ids
 * sort in between), however many nodes the epoch has.
 */
export async function nodeRewards(api: string, nodeId: string, io: { fetch?: typeof fetch } = {}): Promise<string[]> {
  const parsed = ScheduleSchema.safeParse(parse(await fetchText(io, `${api}/v1/rewards/schedule`, 10_000)));
  if (!parsed.success) return ['rewards: unavailable (GET /v1/rewards/schedule did not answer a schedule)'];
  const closed = parsed.data.closed_epochs ?? 0;
  if (closed <= 0) return ['rewards: no rewards yet (no epoch has closed)'];
  const config = configFromSchedule(parsed.data);
  const epochS = config.epochMs / 1000;
  const out: string[] = [];
  let any = false;
  const newest = closed - 1;
  const oldest = Math.max(0, closed - STATUS_EPOCHS);
  for (let n = newest; n >= oldest; n--) {
    const line = await lineOf(api, n, nodeId, io);
    if (line === undefined) {
      out.push(`rewards: epoch ${n}: not found (the report's pages did not reach the node's id)`);
      continue;
    }
    if (line === null) {
      out.push(`rewards: epoch ${n}: no line (no confirmed heartbeat minute in the epoch)`);
      continue;
    }
    any = true;
    if (!line.eligible) {
      out.push(`rewards: epoch ${n}: not eligible (${whyNot(line, epochS, config.minUptimePpm)})`);
      continue;
    }
    const days = config.vestingMs / 86_400_000;
    out.push(
      `rewards: epoch ${n}: ${formatAmount(micro(line.amount))} GRID (${formatAmount(micro(line.immediate))} now, ${formatAmount(micro(line.vesting))} vesting over ${days} day${days === 1 ? '' : 's'}), weight ${line.weight}`,
    );
  }
  if (!any) return [`rewards: no rewards yet (no line for this node in epoch${newest === oldest ? ` ${newest}` : `s ${oldest}–${newest}`})`];
  return out;
}

/** The node's line of epoch n: the line, null when it has none, undefined when not found within a few pages. */
async function lineOf(api: string, n: number, nodeId: string, io: { fetch?: typeof fetch }): Promise<EpochLine | null | undefined> {
  let cursor = cursorBefore(nodeId);
  for (let page = 0; page < PAGES_PER_EPOCH; page++) {
    const query = `limit=5${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const report = EpochReportSchema.safeParse(parse(await fetchText(io, `${api}/v1/rewards/epochs/${n}?${query}`, 10_000)));
    if (!report.success) throw new Error(`GET /v1/rewards/epochs/${n} did not answer an epoch report`);
    for (const line of report.data.lines) {
      if (line.node_id === nodeId) return line;
      if (line.node_id > nodeId) return null;
    }
    if (!report.data.next_cursor) return null;
    cursor = report.data.next_cursor;
  }
  return undefined;
}

/**
 * A cursor just below `id` (lines are listed with node_id > cursor): id with its last character
 * one lower and '~' after it, up to the route's 64 characters. Ids are [0-9a-z_] text, all below
 * '~', so no other id sorts between the cursor and this one.
 */
export function cursorBefore(id: string): string {
  const last = id.charCodeAt(id.length - 1);
  if (!(last > 0)) return '';
  return `${id.slice(0, -1)}${String.fromCharCode(last - 1)}${'~'.repeat(64)}`.slice(0, 64);
}

function whyNot(line: EpochLine, epochS: number, minUptimePpm: number): string {
  const reasons: string[] = [];
  if (!line.verified) reasons.push('not verified: no capacity challenge passed in force, or a challenge failed in the epoch');
  if (line.gpus_offered <= 0) reasons.push('no GPUs offered: no sell order open and no lease in the epoch');
  if (modelWeightPpm(line.gpu_model) <= 0) reasons.push(`GPU model ${line.gpu_model ?? 'unknown'} is not in the catalog`);
  const confirmed = Math.max(0, Math.min(line.confirmed_s, epochS));
  if (confirmed * 1_000_000 < minUptimePpm * epochS) reasons.push(`confirmed uptime ${((confirmed / epochS) * 100).toFixed(1)}% < ${minUptimePpm / 1e4}%`);
  return reasons.length > 0 ? reasons.join('; ') : 'by the rules of the epoch';
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
