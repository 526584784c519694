// RegionBook: one per region × GPU model. A thin shell around the pure matching engine
// (src/market/engine.ts): every accepted order and every trade is written to this object's
// SQLite storage in the same synchronous transaction as the match, and the in-memory book is
// rebuilt from the open orders on start, so an evicted or restarted book loses nothing.
//
// What a match means elsewhere (a Lease object for each fill, an order's new status and the
// release of its escrow in libSQL) goes through an outbox written in that same transaction:
// it is carried out at once, and retried by alarm until it succeeds. Every step is idempotent
// (lease ids come from trade ids, ledger keys from order ids), so a retry never doubles one.
//
// Storage: see book-storage.ts. The outbox: book-outbox.ts. A resting bid's workload is kept
// apart from what the book rebuilds on start, and read only when a trade creates its lease.
//
// What the book knows of each node it holds asks or leases for (online or not, its current
// reliability and verification) is pushed to it: `setNodes` from heartbeat batches, and
// `setNodeTrust` from src/nodes/trust.ts whenever a node's trust changes.
//
// Live market stream: the book accepts subscribers' WebSockets itself (hibernation API, so an
// idle subscriber costs nothing) and, after each committed change, sends them its trades and
// any move of the best prices. With nobody subscribed a change costs one getWebSockets() call.
import { DurableObject } from 'cloudflare:workers';
import { z } from 'zod';
import type { Bindings } from '../env.ts';
import { OrderBook, type RestoredOrder, type Trade } from '../market/engine.ts';
import { allocateGpus, leaseTerms, type AskOrder, type BidOrder, type BookOrder } from '../market/orders.ts';
import type { Workload } from '../contracts/runner.ts';
import { newId } from '../ids.ts';
import { PING, PONG, changeMessages, snapshotMessage, type StreamMessage } from '../market/stream.ts';
import { BookOutbox, applyBookEffect, type BookEffect, type OrderStatus } from './book-outbox.ts';
import { prepareBookStorage } from './book-storage.ts';

export type { OrderStatus } from './book-outbox.ts';

export interface OrderState {
  id: string;
  status: OrderStatus;
  /** GPUs still offered (sell) or wanted (buy); 0 once filled. */
  freeGpus: number;
}

export interface FillView {
  tradeId: string;
  leaseId: string;
  bidId: string;
  askId: string;
  price: number;
  gpus: number;
  durationS: number;
  at: number;
}

export type PlaceOutcome =
  | { ok: true; order: OrderState; fills: FillView[]; replayed: boolean }
  | { ok: false; reason: 'insufficient_gpus'; freeGpus: number }
  | { ok: false; reason: 'invalid' };

export const CANDLE_INTERVALS = { '1m': 60_000, '1h': 3_600_000, '1d': 86_400_000 } as const;
export type CandleInterval = keyof typeof CANDLE_INTERVALS;

export interface Candle {
  start: number;
  open: number;
  high: number;
  low: number;
  close: number;
  /** GPU-seconds traded. */
  volumeGpuS: number;
  trades: number;
}

export interface MarketStats {
  bestBid: number | null;
  bestAsk: number | null;
  last: number | null;
  lastAt: number | null;
  /** Price 24 hours ago (the last trade before the window), or the window's first trade. */
  reference: number | null;
  volume24hGpuS: number;
  trades24h: number;
}

/** A node's trust as libSQL has it now (src/nodes/trust.ts publishes it). */
export const NodeTrustSchema = z.object({ reliabilityPpm: z.number().int().min(0).max(1_000_000), verified: z.boolean() }).strict();
export type NodeTrustUpdate = z.infer<typeof NodeTrustSchema>;

interface OrderRow extends Record<string, SqlStorageValue> {
  id: string;
  side: string;
  account_id: string;
  body: string;
  status: string;
  free_gpus: number;
}

const DAY_MS = 86_400_000;

/** The RegionBook for a region and GPU model (one Durable Object each). */
export function regionBook(env: Bindings, region: string, gpuModel: string) {
  return env.REGION_BOOK.getByName(`${region}:${gpuModel}`);
}

/** The most orders one `abandonUnplaced` call takes; callers split larger sets. */
export const UNPLACED_PER_CALL = 200;

