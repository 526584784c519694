// `gridlease-runner verify-epoch`: recomputes a closed supply-rewards epoch from its public report
// (GET /v1/rewards/epochs/{n}, every page) and the schedule's parameters (GET /v1/rewards/schedule)
// with the same pure rules the platform uses (src/rewards/: schedule, weights, split, vesting): the
// inputs hash, E(n), each line's eligibility, weight, amount, immediate and vesting part, the taper
// and the totals. Only node:* and the bundled pure modules (docs/rewards.md, "Reports").
import { configApi, fetchText, parseJson, readFile, Usage, type Check, type VerifyIo } from './verify-common.ts';
import crypto from 'node:crypto';
import fs from 'node:fs';
import util from 'node:util';
import { z } from 'zod';
import { formatAmount, parseAmount } from '../../src/money/amount.ts';
import { inputsCanonicalJson } from '../../src/rewards/inputs-canonical.ts';
import { PPM, type RewardsConfig } from '../../src/rewards/config.ts';
import { emission as scheduledEmission, epochBounds } from '../../src/rewards/schedule.ts';
import { splitEpoch } from '../../src/rewards/split.ts';
import { vestingSplit } from '../../src/rewards/vesting.ts';
import { eligible, weight, type NodeInputs } from '../../src/rewards/weights.ts';
import { readConfig } from './config.ts';
import { EXIT } from './errors.ts';

export const VERIFY_EPOCH_USAGE = 'usage: gridlease-runner verify-epoch <epoch|url|file> [--api URL] [--schedule file|url] [--save FILE] [--json]';
/** Lines per page asked of the API (the route's maximum). */
const PAGE_LIMIT = 1000;

const Int = z.number().int();
const Money = z.string().regex(/^-?(0|[1-9][0-9]*)(\.[0-9]{1,6})?$/, 'a decimal amount');

/** GET /v1/rewards/schedule: the parameters (extra fields are ignored). */
export const ScheduleSchema = z.object({
  start: z.string(),
  epoch_s: Int.positive(),
  initial_per_epoch: Money,
  retention: z.string().regex(/^[0-9]{1,19}$/),
  allocation: Money,
  min_uptime_ppm: Int,
  lease_bonus_ppm: Int,
  stake_bonus_ppm: Int,
  stake_per_gpu: Money,
  taper_floor_ppm: Int,
  taper_full_util_ppm: Int.positive(),
  owner_cap_ppm: Int,
  immediate_ppm: Int,
  vesting_s: Int.nonnegative(),
  close_chunk: Int.optional(),
  current_epoch: Int.nullable().optional(),
  closed_epochs: Int.optional(),
});
export type Schedule = z.infer<typeof ScheduleSchema>;

const LineSchema = z.object({
  node_id: z.string().min(1),
  owner_id: z.string().min(1),
  gpu_model: z.string().nullable(),
  gpus_offered: Int,
  confirmed_s: Int,
  leased_gpu_s: Int,
  verified: z.boolean(),
  stake: Money,
  eligible: z.boolean(),
  weight: z.string().regex(/^[0-9]+$/, 'an integer'),
  amount: Money,
  immediate: Money,
  vesting: Money,
});
export type EpochLine = z.infer<typeof LineSchema>;

export const EpochReportSchema = z.object({
  epoch: Int.nonnegative(),
  start: z.string(),
  end: z.string(),
  emission: Money,
  inspector_pay: Money,
  taper_ppm: Int,
  utilisation_ppm: Int,
  providers_emission: Money,
  paid: Money,
  returned: Money,
  line_count: Int.nonnegative(),
  inputs_hash: z.string(),
  closed_at: z.string().optional(),
  scheduled_emission: Money.nullable().optional(),
  pool_balance: Money.nullable().optional(),
  parameters: z.record(z.string(), z.unknown()).nullable().optional(),
  lines: z.array(LineSchema),
  next_cursor: z.string().nullable().optional(),
});
export type EpochReport = z.infer<typeof EpochReportSchema>;

/** The parameter fields of a schedule (what an epoch's split depends on). */
const PARAMETER_FIELDS = ['start', 'epoch_s', 'initial_per_epoch', 'retention', 'allocation', 'min_uptime_ppm', 'lease_bonus_ppm', 'stake_bonus_ppm', 'stake_per_gpu', 'taper_floor_ppm', 'taper_full_util_ppm', 'owner_cap_ppm', 'immediate_ppm', 'vesting_s'] as const;

