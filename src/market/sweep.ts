// Orders whose request stopped half-way. A buy's row and escrow hold commit in libSQL before
// the book hears of the order; if the request then dies (a crash, a timeout, a client that
// never retries), the row stays `open` and holds money, while the book, which does not know
// it, will neither match it nor expire it. A retry with the same Idempotency-Key, or reading
// the order, places it; otherwise this sweep, run each minute by the scheduled handler, walks
// open orders older than UNPLACED_AFTER_MS once each (a cursor in `job_cursors`) and hands
// them to their books, 200 per call; each book records those it never received as cancelled,
// which releases a buy's hold through the book's outbox like any cancel.
import { connection } from '../db/client.ts';
import { regionBook, UNPLACED_PER_CALL } from '../durable/region-book.ts';
import type { Bindings } from '../env.ts';
import { log } from '../http/log.ts';
import type { BookOrder } from './orders.ts';

/** Far longer than any request may run: an order this old and unknown to its book is stranded. */
export const UNPLACED_AFTER_MS = 60_000;
const JOB = 'orders:unplaced';
const PAGE = 500;
const PAGES_PER_RUN = 20;

export interface SweepResult {
  checked: number;
  cancelled: string[];
}

export async function sweepUnplacedOrders(env: Bindings, now = Date.now()): Promise<SweepResult> {
  const { client } = connection(env);
  const result: SweepResult = { checked: 0, cancelled: [] };
  const cursor = (await client.execute({ sql: 'SELECT at, id FROM job_cursors WHERE name = ?', args: [JOB] })).rows[0];
  let at = cursor ? Number(cursor.at) : 0;
  let id = cursor ? String(cursor.id) : '';
  for (let page = 0; page < PAGES_PER_RUN; page++) {
    const rows = (
      await client.execute({
        sql: `SELECT id, region, gpu_model, book, created_at FROM orders
              WHERE status = 'open' AND (created_at > ? OR (created_at = ? AND id > ?)) AND created_at <= ?
              ORDER BY created_at, id LIMIT ?`,
        args: [at, at, id, now - UNPLACED_AFTER_MS, PAGE],
      })
    ).rows;
    if (rows.length === 0) break;
    const byBook = new Map<string, { region: string; gpuModel: string; orders: BookOrder[] }>();
    for (const r of rows) {
      const key = `${r.region}:${r.gpu_model}`;
      const group = byBook.get(key) ?? { region: String(r.region), gpuModel: String(r.gpu_model), orders: [] };
      group.orders.push(JSON.parse(String(r.book)) as BookOrder);
      byBook.set(key, group);
    }
    for (const { region, gpuModel, orders } of byBook.values()) {
      const book = regionBook(env, region, gpuModel);
      for (let i = 0; i < orders.length; i += UNPLACED_PER_CALL) {
        for (const orderId of await book.abandonUnplaced(orders.slice(i, i + UNPLACED_PER_CALL))) {
          result.cancelled.push(orderId);
          log('warn', 'order never reached its book; cancelled and its hold released', { order_id: orderId });
        }
      }
    }
    result.checked += rows.length;
    const last = rows[rows.length - 1]!;
    at = Number(last.created_at);
    id = String(last.id);
    // The cursor moves only past orders dealt with: a failure above leaves them for the next run.
    await client.execute({
      sql: 'INSERT INTO job_cursors (name, at, id) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET at = excluded.at, id = excluded.id',
      args: [JOB, at, id],
    });
    if (rows.length < PAGE) break;
  }
  return result;
}
