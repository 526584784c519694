// The matching engine for one book (a region × GPU model). Pure: no Workers imports, no I/O,
// no clock (`now` is passed in); results are returned, never thrown.
//
// Asks offer some of one node's GPUs at a price per GPU-hour; bids want `gpus` GPUs on ONE
// node for `durationS` at most at a price. A bid therefore fills whole against one ask, and an
// ask is consumed bid by bid until its GPUs run out. Price-time priority on both sides; a
// trade executes at the resting order's price; orders from one account never trade together.
//
// Data layout: each side's price levels, best first, with FIFO queues and size histograms
// (price-levels.ts). Expired orders are removed lazily when a match walks past them, and in
// full by `expire`.
import { SideBook, asksFitting, bidsFitting } from './price-levels.ts';

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

/** What a node is trusted with now: bids' `min_reliability` and `verified_only` match on it. */
export interface NodeTrust {
  reliability: number;
  verified: boolean;
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
  /** Size bucket of `free`, as counted in its level's histogram. */
  bucket: number;
}

interface RestingBid extends BidInput {
  seq: number;
  live: boolean;
  /** Size bucket of `gpus`, as counted in its level's histogram. */
  bucket: number;
}

// Resting orders are built field by field rather than spread from the input: one fixed shape
// per side keeps property access monomorphic, and spreading was a visible cost per order.
const restingAsk = (a: AskInput, seq: number, free: number): RestingAsk => ({
  id: a.id,
  accountId: a.accountId,
  nodeId: a.nodeId,
  gpus: a.gpus,
  price: a.price,
  minDurationS: a.minDurationS,
  maxDurationS: a.maxDurationS,
  expiresAt: a.expiresAt,
  reliability: a.reliability,
  verified: a.verified,
  seq,
  free,
  live: true,
  bucket: 0,
});

const restingBid = (b: BidInput, seq: number): RestingBid => ({
  id: b.id,
  accountId: b.accountId,
  gpus: b.gpus,
  price: b.price,
  durationS: b.durationS,
  minReliability: b.minReliability,
  verifiedOnly: b.verifiedOnly,
  tif: b.tif,
  expiresAt: b.expiresAt,
  seq,
  live: true,
  bucket: 0,
});

/**
 * An order resting before a restart. `priority` is its place in the time queue as `priorityOf`
 * gave it (orders restore in that order, and new ones queue behind the highest); without it,
 * orders queue in the order given.
 */
export type RestoredOrder = ({ side: 'sell'; input: AskInput; freeGpus: number } | { side: 'buy'; input: BidInput }) & { priority?: number | null };

export type SubmitResult =
  | { ok: true; trades: Trade[]; resting: boolean; remainingGpus: number }
  | { ok: false; reason: 'duplicate_id' | 'invalid' };

export class OrderBook {
  private seq = 0;
  private readonly asks = new SideBook<RestingAsk>(true);
  private readonly bids = new SideBook<RestingBid>(false);
  private readonly askById = new Map<string, RestingAsk>();
  private readonly bidById = new Map<string, RestingBid>();
  /** Nodes that are offline: their asks rest but do not match. */
  private readonly offlineNodes = new Set<string>();
  /**
   * Nodes' current trust, as last told: it overrides what an ask carried when placed, so a node
   * whose reliability fell no longer matches bids that ask for more.
   */
  private readonly nodeTrust = new Map<string, NodeTrust>();
  private lazilyExpired: string[] = [];
  /** Asks that went to the back of their queue (requeue) since the last `takeRequeued`. */
  private requeued: string[] = [];

