// Orders as the RegionBook keeps them, and the money arithmetic of a fill. Pure: no Workers
// imports, no I/O, no clock.
//
// A bid holds its maximum cost (limit price × GPUs × duration) in the asset it pays with, at
// the GRID rate and discount in force when it was placed; the rate travels with the order, so
// a fill can never need more than was held. A fill costs the trade price × GPUs × duration in
// that asset; the difference (the price improvement) is released at once.
import type { Workload } from '../contracts/runner.ts';
import type { AskInput, BidInput, Trade } from './engine.ts';
import type { Asset } from '../money/assets.ts';
import { ceilDiv, quote, type PricingConfig } from '../money/quote.ts';

const SECONDS_PER_HOUR = 3600n;

export interface BookRef {
  region: string;
  gpuModel: string;
}

export interface AskOrder extends AskInput, BookRef {
  side: 'sell';
  /** The node's GPU indices of this model: what a fill may be given. */
  nodeGpuIndices: number[];
}

export interface BidOrder extends BidInput, BookRef {
  side: 'buy';
  payWith: Asset;
  /** Micro-units of `payWith` held in escrow (decimal string: JSON has no bigint). */
  holdAmount: string;
  /** The GRID rate and discount the hold was computed with (decimal strings). */
  gridUsdRate: string;
  gridDiscountBps: string;
  workload: Workload;
}

export type BookOrder = AskOrder | BidOrder;

/** Micro-USD for `gpus` GPUs at `price` micro-USD per GPU-hour for `durationS`, rounded up. */
export function costUsd(price: number | bigint, gpus: number, durationS: number): bigint {
  return ceilDiv(BigInt(price) * BigInt(gpus) * BigInt(durationS), SECONDS_PER_HOUR);
}

/** The most a bid can cost, in the asset it pays with: what is held when it is placed. */
export function maxCost(bid: { price: number; gpus: number; durationS: number; payWith: Asset }, pricing: PricingConfig): bigint {
  return quote(costUsd(bid.price, bid.gpus, bid.durationS), bid.payWith, pricing);
}

export function pricingOf(bid: BidOrder): PricingConfig {
  return { gridUsdRate: BigInt(bid.gridUsdRate), gridDiscountBps: BigInt(bid.gridDiscountBps) };
}

/** What a lease from this fill costs, in the bid's asset, at the bid's locked rate. */
export function fillCost(bid: BidOrder, tradePrice: number): bigint {
  return quote(costUsd(tradePrice, bid.gpus, bid.durationS), bid.payWith, pricingOf(bid));
}

/** Everything a Lease object is created with; deterministic for one fill. */
export interface LeaseTerms {
  leaseId: string;
  tradeId: string;
  bidId: string;
  askId: string;
  renterId: string;
  providerId: string;
  nodeId: string;
  region: string;
  gpuModel: string;
  gpus: number;
  gpuIndices: number[];
  /** Micro-USD per GPU-hour. */
  price: number;
  durationS: number;
  asset: Asset;
  /** The lease's cost in `asset` (decimal string), which stays held for it. */
  amount: string;
  /** Released from the bid's hold at the fill (decimal string; "0" when none). */
  improvement: string;
  /** The GRID rate and discount the bid locked (decimal strings), for billing in GRID. */
  gridUsdRate: string;
  gridDiscountBps: string;
  /** The ask's longest duration, the bound on extensions. */
  maxDurationS: number;
  workload: Workload;
  createdAt: number;
}

export function leaseIdOf(tradeId: string): string {
  return `lse_${tradeId.slice(4)}`;
}

export function leaseTerms(trade: Trade & { id: string }, bid: BidOrder, ask: AskOrder, gpuIndices: number[]): LeaseTerms {
  const amount = fillCost(bid, trade.price);
  const improvement = BigInt(bid.holdAmount) - amount;
  if (improvement < 0n) throw new Error(`fill ${trade.id} would cost more than its bid holds`);
  return {
    leaseId: leaseIdOf(trade.id),
    tradeId: trade.id,
    bidId: bid.id,
    askId: ask.id,
    renterId: bid.accountId,
    providerId: ask.accountId,
    nodeId: ask.nodeId,
    region: ask.region,
    gpuModel: ask.gpuModel,
    gpus: trade.gpus,
    gpuIndices,
    price: trade.price,
    durationS: trade.durationS,
    asset: bid.payWith,
    amount: amount.toString(),
    improvement: improvement.toString(),
    gridUsdRate: bid.gridUsdRate,
    gridDiscountBps: bid.gridDiscountBps,
    maxDurationS: ask.maxDurationS,
    workload: bid.workload,
    createdAt: trade.at,
  };
}

/** The lowest `count` indices of `all` not in `busy`, or null when there are not enough. */
export function allocateGpus(all: readonly number[], busy: ReadonlySet<number>, count: number): number[] | null {
  const free = [...all].sort((a, b) => a - b).filter((i) => !busy.has(i));
  return free.length >= count ? free.slice(0, count) : null;
}
