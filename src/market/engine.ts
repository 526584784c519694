// The matching engine for one book (a region × GPU model). Pure: no Workers imports, no I/O,
// no clock (`now` is passed in); results are returned, never thrown.
//
// Asks offer some of one node's GPUs at a price per GPU-hour; bids want `gpus` GPUs on ONE
// node for `durationS` at most at a price. A bid therefore fills whole against one ask, and an
// ask is consumed bid by bid until its GPUs run out. Price-time priority on both sides; a
// trade executes at the resting order's price; orders from one account never trade together.
//
// Data layout: each side keeps its price levels in a sorted array of prices plus a map from
// price to a FIFO queue. Cancels and fills are O(1) marks (the queue is compacted lazily), so
// cost does not grow with the depth of a level.

export type Side = 'buy' | 'sell';
export type Tif = 'gtc' | 'ioc';

export interface AskInput {
  id: string;
  accountId: string;
  nodeId: string;
  gpus: number;
  /** Micro-units per GPU-hour. */
  price: number;
  minDurationS: number;
  maxDurationS: number;
  expiresAt: number;
  reliability: number;
  verified: boolean;
}

export interface BidInput {
  id: string;
  accountId: string;
  gpus: number;
  price: number;
  durationS: number;
  minReliability: number;
  verifiedOnly: boolean;
  tif: Tif;
  expiresAt: number;
}

export interface Trade {
  bidId: string;
  askId: string;
  buyerId: string;
  sellerId: string;
  nodeId: string;
  gpus: number;
  /** The resting order's price. */
  price: number;
  durationS: number;
  /** Which side was resting (the maker). */
  maker: Side;
  at: number;
}

interface RestingAsk extends AskInput {
  seq: number;
  free: number;
  live: boolean;
}

interface RestingBid extends BidInput {
  seq: number;
  live: boolean;
}

class Level<T extends { live: boolean }> {
  readonly orders: T[] = [];
  head = 0;
  live = 0;

  push(o: T): void {
    this.orders.push(o);
    this.live += 1;
  }

  /** Drops dead orders at the front, and compacts when most of the queue is dead. */
  tidy(): void {
    while (this.head < this.orders.length && !this.orders[this.head]!.live) this.head += 1;
    if (this.head > 32 && this.head * 2 > this.orders.length) {
      this.orders.splice(0, this.head);
      this.head = 0;
    }
  }
}

class SideBook<T extends { live: boolean; price: number }> {
  /** Prices sorted best first. */
  private readonly prices: number[] = [];
  private readonly levels = new Map<number, Level<T>>();
  private readonly better: (a: number, b: number) => boolean;

  constructor(better: (a: number, b: number) => boolean) {
    this.better = better;
  }

  add(o: T): void {
    let level = this.levels.get(o.price);
    if (!level) {
      level = new Level<T>();
      this.levels.set(o.price, level);
      // Binary search for the insertion point, best first.
      let lo = 0;
      let hi = this.prices.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.better(this.prices[mid]!, o.price)) lo = mid + 1;
        else hi = mid;
      }
      this.prices.splice(lo, 0, o.price);
    }
    level.push(o);
  }

  kill(o: T): void {
    if (!o.live) return;
    o.live = false;
    const level = this.levels.get(o.price)!;
    level.live -= 1;
    if (level.live === 0) this.dropLevel(o.price);
  }

  private dropLevel(price: number): void {
    this.levels.delete(price);
    const i = this.prices.indexOf(price);
    if (i >= 0) this.prices.splice(i, 1);
  }

  /** Live orders in priority order while `acceptPrice(price)` holds. */
  *walk(acceptPrice: (price: number) => boolean): Generator<T> {
    for (let i = 0; i < this.prices.length; i++) {
      const price = this.prices[i]!;
      if (!acceptPrice(price)) return;
      const level = this.levels.get(price)!;
      level.tidy();
      const end = level.orders.length;
      for (let j = level.head; j < end; j++) {
        const o = level.orders[j]!;
        if (o.live) yield o;
        // A level emptied while walking was removed from `prices`: step back to stay in place.
        if (!this.levels.has(price)) {
          i -= 1;
          break;
        }
      }
    }
  }

  best(): number | null {
    return this.prices[0] ?? null;
  }

  /** Aggregated depth: [price, total] per level, best first. */
  depth(size: (o: T) => number, limit: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (const price of this.prices) {
      if (out.length >= limit) break;
      const level = this.levels.get(price)!;
      let total = 0;
      for (let j = level.head; j < level.orders.length; j++) if (level.orders[j]!.live) total += size(level.orders[j]!);
      if (total > 0) out.push([price, total]);
    }
    return out;
  }
}