  private static askFits(ask: RestingAsk, bid: BidInput, now: number, offline: Set<string>): boolean {
    return (
      ask.free >= bid.gpus &&
      ask.accountId !== bid.accountId &&
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
    const trade = this.matchBid(input, now);
    if (trade) return { ok: true, trades: [trade], resting: false, remainingGpus: 0 };
    if (input.tif === 'ioc' || input.expiresAt <= now) return { ok: true, trades: [], resting: false, remainingGpus: input.gpus };
    const resting = restingBid(input, ++this.seq);
    this.bids.add(resting, resting.gpus);
    this.bidById.set(resting.id, resting);
    return { ok: true, trades: [], resting: true, remainingGpus: input.gpus };
  }

  submitAsk(input: AskInput, now: number): SubmitResult {
    if (this.bidById.has(input.id) || this.askById.has(input.id)) return { ok: false, reason: 'duplicate_id' };
    if (!(input.gpus > 0) || !(input.price > 0) || input.minDurationS > input.maxDurationS) return { ok: false, reason: 'invalid' };
    const ask = this.trusted(restingAsk(input, ++this.seq, input.gpus));
    const trades: Trade[] = [];
    if (input.expiresAt > now && !this.offlineNodes.has(input.nodeId)) this.matchAsk(ask, now, trades);
    const rests = ask.free > 0 && input.expiresAt > now;
    if (rests) {
      this.asks.add(ask, ask.free);
      this.askById.set(ask.id, ask);
    }
    return { ok: true, trades, resting: rests, remainingGpus: ask.free };
  }

  // The two walks below visit the other side best price first, each level in time order, and
  // skip any level (or stop outright) when its histogram says no order there has a fitting
  // size. Filling or expiring an order may empty its level, which then leaves `levels`, and
  // the next level moves into the same index: hence `if (level.live > 0) i += 1`. Levels are
  // only tidied before being walked, never while, so the indices into `orders` stay valid.

  /** Fills an incoming bid against the first ask, in price-time order, that can take it whole. */
  private matchBid(bid: BidInput, now: number): Trade | null {
    const side = this.asks;
    const fitting = asksFitting(bid.gpus);
    let i = 0;
    while ((side.mask & fitting) !== 0 && i < side.prices.length && side.prices[i]! <= bid.price) {
      const level = side.levels[i]!;
      if ((level.mask & fitting) !== 0) {
        level.tidy();
        for (let j = level.head; j < level.orders.length && (level.mask & fitting) !== 0; j++) {
          const ask = level.orders[j]!;
          if (!ask.live || ask.free < bid.gpus) continue;
          if (ask.expiresAt <= now) this.expireLazily(ask, this.askById);
          else if (OrderBook.askFits(ask, bid, now, this.offlineNodes)) return this.fill(ask, bid, 'sell', now);
        }
      }
      if (level.live > 0) i += 1;
    }
    return null;
  }

  /** Fills bids, in price-time order, from an incoming ask until it runs out or none fits. */
  private matchAsk(ask: RestingAsk, now: number, trades: Trade[]): void {
    const side = this.bids;
    let fitting = bidsFitting(ask.free);
    let i = 0;
    while (ask.free > 0 && (side.mask & fitting) !== 0 && i < side.prices.length && side.prices[i]! >= ask.price) {
      const level = side.levels[i]!;
      if ((level.mask & fitting) !== 0) {
        level.tidy();
        for (let j = level.head; j < level.orders.length && ask.free > 0 && (level.mask & fitting) !== 0; j++) {
          const bid = level.orders[j]!;
          if (!bid.live || bid.gpus > ask.free) continue;
          if (bid.expiresAt <= now) this.expireLazily(bid, this.bidById);
          else if (OrderBook.askFits(ask, bid, now, this.offlineNodes)) {
            trades.push(this.fill(ask, bid, 'buy', now));
            fitting = bidsFitting(ask.free); // fewer GPUs left: fewer bids can fit
          }
        }
      }
      if (level.live > 0) i += 1;
    }
  }

  /** `maker` is the resting side: it sets the price, and its order is updated or taken off. */
  private fill(ask: RestingAsk, bid: BidInput, maker: Side, now: number): Trade {
    ask.free -= bid.gpus;
    if (maker === 'sell') {
      if (ask.free === 0) this.removeAsk(ask);
      else this.asks.resize(ask, ask.free);
    } else this.removeBid(bid as RestingBid);
    return {
      bidId: bid.id,
      askId: ask.id,
      buyerId: bid.accountId,
      sellerId: ask.accountId,
      nodeId: ask.nodeId,
      gpus: bid.gpus,
      price: maker === 'sell' ? ask.price : bid.price,
      durationS: bid.durationS,
      maker,
      at: now,
    };
  }

  /** An order a match walked past after its expiry: removed now, reported by `takeExpired`. */
  private expireLazily(o: RestingAsk | RestingBid, byId: Map<string, RestingAsk> | Map<string, RestingBid>): void {
    if (byId === this.askById) this.removeAsk(o as RestingAsk);
    else this.removeBid(o as RestingBid);
    this.lazilyExpired.push(o.id);
  }

  /**
   * Ids of orders removed because a match found them expired, since the last call. The shell
   * must treat them exactly like those `expire` returns (release a bid's funds, and so on).
   */
  takeExpired(): string[] {
    const ids = this.lazilyExpired;
    this.lazilyExpired = [];
    return ids;
  }

  /**
   * Ids of asks that moved to the back of their price's queue (a node back online or more
   * trusted, GPUs returned) since the last call. The shell stores their new `priorityOf`, so a
   * restart queues them where they are now.
   */
  takeRequeued(): string[] {
    const ids = this.requeued;
    this.requeued = [];
    return ids;
  }

  /** A resting order's place in time priority (higher is later); null when it is not resting. */
  priorityOf(id: string): number | null {
    return (this.askById.get(id) ?? this.bidById.get(id))?.seq ?? null;
  }

  /** Resting order ids in matching order: best price first, then time. */
  queueOrder(): { bids: string[]; asks: string[] } {
    return { bids: this.bids.queue((b) => b.id), asks: this.asks.queue((a) => a.id) };
  }

  private nextSeq(priority: number | null | undefined): number {
    if (priority === undefined || priority === null) return ++this.seq;
    this.seq = Math.max(this.seq, priority);
    return priority;
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

  /**
   * Puts back an order that was resting before a restart, in its original time order and
   * without matching it: it did not match then, and the book must not change by reloading.
   */
  restore(order: RestoredOrder): void {
    if (this.askById.has(order.input.id) || this.bidById.has(order.input.id)) return;
    if (order.side === 'sell') {
      const ask = this.trusted(restingAsk(order.input, this.nextSeq(order.priority), order.freeGpus));
      this.asks.add(ask, ask.free);
      this.askById.set(ask.id, ask);
    } else {
      const bid = restingBid(order.input, this.nextSeq(order.priority));
      this.bids.add(bid, bid.gpus);
      this.bidById.set(bid.id, bid);
    }
  }

  /** Puts back every order resting before a restart, oldest first, as `restore` would one by one. */
  restoreAll(orders: Iterable<RestoredOrder>): void {
    const asks: Array<readonly [RestingAsk, number]> = [];
    const bids: Array<readonly [RestingBid, number]> = [];
    for (const order of orders) {
      if (this.askById.has(order.input.id) || this.bidById.has(order.input.id)) continue;
      if (order.side === 'sell') {
        const ask = this.trusted(restingAsk(order.input, this.nextSeq(order.priority), order.freeGpus));
        asks.push([ask, ask.free]);
        this.askById.set(ask.id, ask);
      } else {
        const bid = restingBid(order.input, this.nextSeq(order.priority));
        bids.push([bid, bid.gpus]);
        this.bidById.set(bid.id, bid);
      }
    }
    this.asks.addMany(asks);
    this.bids.addMany(bids);
  }

  /** GPUs returned to an ask (a lease ended early or failed); revives it if it had run out. */
  restoreGpus(askId: string, gpus: number, original: AskInput, now: number): void {
    const live = this.askById.get(askId);
    if (live) {
      live.free = Math.min(live.gpus, live.free + gpus);
      this.asks.resize(live, live.free);
      return;
    }
    if (original.expiresAt <= now) return;
    const ask = this.trusted(restingAsk(original, ++this.seq, Math.min(original.gpus, gpus)));
    this.asks.add(ask, ask.free);
    this.askById.set(ask.id, ask);
  }

  /** Removes orders whose expiry has passed; returns their ids. */
  expire(now: number): string[] {
    const gone: string[] = [];
    for (const ask of [...this.askById.values()]) if (ask.expiresAt <= now) (this.removeAsk(ask), gone.push(ask.id));
    for (const bid of [...this.bidById.values()]) if (bid.expiresAt <= now) (this.removeBid(bid), gone.push(bid.id));
    return gone;
  }

  /**
   * Marks a node offline (its asks rest but do not match) or back online. A node coming back
   * matches its asks against the resting bids at once, like new asks: each re-queues behind
   * the orders at its price that stayed available meanwhile. Returns the trades.
   */
  setNodeOnline(nodeId: string, online: boolean, now: number): Trade[] {
    if (!online) {
      this.offlineNodes.add(nodeId);
      return [];
    }
    if (!this.offlineNodes.delete(nodeId)) return [];
    const trades: Trade[] = [];
    for (const ask of [...this.askById.values()]) if (ask.nodeId === nodeId) this.requeue(ask, now, trades);
    return trades;
  }

  /** A new resting ask with its node's current trust, where the book has been told it. */
  private trusted(ask: RestingAsk): RestingAsk {
    const trust = this.nodeTrust.get(ask.nodeId);
    if (trust) {
      ask.reliability = trust.reliability;
      ask.verified = trust.verified;
    }
    return ask;
  }

  /**
   * A node's current reliability and verification: its asks match on these from now on. Where
   * the node became more trusted, its asks re-queue (like a returning node's) and match the
   * bids that now accept them; returns those trades.
   */
  setNodeTrust(nodeId: string, trust: NodeTrust, now: number): Trade[] {
    const before = this.nodeTrust.get(nodeId);
    this.nodeTrust.set(nodeId, { reliability: trust.reliability, verified: trust.verified });
    const trades: Trade[] = [];
    for (const ask of [...this.askById.values()]) {
      if (ask.nodeId !== nodeId) continue;
      const gained = trust.reliability > (before?.reliability ?? ask.reliability) || (trust.verified && !(before?.verified ?? ask.verified));
      ask.reliability = trust.reliability;
      ask.verified = trust.verified;
      if (gained) this.requeue(ask, now, trades);
    }
    return trades;
  }

  /** Takes a resting ask out and offers it again, matching the bids that now fit it. */
  private requeue(ask: RestingAsk, now: number, trades: Trade[]): void {
    this.removeAsk(ask);
    if (ask.expiresAt <= now) {
      this.lazilyExpired.push(ask.id);
      return;
    }
    const again = restingAsk(ask, ++this.seq, ask.free);
    if (!this.offlineNodes.has(ask.nodeId)) this.matchAsk(again, now, trades);
    if (again.free > 0) {
      this.asks.add(again, again.free);
      this.askById.set(again.id, again);
      this.requeued.push(again.id);
    }
  }

  /**
   * GPUs returned to an ask (its lease ended) and matched at once against the waiting bids,
   * which may fit it now; like a returning node, the ask re-queues at its price.
   */
  returnGpus(askId: string, gpus: number, original: AskInput, now: number): Trade[] {
    this.restoreGpus(askId, gpus, original, now);
    const ask = this.askById.get(askId);
    const trades: Trade[] = [];
    if (ask) this.requeue(ask, now, trades);
    return trades;
  }

  /** The node's trust as last told, if the book was told any. */
  trustOf(nodeId: string): NodeTrust | undefined {
    return this.nodeTrust.get(nodeId);
  }

  isNodeOnline(nodeId: string): boolean {
    return !this.offlineNodes.has(nodeId);
  }

  /** Resting asks (free GPUs, not expired by `now`), for offer search. */
  openAsks(now: number): Array<AskInput & { freeGpus: number; online: boolean }> {
    const out: Array<AskInput & { freeGpus: number; online: boolean }> = [];
    for (const a of this.askById.values()) {
      if (a.expiresAt <= now || a.free <= 0) continue;
      out.push({
        id: a.id, accountId: a.accountId, nodeId: a.nodeId, gpus: a.gpus, price: a.price, minDurationS: a.minDurationS,
        maxDurationS: a.maxDurationS, expiresAt: a.expiresAt, reliability: a.reliability, verified: a.verified,
        freeGpus: a.free, online: !this.offlineNodes.has(a.nodeId),
      });
    }
    return out;
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
