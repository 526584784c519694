import { env } from 'cloudflare:workers';
import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { nodes } from '../../src/db/schema.ts';
import { regionBook } from '../../src/durable/region-book.ts';
import type { Bindings } from '../../src/env.ts';
import type { AskOrder } from '../../src/market/orders.ts';
import { formatAmount } from '../../src/money/amount.ts';
import { call, db, expectError, json, machine, registerNode, signUp, type TestAccount } from './support.ts';

const bindings = env as unknown as Bindings;
const USD = 1_000_000;

// Books and libSQL are shared with every other test file in a run. Each market below gets its own
// price band, far above what any bid elsewhere offers (so its asks never fill), and every query
// is confined to that band, so results are exact.
const BASE = (5_000 + Math.floor(Math.random() * 10_000) * 100) * USD;
let bands = 0;

interface PlacedAsk {
  id: string;
  expiresAt: number;
  minDurationS: number;
  maxDurationS: number;
}

async function placeAsk(
  provider: TestAccount,
  nodeId: string,
  region: string,
  gpuModel: string,
  o: { gpus: number; price: number; nodeGpuIndices: number[]; minDurationS?: number; maxDurationS?: number },
): Promise<PlacedAsk> {
  const ask: AskOrder = {
    side: 'sell',
    id: `ord_${crypto.randomUUID()}`,
    accountId: provider.id,
    nodeId,
    gpus: o.gpus,
    price: o.price,
    minDurationS: o.minDurationS ?? 60,
    maxDurationS: o.maxDurationS ?? 86_400,
    expiresAt: Date.now() + 3_600_000,
    // Offers take reliability and verification from libSQL, not from what the ask carries.
    reliability: 0.5,
    verified: true,
    region,
    gpuModel,
    nodeGpuIndices: o.nodeGpuIndices,
  };
  const placed = await regionBook(bindings, region, gpuModel).place(ask);
  if (!placed.ok || placed.order.status !== 'open') throw new Error(`ask not resting: ${JSON.stringify(placed)}`);
  return { id: ask.id, expiresAt: ask.expiresAt, minDurationS: ask.minDurationS, maxDurationS: ask.maxDurationS };
}

/**
 * Four offers from one provider in three regions:
 *   l4    ap-southeast  l4-24gb        8 GPUs  band+0.50  reliability 0.95         vram 24  16 cores   64 GB RAM   300 GB disk
 *   rtx   us-east       rtx-4090-24gb  1 GPU   band+1.00  reliability 0.97         vram 24  32 cores  250 GB RAM   900 GB disk
 *   h100  us-east       h100-80gb      3 GPUs  band+1.00  reliability 0.90         vram 80  32 cores  250 GB RAM   900 GB disk
 *   a100  eu-west       a100-80gb      2 GPUs  band+2.00  reliability 0.99 verified vram 80  64 cores  500 GB RAM  2000 GB disk
 */