/** The fields every page of one report repeats: they must agree across pages. */
const HEADER_FIELDS = ['epoch', 'start', 'end', 'emission', 'inspector_pay', 'taper_ppm', 'utilisation_ppm', 'providers_emission', 'paid', 'returned', 'line_count', 'inputs_hash'] as const;

export type VerifyEpochIo = VerifyIo;

/** A decimal amount as micro-units (negative allowed, so that a negative one fails a check rather than parsing). */
export function micro(text: string): bigint {
  const parsed = parseAmount(text, { allowZero: true, allowNegative: true });
  if (!parsed.ok) throw new Error(`not an amount: ${text}`);
  return parsed.value;
}

/** The rules' configuration from the published schedule (what the split needs; the rest is unused). */
export function configFromSchedule(s: Schedule): RewardsConfig {
  const startMs = Date.parse(s.start);
  if (!Number.isFinite(startMs)) throw new Error(`the schedule's start is not a time: ${s.start}`);
  return {
    startMs,
    epochMs: s.epoch_s * 1000,
    initialPerEpoch: micro(s.initial_per_epoch),
    retention: BigInt(s.retention),
    allocation: micro(s.allocation),
    minUptimePpm: s.min_uptime_ppm,
    leaseBonusPpm: s.lease_bonus_ppm,
    stakeBonusPpm: s.stake_bonus_ppm,
    stakePerGpu: micro(s.stake_per_gpu),
    taperFloorPpm: s.taper_floor_ppm,
    taperFullUtilPpm: s.taper_full_util_ppm,
    ownerCapPpm: s.owner_cap_ppm,
    immediatePpm: s.immediate_ppm,
    vestingMs: s.vesting_s * 1000,
    closeChunk: s.close_chunk ?? 500,
  };
}

/** A published line's inputs, as the rules take them. */
export function inputsOf(l: EpochLine): NodeInputs {
  return {
    nodeId: l.node_id,
    ownerId: l.owner_id,
    gpuModel: l.gpu_model,
    gpusOffered: l.gpus_offered,
    confirmedS: l.confirmed_s,
    leasedGpuS: l.leased_gpu_s,
    verified: l.verified,
    stake: micro(l.stake),
  };
}

/** inputs_hash as the platform computes it: SHA-256 (hex) of the canonical inputs (src/rewards/inputs-canonical.ts). */
export function inputsHashOf(lines: readonly NodeInputs[]): string {
  return crypto.createHash('sha256').update(inputsCanonicalJson(lines), 'utf8').digest('hex');
}

const grid = (m: bigint) => `${formatAmount(m)} GRID`;

/** Runs the command; returns the exit code (0 all holds, 1 something does not, 2 usage). */
export async function verifyEpoch(argv: readonly string[], io: VerifyEpochIo): Promise<number> {
  try {
    return await run(argv, io);
  } catch (err) {
    if (err instanceof Usage) {
      io.err(`gridlease-runner: ${err.message}\n${VERIFY_EPOCH_USAGE}`);
      return EXIT.usage;
    }
    io.err(`gridlease-runner: ${(err as Error).message}`);
    return EXIT.error;
  }
}

/** Where the report and the parameters come from. */
export interface Loaded {
  /** One report per page, as fetched (a file or a saved bundle: one). */
  pages: unknown[];
  schedule: unknown;
  /** The epoch asked for, when the source names one. */
  asked: number | null;
}

