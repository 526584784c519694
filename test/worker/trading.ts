// Helpers for tests that trade: nodes brought online through the real heartbeat pipeline,
// order bodies, and placing orders.
import { env } from 'cloudflare:workers';
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { expect } from 'vitest';
import { eq } from 'drizzle-orm';
import { leases, orders } from '../../src/db/schema.ts';
import type { Collector } from '../../src/durable/collector.ts';
import { lease, type LeaseRecord } from '../../src/durable/lease.ts';
import type { Bindings } from '../../src/env.ts';
import { costUsd, type AskOrder, type BidOrder } from '../../src/market/orders.ts';
import { collectorName, heartbeatConfig, shardOf } from '../../src/heartbeats/config.ts';
import { balances, call, db, heartbeat, idem, json, machine, registerNode, type TestAccount } from './support.ts';

export const bindings = env as unknown as Bindings;
export const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function collectorOf(region: string, nodeId: string) {
  const { shards } = heartbeatConfig(bindings);
  return bindings.COLLECTOR.getByName(collectorName(region, shardOf(nodeId, shards)));
}

export const GPU_NAMES: Record<string, string> = {
  'h100-80gb': 'NVIDIA H100 80GB HBM3',
  'a100-80gb': 'NVIDIA A100-SXM4-80GB',
  'a100-40gb': 'NVIDIA A100-SXM4-40GB',
  'l40s-48gb': 'NVIDIA L40S',
  'l40-48gb': 'NVIDIA L40',
  'a6000-48gb': 'NVIDIA RTX A6000',
  'a10-24gb': 'NVIDIA A10',
  'l4-24gb': 'NVIDIA L4',
  'rtx-4090-24gb': 'NVIDIA GeForce RTX 4090',
  'rtx-3090-24gb': 'NVIDIA GeForce RTX 3090',
  't4-16gb': 'Tesla T4',
  'v100-32gb': 'Tesla V100-SXM2-32GB',
  'h200-141gb': 'NVIDIA H200',
  'rtx-4080-16gb': 'NVIDIA GeForce RTX 4080',
  'rtx-3080-10gb': 'NVIDIA GeForce RTX 3080',
  'v100-16gb': 'Tesla V100-SXM2-16GB',
  'rtx-6000-ada-48gb': 'NVIDIA RTX 6000 Ada Generation',
};

/** A node that has heartbeated through the real pipeline (Collector → queue → libSQL). */
export async function onlineNode(region: string, provider: TestAccount, model: string, count: number) {
  const memory = { 'a100-40gb': 40_960, 'l40s-48gb': 46_068, 'l40-48gb': 46_068, 'a6000-48gb': 49_140, 'a10-24gb': 23_028, 'l4-24gb': 23_034, 'rtx-4090-24gb': 24_564, 'rtx-3090-24gb': 24_576, 't4-16gb': 15_360, 'v100-32gb': 32_768, 'h200-141gb': 143_771, 'rtx-4080-16gb': 16_376, 'rtx-3080-10gb': 10_240, 'v100-16gb': 16_384, 'rtx-6000-ada-48gb': 49_140 }[model];
  const m = machine(Array.from({ length: count }, () => ({ name: GPU_NAMES[model]!, ...(memory ? { memory_mib: memory } : {}) })));
  const node = { ...(await registerNode(provider, m, region)), region };
  await beat(node, 1);
  return node;
}

/**
 * Flushes the node's Collector now. Test files share Durable Object instances but not their
 * storage, so a Collector may believe an alarm is set that this file's storage never had: when
 * no alarm ran, its alarm handler is called directly.
 */
export async function flush(region: string, nodeId: string): Promise<void> {
  const collector = collectorOf(region, nodeId);
  if (await runDurableObjectAlarm(collector)) return;
  await runInDurableObject(collector, (instance: Collector) => instance.alarm());
}