async function market() {
  const band = BASE + ++bands * 100 * USD;
  const price = (usd: number) => band + usd * USD;
  const provider = await signUp(['provider']);

  const l4 = await registerNode(provider, { ...machine(Array(8).fill({ name: 'NVIDIA L4', memory_mib: 23_034 })), cpu_cores: 16, ram_mib: 65_536, disk_free_gib: 300 }, 'ap-southeast');
  const rtx = await registerNode(provider, machine([{ name: 'NVIDIA GeForce RTX 4090', memory_mib: 24_564 }]), 'us-east');
  const h100 = await registerNode(provider, machine(Array(4).fill({ name: 'NVIDIA H100 80GB HBM3' })), 'us-east');
  const a100 = await registerNode(
    provider,
    { ...machine(Array(2).fill({ name: 'NVIDIA A100-SXM4-80GB', memory_mib: 81_920 })), cpu_cores: 64, ram_mib: 512_000, disk_free_gib: 2_000 },
    'eu-west',
  );
  await db().update(nodes).set({ reliabilityPpm: 950_000 }).where(eq(nodes.id, l4.nodeId));
  await db().update(nodes).set({ reliabilityPpm: 970_000 }).where(eq(nodes.id, rtx.nodeId));
  // Verified when it passed its challenges, at a moment offers show.
  const verifiedAt = Date.now() - 3_600_000;
  await db().update(nodes).set({ reliabilityPpm: 990_000, verified: true, verifiedAt, verifiedUntil: verifiedAt + 7 * 86_400_000 }).where(eq(nodes.id, a100.nodeId));

  const asks = {
    l4: await placeAsk(provider, l4.nodeId, 'ap-southeast', 'l4-24gb', {
      gpus: 8, price: price(0.5), nodeGpuIndices: [0, 1, 2, 3, 4, 5, 6, 7], minDurationS: 3_600, maxDurationS: 604_800,
    }),
    rtx: await placeAsk(provider, rtx.nodeId, 'us-east', 'rtx-4090-24gb', { gpus: 1, price: price(1), nodeGpuIndices: [0] }),
    h100: await placeAsk(provider, h100.nodeId, 'us-east', 'h100-80gb', { gpus: 3, price: price(1), nodeGpuIndices: [0, 1, 2, 3] }),
    a100: await placeAsk(provider, a100.nodeId, 'eu-west', 'a100-80gb', { gpus: 2, price: price(2), nodeGpuIndices: [0, 1] }),
  };
  const wire = (ask: PlacedAsk, o: Record<string, unknown>) => ({
    id: ask.id,
    min_duration_s: ask.minDurationS,
    max_duration_s: ask.maxDurationS,
    expires_at: new Date(ask.expiresAt).toISOString(),
    ...o,
  });
  const offers = {
    l4: wire(asks.l4, {
      region: 'ap-southeast', gpu_model: 'l4-24gb', gpus: 8, price: formatAmount(BigInt(price(0.5))),
      reliability: 0.95, verified: false, verified_at: null, vram_gb: 24, cpu_cores: 16, ram_gb: 64, disk_gb: 300,
    }),
    rtx: wire(asks.rtx, {
      region: 'us-east', gpu_model: 'rtx-4090-24gb', gpus: 1, price: formatAmount(BigInt(price(1))),
      reliability: 0.97, verified: false, verified_at: null, vram_gb: 24, cpu_cores: 32, ram_gb: 250, disk_gb: 900,
    }),
    h100: wire(asks.h100, {
      region: 'us-east', gpu_model: 'h100-80gb', gpus: 3, price: formatAmount(BigInt(price(1))),
      reliability: 0.9, verified: false, verified_at: null, vram_gb: 80, cpu_cores: 32, ram_gb: 250, disk_gb: 900,
    }),
    a100: wire(asks.a100, {
      region: 'eu-west', gpu_model: 'a100-80gb', gpus: 2, price: formatAmount(BigInt(price(2))),
      reliability: 0.99, verified: true, verified_at: new Date(verifiedAt).toISOString(), vram_gb: 80, cpu_cores: 64, ram_gb: 500, disk_gb: 2_000,
    }),
  };
  const ids = Object.fromEntries(Object.entries(asks).map(([name, ask]) => [name, ask.id])) as Record<keyof typeof asks, string>;

  /** Searches within this market's band; `q` adds clauses to it. */
  const search = async (q = '', params: Record<string, string> = {}) => {
    const full = `price>=${formatAmount(BigInt(band))} price<${formatAmount(BigInt(band + 100 * USD))} ${q}`;
    const res = await call(`/v1/offers?${new URLSearchParams({ q: full, ...params })}`);
    if (res.status !== 200) throw new Error(`search ${full}: ${res.status} ${await res.text()}`);
    return json<{ data: Array<Record<string, unknown>>; count: number }>(res);
  };
  /** The offer names a search returns, in order. */
  const names = async (q = '', params: Record<string, string> = {}) => {
    const byId = new Map(Object.entries(ids).map(([name, id]) => [id, name]));
    return (await search(q, params)).data.map((o) => byId.get(o.id as string) ?? `foreign ${String(o.id)}`);
  };
  const money = (usd: number) => formatAmount(BigInt(price(usd)));
  return { provider, nodes: { l4, rtx, h100, a100 }, offers, search, names, money };
}

