// Webhook events of the mock Stripe API: signing and delivery with retries.
//
// Signature: exactly Stripe's scheme, which the SDK's constructEvent(Async) checks:
//   Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
// keyed with the whole `whsec_…` string. The body is the event as JSON, byte-identical on
// every attempt; each attempt is signed afresh with the time it is sent.
//
// Delivery: POST with a 10 s timeout; any 2xx is success, anything else (3xx included,
// redirects are not followed) or a network error is a failure, retried after
// baseDelayMs · 2^(n-1) for attempt n, up to `attempts` attempts in all (Stripe itself keeps
// retrying for three days). `deliver` resolves once the event is delivered or given up.
import { createHmac } from 'node:crypto';

export interface StripeEvent {
  id: string;
  object: 'event';
  api_version: string;
  created: number;
  data: { object: unknown };
  livemode: false;
  pending_webhooks: number;
  request: { id: string | null; idempotency_key: string | null };
  type: string;
}

export interface DeliveryAttempt {
  eventId: string;
  attempt: number;
  /** HTTP status of the receiver's answer; null for a network error or timeout. */
  status: number | null;
  error?: string;
}

export function signatureHeader(secret: string, payload: string, timestamp = Math.floor(Date.now() / 1000)): string {
  const v1 = createHmac('sha256', secret).update(`${timestamp}.${payload}`, 'utf8').digest('hex');
  return `t=${timestamp},v1=${v1}`;
}

export interface DelivererOptions {
  secret: string;
  attempts: number;
  baseDelayMs: number;
  webhookUrl: () => string | undefined;
  log: (line: Record<string, unknown>) => void;
}

const ATTEMPT_TIMEOUT_MS = 10_000;

export class WebhookDeliverer {
  readonly attempts: DeliveryAttempt[] = [];
  private readonly opts: DelivererOptions;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly abort = new AbortController();

  constructor(opts: DelivererOptions) {
    this.opts = opts;
  }

  /** Sends the event until a 2xx answer or `attempts` failures; never rejects. */
  deliver(event: StripeEvent): Promise<void> {
    const run = this.run(event).catch((err: unknown) => this.opts.log({ level: 'error', event: 'webhook_error', eventId: event.id, message: String(err) }));
    const tracked = run.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
    return tracked;
  }

  /** Resolves when every delivery started so far has finished. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /** Cancels pending retries and in-flight requests; the deliveries resolve. */
  close(): Promise<void> {
    this.abort.abort();
    return this.idle();
  }

  private async run(event: StripeEvent): Promise<void> {
    const payload = JSON.stringify(event, null, 2);
    const { attempts, baseDelayMs, log } = this.opts;
    for (let attempt = 1; attempt <= attempts && !this.abort.signal.aborted; attempt++) {
      const url = this.opts.webhookUrl();
      if (url === undefined) {
        log({ level: 'warn', event: 'webhook_skipped', eventId: event.id, type: event.type, message: 'no webhook URL set; event not delivered' });
        return;
      }
      const record: DeliveryAttempt = { eventId: event.id, attempt, status: null };
      try {
        const res = await fetch(url, {
          method: 'POST',
          redirect: 'manual',
          headers: {
            'content-type': 'application/json; charset=utf-8',
            'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks) (mock-stripe, local)',
            'stripe-signature': signatureHeader(this.opts.secret, payload),
          },
          body: payload,
          signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(ATTEMPT_TIMEOUT_MS)]),
        });
        record.status = res.status;
        await res.body?.cancel().catch(() => {});
      } catch (err) {
        record.error = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
      }
      this.attempts.push(record);
      const ok = record.status !== null && record.status >= 200 && record.status < 300;
      log({ level: ok ? 'info' : 'warn', event: 'webhook_attempt', type: event.type, url, ...record });
      if (ok) return;
      if (attempt < attempts) await this.sleep(baseDelayMs * 2 ** (attempt - 1));
    }
    if (!this.abort.signal.aborted) log({ level: 'error', event: 'webhook_gave_up', eventId: event.id, type: event.type, attempts });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const onAbort = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.abort.signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      this.abort.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
