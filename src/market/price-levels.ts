// One side of a book's price levels, for the matching engine (engine.ts). Pure: no I/O.
//
// Each side keeps its price levels in a sorted array (best first) plus a map from price to a
// FIFO queue. Cancels and fills are O(1) marks (the queue is compacted lazily), so cost does not
// grow with the depth of a level. Each level and each side also keeps a small histogram of its
// orders by size, so a match skips levels where nothing can fit.

export interface Resting {
  live: boolean;
  price: number;
  bucket: number;
}

// Size histograms. A bid fits only an ask with `free >= bid.gpus`, so without help an order
// that nothing on the other side can fit (1 free GPU facing 2-GPU bids, a 4-GPU bid facing
// nearly-drained asks) walks the whole side. Each level and each side therefore counts its
// live orders by size bucket (asks by free GPUs, bids by GPUs) and keeps a bitmask of the
// non-empty buckets, so a walk skips a level, or the whole side, with one AND.
// Bucket = floor(size), clamped to 31: exact up to 30 GPUs, and for bigger orders the mask
// only over-approximates (the per-order checks still decide), so it never hides a fit.
const TOP = 31;
export const bucketOf = (size: number): number => (size >= TOP ? TOP : Math.floor(size));
/** Buckets that may hold an ask with `free >= gpus`. */
export const asksFitting = (gpus: number): number => ~0 << bucketOf(gpus);
/** Buckets that may hold a bid with `gpus <= free`. */
export const bidsFitting = (free: number): number => {
  const b = bucketOf(free);
  return b >= TOP ? ~0 : (1 << (b + 1)) - 1;
};

export class Level<T extends Resting> {
  /** FIFO in time priority; dead (cancelled, filled) orders stay until tidied. */
  readonly orders: T[] = [];
  head = 0;
  live = 0;
  readonly counts = new Int32Array(TOP + 1);
  mask = 0;

  /**
   * Skips dead orders at the front, and drops dead ones elsewhere once they outnumber the
   * live ones (amortised O(1)). Only called when no walk is iterating `orders`.
   */
  tidy(): void {
    while (this.head < this.orders.length && !this.orders[this.head]!.live) this.head += 1;
    const dead = this.orders.length - this.live;
    if (dead > 16 && dead > this.live) {
      let k = 0;
      for (let j = this.head; j < this.orders.length; j++) if (this.orders[j]!.live) this.orders[k++] = this.orders[j]!;
      this.orders.length = k;
      this.head = 0;
    }
  }
}

/**
 * One side's price levels: `prices` sorted best first with `levels` in parallel (walked by
 * index by the matcher), plus a map from price to level for adds and removals.
 */
export class SideBook<T extends Resting> {
  readonly prices: number[] = [];
  readonly levels: Array<Level<T>> = [];
  private readonly byPrice = new Map<number, Level<T>>();
  /** Side-wide histogram, so a walk that nothing can satisfy is skipped outright. */
  private readonly counts = new Int32Array(TOP + 1);
  mask = 0;

  /** Asks are best when lowest, bids when highest. */
  private readonly ascending: boolean;

  constructor(ascending: boolean) {
    this.ascending = ascending;
  }

  /** Where `price` is or would go in `prices` (binary search, best first). */
  private slot(price: number): number {
    let lo = 0;
    let hi = this.prices.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const p = this.prices[mid]!;
      if (this.ascending ? p < price : p > price) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  add(o: T, size: number): void {
    let level = this.byPrice.get(o.price);
    if (!level) {
      level = new Level<T>();
      this.byPrice.set(o.price, level);
      const i = this.slot(o.price);
      this.prices.splice(i, 0, o.price);
      this.levels.splice(i, 0, level);
    } else level.tidy();
    level.orders.push(o);
    level.live += 1;
    o.bucket = bucketOf(size);
    this.count(level, o.bucket, 1);
  }

  /**
   * Adds many orders at once, in time order (a restart): new levels are sorted in once at the
   * end, not spliced in one by one, which would cost O(levels) each (a book spammed with
   * orders at distinct prices would take seconds to start).
   */
  addMany(orders: ReadonlyArray<readonly [T, number]>): void {
    let created = false;
    for (const [o, size] of orders) {
      let level = this.byPrice.get(o.price);
      if (!level) {
        level = new Level<T>();
        this.byPrice.set(o.price, level);
        created = true;
      }
      level.orders.push(o);
      level.live += 1;
      o.bucket = bucketOf(size);
      this.count(level, o.bucket, 1);
    }
    if (!created) return;
    const prices = [...this.byPrice.keys()].sort((a, b) => (this.ascending ? a - b : b - a));
    this.prices.length = 0;
    this.levels.length = 0;
    for (const p of prices) {
      this.prices.push(p);
      this.levels.push(this.byPrice.get(p)!);
    }
  }

  /** Marks `o` dead; its level goes when its last live order does. Safe during a walk. */
  kill(o: T): void {
    if (!o.live) return;
    o.live = false;
    const level = this.byPrice.get(o.price)!;
    level.live -= 1;
    this.count(level, o.bucket, -1);
    if (level.live === 0) {
      this.byPrice.delete(o.price);
      const i = this.slot(o.price);
      this.prices.splice(i, 1);
      this.levels.splice(i, 1);
    }
  }

  /** A live order's size changed (an ask partly filled or given GPUs back). */
  resize(o: T, size: number): void {
    const b = bucketOf(size);
    if (!o.live || b === o.bucket) return;
    const level = this.byPrice.get(o.price)!;
    this.count(level, o.bucket, -1);
    this.count(level, b, 1);
    o.bucket = b;
  }

  private count(level: Level<T>, b: number, d: number): void {
    level.counts[b]! += d;
    if (level.counts[b] === 0) level.mask &= ~(1 << b);
    else level.mask |= 1 << b;
    this.counts[b]! += d;
    if (this.counts[b] === 0) this.mask &= ~(1 << b);
    else this.mask |= 1 << b;
  }

  best(): number | null {
    return this.prices[0] ?? null;
  }

  /** Live orders in matching order (best price first, then time), by `idOf`. */
  queue(idOf: (o: T) => string): string[] {
    const out: string[] = [];
    for (const level of this.levels) for (let j = level.head; j < level.orders.length; j++) if (level.orders[j]!.live) out.push(idOf(level.orders[j]!));
    return out;
  }

  /** Aggregated depth: [price, total] per level, best first. */
  depth(size: (o: T) => number, limit: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = 0; i < this.levels.length && out.length < limit; i++) {
      const level = this.levels[i]!;
      let total = 0;
      for (let j = level.head; j < level.orders.length; j++) if (level.orders[j]!.live) total += size(level.orders[j]!);
      if (total > 0) out.push([this.prices[i]!, total]);
    }
    return out;
  }
}