describe('GET /v1/offers', () => {
  it('lists resting asks with their nodes’ facts from libSQL, cheapest first, publicly and briefly cached', async () => {
    const m = await market();
    const res = await call(`/v1/offers?q=${encodeURIComponent(`price>=${m.money(0)} price<${m.money(100)}`)}`, { headers: { origin: 'https://aggregator.example' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('public, max-age=2');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(await json(res)).toEqual({ data: [m.offers.l4, m.offers.rtx, m.offers.h100, m.offers.a100], count: 4 });
  });

  it('never shows account or node ids', async () => {
    const m = await market();
    const res = await call(`/v1/offers?q=${encodeURIComponent(`price>=${m.money(0)} price<${m.money(100)}`)}`);
    const text = await res.text();
    expect(text).not.toContain(m.provider.id);
    for (const node of Object.values(m.nodes)) expect(text).not.toContain(node.nodeId);
    const { data } = JSON.parse(text) as { data: Array<Record<string, unknown>> };
    expect(data).toHaveLength(4);
    for (const offer of data) {
      expect(Object.keys(offer).sort()).toEqual(
        ['cpu_cores', 'disk_gb', 'expires_at', 'gpu_model', 'gpus', 'id', 'max_duration_s', 'min_duration_s', 'price', 'ram_gb', 'region', 'reliability', 'verified', 'verified_at', 'vram_gb'],
      );
    }
  });

  it('answers without a query, up to the default limit of 50', async () => {
    await market();
    const body = await json(await call('/v1/offers'));
    expect(body.count).toBeGreaterThanOrEqual(4);
    expect(body.data).toHaveLength(Math.min(50, body.count));
  });

  it('filters on catalog ids (region, gpu_model)', async () => {
    const m = await market();
    expect(await m.names('gpu_model=a100-80gb')).toEqual(['a100']);
    expect(await m.names('region=us-east')).toEqual(['rtx', 'h100']);
    expect(await m.names('region!=us-east')).toEqual(['l4', 'a100']);
    expect(await m.names('gpu_model!=rtx-4090-24gb region=us-east')).toEqual(['h100']);
    expect(await m.names('region=eu-west region!=eu-west')).toEqual([]);
  });

  it('filters on numbers (gpus, reliability, vram_gb, cpu_cores, ram_gb, disk_gb)', async () => {
    const m = await market();
    expect(await m.names('gpus>=3')).toEqual(['l4', 'h100']);
    expect(await m.names('gpus=1')).toEqual(['rtx']);
    expect(await m.names('gpus < 3')).toEqual(['rtx', 'a100']);
    expect(await m.names('reliability>0.95')).toEqual(['rtx', 'a100']);
    expect(await m.names('reliability>=0.95')).toEqual(['l4', 'rtx', 'a100']);
    expect(await m.names('vram_gb>=80')).toEqual(['h100', 'a100']);
    expect(await m.names('vram_gb<=24')).toEqual(['l4', 'rtx']);
    expect(await m.names('cpu_cores<32')).toEqual(['l4']);
    expect(await m.names('ram_gb=500')).toEqual(['a100']);
    expect(await m.names('ram_gb!=250')).toEqual(['l4', 'a100']);
    expect(await m.names('disk_gb>900')).toEqual(['a100']);
    expect(await m.names('disk_gb<=300')).toEqual(['l4']);
  });

  it('filters on money (price) exactly and on booleans (verified)', async () => {
    const m = await market();
    expect(await m.names(`price=${m.money(0.5)}`)).toEqual(['l4']);
    expect(await m.names(`price<=${m.money(1)}`)).toEqual(['l4', 'rtx', 'h100']);
    expect(await m.names(`price>${m.money(1)}`)).toEqual(['a100']);
    expect(await m.names(`price!=${m.money(1)}`)).toEqual(['l4', 'a100']);
    expect(await m.names(`price<${m.money(0.500001)}`)).toEqual(['l4']);
    expect(await m.names('verified=true')).toEqual(['a100']);
    expect(await m.names('verified!=true')).toEqual(['l4', 'rtx', 'h100']);
    expect(await m.names('verified=false gpus>=2 region!=ap-southeast')).toEqual(['h100']);
  });

  it('filters with in and notin lists', async () => {
    const m = await market();
    expect(await m.names('region in [us-east,ap-southeast]')).toEqual(['l4', 'rtx', 'h100']);
    expect(await m.names('region notin [us-east]')).toEqual(['l4', 'a100']);
    expect(await m.names('gpu_model in [h100-80gb, a100-80gb]')).toEqual(['h100', 'a100']);
    expect(await m.names('gpu_model notin [h100-80gb,l4-24gb]')).toEqual(['rtx', 'a100']);
    expect(await m.names('gpus in [1,2]')).toEqual(['rtx', 'a100']);
    expect(await m.names('gpus notin [1,2]')).toEqual(['l4', 'h100']);
    expect(await m.names(`price in [${m.money(0.5)},${m.money(2)}]`)).toEqual(['l4', 'a100']);
    expect(await m.names(`price notin [${m.money(1)}]`)).toEqual(['l4', 'a100']);
    expect(await m.names('region in [us-east] region notin [us-east]')).toEqual([]);
  });

  it('orders by price then reliability by default, and by any sortable field either way', async () => {
    const m = await market();
    // rtx and h100 share a price: the more reliable one comes first.
    expect(await m.names()).toEqual(['l4', 'rtx', 'h100', 'a100']);
    expect(await m.names('', { order: 'price' })).toEqual(['l4', 'rtx', 'h100', 'a100']);
    expect(await m.names('', { order: '-price' })).toEqual(['a100', 'rtx', 'h100', 'l4']);
    expect(await m.names('', { order: 'gpus' })).toEqual(['rtx', 'a100', 'h100', 'l4']);
    expect(await m.names('', { order: '-gpus' })).toEqual(['l4', 'h100', 'a100', 'rtx']);
    expect(await m.names('', { order: '-reliability' })).toEqual(['a100', 'rtx', 'l4', 'h100']);
    expect(await m.names('', { order: 'reliability' })).toEqual(['h100', 'l4', 'rtx', 'a100']);
    expect(await m.names('', { order: 'vram_gb' })).toEqual(['l4', 'rtx', 'h100', 'a100']);
    expect(await m.names('', { order: '-cpu_cores' })).toEqual(['a100', 'rtx', 'h100', 'l4']);
    expect(await m.names('', { order: 'ram_gb' })).toEqual(['l4', 'rtx', 'h100', 'a100']);
    // Equal disk: cheaper first, then the more reliable.
    expect(await m.names('', { order: '-disk_gb' })).toEqual(['a100', 'rtx', 'h100', 'l4']);
  });

  it('returns at most limit offers and counts every match', async () => {
    const m = await market();
    expect(await m.search('', { limit: '2' })).toEqual({ data: [m.offers.l4, m.offers.rtx], count: 4 });
    expect(await m.search('', { limit: '1', order: '-price' })).toEqual({ data: [m.offers.a100], count: 4 });
    expect(await m.search('region=us-east', { limit: '200' })).toEqual({ data: [m.offers.rtx, m.offers.h100], count: 2 });
  });

  it('leaves out asks of offline nodes until they come back', async () => {
    const m = await market();
    const book = regionBook(bindings, 'us-east', 'h100-80gb');
    await book.setNodes({ online: [], offline: [m.nodes.h100.nodeId] });
    expect(await m.search()).toEqual({ data: [m.offers.l4, m.offers.rtx, m.offers.a100], count: 3 });
    await book.setNodes({ online: [m.nodes.h100.nodeId], offline: [] });
    expect(await m.names()).toEqual(['l4', 'rtx', 'h100', 'a100']);
  });

  it('is described in the OpenAPI document', async () => {
    const doc = await json(await call('/openapi.json'));
    expect(doc.paths['/v1/offers'].get.parameters.map((p: { name: string }) => p.name).sort()).toEqual(['limit', 'order', 'q']);
    expect(doc.components.schemas.Offer).toBeDefined();
    expect(doc.components.schemas.OfferList).toBeDefined();
  });

  it('drops a cancelled ask', async () => {
    const m = await market();
    const gone = m.offers.rtx.id;
    expect(await regionBook(bindings, 'us-east', 'rtx-4090-24gb').cancel(gone, m.provider.id)).toMatchObject({ status: 'cancelled' });
    expect(await m.names()).toEqual(['l4', 'h100', 'a100']);
  });
});

describe('GET /v1/offers with bad input', () => {
  const overLong = 'gpus>=1 '.repeat(130);

  it.each([
    ['an unknown field', { q: 'colour=red' }, "invalid q 'colour=red': unknown field 'colour'"],
    ['a misspelt field, with a suggestion', { q: 'gpus>=1 vram>=80' }, "invalid q 'vram>=80': unknown field 'vram'; did you mean 'vram_gb'?"],
    ['a word for a number', { q: 'gpus>=two' }, "invalid q 'gpus>=two': gpus value 'two'"],
    ['a price with 7 decimals', { q: 'price<1.1234567' }, "invalid q 'price<1.1234567': price value '1.1234567' must have at most 6 decimal places"],
    ['an ordering operator on a boolean', { q: 'verified>true' }, "invalid q 'verified>true': operator > is not allowed for verified"],
    ['an ordering operator on a catalog id', { q: 'region<us-east' }, "invalid q 'region<us-east': operator < is not allowed for region"],
    ['an unknown catalog id', { q: 'gpu_model=h100' }, "invalid q 'gpu_model=h100': gpu_model value 'h100' is not a known gpu_model; did you mean 'h100-80gb'?"],
    ['an unterminated list', { q: 'region in [us-east' }, "invalid q 'region in [us-east': unterminated list"],
    ['an over-long query', { q: overLong }, `the query is ${overLong.length} characters; at most 1000 are allowed`],
    ['an unknown order field', { order: 'colour' }, "invalid order 'colour': unknown order field 'colour'"],
    ['an order on an unsortable field', { q: 'gpus>=1', order: 'verified' }, "invalid order 'verified': cannot order by verified"],
    ['limit=0', { limit: '0' }, 'limit'],
    ['limit=201', { limit: '201' }, 'limit'],
    ['limit=abc', { limit: 'abc' }, 'limit'],
    ['limit=1.5', { limit: '1.5' }, 'limit'],
    ['an unknown parameter', { sort: 'price' }, 'sort'],
  ])('answers 400 validation_failed for %s', async (_, params: Record<string, string>, message) => {
    const error = await expectError(await call(`/v1/offers?${new URLSearchParams(params)}`), 400, 'validation_failed');
    expect(error.message).toContain(message);
  });

  it('answers 400, not 5xx, for a repeated q', async () => {
    await expectError(await call('/v1/offers?q=gpus>=1&q=gpus>=2'), 400, 'validation_failed');
  });

  it('names the offending clause in the error details too', async () => {
    const error = await expectError(await call(`/v1/offers?q=${encodeURIComponent('gpus>=1 cpu_cores>=lots')}`), 400, 'validation_failed');
    expect(error.details).toEqual([{ path: 'q', clause: 'cpu_cores>=lots', message: "cpu_cores value 'lots' is not a number (write decimals as 0.5)" }]);
  });
});
