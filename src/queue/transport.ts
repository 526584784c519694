// Queued, signed, retried callbacks. Production: QStash. Development and tests: a local
// transport with QStash's contract (the same signature scheme and retries), so the callback
// route runs its real verification everywhere.
import type { Bindings } from '../env.ts';
import { LocalQueueTransport } from './local.ts';
import { QStashTransport } from './qstash.ts';

export interface QueueMessage {
  /** Path of the callback route on this Worker, e.g. /internal/queue/heartbeats. */
  path: string;
  body: unknown;
  /** Messages with the same id are delivered once (QStash deduplication). */
  deduplicationId: string;
}

export interface QueueTransport {
  readonly name: 'qstash' | 'local';
  /** Resolves once the message is accepted for delivery (QStash) or delivered (local). */
  publish(message: QueueMessage): Promise<void>;
}

export function queueTransport(env: Bindings): QueueTransport {
  if (env.QUEUE_TRANSPORT === 'qstash') return new QStashTransport(env);
  if (env.QUEUE_TRANSPORT === 'local') return new LocalQueueTransport(env);
  throw new Error(`QUEUE_TRANSPORT must be "qstash" or "local", got "${env.QUEUE_TRANSPORT}"`);
}

/** The URL a callback is addressed to, which the signature's `sub` claim must equal. */
export function callbackUrl(env: Pick<Bindings, 'PUBLIC_URL'>, path: string): string {
  return new URL(path, env.PUBLIC_URL).toString();
}