async function run(argv: readonly string[], io: VerifyEpochIo): Promise<number> {
  let parsed;
  try {
    parsed = util.parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: { api: { type: 'string' }, schedule: { type: 'string' }, save: { type: 'string' }, json: { type: 'boolean' } },
    });
  } catch (err) {
    throw new Usage((err as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, ''));
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new Usage(positionals.length === 0 ? 'which epoch? give its number, a report URL or a saved report file' : `unexpected argument "${positionals[1]}"`);
  const source = positionals[0]!;
  const apiFromFlags = () => {
    const url = values.api ?? (io.env.GRIDLEASE_API || undefined) ?? configApi(io.configPath);
    return url ? checkedUrl(url, '--api').replace(/\/+$/, '') : undefined;
  };

  let pages: unknown[];
  let bundledSchedule: unknown;
  let asked: number | null = null;
  let apiBase: string | undefined;
  if (/^[0-9]+$/.test(source)) {
    asked = Number(source);
    if (!Number.isSafeInteger(asked) || asked > 1_000_000_000) throw new Usage(`not an epoch number: ${source}`);
    apiBase = apiFromFlags();
    if (!apiBase) throw new Usage('no API to ask: pass --api URL (or set GRIDLEASE_API, or join first)');
    pages = await fetchPages(io, new URL(`${apiBase}/v1/rewards/epochs/${asked}`));
  } else if (/^https?:\/\//i.test(source)) {
    const url = new URL(checkedUrl(source, 'the report URL'));
    const route = /^(.*)\/v1\/rewards\/epochs\/([0-9]+)\/?$/.exec(url.pathname);
    if (route) asked = Number(route[2]);
    apiBase = values.api ? apiFromFlags() : route ? `${url.origin}${route[1]}` : undefined;
    pages = await fetchPages(io, url);
  } else if (fs.existsSync(source)) {
    const body = parseJson(readFile(source));
    // A saved bundle {schedule, report} (--save) carries its parameters; a bare report does not.
    if (body && typeof body === 'object' && 'report' in body && 'schedule' in body) {
      pages = [(body as { report: unknown }).report];
      bundledSchedule = (body as { schedule: unknown }).schedule;
    } else pages = [body];
  } else {
    throw new Usage(`no such file, URL or epoch number: ${source}`);
  }

  let schedule = bundledSchedule;
  if (schedule === undefined) {
    if (values.schedule) schedule = /^https?:\/\//i.test(values.schedule) ? parseJson(await fetchText(io, values.schedule)) : parseJson(readFile(values.schedule));
    else {
      apiBase ??= apiFromFlags();
      if (!apiBase) throw new Usage('whose parameters? pass --schedule FILE|URL or --api URL');
      schedule = parseJson(await fetchText(io, `${apiBase}/v1/rewards/schedule`));
    }
  }

  const loaded: Loaded = { pages, schedule, asked };
  const result = verifyLoaded(loaded);
  const { checks, report } = result;
  const ok = checks.every((c) => c.ok);
  if (values.save && result.merged) writeSaved(values.save, { schedule, report: result.merged });
  if (values.json) {
    io.out(JSON.stringify({ ok, epoch: report?.epoch ?? asked, inputs_hash: report?.inputs_hash ?? null, checks }));
  } else {
    if (report) {
      const paidTo = result.merged ? result.merged.lines.filter((l) => micro(l.amount) > 0n).length : 0;
      io.out(
        `epoch ${report.epoch} [${report.start}, ${report.end}): emission ${grid(micro(report.emission))}, inspector pay ${grid(micro(report.inspector_pay))}, ` +
          `paid ${grid(micro(report.paid))} to ${paidTo} node${paidTo === 1 ? '' : 's'}, returned ${grid(micro(report.returned))}`,
      );
    }
    for (const c of checks) io.out(`${c.ok ? '✓' : '✗'} ${c.name}: ${c.detail}`);
    io.out(ok ? 'the epoch holds' : 'the epoch does NOT hold');
  }
  return ok ? EXIT.ok : EXIT.error;
}

/**
 * Every page of the report from `first` on, following next_cursor (the cursor must move forward,
 * and there are never more pages than lines allow).
 */
async function fetchPages(io: VerifyEpochIo, first: URL): Promise<unknown[]> {
  const pages: unknown[] = [];
  const url = new URL(first);
  if (/\/v1\/rewards\/epochs\/[0-9]+\/?$/.test(url.pathname) && !url.searchParams.has('limit')) url.searchParams.set('limit', String(PAGE_LIMIT));
  let cursor: string | null = url.searchParams.get('cursor');
  let lines = 0;
  for (;;) {
    const page = parseJson(await fetchText(io, url.href));
    pages.push(page);
    const p = page as { next_cursor?: unknown; lines?: unknown; line_count?: unknown } | undefined;
    const next = p && typeof p.next_cursor === 'string' ? p.next_cursor : null;
    lines += Array.isArray(p?.lines) ? p.lines.length : 0;
    if (next === null) break;
    // A cursor that does not move on, or more lines than the report says it has: stop (the checks say why).
    if ((cursor !== null && next <= cursor) || lines > (typeof p?.line_count === 'number' ? p.line_count : 0)) break;
    cursor = next;
    url.searchParams.set('cursor', next);
  }
  return pages;
}

