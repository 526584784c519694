// Queued, signed, retried callbacks. Production: QStash. Development and tests: a local
// transport with QStash's contract (the same signature scheme and retries), so the callback
// route runs its real verification everywhere.
import type { Bindings } from '../env.ts';
import { LOCAL_RETRIES, LocalQueueTransport } from './local.ts';
import type { QueueTransport } from './message.ts';
import { QSTASH_RETRIES, QStashTransport } from './qstash.ts';

export type { QueueMessage, QueueTransport } from './message.ts';

export function queueTransport(env: Bindings): QueueTransport {
  if (env.QUEUE_TRANSPORT === 'qstash') return new QStashTransport(env);
  if (env.QUEUE_TRANSPORT === 'local') return new LocalQueueTransport(env);
  throw new Error(`QUEUE_TRANSPORT must be "qstash" or "local", got "${env.QUEUE_TRANSPORT}"`);
}

/** How many times the configured transport retries a failed delivery after the first attempt. */
export function queueRetries(env: Pick<Bindings, 'QUEUE_TRANSPORT'>): number {
  return env.QUEUE_TRANSPORT === 'local' ? LOCAL_RETRIES : QSTASH_RETRIES;
}
