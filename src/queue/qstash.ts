import { Client } from '@upstash/qstash';
import { callbackUrl, type QueueMessage, type QueueTransport } from './message.ts';

export interface QStashConfig {
  QSTASH_TOKEN?: string;
  QSTASH_URL?: string;
  PUBLIC_URL: string;
}

/** Retries QStash makes after the first attempt; callbacks see the count so far in `Upstash-Retried`. */
export const QSTASH_RETRIES = 5;

/** QStash: publishes the message; QStash signs each delivery and retries until a 2xx. */
export class QStashTransport implements QueueTransport {
  readonly name = 'qstash' as const;
  private readonly client: Client;
  private readonly env: QStashConfig;

  constructor(env: QStashConfig) {
    if (!env.QSTASH_TOKEN) throw new Error('QSTASH_TOKEN is not set');
    this.env = env;
    this.client = new Client({ token: env.QSTASH_TOKEN, baseUrl: env.QSTASH_URL || undefined });
  }

  async publish(message: QueueMessage): Promise<void> {
    await this.client.publishJSON({
      url: callbackUrl(this.env, message.path),
      body: message.body,
      deduplicationId: message.deduplicationId,
      retries: QSTASH_RETRIES,
    });
  }
}
