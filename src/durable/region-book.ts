// RegionBook: one per region × GPU model. A thin shell around the pure matching engine
// (src/market/engine.ts): every accepted order and every trade is written to this object's
// SQLite storage in the same synchronous transaction as the match, and the in-memory book is
// rebuilt from the open orders on start, so an evicted or restarted book loses nothing.
//
// Storage: `orders` (every order with its status and free GPUs), `trades`.
import { DurableObject } from 'cloudflare:workers';
import type { Bindings } from '../env.ts';
import { OrderBook, type AskInput, type BidInput, type Trade } from '../market/engine.ts';

export type OrderStatus = 'open' | 'filled' | 'cancelled' | 'expired';

export type BookOrder = ({ side: 'sell' } & AskInput) | ({ side: 'buy' } & BidInput);

export interface PlaceResult {
  ok: boolean;
  reason?: 'duplicate_id' | 'invalid';
  trades: Array<Trade & { id: string }>;
  resting: boolean;
  remainingGpus: number;
}

interface OrderRow extends Record<string, SqlStorageValue> {
  id: string;
  side: string;
  body: string;
  free_gpus: number;
}

export class RegionBook extends DurableObject<Bindings> {
  private readonly book = new OrderBook();
  private readonly sql;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    ctx.blockConcurrencyWhile(async () => {
      this.sql.exec(`CREATE TABLE IF NOT EXISTS orders (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, side TEXT NOT NULL,
        body TEXT NOT NULL, status TEXT NOT NULL, free_gpus INTEGER NOT NULL, created_at INTEGER NOT NULL)`);
      this.sql.exec('CREATE INDEX IF NOT EXISTS orders_open ON orders (status, seq)');
      this.sql.exec(`CREATE TABLE IF NOT EXISTS trades (id TEXT PRIMARY KEY, bid_id TEXT NOT NULL, ask_id TEXT NOT NULL, body TEXT NOT NULL, at INTEGER NOT NULL)`);
      // Rebuild in original time order: equal prices keep their priority.
      for (const row of this.sql.exec<OrderRow>("SELECT id, side, body, free_gpus FROM orders WHERE status = 'open' ORDER BY seq")) {
        const input = JSON.parse(row.body) as BookOrder;
        if (input.side === 'sell') this.book.restore({ side: 'sell', input, freeGpus: row.free_gpus });
        else this.book.restore({ side: 'buy', input });
      }
    });
  }

  /** Matches an order, recording it and its trades atomically. */
  async place(order: BookOrder, now = Date.now()): Promise<PlaceResult> {
    const known = this.sql.exec<{ n: number }>('SELECT count(*) AS n FROM orders WHERE id = ?', order.id).one().n;
    if (known > 0) return { ok: false, reason: 'duplicate_id', trades: [], resting: false, remainingGpus: 0 };
    const result = order.side === 'sell' ? this.book.submitAsk(order, now) : this.book.submitBid(order, now);
    // (An IOC bid that finds no fitting ask is recorded as cancelled; an order already past
    // its expiry as expired.)
    if (!result.ok) return { ok: false, reason: result.reason, trades: [], resting: false, remainingGpus: 0 };
    const trades = result.trades.map((t, i) => ({ ...t, id: `trd_${order.id}_${i}` }));
    this.ctx.storage.transactionSync(() => {
      const status: OrderStatus = result.resting ? 'open' : result.remainingGpus === 0 ? 'filled' : order.expiresAt <= now ? 'expired' : 'cancelled';
      this.sql.exec('INSERT INTO orders (id, side, body, status, free_gpus, created_at) VALUES (?, ?, ?, ?, ?, ?)', order.id, order.side, JSON.stringify(order), status, result.remainingGpus, now);
      for (const t of trades) {
        this.sql.exec('INSERT INTO trades (id, bid_id, ask_id, body, at) VALUES (?, ?, ?, ?, ?)', t.id, t.bidId, t.askId, JSON.stringify(t), t.at);
        // The resting side of each trade: a bid is filled whole; an ask keeps what is left.
        const restingId = t.maker === 'sell' ? t.askId : t.bidId;
        const left = this.book.resting(restingId);
        this.sql.exec('UPDATE orders SET status = ?, free_gpus = ? WHERE id = ?', left ? 'open' : 'filled', left ? left.freeGpus : 0, restingId);
      }
    });
    await this.scheduleExpiry();
    return { ok: true, trades, resting: result.resting, remainingGpus: result.remainingGpus };
  }

  async cancel(id: string): Promise<boolean> {
    if (!this.book.cancel(id)) return false;
    this.sql.exec("UPDATE orders SET status = 'cancelled' WHERE id = ? AND status = 'open'", id);
    return true;
  }

  async setNodeOnline(nodeId: string, online: boolean): Promise<void> {
    this.book.setNodeOnline(nodeId, online);
  }

  async snapshot(levels = 20) {
    return { bestBid: this.book.bestBid(), bestAsk: this.book.bestAsk(), depth: this.book.depth(levels), resting: this.book.size };
  }

  async order(id: string): Promise<{ status: OrderStatus; freeGpus: number } | null> {
    const row = this.sql.exec<{ status: string; free_gpus: number }>('SELECT status, free_gpus FROM orders WHERE id = ?', id).toArray()[0];
    return row ? { status: row.status as OrderStatus, freeGpus: row.free_gpus } : null;
  }

  private async scheduleExpiry(): Promise<void> {
    const next = this.book.nextExpiry();
    if (next === null) return;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || next < current) await this.ctx.storage.setAlarm(next);
  }

  /** Orders expire by alarm, not by a request noticing. */
  override async alarm(): Promise<void> {
    const gone = this.book.expire(Date.now());
    for (const id of gone) this.sql.exec("UPDATE orders SET status = 'expired' WHERE id = ? AND status = 'open'", id);
    await this.scheduleExpiry();
  }
}
