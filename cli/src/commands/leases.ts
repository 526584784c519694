// leases, lease, terminate, extend.
import { intFlag, parseDuration } from '../args.ts';
import type { Context } from '../context.ts';
import { EXIT, usageError } from '../exit.ts';
import { escapeControls, fields, json, table } from '../output.ts';
import { describeEndpoints, type Lease } from './wait.ts';
import { durationText } from './market.ts';

const STATES = ['provisioning', 'running', 'completed', 'failed', 'cancelled'] as const;

export async function leases(ctx: Context): Promise<number> {
  const { state, role } = ctx.flags;
  if (state !== undefined && !(STATES as readonly string[]).includes(state)) throw usageError(`--state must be one of ${STATES.join(', ')}`);
  if (role !== undefined && role !== 'renter' && role !== 'provider') throw usageError('--role must be renter or provider');
  const limit = intFlag('limit', ctx.flags.limit, 1, 200);
  const { data } = await ctx.client().GET('/v1/leases', {
    params: { query: { ...(state ? { state: state as (typeof STATES)[number] } : {}), ...(role ? { role } : {}), ...(limit ? { limit } : {}) } },
  });
  if (ctx.json) ctx.io.out(json(data));
  else {
    const rows = data!.data.map((l) => [l.id, l.state, l.role, l.region, `${l.gpus} × ${l.gpu_model}`, l.price, durationText(l.duration_s), `${l.billed} ${l.asset}`, l.started_at, l.ends_at]);
    if (rows.length === 0) ctx.io.out('No leases.');
    else ctx.io.out(table(['lease', 'state', 'role', 'region', 'gpus', 'usd/gpu-h', 'duration', 'billed', 'started', 'ends'], rows));
    if (data!.next_cursor) ctx.io.err('gridlease: more leases exist; --limit shows up to 200, --state and --role narrow them');
  }
  return EXIT.ok;
}

const MICRO = 1_000_000n;

/** Decimal string → micro-units, exactly (money is never a float). */
export function toMicro(text: string): bigint {
  const [whole = '0', frac = ''] = text.split('.');
  return BigInt(whole) * MICRO + BigInt(frac.padEnd(6, '0').slice(0, 6));
}

export function fromMicro(micro: bigint, decimals = 2): string {
  const sign = micro < 0n ? '-' : '';
  const abs = micro < 0n ? -micro : micro;
  const scale = 10n ** BigInt(6 - decimals);
  const units = (abs + scale / 2n) / scale; // rounded half up, in units of 10^-decimals
  const base = 10n ** BigInt(decimals);
  return decimals === 0 ? `${sign}${units}` : `${sign}${units / base}.${(units % base).toString().padStart(decimals, '0')}`;
}

/**
 * What the running time has cost so far in USD: price × GPUs × seconds since start, capped at the
 * lease's duration. An estimate; `billed` is what settled.
 */
export function accruedUsd(lease: Pick<Lease, 'price' | 'gpus' | 'duration_s' | 'started_at' | 'stopped_at'>, now: number): string | null {
  if (!lease.started_at) return null;
  const end = lease.stopped_at ? Date.parse(lease.stopped_at) : now;
  const seconds = BigInt(Math.max(0, Math.min(lease.duration_s, Math.floor((end - Date.parse(lease.started_at)) / 1000))));
  return fromMicro((toMicro(lease.price) * BigInt(lease.gpus) * seconds) / 3600n);
}

export function leaseFields(lease: Lease, now: number): string {
  const pairs: [string, string | number | null][] = [
    ['lease', lease.id],
    ['state', lease.state],
    ['role', lease.role],
    ['region', lease.region],
    ['gpus', `${lease.gpus} × ${lease.gpu_model} (indices ${lease.gpu_indices.join(', ') || '-'})`],
    ['node', lease.node_id],
    ['price', `${lease.price} USD/GPU-h`],
    ['duration', durationText(lease.duration_s)],
    ['escrow', `${lease.amount} ${lease.asset}`],
    ['billed', `${lease.billed} ${lease.asset}`],
    ['accrued (est.)', accruedUsd(lease, now) === null ? null : `${accruedUsd(lease, now)} USD`],
    ['started', lease.started_at],
    ['ends', lease.ends_at],
    ['stopped', lease.stopped_at],
    ['exit code', lease.exit_code],
  ];
  if (lease.workload) pairs.push(['image', lease.workload.image]);
  if (!lease.endpoints_state && lease.ports && Object.keys(lease.ports).length) {
    pairs.push(['ports', Object.entries(lease.ports).map(([c, h]) => `${c}→${h}`).join(', ')]);
  }
  const last = lease.history.at(-1);
  if (last?.reason) pairs.push(['reason', last.reason]);
  const sections = [fields(pairs)];
  const endpoints = describeEndpoints(lease);
  if (endpoints) sections.push(endpoints);
  // Text the workload wrote: escaped like `gridlease logs` escapes it.
  if (lease.last_lines?.length) sections.push(`last lines:\n${lease.last_lines.map((l) => `  ${l.stream === 'stderr' ? '!' : ' '} ${escapeControls(l.text)}`).join('\n')}`);
  return sections.join('\n\n');
}

export async function lease(ctx: Context): Promise<number> {
  const { data } = await ctx.client().GET('/v1/leases/{id}', { params: { path: { id: ctx.args[0]! } } });
  if (ctx.json) ctx.io.out(json(data!.lease));
  else ctx.io.out(leaseFields(data!.lease, Date.now()));
  return EXIT.ok;
}

export async function terminate(ctx: Context): Promise<number> {
  const { data } = await ctx.client().POST('/v1/leases/{id}/terminate', { params: { path: { id: ctx.args[0]! } } });
  const l = data!.lease;
  if (ctx.json) ctx.io.out(json(l));
  else ctx.io.out(`Lease ${l.id} is ${l.state}; billed ${l.billed} ${l.asset} of ${l.amount} held, the rest is released`);
  return EXIT.ok;
}

export async function extend(ctx: Context): Promise<number> {
  const seconds = parseDuration(ctx.args[1]!, 'duration');
  const { data } = await ctx.client().POST('/v1/leases/{id}/extend', { params: { path: { id: ctx.args[0]! } }, body: { duration_s: seconds } });
  const l = data!.lease;
  if (ctx.json) ctx.io.out(json(l));
  else ctx.io.out(`Lease ${l.id} extended by ${durationText(seconds)}: ${durationText(l.duration_s)} in all, ends ${l.ends_at ?? '-'}; ${l.amount} ${l.asset} held`);
  return EXIT.ok;
}
