import type { Bindings } from '../env.ts';
import { signLikeQStash } from './signature.ts';
import { callbackUrl, type QueueMessage, type QueueTransport } from './message.ts';

/** Retries after the first attempt; callbacks see the count so far in `Upstash-Retried`. */
export const LOCAL_RETRIES = 3;
const ATTEMPTS = LOCAL_RETRIES + 1;
const BASE_DELAY_MS = 250;

/**
 * The local stand-in for QStash: signs each delivery exactly as QStash does and delivers it to
 * this Worker through its own service binding, retrying with exponential back-off. A message
 * that still fails makes publish() reject, and the caller keeps it for a later try.
 */
export class LocalQueueTransport implements QueueTransport {
  readonly name = 'local' as const;
  private readonly env: Bindings;

  constructor(env: Bindings) {
    if (!env.QSTASH_CURRENT_SIGNING_KEY) throw new Error('QSTASH_CURRENT_SIGNING_KEY is not set');
    this.env = env;
  }

  async publish(message: QueueMessage): Promise<void> {
    const url = callbackUrl(this.env, message.path);
    const body = JSON.stringify(message.body);
    let lastError = '';
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, BASE_DELAY_MS * 4 ** (attempt - 1)));
      const signature = await signLikeQStash(this.env.QSTASH_CURRENT_SIGNING_KEY!, url, body, Math.floor(Date.now() / 1000));
      try {
        const res = await this.env.SELF.fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'upstash-signature': signature,
            'upstash-message-id': `msg_${message.deduplicationId}`,
            'upstash-retried': String(attempt),
          },
          body,
        });
        await res.body?.cancel();
        if (res.ok) return;
        lastError = `HTTP ${res.status}`;
      } catch (err) {
        lastError = String(err);
      }
    }
    throw new Error(`local queue: ${message.path} not delivered after ${ATTEMPTS} attempts (${lastError})`);
  }
}
