// One delivery attempt, made when the queue hands us a delivery id. The queue owns the
// schedule: a failed attempt answers 502 and the queue retries with its back-off; on its
// last retry the delivery is marked failed and the answer is 200, so nothing retries it again.
import { connection } from '../db/client.ts';
import type { Bindings } from '../env.ts';
import { SIGNATURE_HEADER, signatureHeader } from './signature.ts';
import { checkEndpointUrl, describeUrlProblem } from './url.ts';

export const DELIVERY_TIMEOUT_MS = 10_000;
const MAX_ERROR_LENGTH = 500;

export type DeliveryOutcome =
  /** The endpoint answered 2xx. */
  | { outcome: 'delivered'; status: number }
  /** This attempt failed; the queue should retry. */
  | { outcome: 'retrying'; status: number | null; error: string | null }
  /** This attempt failed and no other will be made. */
  | { outcome: 'failed'; status: number | null; error: string | null }
  /** The delivery or its endpoint was deleted. */
  | { outcome: 'gone' }
  /** Already delivered or given up: a repeated message. */
  | { outcome: 'duplicate' };

interface Attempt {
  status: number | null;
  error: string | null;
  ok: boolean;
}

/**
 * Attempts one delivery. `final` says whether the queue will retry if this attempt fails; an
 * endpoint whose URL is now refused is never tried and is marked failed at once.
 */
export async function deliverWebhook(env: Bindings, deliveryId: string, opts: { final: boolean }): Promise<DeliveryOutcome> {
  const { client } = connection(env);
  const found = await client.execute({
    sql: `SELECT d.state, d.payload, d.event_id, d.event_type, e.url, e.secret
          FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.id = ?`,
    args: [deliveryId],
  });
  const row = found.rows[0];
  if (!row) return { outcome: 'gone' };
  if (row.state !== 'pending') return { outcome: 'duplicate' };

  const checked = checkEndpointUrl(String(row.url), env.ENVIRONMENT);
  const attempt: Attempt = checked.ok
    ? await post(checked.url, String(row.secret), String(row.payload), String(row.event_id), String(row.event_type))
    : { ok: false, status: null, error: `not sent: the URL ${describeUrlProblem(checked.problem)}` };
  const final = opts.final || !checked.ok;
  const now = Date.now();
  await client.execute({
    sql: `UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = ?, last_error = ?, last_attempt_at = ?,
            state = ?, delivered_at = ? WHERE id = ? AND state = 'pending'`,
    args: [attempt.status, attempt.error, now, attempt.ok ? 'delivered' : final ? 'failed' : 'pending', attempt.ok ? now : null, deliveryId],
  });
  if (attempt.ok) return { outcome: 'delivered', status: attempt.status! };
  return { outcome: final ? 'failed' : 'retrying', status: attempt.status, error: attempt.error };
}

async function post(url: string, secret: string, payload: string, eventId: string, eventType: string): Promise<Attempt> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Gridlease-Webhooks/1',
        [SIGNATURE_HEADER]: await signatureHeader(secret, payload, Math.floor(Date.now() / 1000)),
        'gridlease-event-id': eventId,
        'gridlease-event-type': eventType,
      },
      body: payload,
      // A redirect could lead anywhere, including where the URL rules forbid: not followed.
      redirect: 'manual',
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    await res.body?.cancel();
    if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status, error: null };
    const error = res.status >= 300 && res.status < 400 ? 'redirects are not followed' : null;
    return { ok: false, status: res.status, error };
  } catch (err) {
    const error = err instanceof Error && err.name === 'TimeoutError' ? `no response within ${DELIVERY_TIMEOUT_MS / 1000} s` : String(err);
    return { ok: false, status: null, error: error.slice(0, MAX_ERROR_LENGTH) };
  }
}
