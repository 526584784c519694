// Emitting an event: one delivery row per subscribed endpoint, one queue message per row.
// Callers (order and lease code) retry until emitEvent returns, so every step is repeatable:
// rows are unique per (endpoint, event), and only rows not yet handed to the queue are
// published, each under its own id as the queue's deduplication id.
import { z } from 'zod';
import { iso } from '../contracts/money.ts';
import { WEBHOOK_EVENT_TYPES, type WebhookEventBody, type WebhookEventType } from '../contracts/webhooks.ts';
import { connection } from '../db/client.ts';
import type { Bindings } from '../env.ts';
import { derivedId } from '../ids.ts';
import { queueTransport, type QueueTransport } from '../queue/transport.ts';

export const WEBHOOK_QUEUE_PATH = '/internal/queue/webhooks';

export interface WebhookEvent {
  /** Deterministic and unique per event, e.g. `evt_<leaseId>_running`: the same id is the same event. */
  id: string;
  /** Whose endpoints receive it. */
  accountId: string;
  type: WebhookEventType;
  data: Record<string, unknown>;
  /** When it happened (ms since the epoch); default now. An endpoint keeps the first emit's body. */
  createdAt?: number;
}

const EventSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/),
  accountId: z.string().min(1).max(64),
  type: z.enum(WEBHOOK_EVENT_TYPES),
  data: z.record(z.string(), z.unknown()),
  createdAt: z.number().int().nonnegative().optional(),
});

/** The queue message for one delivery. */
export const WebhookMessageSchema = z.object({ delivery_id: z.string().min(1).max(64) }).strict();

export interface EmitResult {
  /** Delivery rows this call created (0 when the event was emitted before). */
  recorded: number;
  /** Queue messages this call published: the new rows and any an earlier call failed to publish. */
  published: number;
}

/**
 * Records and queues `event` for each of the account's endpoints subscribed to its type.
 * Safe to call again with the same event: nothing is recorded or sent twice. Throws when a
 * row could not be written or a message not published; calling again finishes the job.
 */
export async function emitEvent(env: Bindings, event: WebhookEvent, transport: QueueTransport = queueTransport(env)): Promise<EmitResult> {
  const e = EventSchema.parse(event);
  const { client } = connection(env);
  const endpoints = await client.execute({ sql: 'SELECT id, events FROM webhook_endpoints WHERE account_id = ?', args: [e.accountId] });
  const subscribed = endpoints.rows.filter((r) => (JSON.parse(String(r.events)) as string[]).includes(e.type)).map((r) => String(r.id));
  if (subscribed.length === 0) return { recorded: 0, published: 0 };

  const body: WebhookEventBody = { id: e.id, type: e.type, created_at: iso(e.createdAt ?? Date.now())!, data: e.data };
  const payload = JSON.stringify(body);
  const now = Date.now();
  const inserts = await Promise.all(
    subscribed.map(async (endpointId) => ({
      sql: `INSERT INTO webhook_deliveries (id, endpoint_id, account_id, event_id, event_type, payload, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (endpoint_id, event_id) DO NOTHING`,
      args: [await derivedId('whd', endpointId, e.id), endpointId, e.accountId, e.id, e.type, payload, now],
    })),
  );
  const written = await client.batch(inserts, 'write');
  const recorded = written.reduce((n, rs) => n + rs.rowsAffected, 0);

  const placeholders = subscribed.map(() => '?').join(',');
  const unsent = await client.execute({
    sql: `SELECT id FROM webhook_deliveries WHERE event_id = ? AND endpoint_id IN (${placeholders}) AND published = 0 AND state = 'pending'`,
    args: [e.id, ...subscribed],
  });
  const ids = unsent.rows.map((r) => String(r.id));
  const results = await Promise.allSettled(ids.map((id) => transport.publish({ path: WEBHOOK_QUEUE_PATH, body: { delivery_id: id }, deduplicationId: id })));
  const sent = ids.filter((_, i) => results[i]!.status === 'fulfilled');
  if (sent.length > 0) {
    await client.execute({ sql: `UPDATE webhook_deliveries SET published = 1 WHERE id IN (${sent.map(() => '?').join(',')})`, args: sent });
  }
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length > 0) {
    throw new Error(`webhooks: ${failed.length} of ${ids.length} deliveries of ${e.id} not published (${String(failed[0]!.reason)})`);
  }
  return { recorded, published: sent.length };
}