export type SubmitResult =
  | { ok: true; trades: Trade[]; resting: boolean; remainingGpus: number }
  | { ok: false; reason: 'duplicate_id' | 'invalid' };

export class OrderBook {
  private seq = 0;
  private readonly asks = new SideBook<RestingAsk>((a, b) => a <= b);
  private readonly bids = new SideBook<RestingBid>((a, b) => a >= b);
  private readonly askById = new Map<string, RestingAsk>();
  private readonly bidById = new Map<string, RestingBid>();
  /** Nodes that are offline: their asks rest but do not match. */
  private readonly offlineNodes = new Set<string>();

  private static askFits(ask: RestingAsk, bid: BidInput, now: number, offline: Set<string>): boolean {
    return (
      ask.accountId !== bid.accountId &&
      ask.free >= bid.gpus &&
      bid.durationS >= ask.minDurationS &&
      bid.durationS <= ask.maxDurationS &&
      ask.reliability >= bid.minReliability &&
      (!bid.verifiedOnly || ask.verified) &&
      ask.expiresAt > now &&
      !offline.has(ask.nodeId)
    );
  }

  submitBid(input: BidInput, now: number): SubmitResult {
    if (this.bidById.has(input.id) || this.askById.has(input.id)) return { ok: false, reason: 'duplicate_id' };
    if (!(input.gpus > 0) || !(input.price > 0) || !(input.durationS > 0)) return { ok: false, reason: 'invalid' };
    for (const ask of this.asks.walk((p) => p <= input.price)) {
      if (ask.expiresAt <= now) {
        this.removeAsk(ask);
        continue;
      }
      if (!OrderBook.askFits(ask, input, now, this.offlineNodes)) continue;
      const trade = this.fill(ask, input, ask.price, 'sell', now);
      return { ok: true, trades: [trade], resting: false, remainingGpus: 0 };
    }
    if (input.tif === 'ioc' || input.expiresAt <= now) return { ok: true, trades: [], resting: false, remainingGpus: input.gpus };
    const resting: RestingBid = { ...input, seq: ++this.seq, live: true };
    this.bids.add(resting);
    this.bidById.set(resting.id, resting);
    return { ok: true, trades: [], resting: true, remainingGpus: input.gpus };
  }

  submitAsk(input: AskInput, now: number): SubmitResult {
    if (this.bidById.has(input.id) || this.askById.has(input.id)) return { ok: false, reason: 'duplicate_id' };
    if (!(input.gpus > 0) || !(input.price > 0) || input.minDurationS > input.maxDurationS) return { ok: false, reason: 'invalid' };
    const ask: RestingAsk = { ...input, seq: ++this.seq, free: input.gpus, live: true };
    const trades: Trade[] = [];
    if (input.expiresAt > now && !this.offlineNodes.has(input.nodeId)) {
      for (const bid of this.bids.walk((p) => p >= input.price)) {
        if (ask.free === 0) break;
        if (bid.expiresAt <= now) {
          this.removeBid(bid);
          continue;
        }
        if (!OrderBook.askFits(ask, bid, now, this.offlineNodes)) continue;
        trades.push(this.fill(ask, bid, bid.price, 'buy', now));
      }
    }
    const rests = ask.free > 0 && input.expiresAt > now;
    if (rests) {
      this.asks.add(ask);
      this.askById.set(ask.id, ask);
    }
    return { ok: true, trades, resting: rests, remainingGpus: ask.free };
  }

