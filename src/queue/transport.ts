// Queued, signed, retried callbacks. Production: QStash. Development and tests: a local
// transport with QStash's contract (the same signature scheme and retries), so the callback
// route runs its real verification everywhere.
import type { Bindings } from '../env.ts';
import { LocalQueueTransport } from './local.ts';
import type { QueueTransport } from './message.ts';
import { QStashTransport } from './qstash.ts';

export type { QueueMessage, QueueTransport } from './message.ts';

export function queueTransport(env: Bindings): QueueTransport {
  if (env.QUEUE_TRANSPORT === 'qstash') return new QStashTransport(env);
  if (env.QUEUE_TRANSPORT === 'local') return new LocalQueueTransport(env);
  throw new Error(`QUEUE_TRANSPORT must be "qstash" or "local", got "${env.QUEUE_TRANSPORT}"`);
}
