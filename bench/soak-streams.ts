// Long-lived connections for the soak: price-widget WebSockets on /v1/market/stream (kept open,
// reopened a second after they close) and renters following lease logs over SSE
// (/v1/leases/{id}/logs/stream, until the lease's `end` event, then another lease).
import type { SoakClient } from './soak-http.ts';
import type { Renter } from './soak-traffic.ts';

export interface StreamCounts {
  wsOpened: number;
  /** Closed by the other end before the soak stopped. */
  wsDropped: number;
  wsFailed: number;
  wsMessages: number;
  followsOpened: number;
  followEnds: number;
  followedLines: number;
}

const REOPEN_MS = 1000;

export class Streams {
  readonly counts: StreamCounts = { wsOpened: 0, wsDropped: 0, wsFailed: 0, wsMessages: 0, followsOpened: 0, followEnds: 0, followedLines: 0 };
  private readonly sockets = new Set<WebSocket>();
  private readonly follows = new Set<AbortController>();
  private stopped = false;

  private readonly http: SoakClient;
  private readonly base: URL;

  constructor(http: SoakClient, base: URL) {
    this.http = http;
    this.base = base;
  }

  /** Keeps one widget connection per entry of `books` (each a comma-separated list) open. */
  widgets(books: string[]): void {
    for (const b of books) this.widget(b);
  }

  open(): number {
    return this.sockets.size;
  }

  following(): number {
    return this.follows.size;
  }

  private widget(books: string): void {
    if (this.stopped) return;
    const url = new URL(`/v1/market/stream?books=${encodeURIComponent(books)}`, this.base);
    url.protocol = 'ws:';
    const ws = new WebSocket(url);
    let opened = false;
    ws.addEventListener('open', () => {
      opened = true;
      this.counts.wsOpened++;
      this.sockets.add(ws);
    });
    ws.addEventListener('message', () => this.counts.wsMessages++);
    ws.addEventListener('close', () => {
      this.sockets.delete(ws);
      if (this.stopped) return;
      if (opened) this.counts.wsDropped++;
      else this.counts.wsFailed++;
      setTimeout(() => this.widget(books), REOPEN_MS);
    });
  }

  /** Keeps `n` followers on leases the renters hold, each on a lease not yet followed. */
  followers(n: number, candidates: () => Array<{ renter: Renter; id: string }>): void {
    const followed = new Set<string>();
    const one = async (): Promise<void> => {
      while (!this.stopped) {
        const free = candidates().filter((c) => !followed.has(c.id));
        if (free.length === 0) {
          await new Promise((r) => setTimeout(r, 2000));
          continue;
        }
        // The newest lease: the likeliest to be running.
        const { renter, id } = free[free.length - 1]!;
        followed.add(id);
        await this.follow(renter, id);
        followed.delete(id);
      }
    };
    for (let i = 0; i < n; i++) void one();
  }

  /** Follows one lease until its `end` event, the stream closing, or the soak stopping. */
  private async follow(renter: Renter, id: string): Promise<void> {
    const abort = new AbortController();
    this.follows.add(abort);
    const started = performance.now();
    try {
      const res = await fetch(new URL(`/v1/leases/${id}/logs/stream`, this.base), { headers: { authorization: `Bearer ${renter.key}` }, signal: abort.signal });
      const text = res.status === 200 ? '' : await res.text();
      this.http.record('GET /v1/leases/{id}/logs/stream', res.status, performance.now() - started, text, []);
      if (res.status !== 200 || !res.body) {
        await new Promise((r) => setTimeout(r, REOPEN_MS));
        return;
      }
      this.counts.followsOpened++;
      const decoder = new TextDecoder();
      let buf = '';
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk, { stream: true });
        let at: number;
        while ((at = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, at);
          buf = buf.slice(at + 2);
          if (block.includes('event: log')) this.counts.followedLines++;
          else if (block.includes('event: end')) {
            this.counts.followEnds++;
            return;
          }
        }
      }
    } catch {
      // aborted at the end, or cut: the next lease
    } finally {
      abort.abort();
      this.follows.delete(abort);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const ws of this.sockets) ws.close();
    for (const a of this.follows) a.abort();
  }
}