  private fill(ask: RestingAsk, bid: BidInput, price: number, maker: Side, now: number): Trade {
    ask.free -= bid.gpus;
    if (ask.free === 0 && this.askById.has(ask.id)) this.removeAsk(ask);
    const resting = this.bidById.get(bid.id);
    if (resting) this.removeBid(resting);
    return {
      bidId: bid.id,
      askId: ask.id,
      buyerId: bid.accountId,
      sellerId: ask.accountId,
      nodeId: ask.nodeId,
      gpus: bid.gpus,
      price,
      durationS: bid.durationS,
      maker,
      at: now,
    };
  }

  private removeAsk(ask: RestingAsk): void {
    this.asks.kill(ask);
    this.askById.delete(ask.id);
  }

  private removeBid(bid: RestingBid): void {
    this.bids.kill(bid);
    this.bidById.delete(bid.id);
  }

  /** Cancels a resting order; false when it is not resting (filled, expired or unknown). */
  cancel(id: string): boolean {
    const ask = this.askById.get(id);
    if (ask) {
      this.removeAsk(ask);
      return true;
    }
    const bid = this.bidById.get(id);
    if (bid) {
      this.removeBid(bid);
      return true;
    }
    return false;
  }

  /** GPUs returned to an ask (a lease ended early or failed); revives it if it had run out. */
  restoreGpus(askId: string, gpus: number, original: AskInput, now: number): void {
    const live = this.askById.get(askId);
    if (live) {
      live.free = Math.min(live.gpus, live.free + gpus);
      return;
    }
    if (original.expiresAt <= now) return;
    const ask: RestingAsk = { ...original, seq: ++this.seq, free: Math.min(original.gpus, gpus), live: true };
    this.asks.add(ask);
    this.askById.set(ask.id, ask);
  }

  /** Removes orders whose expiry has passed; returns their ids. */
  expire(now: number): string[] {
    const gone: string[] = [];
    for (const ask of [...this.askById.values()]) if (ask.expiresAt <= now) (this.removeAsk(ask), gone.push(ask.id));
    for (const bid of [...this.bidById.values()]) if (bid.expiresAt <= now) (this.removeBid(bid), gone.push(bid.id));
    return gone;
  }

  setNodeOnline(nodeId: string, online: boolean): void {
    if (online) this.offlineNodes.delete(nodeId);
    else this.offlineNodes.add(nodeId);
  }

  /** The earliest expiry among resting orders, for the book's alarm. */
  nextExpiry(): number | null {
    let next: number | null = null;
    for (const o of this.askById.values()) if (next === null || o.expiresAt < next) next = o.expiresAt;
    for (const o of this.bidById.values()) if (next === null || o.expiresAt < next) next = o.expiresAt;
    return next;
  }

  bestBid(): number | null {
    return this.bids.best();
  }

  bestAsk(): number | null {
    return this.asks.best();
  }

  /** Depth by price level in GPUs: no account or node ids. */
  depth(levels = 20): { bids: Array<[number, number]>; asks: Array<[number, number]> } {
    return { bids: this.bids.depth((b) => b.gpus, levels), asks: this.asks.depth((a) => a.free, levels) };
  }

  resting(id: string): { side: Side; freeGpus: number } | null {
    const ask = this.askById.get(id);
    if (ask) return { side: 'sell', freeGpus: ask.free };
    const bid = this.bidById.get(id);
    if (bid) return { side: 'buy', freeGpus: bid.gpus };
    return null;
  }

  get size(): number {
    return this.askById.size + this.bidById.size;
  }
}
