// One market data source per API origin on a page, shared by every widget: three widgets cost
// one summary request per poll, not three.
import { bookKey, type BookSummary, type BookView, type Candle } from './market.ts';

export type BookListener = (view: BookView) => void;

/** How widgets get data. Polling implements it today; a WebSocket stream can replace it. */
export interface MarketSource {
  /** Calls `listener` with the book's current view (if known) and on every change. */
  subscribe(region: string, gpuModel: string, listener: BookListener): void;
  unsubscribe(region: string, gpuModel: string, listener: BookListener): void;
}

const SUMMARY_EVERY_MS = 2_000;
const CANDLES_EVERY_MS = 60_000;
const MAX_BACKOFF_MS = 15_000;
const REQUEST_TIMEOUT_MS = 8_000;
const HOUR_MS = 3_600_000;

/** The retry delay after `failures` failed polls in a row, with ±20% jitter so pages spread out. */
export function backoffMs(failures: number, random = Math.random): number {
  const base = Math.min(SUMMARY_EVERY_MS * 2 ** Math.max(0, failures - 1), MAX_BACKOFF_MS);
  return Math.round(base * (0.8 + 0.4 * random()));
}

interface Book {
  region: string;
  gpuModel: string;
  listeners: Set<BookListener>;
  view: BookView;
  /** Last price and 24h trade count at the last candle fetch: a change means a new trade. */
  tradeMark: string;
  candlesAt: number;
}

class HttpError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

/** Polls the edge-cached REST endpoints: the summary for all books, candles per book less often. */
export class PollingSource implements MarketSource {
  private readonly books = new Map<string, Book>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private polling = false;
  private failures = 0;

  constructor(private readonly api: string) {}

  subscribe(region: string, gpuModel: string, listener: BookListener): void {
    const key = bookKey(region, gpuModel);
    let book = this.books.get(key);
    if (!book) {
      book = { region, gpuModel, listeners: new Set(), view: { status: 'loading', summary: null, candles: [] }, tradeMark: '', candlesAt: 0 };
      this.books.set(key, book);
      // Widgets created in the same task share the first request.
      this.schedule(0);
    }
    book.listeners.add(listener);
    listener(book.view);
  }

  unsubscribe(region: string, gpuModel: string, listener: BookListener): void {
    const key = bookKey(region, gpuModel);
    const book = this.books.get(key);
    if (!book) return;
    book.listeners.delete(listener);
    if (book.listeners.size === 0) this.books.delete(key);
    if (this.books.size === 0) clearTimeout(this.timer);
  }

  /** Polls now, e.g. when the page becomes visible or the network comes back. */
  wake(): void {
    if (this.books.size > 0 && !this.polling) this.schedule(0);
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.poll(), ms);
  }

  private async poll(): Promise<void> {
    if (this.polling || this.books.size === 0) return;
    if (typeof document !== 'undefined' && document.hidden) return this.schedule(SUMMARY_EVERY_MS);
    this.polling = true;
    try {
      const data = (await this.get<{ data: BookSummary[] }>('/v1/market/summary')).data;
      this.failures = 0;
      const rows = new Map(data.map((row) => [bookKey(row.region, row.gpu_model), row]));
      const now = Date.now();
      await Promise.all(
        [...this.books].map(async ([key, book]) => {
          const summary = rows.get(key) ?? null;
          const mark = summary ? `${summary.last_price}|${summary.trades_24h}` : '';
          let candles = book.view.candles;
          let status = book.view.status;
          if (status !== 'live' || mark !== book.tradeMark || now - book.candlesAt >= CANDLES_EVERY_MS) {
            const fetched = await this.candles(book, now);
            if (fetched === 'unknown') status = 'unknown';
            else {
              status = 'live';
              if (fetched) {
                candles = fetched;
                book.candlesAt = now;
                book.tradeMark = mark;
              }
            }
          }
          this.emit(book, { status, summary, candles });
        }),
      );
    } catch {
      this.failures++;
      for (const book of this.books.values()) this.emit(book, { ...book.view, status: 'unavailable' });
    } finally {
      this.polling = false;
    }
    if (this.books.size > 0) this.schedule(this.failures ? backoffMs(this.failures) : SUMMARY_EVERY_MS);
  }

  /** 1-hour candles of the last 24 hours; null when they could not be fetched this time. */
  private async candles(book: Book, now: number): Promise<readonly Candle[] | 'unknown' | null> {
    // `from` on the hour keeps the URL, and so the edge cache entry, the same for an hour.
    const from = new Date(Math.floor(now / HOUR_MS) * HOUR_MS - 23 * HOUR_MS).toISOString();
    const path = `/v1/market/${encodeURIComponent(book.region)}/${encodeURIComponent(book.gpuModel)}/candles?interval=1h&from=${encodeURIComponent(from)}`;
    try {
      return (await this.get<{ data: Candle[] }>(path)).data;
    } catch (err) {
      return err instanceof HttpError && (err.status === 404 || err.status === 400) ? 'unknown' : null;
    }
  }

  private async get<T>(path: string): Promise<T> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
    try {
      // No cookies, no referrer; `no-cache` revalidates so a poll never reads the browser's stale copy.
      const res = await fetch(this.api + path, { credentials: 'omit', referrerPolicy: 'no-referrer', cache: 'no-cache', signal: abort.signal });
      if (!res.ok) throw new HttpError(res.status);
      return (await res.json()) as T;
    } finally {
      clearTimeout(timer);
    }
  }

  private emit(book: Book, view: BookView): void {
    book.view = view;
    for (const listener of book.listeners) listener(view);
  }
}

const sources = new Map<string, PollingSource>();

/**
 * The source for an API origin, one per page. This is where the live stream plugs in: once
 * `GET /v1/market/stream` (WebSocket) exists, a `StreamSource implements MarketSource` is created
 * here instead, falling back to `PollingSource` while the socket is down.
 */
export function sourceFor(api: string): MarketSource {
  let source = sources.get(api);
  if (!source) {
    const created = new PollingSource(api);
    sources.set(api, created);
    if (typeof window !== 'undefined') {
      window.addEventListener('online', () => created.wake());
      document.addEventListener('visibilitychange', () => created.wake());
    }
    source = created;
  }
  return source;
}
