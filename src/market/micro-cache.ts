// A per-isolate memory of recent public market replies, in front of the Workers cache. A
// Workers cache lookup is a hop to another service (locally, a separate worker with its own
// storage); a busy page polling the summary asks the same URL many times within its max-age,
// and an isolate can answer those from memory. Pure: no Workers imports, `now` is passed in.

export interface CachedReply {
  status: number;
  /** The reply's headers as stored: nothing per request (such as x-request-id). */
  headers: ReadonlyArray<readonly [string, string]>;
  body: Uint8Array;
  /** When the data in the reply was read (ms); the reply's age counts from here. */
  storedAt: number;
  /** Never served at or after this time (ms). */
  expiresAt: number;
}

const ENTRY_OVERHEAD_BYTES = 256;

/**
 * Replies by key (the full request URL), each until its own expiry and never after. Bounded in
 * bytes: when full, the oldest entries go first, which with one max-age for every entry are also
 * the ones closest to expiring.
 */
export class MicroCache {
  private readonly entries = new Map<string, CachedReply>();
  private bytes = 0;

  constructor(
    private readonly maxBytes = 4 * 1024 * 1024,
    /** Larger replies are left to the Workers cache. */
    private readonly maxEntryBytes = 256 * 1024,
  ) {}

  get(key: string, now: number): CachedReply | undefined {
    const entry = this.entries.get(key);
    if (entry && now >= entry.expiresAt) {
      this.remove(key, entry);
      return undefined;
    }
    return entry;
  }

  put(key: string, reply: CachedReply, now: number): void {
    const old = this.entries.get(key);
    if (old) this.remove(key, old);
    const size = sizeOf(key, reply);
    if (reply.expiresAt <= now || size > this.maxEntryBytes) return;
    for (const [k, e] of this.entries) {
      if (this.bytes + size <= this.maxBytes) break;
      this.remove(k, e);
    }
    this.entries.set(key, reply);
    this.bytes += size;
  }

  /** Entries held, expired or not (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  private remove(key: string, entry: CachedReply): void {
    this.entries.delete(key);
    this.bytes -= sizeOf(key, entry);
  }
}

function sizeOf(key: string, reply: CachedReply): number {
  let size = ENTRY_OVERHEAD_BYTES + key.length + reply.body.byteLength;
  for (const [name, value] of reply.headers) size += name.length + value.length;
  return size;
}
