// The webhooks Gridlease sends to renters: event types and the body every delivery carries.
import { z } from '@hono/zod-openapi';

export const WEBHOOK_EVENT_TYPES = ['order.filled', 'lease.running', 'lease.completed', 'lease.failed'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];
export const WebhookEventTypeSchema = z.enum(WEBHOOK_EVENT_TYPES).openapi({ example: 'lease.running' });

/** What each delivery POSTs; `id` is stable across retries, so receivers can drop repeats. */
export interface WebhookEventBody {
  id: string;
  type: WebhookEventType;
  /** ISO 8601. */
  created_at: string;
  data: Record<string, unknown>;
}