export class RegionBook extends DurableObject<Bindings> {
  private book = new OrderBook();
  private readonly sql;
  private readonly outbox: BookOutbox;
  /** Trades recorded by the change being committed, collected only while someone subscribes. */
  private tape: FillView[] | null = null;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING, PONG));
    // Through `this.apply`, looked up at each call, so a test can stand in for the I/O.
    this.outbox = new BookOutbox(ctx.storage, (effect) => this.apply(effect));
    ctx.blockConcurrencyWhile(async () => {
      prepareBookStorage(ctx.storage);
      this.reload();
      await this.outbox.load();
    });
  }

  /** Rebuilds the in-memory book from storage, in original time order (equal prices keep priority). */
  private reload(): void {
    this.book = new OrderBook();
    for (const row of this.sql.exec<{ node_id: string }>('SELECT node_id FROM nodes_offline')) this.book.setNodeOnline(row.node_id, false, 0);
    for (const row of this.sql.exec<{ node_id: string; reliability_ppm: number; verified: number }>('SELECT * FROM node_trust')) {
      this.book.setNodeTrust(row.node_id, { reliability: row.reliability_ppm / 1_000_000, verified: row.verified === 1 }, 0);
    }
    // Bodies only (a bid's workload is not among them): this runs for every open order on every start.
    const rows = this.sql.exec<{ body: string; free_gpus: number; priority: number | null }>("SELECT body, free_gpus, priority FROM orders WHERE status = 'open' ORDER BY priority");
    this.book.restoreAll(
      (function* (): Generator<RestoredOrder> {
        for (const row of rows) {
          const order = JSON.parse(row.body) as BookOrder;
          yield order.side === 'sell' ? { side: 'sell', input: order, freeGpus: row.free_gpus, priority: row.priority } : { side: 'buy', input: order, priority: row.priority };
        }
      })(),
    );
  }

  /**
   * Runs a change to the book and writes its consequences in one storage transaction. If
   * writing fails, the in-memory book (already changed) is rebuilt from storage, so the two
   * never disagree.
   */
  private commit<T>(change: () => T, now: number): T {
    const subscribers = this.ctx.getWebSockets();
    const before = subscribers.length > 0 ? { bestBid: this.book.bestBid(), bestAsk: this.book.bestAsk() } : null;
    this.tape = before ? [] : null;
    let result: T;
    try {
      result = this.ctx.storage.transactionSync(() => {
        const result = change();
        for (const id of this.book.takeExpired()) this.close(id, 'expired', now);
        // Asks that went to the back of their queue keep that place across a restart.
        for (const id of this.book.takeRequeued()) {
          const priority = this.book.priorityOf(id);
          if (priority !== null) this.sql.exec('UPDATE orders SET priority = ? WHERE id = ?', priority, id);
        }
        return result;
      });
    } catch (err) {
      this.tape = null;
      this.reload();
      throw err;
    }
    if (before) this.publish(subscribers, before, now);
    return result;
  }

  /** Sends a committed change to the subscribers; a socket that fails is skipped, never the change. */
  private publish(subscribers: WebSocket[], before: { bestBid: number | null; bestAsk: number | null }, now: number): void {
    const tape = this.tape ?? [];
    this.tape = null;
    const book = (subscribers[0]!.deserializeAttachment() as { book: string } | null)?.book;
    if (!book) return;
    const messages = changeMessages(book, before, { bestBid: this.book.bestBid(), bestAsk: this.book.bestAsk() }, tape, now);
    if (messages.length === 0) return;
    const frames = messages.map((m) => JSON.stringify(m));
    for (const ws of subscribers) {
      for (const frame of frames) {
        try {
          ws.send(frame);
        } catch {
          break;
        }
      }
    }
  }

  /**
   * A subscriber's WebSocket (the market stream route forwards the upgrade here with the book's
   * name, which the book does not otherwise know). It gets a snapshot at once, then changes.
   */
  override async fetch(request: Request): Promise<Response> {
    const book = new URL(request.url).searchParams.get('book');
    if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket' || !book) return new Response('expected a WebSocket upgrade', { status: 426 });
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    server.serializeAttachment({ book });
    const now = Date.now();
    const snapshot: StreamMessage = snapshotMessage(book, await this.stats(now), now);
    server.send(JSON.stringify(snapshot));
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Subscribers only listen; anything but the auto-answered ping is ignored. */
  override async webSocketMessage(): Promise<void> {}

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    try {
      ws.close(code, reason);
    } catch {
      // Already closed, or a code (1005, 1006) that may not be sent back.
    }
  }

  override async webSocketError(): Promise<void> {}

  private row(id: string): OrderRow | null {
    return this.sql.exec<OrderRow>('SELECT * FROM orders WHERE id = ?', id).toArray()[0] ?? null;
  }

  private stateOf(row: OrderRow): OrderState {
    return { id: row.id, status: row.status as OrderStatus, freeGpus: row.free_gpus };
  }

  private enqueue(effect: BookEffect, now: number): void {
    this.outbox.enqueue(effect, now);
  }

  private settle(expiry: number | null = null): Promise<void> {
    return this.outbox.settle(expiry);
  }

  private apply(effect: BookEffect): Promise<string | null> {
    return applyBookEffect(this.env, effect);
  }

  /** What the book stores of an order: a bid without its workload, which is kept apart. */
  private static body(order: BookOrder): string {
    if (order.side === 'sell') return JSON.stringify(order);
    const { workload: _, ...rest } = order;
    return JSON.stringify(rest);
  }

  /** A resting bid, whole again: its workload is read only now, when a trade creates its lease. */
  private bidOf(row: OrderRow): BidOrder {
    const bid = JSON.parse(row.body) as BidOrder;
    const kept = this.sql.exec<{ workload: string }>('SELECT workload FROM bid_workloads WHERE order_id = ?', row.id).toArray()[0];
    return kept ? { ...bid, workload: JSON.parse(kept.workload) as Workload } : bid;
  }

  /** Marks an order closed, and queues its status for libSQL (with the release of a bid's hold). */
  private close(id: string, status: Exclude<OrderStatus, 'open'>, now: number, free = 0): void {
    const row = this.row(id);
    if (!row || row.status !== 'open') return;
    this.sql.exec('UPDATE orders SET status = ?, free_gpus = ? WHERE id = ?', status, free, id);
    this.sql.exec('DELETE FROM bid_workloads WHERE order_id = ?', id);
    const order = JSON.parse(row.body) as BookOrder;
    const release = order.side === 'buy' && status !== 'filled' ? { owner: order.accountId, asset: order.payWith, amount: order.holdAmount } : null;
    this.enqueue({ kind: 'status', orderId: id, status, at: now, release }, now);
  }

  /** Records trades: allocations, leases (through the outbox), the resting side, candles. */
  private record(trades: Trade[], incoming: BookOrder | null, now: number): FillView[] {
    const fills: FillView[] = [];
    for (const t of trades) {
      const bid = (incoming?.id === t.bidId ? incoming : this.bidOf(this.row(t.bidId)!)) as BidOrder;
      const ask = (incoming?.id === t.askId ? incoming : JSON.parse(this.row(t.askId)!.body)) as AskOrder;
      const busy = new Set(this.sql.exec<{ gpu_index: number }>('SELECT gpu_index FROM allocations WHERE node_id = ?', t.nodeId).toArray().map((r) => r.gpu_index));
      const indices = allocateGpus(ask.nodeGpuIndices, busy, t.gpus);
      // The capacity check on every ask makes this unreachable; refusing beats double-booking a GPU.
      if (!indices) throw new Error(`node ${t.nodeId} has no ${t.gpus} free GPUs for ask ${ask.id}`);
      const tradeId = newId('trd');
      const terms = leaseTerms({ ...t, id: tradeId }, bid, ask, indices);
      for (const i of indices) this.sql.exec('INSERT INTO allocations (node_id, gpu_index, lease_id, ask_id) VALUES (?, ?, ?, ?)', t.nodeId, i, terms.leaseId, ask.id);
      this.sql.exec('INSERT INTO trades (id, bid_id, ask_id, lease_id, price, gpus, duration_s, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        tradeId, t.bidId, t.askId, terms.leaseId, t.price, t.gpus, t.durationS, t.at);
      this.enqueue({ kind: 'lease', terms }, now);
      // The bid is filled whole; the lease effect records that in libSQL with the release.
      this.sql.exec("UPDATE orders SET status = 'filled', free_gpus = 0 WHERE id = ?", t.bidId);
      this.sql.exec('DELETE FROM bid_workloads WHERE order_id = ?', t.bidId);
      const left = this.book.resting(t.askId);
      if (left) this.sql.exec('UPDATE orders SET free_gpus = ? WHERE id = ?', left.freeGpus, t.askId);
      else if (incoming?.id !== t.askId) this.close(t.askId, 'filled', now);
      for (const [interval, ms] of Object.entries(CANDLE_INTERVALS)) {
        this.sql.exec(
          `INSERT INTO candles (interval, start, open, high, low, close, volume_gpu_s, trades) VALUES (?, ?, ?, ?, ?, ?, ?, 1)
           ON CONFLICT (interval, start) DO UPDATE SET high = max(high, excluded.high), low = min(low, excluded.low), close = excluded.close,
             volume_gpu_s = volume_gpu_s + excluded.volume_gpu_s, trades = trades + 1`,
          interval, Math.floor(t.at / ms) * ms, t.price, t.price, t.price, t.price, t.gpus * t.durationS,
        );
      }
      fills.push({ tradeId, leaseId: terms.leaseId, bidId: t.bidId, askId: t.askId, price: t.price, gpus: t.gpus, durationS: t.durationS, at: t.at });
    }
    this.tape?.push(...fills);
    return fills;
  }

  /**
   * Matches an order and records it with its trades atomically. Placing an id already known
   * changes nothing and answers its current state, so the caller may retry freely.
   */
  async place(order: BookOrder, now = Date.now()): Promise<PlaceOutcome> {
    const known = this.row(order.id);
    if (known) return { ok: true, order: this.stateOf(known), fills: this.fillsOf(order.id), replayed: true };
    if (order.side === 'sell') {
      const free = this.freeOn(order.nodeId, order.nodeGpuIndices.length);
      if (order.gpus > free) return { ok: false, reason: 'insufficient_gpus', freeGpus: free };
    }
    const outcome = this.commit(() => {
      // A sell is only accepted on an online node: the book takes the caller's word for it now.
      const revived = order.side === 'sell' ? this.nodeBack(order.nodeId, now) : [];
      const result = order.side === 'sell' ? this.book.submitAsk(order, now) : this.book.submitBid(order, now);
      if (!result.ok) return null;
      const status: OrderStatus = result.resting ? 'open' : result.remainingGpus === 0 ? 'filled' : order.expiresAt <= now ? 'expired' : 'cancelled';
      this.sql.exec('INSERT INTO orders (id, side, account_id, node_id, body, status, free_gpus, created_at, priority) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        order.id, order.side, order.accountId, order.side === 'sell' ? order.nodeId : null, RegionBook.body(order), 'open', result.remainingGpus, now, this.book.priorityOf(order.id));
      if (order.side === 'buy' && result.resting) this.sql.exec('INSERT INTO bid_workloads (order_id, workload) VALUES (?, ?)', order.id, JSON.stringify(order.workload));
      const fills = this.record(result.trades, order, now);
      this.record(revived, null, now);
      if (status !== 'open') this.close(order.id, status, now, status === 'filled' ? 0 : result.remainingGpus);
      return { status, free: result.remainingGpus, fills };
    }, now);
    if (!outcome) return { ok: false, reason: 'invalid' };
    await this.settle(outcome.status === 'open' ? order.expiresAt : null);
    return { ok: true, order: { id: order.id, status: outcome.status, freeGpus: outcome.status === 'filled' ? 0 : outcome.free }, fills: outcome.fills, replayed: false };
  }

  /** GPUs of a node not yet offered by an open ask nor held by a lease. */
  private freeOn(nodeId: string, total: number): number {
    const offered = this.sql.exec<{ n: number | null }>("SELECT sum(free_gpus) AS n FROM orders WHERE node_id = ? AND status = 'open'", nodeId).one().n ?? 0;
    const leased = this.sql.exec<{ n: number }>('SELECT count(*) AS n FROM allocations WHERE node_id = ?', nodeId).one().n;
    return Math.max(0, total - offered - leased);
  }

  private nodeGone(nodeId: string, now: number): void {
    if (!this.book.isNodeOnline(nodeId)) return;
    this.book.setNodeOnline(nodeId, false, now);
    this.sql.exec('INSERT INTO nodes_offline (node_id) VALUES (?) ON CONFLICT DO NOTHING', nodeId);
  }

  private nodeBack(nodeId: string, now: number): Trade[] {
    if (this.book.isNodeOnline(nodeId)) return [];
    this.sql.exec('DELETE FROM nodes_offline WHERE node_id = ?', nodeId);
    return this.book.setNodeOnline(nodeId, true, now);
  }

  private fillsOf(orderId: string): FillView[] {
    return this.sql
      .exec<{ id: string; lease_id: string; bid_id: string; ask_id: string; price: number; gpus: number; duration_s: number; at: number }>(
        'SELECT * FROM trades WHERE bid_id = ? OR ask_id = ? ORDER BY at, id',
        orderId,
        orderId,
      )
      .toArray()
      .map((r) => ({ tradeId: r.id, leaseId: r.lease_id, bidId: r.bid_id, askId: r.ask_id, price: r.price, gpus: r.gpus, durationS: r.duration_s, at: r.at }));
  }

  /**
   * Cancels an open order of `accountId`. An order the book never received (its placement
   * failed half-way) is recorded as cancelled from `placed`, so a late placement cannot revive it
   * and its hold is released like any other.
   */
  async cancel(id: string, accountId: string, placed?: BookOrder, now = Date.now()): Promise<OrderState | null> {
    const row = this.row(id);
    if (row && row.account_id !== accountId) return null;
    if (!row) {
      if (!placed || placed.id !== id || placed.accountId !== accountId) return null;
      this.commit(() => this.recordUnplaced(placed, now), now);
    } else if (row.status === 'open') {
      this.commit(() => {
        this.book.cancel(id);
        this.close(id, 'cancelled', now, row.free_gpus);
      }, now);
    } else if (row.status === 'filled' && row.side === 'sell') {
      // A fully leased ask would reopen as its leases end: cancelling withdraws it (not resting,
      // so nothing leaves the in-memory book); the leases it made run on.
      this.commit(() => {
        this.sql.exec("UPDATE orders SET status = 'cancelled', free_gpus = 0 WHERE id = ?", id);
        this.enqueue({ kind: 'status', orderId: id, status: 'cancelled', at: now, release: null }, now);
      }, now);
    }
    // A bid's hold is back before the answer; a sell moves no money, so its status reaches
    // libSQL through the outbox without holding up the caller (the book answers for it meanwhile).
    const settling = this.settle();
    if (placed?.side !== 'sell' && row?.side !== 'sell') await settling;
    else this.ctx.waitUntil(settling);
    return this.stateOf(this.row(id)!);
  }

  /** Records an order this book never received as cancelled (closing it queues its status and a bid's release). */
  private recordUnplaced(placed: BookOrder, now: number): void {
    this.sql.exec('INSERT INTO orders (id, side, account_id, node_id, body, status, free_gpus, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      placed.id, placed.side, placed.accountId, placed.side === 'sell' ? placed.nodeId : null, RegionBook.body(placed), 'open', 0, now);
    this.close(placed.id, 'cancelled', now);
  }

  /**
   * Of `orders` recorded elsewhere as open, records those this book never received (their
   * request stopped between the escrow hold and the book) as cancelled, and releases their
   * holds before answering, as `cancel` does; returns their ids. Orders the book knows are left
   * alone. Check and record happen in one turn, so a retry placing one at the same moment
   * either comes first and stands, or comes after and finds it cancelled.
   */
  async abandonUnplaced(orders: BookOrder[], now = Date.now()): Promise<string[]> {
    const unplaced = orders.slice(0, UNPLACED_PER_CALL).filter((o) => !this.row(o.id));
    if (unplaced.length > 0) this.commit(() => unplaced.forEach((o) => this.recordUnplaced(o, now)), now);
    await this.settle();
    return unplaced.map((o) => o.id);
  }

  /**
   * Node status from heartbeat batches: offline nodes' asks stop matching; returning ones match
   * again. `trust` (nodes' trust as libSQL has it) is applied where it differs from what the book
   * knows, so a trust change whose publication was missed still arrives with the next batch.
   */
  async setNodes(update: { online: string[]; offline: string[]; trust?: Record<string, NodeTrustUpdate> }, now = Date.now()): Promise<number> {
    const trades = this.commit(() => {
      const all: Trade[] = [];
      for (const [id, trust] of Object.entries(update.trust ?? {})) all.push(...this.trustChanged(id, NodeTrustSchema.parse(trust), now));
      for (const id of update.offline) this.nodeGone(id, now);
      for (const id of update.online) {
        const trades = this.nodeBack(id, now);
        this.record(trades, null, now);
        all.push(...trades);
      }
      return all;
    }, now);
    await this.settle();
    return trades.length;
  }

  /**
   * A node's current reliability (ppm) and verification, published on change: its asks match
   * on these from now on (a bid's `min_reliability` and `verified_only`), and where the node
   * gained trust they match the bids that waited for it. Kept across restarts. Returns the
   * number of trades.
   */
  async setNodeTrust(nodeId: string, trust: NodeTrustUpdate, now = Date.now()): Promise<number> {
    const t = NodeTrustSchema.parse(trust);
    const trades = this.commit(() => this.trustChanged(nodeId, t, now), now);
    await this.settle();
    return trades.length;
  }

  /** Stores and applies a node's trust, unless the book already has exactly that; records the trades. */
  private trustChanged(nodeId: string, t: NodeTrustUpdate, now: number): Trade[] {
    const trust = { reliability: t.reliabilityPpm / 1_000_000, verified: t.verified };
    const known = this.book.trustOf(nodeId);
    if (known && known.reliability === trust.reliability && known.verified === trust.verified) return [];
    this.sql.exec(
      'INSERT INTO node_trust (node_id, reliability_ppm, verified) VALUES (?, ?, ?) ON CONFLICT (node_id) DO UPDATE SET reliability_ppm = excluded.reliability_ppm, verified = excluded.verified',
      nodeId,
      t.reliabilityPpm,
      t.verified ? 1 : 0,
    );
    const trades = this.book.setNodeTrust(nodeId, trust, now);
    this.record(trades, null, now);
    return trades;
  }

  /**
   * A lease from this book ended: its GPUs are free again and go back to the ask they came
   * from, if it has not expired or been cancelled, and that ask matches the waiting bids.
   * `nodeSilent`: the lease failed because its node stopped heartbeating. The node is taken as
   * offline until a heartbeat batch says otherwise, so its GPUs do not go straight to the next
   * bid (which would fail the same way after the provisioning timeout).
   */
  async leaseEnded(leaseId: string, now = Date.now(), opts: { nodeSilent?: boolean } = {}): Promise<number> {
    const rows = this.sql.exec<{ gpu_index: number; ask_id: string; node_id: string }>('SELECT gpu_index, ask_id, node_id FROM allocations WHERE lease_id = ?', leaseId).toArray();
    if (rows.length === 0) return 0;
    const askId = rows[0]!.ask_id;
    const trades = this.commit(() => {
      if (opts.nodeSilent === true) this.nodeGone(rows[0]!.node_id, now);
      this.sql.exec('DELETE FROM allocations WHERE lease_id = ?', leaseId);
      const row = this.row(askId);
      if (!row || row.status === 'cancelled' || row.status === 'expired') return [];
      const ask = JSON.parse(row.body) as AskOrder;
      if (ask.expiresAt <= now) return [];
      const trades = this.book.returnGpus(askId, rows.length, ask, now);
      const left = this.book.resting(askId);
      const wasOpen = row.status === 'open';
      this.sql.exec("UPDATE orders SET status = ?, free_gpus = ? WHERE id = ?", left ? 'open' : 'filled', left ? left.freeGpus : 0, askId);
      if (!wasOpen && left) this.enqueue({ kind: 'status', orderId: askId, status: 'open', at: now, release: null }, now);
      this.record(trades, null, now);
      if (wasOpen && !left) this.enqueue({ kind: 'status', orderId: askId, status: 'filled', at: now, release: null }, now);
      return trades;
    }, now);
    await this.settle(this.book.resting(askId) ? (JSON.parse(this.row(askId)!.body) as AskOrder).expiresAt : null);
    return trades.length;
  }

  async orders(ids: string[]): Promise<OrderState[]> {
    const out: OrderState[] = [];
    for (const id of ids.slice(0, 200)) {
      const row = this.row(id);
      if (row) out.push(this.stateOf(row));
    }
    return out;
  }

  async fills(orderId: string): Promise<FillView[]> {
    return this.fillsOf(orderId);
  }

  // ── Market data (public: no account or node ids) ─────────────────────────────────────

  async snapshot(levels = 20) {
    return { bestBid: this.book.bestBid(), bestAsk: this.book.bestAsk(), depth: this.book.depth(levels), resting: this.book.size };
  }

  /** Resting asks with free GPUs, for offer search. */
  async openAsks(now = Date.now()) {
    return this.book.openAsks(now);
  }

  /**
   * Trades newest first, in (at, id) order. `before` (ms) starts at trades older than that
   * time; `after` (the last trade of the previous page) continues exactly behind it, even
   * among trades of the same millisecond.
   */
  async trades(limit = 100, before?: number, after?: { at: number; id: string }): Promise<Array<{ id: string; price: number; gpus: number; durationS: number; at: number }>> {
    const at = after?.at ?? before ?? Number.MAX_SAFE_INTEGER;
    return this.sql
      .exec<{ id: string; price: number; gpus: number; duration_s: number; at: number }>(
        'SELECT id, price, gpus, duration_s, at FROM trades WHERE at < ? OR (at = ? AND id < ?) ORDER BY at DESC, id DESC LIMIT ?',
        at,
        at,
        after?.id ?? '',
        Math.min(Math.max(limit, 1), 1000),
      )
      .toArray()
      .map((r) => ({ id: r.id, price: r.price, gpus: r.gpus, durationS: r.duration_s, at: r.at }));
  }

  /** Candles with start in [from, to), oldest first. */
  async candles(interval: CandleInterval, from: number, to: number, limit = 500): Promise<Candle[]> {
    return this.sql
      .exec<{ start: number; open: number; high: number; low: number; close: number; volume_gpu_s: number; trades: number }>(
        'SELECT * FROM candles WHERE interval = ? AND start >= ? AND start < ? ORDER BY start LIMIT ?',
        interval,
        from,
        to,
        Math.min(Math.max(limit, 1), 1000),
      )
      .toArray()
      .map((r) => ({ start: r.start, open: r.open, high: r.high, low: r.low, close: r.close, volumeGpuS: r.volume_gpu_s, trades: r.trades }));
  }

  async stats(now = Date.now()): Promise<MarketStats> {
    const since = now - DAY_MS;
    const last = this.sql.exec<{ price: number; at: number }>('SELECT price, at FROM trades ORDER BY at DESC, id DESC LIMIT 1').toArray()[0];
    const before = this.sql.exec<{ price: number }>('SELECT price FROM trades WHERE at < ? ORDER BY at DESC, id DESC LIMIT 1', since).toArray()[0];
    const first = this.sql.exec<{ price: number }>('SELECT price FROM trades WHERE at >= ? ORDER BY at, id LIMIT 1', since).toArray()[0];
    const window = this.sql
      .exec<{ v: number | null; n: number }>('SELECT sum(gpus * duration_s) AS v, count(*) AS n FROM trades WHERE at >= ?', since)
      .one();
    return {
      bestBid: this.book.bestBid(),
      bestAsk: this.book.bestAsk(),
      last: last?.price ?? null,
      lastAt: last?.at ?? null,
      reference: before?.price ?? first?.price ?? null,
      volume24hGpuS: window.v ?? 0,
      trades24h: window.n,
    };
  }

  /** Orders expire by alarm, not by a request noticing; the outbox is retried here too. */
  override async alarm(): Promise<void> {
    this.outbox.alarmFired();
    const now = Date.now();
    this.commit(() => {
      for (const id of this.book.expire(now)) this.close(id, 'expired', now);
    }, now);
    await this.settle(this.book.nextExpiry());
  }
}
