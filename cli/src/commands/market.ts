// offers and buy.
import fs from 'node:fs';
import type { Schemas } from '../../../sdk/src/index.ts';
import { intFlag, parseAmount, parseDuration } from '../args.ts';
import type { Context } from '../context.ts';
import { EXIT, usageError } from '../exit.ts';
import { json, table } from '../output.ts';
import { describeEndpoints, waitForLease } from './wait.ts';

type BuyOrder = Schemas['BuyOrder'];
type Workload = BuyOrder['workload'];

/** `offers "gpu_model=h100-80gb gpus>=2 region in [us-east,eu-central]"`: the API's own offer query grammar. */
export async function offers(ctx: Context): Promise<number> {
  const q = ctx.args.join(' ').trim();
  const limit = intFlag('limit', ctx.flags.limit, 1, 200);
  const { data } = await ctx.publicClient().GET('/v1/offers', { params: { query: { ...(q ? { q } : {}), ...(ctx.flags.order ? { order: ctx.flags.order } : {}), ...(limit ? { limit } : {}) } } });
  if (ctx.json) {
    ctx.io.out(json(data));
    return EXIT.ok;
  }
  const rows = data!.data.map((o) => [o.id, o.region, o.gpu_model, o.gpus, o.price, `${durationText(o.min_duration_s)}–${durationText(o.max_duration_s)}`, o.reliability.toFixed(3), o.verified ? 'yes' : 'no', o.vram_gb, o.cpu_cores, o.ram_gb]);
  if (rows.length === 0) {
    ctx.io.out(q ? 'No offers match.' : 'No offers.');
    return EXIT.ok;
  }
  ctx.io.out(table(['ask', 'region', 'gpu', 'gpus', 'usd/gpu-h', 'duration', 'reliability', 'verified', 'vram gb', 'cpus', 'ram gb'], rows));
  if (data!.count > rows.length) ctx.io.err(`${data!.count} offers match; the first ${rows.length} are shown (--limit up to 200)`);
  return EXIT.ok;
}

export function durationText(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

/** `--command` as a JSON array (`'["python","-u","train.py"]'`) or words split at spaces. */
export function parseCommand(text: string): string[] {
  const t = text.trim();
  if (t.startsWith('[')) {
    let value: unknown;
    try {
      value = JSON.parse(t);
    } catch {
      throw usageError('--command starting with [ must be a JSON array of strings');
    }
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw usageError('--command must be a JSON array of strings');
    return value;
  }
  return t ? t.split(/\s+/) : [];
}

function readFileJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw usageError(`cannot read --file ${file}: ${(err as Error).message}`);
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch {
    throw usageError(`--file ${file} must hold a JSON object: a workload ({image, command, env, ports}) or a buy order with a workload`);
  }
}

/**
 * The buy order from --file and the flags, flags winning. The file holds either a workload
 * ({image, command, env, ports}) or the order's own fields with `workload` inside; the API
 * validates the result (unknown fields are refused there, not here).
 */
export function buildBuyOrder(flags: Context['flags']): BuyOrder {
  const file = flags.file ? readFileJson(flags.file) : {};
  const isOrder = 'workload' in file || 'region' in file || 'gpu_model' in file;
  const fromFile: Record<string, unknown> = isOrder ? { ...file } : {};
  const fileWorkload = (isOrder ? (file.workload as Record<string, unknown> | undefined) : file) ?? {};
  delete fromFile.side;

  const env: Record<string, string> = { ...((fileWorkload.env as Record<string, string> | undefined) ?? {}) };
  for (const pair of flags.env ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw usageError(`--env must be NAME=VALUE, got "${pair}"`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const ports = flags.port?.length ? flags.port.map((p) => intFlag('port', p, 1, 65_535)!) : ((fileWorkload.ports as number[] | undefined) ?? []);
  const workload = {
    ...fileWorkload,
    image: flags.image ?? fileWorkload.image,
    command: flags.command !== undefined ? parseCommand(flags.command) : (fileWorkload.command ?? []),
    env,
    ports,
  } as Workload;
  if (!workload.image) throw usageError('buy needs --image IMAGE (or a workload in --file)');

  const order: Record<string, unknown> = { ...fromFile, side: 'buy', workload };
  if (flags.region) order.region = flags.region;
  if (flags.gpu) order.gpu_model = flags.gpu;
  if (flags.gpus) order.gpus = intFlag('gpus', flags.gpus, 1, 16);
  if (flags.price) order.price = parseAmount(flags.price, '--price');
  if (flags.duration) order.duration_s = parseDuration(flags.duration, '--duration');
  if (flags['pay-with']) order.pay_with = flags['pay-with'].toUpperCase();
  if (flags.tif) order.tif = flags.tif;
  if (flags['min-reliability']) {
    const r = Number(flags['min-reliability']);
    if (!/^(0(\.\d+)?|1(\.0+)?)$/.test(flags['min-reliability'])) throw usageError('--min-reliability must be a number from 0 to 1');
    order.min_reliability = r;
  }
  if (flags['verified-only']) order.verified_only = true;
  order.gpus ??= 1;
  order.pay_with ??= 'USD';
  const missing = (['region', 'gpu_model', 'price', 'duration_s'] as const).filter((k) => order[k] === undefined);
  const flagOf = { region: '--region', gpu_model: '--gpu', price: '--price', duration_s: '--duration' } as const;
  if (missing.length) throw usageError(`buy needs ${missing.map((k) => flagOf[k]).join(', ')}`);
  return order as unknown as BuyOrder;
}

/** Places a buy; unless --no-wait, waits for its lease to run, showing where it is. */
export async function buy(ctx: Context): Promise<number> {
  const body = buildBuyOrder(ctx.flags);
  const timeoutS = ctx.flags.timeout ? parseDuration(ctx.flags.timeout, '--timeout') : 600;
  const client = ctx.client();
  // One key for this purchase: the SDK resends it on a retry, so the escrow is held once.
  const key = crypto.randomUUID();
  const { data } = await client.POST('/v1/orders', { body, headers: { 'Idempotency-Key': key } });
  const { order, leases } = data!;
  if (ctx.flags['no-wait']) {
    if (ctx.json) ctx.io.out(json(data));
    else {
      ctx.io.out(`Order ${order.id} ${order.status}: ${order.gpus} × ${order.gpu_model} in ${order.region} at ${order.price} USD/GPU-h, held ${order.hold_amount ?? '-'} ${order.pay_with ?? ''}`.trimEnd());
      for (const l of leases) ctx.io.out(`Lease ${l.id} ${l.state}`);
      if (leases.length === 0) ctx.io.out('No ask matched yet; the order rests on the book. Follow it with `gridlease leases`.');
    }
    return EXIT.ok;
  }
  const lease = await waitForLease(ctx, client, order.id, leases[0]?.id, timeoutS);
  if (ctx.json) ctx.io.out(json({ order, lease }));
  else {
    ctx.io.out(`Lease ${lease.id} is running on ${lease.gpus} × ${lease.gpu_model} in ${lease.region}; ends ${lease.ends_at ?? '-'}`);
    const endpoints = describeEndpoints(lease);
    if (endpoints) ctx.io.out(endpoints);
  }
  return EXIT.ok;
}
