// The RegionBook's storage layout, and its migration from the layouts books were stored in before.
//
// orders          every order: `body` is what matching and closing need (a bid without its workload);
//                 `priority` is a resting order's place in time priority (engine.priorityOf)
// bid_workloads   the workload of each resting bid, read only when a trade creates its lease
// trades, candles, allocations (which GPU of which node each lease holds)
// nodes_offline   nodes whose asks rest without matching
// node_trust      nodes' current reliability (ppm) and verification, as last published
// effects         the outbox; `key` names the order or lease whose effects apply in sequence
// dead_effects    effects refused for good, kept for an operator
// book_layout     the layout version below
import type { BookEffect } from './book-outbox.ts';
import { effectKey } from './book-outbox.ts';

/**
 * 2: effects keyed by order or lease. 3: workloads out of `orders.body` (a book rebuilds from the
 * bodies of all its open orders on every start, and a bid's workload is up to 64 KiB).
 * 4: `orders.priority`, each resting order's place in time priority as the engine has it: an
 * ask that goes to the back of its queue (its node came back, gained trust, or got GPUs back)
 * keeps that place across a restart instead of regaining the place of its first insertion.
 */
const LAYOUT = 4;
/** Bids moved per transaction: a book may hold 100,000 of them, gigabytes of workloads at worst. */
const MOVE_BATCH = 200;

export function prepareBookStorage(storage: DurableObjectStorage): void {
  const sql = storage.sql;
  sql.exec(`CREATE TABLE IF NOT EXISTS orders (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, side TEXT NOT NULL,
    account_id TEXT NOT NULL, node_id TEXT, body TEXT NOT NULL, status TEXT NOT NULL, free_gpus INTEGER NOT NULL, created_at INTEGER NOT NULL)`);
  sql.exec('CREATE INDEX IF NOT EXISTS orders_open ON orders (status, seq)');
  // Only asks have a node: a bid, inserted or closed, writes no entry here (one index row
  // fewer per bid write, which Durable Object storage bills and fsyncs). Books stored before
  // have `orders_node`, which covered bids too: it goes.
  sql.exec('DROP INDEX IF EXISTS orders_node');
  sql.exec('CREATE INDEX IF NOT EXISTS orders_node_asks ON orders (node_id, status) WHERE node_id IS NOT NULL');
  sql.exec('CREATE TABLE IF NOT EXISTS bid_workloads (order_id TEXT PRIMARY KEY, workload TEXT NOT NULL)');
  sql.exec(`CREATE TABLE IF NOT EXISTS trades (id TEXT PRIMARY KEY, bid_id TEXT NOT NULL, ask_id TEXT NOT NULL, lease_id TEXT NOT NULL,
    price INTEGER NOT NULL, gpus INTEGER NOT NULL, duration_s INTEGER NOT NULL, at INTEGER NOT NULL)`);
  sql.exec('CREATE INDEX IF NOT EXISTS trades_at ON trades (at)');
  sql.exec('CREATE INDEX IF NOT EXISTS trades_bid ON trades (bid_id)');
  sql.exec('CREATE INDEX IF NOT EXISTS trades_ask ON trades (ask_id)');
  sql.exec(`CREATE TABLE IF NOT EXISTS allocations (node_id TEXT NOT NULL, gpu_index INTEGER NOT NULL, lease_id TEXT NOT NULL,
    ask_id TEXT NOT NULL, PRIMARY KEY (node_id, gpu_index))`);
  sql.exec('CREATE TABLE IF NOT EXISTS nodes_offline (node_id TEXT PRIMARY KEY)');
  sql.exec('CREATE TABLE IF NOT EXISTS node_trust (node_id TEXT PRIMARY KEY, reliability_ppm INTEGER NOT NULL, verified INTEGER NOT NULL)');
  // Created as in layout 1; the migration below adds `key`, for new and old books alike.
  sql.exec(`CREATE TABLE IF NOT EXISTS effects (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, not_before INTEGER NOT NULL)`);
  sql.exec('CREATE TABLE IF NOT EXISTS dead_effects (seq INTEGER PRIMARY KEY, body TEXT NOT NULL, error TEXT NOT NULL, at INTEGER NOT NULL)');
  sql.exec(`CREATE TABLE IF NOT EXISTS candles (interval TEXT NOT NULL, start INTEGER NOT NULL, open INTEGER NOT NULL, high INTEGER NOT NULL,
    low INTEGER NOT NULL, close INTEGER NOT NULL, volume_gpu_s INTEGER NOT NULL, trades INTEGER NOT NULL, PRIMARY KEY (interval, start))`);
  sql.exec('CREATE TABLE IF NOT EXISTS book_layout (version INTEGER NOT NULL)');
  const version = () => sql.exec<{ v: number | null }>('SELECT max(version) AS v FROM book_layout').one().v ?? 1;
  const reached = (v: number) => {
    sql.exec('DELETE FROM book_layout');
    sql.exec('INSERT INTO book_layout (version) VALUES (?)', v);
  };
  if (version() < 2) {
    storage.transactionSync(() => {
      sql.exec('ALTER TABLE effects ADD COLUMN key TEXT');
      for (const e of sql.exec<{ seq: number; body: string }>('SELECT seq, body FROM effects').toArray()) {
        sql.exec('UPDATE effects SET key = ? WHERE seq = ?', effectKey(JSON.parse(e.body) as BookEffect), e.seq);
      }
      sql.exec('CREATE INDEX IF NOT EXISTS effects_key ON effects (key, seq)');
      reached(2);
    });
  }
  if (version() < LAYOUT) {
    // Once, for the bids resting now (closed ones never need their workload again), a batch per
    // transaction so neither memory nor one transaction grows with the book. Moving a bid twice
    // (a restart half-way) finds nothing left to move.
    let after = 0;
    for (;;) {
      const rows = sql
        .exec<{ seq: number; id: string; body: string }>("SELECT seq, id, body FROM orders WHERE side = 'buy' AND status = 'open' AND seq > ? ORDER BY seq LIMIT ?", after, MOVE_BATCH)
        .toArray();
      if (rows.length === 0) break;
      storage.transactionSync(() => {
        for (const row of rows) {
          const { workload, ...rest } = JSON.parse(row.body) as { workload?: unknown };
          if (workload === undefined) continue;
          sql.exec('INSERT INTO bid_workloads (order_id, workload) VALUES (?, ?) ON CONFLICT DO NOTHING', row.id, JSON.stringify(workload));
          sql.exec('UPDATE orders SET body = ? WHERE id = ?', JSON.stringify(rest), row.id);
        }
      });
      after = rows[rows.length - 1]!.seq;
    }
    storage.transactionSync(() => reached(3));
  }
  if (version() < 4) {
    // Books stored before kept time priority as insertion order: `seq` is that order.
    storage.transactionSync(() => {
      sql.exec('ALTER TABLE orders ADD COLUMN priority INTEGER');
      sql.exec("UPDATE orders SET priority = seq WHERE status = 'open'");
      sql.exec('DROP INDEX IF EXISTS orders_open');
      sql.exec('CREATE INDEX IF NOT EXISTS orders_open_priority ON orders (status, priority)');
      reached(LAYOUT);
    });
  }
}