export interface Verified {
  checks: Check[];
  /** The first page's header, when it could be read. */
  report?: EpochReport;
  /** The whole report: the header with every page's lines, when the pages were consistent. */
  merged?: EpochReport;
}

/** Every check over a loaded report and schedule, in order; stops at the first that leaves nothing to recompute. */
export function verifyLoaded(loaded: Loaded): Verified {
  const checks: Check[] = [];
  const res: Verified = { checks };
  const pass = (name: string, detail: string) => checks.push({ name, ok: true, detail });
  const fail = (name: string, detail: string) => (checks.push({ name, ok: false, detail }), res);

  // The parameters: the epoch's own when the report carries them (the split used those), else
  // today's schedule.
  const own = (loaded.pages[0] as { parameters?: unknown } | undefined)?.parameters;
  const today = ScheduleSchema.safeParse(loaded.schedule);
  const sched = own ? ScheduleSchema.safeParse(own) : today;
  if (!sched.success) return fail('schedule', `not rewards parameters (${issue(sched.error)})`);
  let config: RewardsConfig;
  try {
    config = configFromSchedule(sched.data);
  } catch (err) {
    return fail('schedule', (err as Error).message);
  }
  const changed = own && today.success ? PARAMETER_FIELDS.filter((k) => String(today.data[k]) !== String(sched.data[k])) : [];
  pass(
    'schedule',
    `${own ? "the epoch's own parameters" : "today's schedule (the report carries no parameters)"}: E0 ${grid(config.initialPerEpoch)}, f = ${config.retention} / 10^18, epochs of ${config.epochMs / 1000} s from ${new Date(config.startMs).toISOString()}, allocation ${grid(config.allocation)}` +
      (changed.length ? `; today's schedule differs in ${changed.join(', ')}` : ''),
  );

  // The report, every page.
  const pages: EpochReport[] = [];
  for (const [i, raw] of loaded.pages.entries()) {
    const page = EpochReportSchema.safeParse(raw);
    if (!page.success) return fail('report', `${loaded.pages.length > 1 ? `page ${i + 1} is ` : ''}not an epoch report (${issue(page.error)})`);
    pages.push(page.data);
  }
  const head = pages[0]!;
  res.report = head;
  try {
    for (const p of pages) for (const v of [p.emission, p.inspector_pay, p.providers_emission, p.paid, p.returned, ...p.lines.flatMap((l) => [l.stake, l.amount, l.immediate, l.vesting])]) micro(v);
  } catch (err) {
    return fail('report', (err as Error).message);
  }
  if (loaded.asked !== null && head.epoch !== loaded.asked) return fail('report', `asked for epoch ${loaded.asked}, the report is epoch ${head.epoch}`);

  // Pages: the same header on each, lines strictly by node id across them, each cursor the last id.
  const lines: EpochLine[] = [];
  for (const [i, p] of pages.entries()) {
    const differs = HEADER_FIELDS.find((k) => p[k] !== head[k]);
    if (differs) return fail('lines', `page ${i + 1} says ${differs} ${String(p[differs])}, page 1 ${String(head[differs])}`);
    if (p.next_cursor && p.lines.length > 0 && p.next_cursor !== p.lines[p.lines.length - 1]!.node_id) return fail('lines', `page ${i + 1}'s next_cursor is not its last node id`);
    lines.push(...p.lines);
  }
  const last = pages[pages.length - 1]!;
  if (last.next_cursor) return fail('lines', `incomplete: ${lines.length} of ${head.line_count} lines, the last page read has next_cursor ${last.next_cursor}`);
  for (let i = 1; i < lines.length; i++) {
    if (!(lines[i - 1]!.node_id < lines[i]!.node_id)) return fail('lines', `not strictly by node id: ${lines[i - 1]!.node_id} then ${lines[i]!.node_id}`);
  }
  if (lines.length !== head.line_count) return fail('lines', `${lines.length} lines, the report says line_count ${head.line_count}`);
  pass('lines', `${lines.length} line${lines.length === 1 ? '' : 's'} by node id, ${pages.length} page${pages.length === 1 ? '' : 's'}`);
  res.merged = { ...head, lines, next_cursor: null };

  // The epoch's window.
  const n = head.epoch;
  const bounds = epochBounds(config, n);
  const [start, end] = [Date.parse(head.start), Date.parse(head.end)];
  if (start !== bounds.startMs || end !== bounds.endMs) {
    fail('window', `[${head.start}, ${head.end}) is not epoch ${n} of the schedule: [${new Date(bounds.startMs).toISOString()}, ${new Date(bounds.endMs).toISOString()})`);
  } else pass('window', `epoch ${n} of the schedule: [${head.start}, ${head.end})`);

  // The inputs hash over every line's inputs.
  const inputs = lines.map(inputsOf);
  const hash = inputsHashOf(inputs);
  if (hash !== head.inputs_hash) fail('inputs hash', `SHA-256 of the published inputs is ${hash}, the report says ${head.inputs_hash}`);
  else pass('inputs hash', `SHA-256 of the canonical inputs of all ${lines.length} lines: ${hash}`);

  // Emission: min(E(n), the pool's balance at the split). The balance is not published, so: ≤ E(n).
  const scheduled = scheduledEmission(config, n);
  const emitted = micro(head.emission);
  const inspectorPay = micro(head.inspector_pay);
  if (head.scheduled_emission != null && head.pool_balance != null) {
    // Both published: exact.
    const published = micro(head.scheduled_emission);
    const pool = micro(head.pool_balance);
    const expected = scheduled < pool ? scheduled : pool > 0n ? pool : 0n;
    if (published !== scheduled) fail('emission', `scheduled ${grid(published)}, but E(${n}) = ${grid(scheduled)}`);
    else if (emitted !== expected) fail('emission', `${grid(emitted)} is not min(E(${n}) = ${grid(scheduled)}, pool ${grid(pool)}) = ${grid(expected)}`);
    else pass('emission', `${grid(emitted)} = min(E(${n}) = ${grid(scheduled)}, the pool's ${grid(pool)} at the split)`);
  } else if (emitted < 0n || emitted > scheduled) fail('emission', `${grid(emitted)} is not min(E(${n}) = ${grid(scheduled)}, the pool's balance)`);
  else if (emitted === scheduled) pass('emission', `= E(${n}) = ${grid(scheduled)}`);
  else pass('emission', `${grid(emitted)}, less than E(${n}) = ${grid(scheduled)}: what the pool held at the split (its balance then is not in the report)`);
  if (inspectorPay < 0n) fail('inspector pay', `${grid(inspectorPay)} is negative`);

  // Eligibility and weights, line by line.
  const epochS = config.epochMs / 1000;
  const wrongEligible = lines.filter((l, i) => eligible(config, epochS, inputs[i]!) !== l.eligible);
  const eligibleCount = lines.filter((l) => l.eligible).length;
  if (wrongEligible.length > 0) fail('eligibility', mismatches(wrongEligible, (l) => `${l.node_id} is ${l.eligible ? '' : 'not '}eligible in the report, the rules say ${l.eligible ? 'not' : 'it is'}`));
  else pass('eligibility', `${eligibleCount} of ${lines.length} eligible (uptime ≥ ${config.minUptimePpm / 1e4}%, GPUs offered, verified, a catalog model)`);
  const weights = inputs.map((i) => weight(config, epochS, i));
  const wrongWeight = lines.filter((l, i) => BigInt(l.weight) !== weights[i]);
  if (wrongWeight.length > 0) fail('weights', mismatches(wrongWeight, (l) => `${l.node_id} weighs ${l.weight} in the report, ${weights[lines.indexOf(l)]} by the rules`));
  else pass('weights', `every line's weight recomputed; Σ ${weights.reduce((s, w) => s + w, 0n)} ppm-epochs of an H100-80GB`);

  // The split: taper, the providers' part, each amount, and vesting.
  const split = splitEpoch(config, epochS, emitted, inspectorPay, inputs);
  const taperProblems: string[] = [];
  if (split.taperPpm !== head.taper_ppm) taperProblems.push(`taper ${head.taper_ppm} ppm, recomputed ${split.taperPpm}`);
  if (split.utilisationPpm !== head.utilisation_ppm) taperProblems.push(`utilisation ${head.utilisation_ppm} ppm, recomputed ${split.utilisationPpm}`);
  if (split.providersEmission !== micro(head.providers_emission)) taperProblems.push(`providers' emission ${head.providers_emission}, recomputed ${formatAmount(split.providersEmission)}`);
  if (taperProblems.length > 0) fail('taper', taperProblems.join('; '));
  else pass('taper', `paid utilisation ${split.utilisationPpm} ppm → taper ${split.taperPpm} ppm; providers' emission ${grid(split.providersEmission)} after inspector pay ${grid(inspectorPay)}`);

  const amounts = new Map(split.lines.map((l) => [l.nodeId, l.amount]));
  const amountOf = (l: EpochLine) => amounts.get(l.node_id) ?? 0n;
  const wrongAmount = lines.filter((l) => micro(l.amount) !== amountOf(l));
  const cap = (split.providersEmission * BigInt(config.ownerCapPpm)) / BigInt(PPM);
  const byOwner = new Map<string, bigint>();
  for (const l of lines) byOwner.set(l.owner_id, (byOwner.get(l.owner_id) ?? 0n) + micro(l.amount));
  const largest = [...byOwner.values()].reduce((m, a) => (a > m ? a : m), 0n);
  if (wrongAmount.length > 0) fail('amounts', mismatches(wrongAmount, (l) => `${l.node_id} gets ${l.amount} in the report, ${formatAmount(amountOf(l))} by the split`));
  else if (largest > cap) fail('amounts', `an owner gets ${grid(largest)}, over the owner cap ${grid(cap)}`);
  else pass('amounts', `every line's amount recomputed by splitEpoch; the most one owner gets is ${grid(largest)} (cap ${grid(cap)})`);

  const wrongVesting = lines.filter((l) => {
    const v = vestingSplit(config, micro(l.amount));
    return micro(l.immediate) !== v.immediate || micro(l.vesting) !== v.vesting;
  });
  if (wrongVesting.length > 0) {
    fail('vesting', mismatches(wrongVesting, (l) => {
      const v = vestingSplit(config, micro(l.amount));
      return `${l.node_id}: ${l.immediate} now + ${l.vesting} vesting, the rules say ${formatAmount(v.immediate)} + ${formatAmount(v.vesting)}`;
    }));
  } else pass('vesting', `immediate = ⌊amount · ${config.immediatePpm} / 10^6⌋ and the rest vesting over ${config.vestingMs / 86_400_000} days, on every line`);

  // Totals: paid = Σ amounts, returned as the split says, emission = min(inspector pay, emission) + paid + returned.
  const sum = lines.reduce((s, l) => s + micro(l.amount), 0n);
  const paid = micro(head.paid);
  const returned = micro(head.returned);
  const inspectorPart = inspectorPay < emitted ? inspectorPay : emitted;
  const totalProblems: string[] = [];
  if (paid !== sum) totalProblems.push(`paid ${head.paid}, but the lines add up to ${formatAmount(sum)}`);
  if (paid !== split.paid) totalProblems.push(`paid ${head.paid}, the split pays ${formatAmount(split.paid)}`);
  if (returned !== split.returned) totalProblems.push(`returned ${head.returned}, the split returns ${formatAmount(split.returned)}`);
  if (emitted !== inspectorPart + paid + returned) totalProblems.push(`emission ${head.emission} ≠ inspector pay ${formatAmount(inspectorPart)} + paid ${head.paid} + returned ${head.returned}`);
  if (totalProblems.length > 0) fail('totals', totalProblems.join('; '));
  else pass('totals', `emission ${grid(emitted)} = inspector pay ${formatAmount(inspectorPart)} + paid ${formatAmount(paid)} + returned ${formatAmount(returned)}; paid = Σ lines`);
  return res;
}

function mismatches(lines: EpochLine[], say: (l: EpochLine) => string): string {
  const shown = lines.slice(0, 3).map(say).join('; ');
  return lines.length > 3 ? `${shown}; and ${lines.length - 3} more line${lines.length - 3 === 1 ? '' : 's'}` : shown;
}

const issue = (e: z.ZodError) => `${e.issues[0]?.path.join('.') || 'body'}: ${e.issues[0]?.message}`;


function checkedUrl(text: string, what: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Usage(`${what} is not a URL: ${text}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Usage(`${what} must be http(s): ${text}`);
  return url.href;
}


function writeSaved(file: string, bundle: unknown): void {
  fs.writeFileSync(file, `${JSON.stringify(bundle, null, 1)}\n`);
}


