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

/** The URL a callback is addressed to, which the signature's `sub` claim must equal. */
export function callbackUrl(env: { PUBLIC_URL: string }, path: string): string {
  return new URL(path, env.PUBLIC_URL).toString();
}