export async function beat(node: { nodeId: string; token: string; region?: string }, seq: number, extra: Record<string, unknown> = {}, region = node.region ?? 'us-east') {
  const res = await call('/v1/runner/heartbeats', { auth: node.token, body: heartbeat(node.nodeId, seq, extra) });
  expect(res.status).toBe(202);
  await flush(region, node.nodeId);
  return json(res);
}

export const workload = { image: 'ghcr.io/acme/train:1.4', command: ['python', 'train.py'], env: { EPOCHS: '3' }, ports: [8888] };

export function buy(region: string, model: string, o: Record<string, unknown> = {}) {
  return { side: 'buy', region, gpu_model: model, gpus: 2, price: '2.50', duration_s: 3600, pay_with: 'USD', workload, ...o };
}
export function sell(region: string, model: string, nodeId: string, o: Record<string, unknown> = {}) {
  return { side: 'sell', region, gpu_model: model, gpus: 2, price: '2.00', node_id: nodeId, ...o };
}

export async function place(account: TestAccount, body: unknown, headers: Record<string, string> = idem()) {
  return call('/v1/orders', { auth: account.apiKey, body, headers });
}

export async function placed(account: TestAccount, body: unknown) {
  const res = await place(account, body);
  if (res.status !== 201) throw new Error(`order: ${res.status} ${await res.text()}`);
  return json(res);
}


/** The escrow invariant for these renters: held = open bids' holds + live leases' unbilled cost. */
export async function expectEscrowBalanced(renters: TestAccount[]) {
  for (const r of renters) {
    const open = await db().select().from(orders).where(eq(orders.accountId, r.id));
    const live = await db().select().from(leases).where(eq(leases.renterId, r.id));
    const byAsset = new Map<string, bigint>();
    for (const o of open) if (o.side === 'buy' && o.status === 'open') byAsset.set(o.payWith!, (byAsset.get(o.payWith!) ?? 0n) + BigInt(o.holdAmount!));
    for (const l of live) {
      const rec = (await lease(bindings, l.id).get()) as LeaseRecord | null;
      if (rec?.steps.refunded) continue;
      byAsset.set(l.asset, (byAsset.get(l.asset) ?? 0n) + BigInt(l.amount) - BigInt(rec?.billed ?? '0'));
    }
    const bal = await balances(r);
    for (const asset of ['USD', 'USDC', 'GRID']) {
      const held = BigInt(Math.round(Number(bal[asset]?.held ?? '0') * 1_000_000));
      expect({ asset, held }).toEqual({ asset, held: byAsset.get(asset) ?? 0n });
    }
  }
}


/** An ask put straight into a book (no API, no node of record), on a node of its own. */
export function bookAsk(region: string, model: string, price: number, gpus: number, o: Partial<AskOrder> = {}): AskOrder {
  return {
    side: 'sell',
    id: `ask_${crypto.randomUUID()}`,
    accountId: 'acc_book_provider',
    nodeId: `node_${crypto.randomUUID()}`,
    region,
    gpuModel: model,
    gpus,
    price,
    minDurationS: 60,
    maxDurationS: 86_400,
    expiresAt: Date.now() + 86_400_000,
    reliability: 0.99,
    verified: true,
    nodeGpuIndices: Array.from({ length: gpus }, (_, i) => i),
    ...o,
  };
}

/** A bid put straight into a book that holds exactly what it costs at its own price, so a fill releases nothing. */
export function bookBid(region: string, model: string, price: number, gpus: number, durationS = 3600, o: Partial<BidOrder> = {}): BidOrder {
  return {
    side: 'buy',
    id: `bid_${crypto.randomUUID()}`,
    accountId: 'acc_book_renter',
    region,
    gpuModel: model,
    gpus,
    price,
    durationS,
    minReliability: 0,
    verifiedOnly: false,
    tif: 'gtc',
    expiresAt: Date.now() + 86_400_000,
    payWith: 'USD',
    holdAmount: costUsd(price, gpus, durationS).toString(),
    gridUsdRate: '250000',
    gridDiscountBps: '1000',
    workload: { image: 'busybox', command: [], env: {}, ports: [] },
    ...o,
  };
}
