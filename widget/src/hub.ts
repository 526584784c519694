// One market data source per API origin on a page, shared by every widget: one WebSocket for
// every book on the page, and while it is down one summary request per poll, not one per widget.
import { bookKey, type BookSummary, type BookView, type Candle } from './market.ts';

export type BookListener = (view: BookView) => void;

/** How widgets get data: `StreamSource` (the live stream, polling while it is down) or `PollingSource`. */
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

type Live = Pick<BookSummary, 'best_bid' | 'best_ask' | 'last_price' | 'change_24h' | 'change_24h_pct'>;

interface Book {
  region: string;
  gpuModel: string;
  listeners: Set<BookListener>;
  view: BookView;
  /** The book's row of the last summary poll. */
  rest: BookSummary | null;
  /** What the stream said last, while it is connected. */
  live?: Live;
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
  protected readonly books = new Map<string, Book>();
  /** Set while a stream supplies the prices: polls only when asked to, and never says "unavailable". */
  protected streaming = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private polling = false;
  private failures = 0;

  constructor(protected readonly api: string) {}

  subscribe(region: string, gpuModel: string, listener: BookListener): void {
    const key = bookKey(region, gpuModel);
    let book = this.books.get(key);
    if (!book) {
      book = { region, gpuModel, listeners: new Set(), view: { status: 'loading', summary: null, candles: [] }, rest: null, tradeMark: '', candlesAt: 0 };
      this.books.set(key, book);
      // Widgets created in the same task share the first request.
      this.schedule(0);
      this.changed();
    }
    book.listeners.add(listener);
    listener(book.view);
  }

  unsubscribe(region: string, gpuModel: string, listener: BookListener): void {
    const key = bookKey(region, gpuModel);
    const book = this.books.get(key);
    if (!book) return;
    book.listeners.delete(listener);
    if (book.listeners.size === 0) {
      this.books.delete(key);
      this.changed();
    }
    if (this.books.size === 0) clearTimeout(this.timer);
  }

  /** The set of books changed. */
  protected changed(): void {}

  /** Polls now, e.g. when the page becomes visible or the network comes back. */
  wake(): void {
    if (this.books.size > 0 && !this.polling) this.schedule(0);
  }

  protected schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.poll(), ms);
  }

  protected async poll(): Promise<void> {
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
          const summary = (book.rest = rows.get(key) ?? null);
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
          this.emit(book, { status, summary: merged(book), candles });
        }),
      );
    } catch {
      this.failures++;
      // With the stream up, a book it reports is live even without the sparkline.
      for (const book of this.books.values()) this.emit(book, { ...book.view, status: !this.streaming ? 'unavailable' : book.live ? 'live' : book.view.status });
    } finally {
      this.polling = false;
    }
    if (this.books.size > 0 && !this.streaming) this.schedule(this.failures ? backoffMs(this.failures) : SUMMARY_EVERY_MS);
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

  protected emit(book: Book, view: BookView): void {
    book.view = view;
    for (const listener of book.listeners) listener(view);
  }
}

/**
 * The summary a widget shows: the last poll's row, with the stream's prices over it. The 24h
 * change is the poll's once the poll has seen the stream's last trade, the stream's until then.
 */
function merged(book: Book): BookSummary | null {
  const { rest, live } = book;
  if (!live) return rest;
  const base = rest ?? { region: book.region, gpu_model: book.gpuModel, change_24h: null, change_24h_pct: null, trades_24h: 0 };
  return { ...base, ...live, ...(rest && rest.last_price === live.last_price ? { change_24h: rest.change_24h, change_24h_pct: rest.change_24h_pct } : {}) };
}

/** The 24h change in percent from the last price and the change, as the summary rounds it. */
function changePct(last: string | null, change: string | null): number | null {
  const reference = Number(last) - Number(change);
  return last === null || change === null || !(reference > 0) ? null : Math.round((Number(change) / reference) * 10_000) / 100;
}

const PING_EVERY_MS = 30_000;
const STREAM_RETRY_MS = 60_000;
/** Upgrades that fail in a row before the stream is left alone for STREAM_RETRY_MS. */
const STREAM_TRIES = 3;
/** A connection that lasted this long was healthy: its close starts the back-off afresh. */
const HEALTHY_MS = 30_000;
const MAX_STREAM_BOOKS = 20;
const REFRESH_AFTER_MS = 3_000;
/** Refreshes after a trade until the summary has it. */
const REFRESH_TRIES = 4;

/**
 * The live stream: one WebSocket for all the page's books of one API origin, reopened with the
 * new list when the books change. While it is not connected the polling underneath takes over;
 * while it is, polls happen only to refresh the 24h change and sparkline after a trade.
 */
export class StreamSource extends PollingSource {
  private ws: WebSocket | null = null;
  private url = '';
  private fails = 0;
  /** The next (re)connect: a debounce after the books change, or a back-off after a close. */
  private next: ReturnType<typeof setTimeout> | 0 | undefined;
  private ping: ReturnType<typeof setInterval> | undefined;
  private refresh: ReturnType<typeof setTimeout> | undefined;
  private refreshes = 0;

  protected override changed(): void {
    // Widgets created in the same task, or while the page is parsed, share one connect; a
    // pending back-off is kept.
    if (this.next !== undefined) return;
    const soon = () => (this.next = setTimeout(() => this.open(), 0));
    if (typeof document !== 'undefined' && document.readyState === 'loading') {
      this.next = 0;
      document.addEventListener('DOMContentLoaded', soon, { once: true });
    } else soon();
  }

  private open(): void {
    this.next = undefined;
    const names = [...this.books.values()]
      .filter((b) => b.view.status !== 'unknown' && /^[\w.-]+$/.test(b.region) && /^[\w.-]+$/.test(b.gpuModel))
      .map((b) => `${b.region}:${b.gpuModel}`);
    const url =
      typeof WebSocket === 'function' && names.length > 0 && names.length <= MAX_STREAM_BOOKS
        ? `${this.api.replace(/^http/, 'ws')}/v1/market/stream?books=${names.join(',')}`
        : '';
    if (url === this.url && this.ws) return;
    this.url = url;
    const old = this.ws;
    this.ws = null;
    old?.close();
    if (!url) return this.down();
    let ws: WebSocket;
    try {
      ws = new WebSocket(url);
    } catch {
      return this.closed(0);
    }
    this.ws = ws;
    let since = 0;
    ws.onopen = () => {
      since = Date.now();
      this.streaming = true;
      clearInterval(this.ping);
      this.ping = setInterval(() => ws.send('{"type":"ping"}'), PING_EVERY_MS);
    };
    ws.onmessage = (e) => this.ws === ws && this.message(e.data);
    ws.onclose = () => {
      if (this.ws === ws) this.closed(since);
    };
  }

  private closed(since: number): void {
    this.ws = null;
    this.down();
    this.fails = since && Date.now() - since >= HEALTHY_MS ? 1 : this.fails + 1;
    clearTimeout(this.next);
    this.next = setTimeout(() => this.open(), this.fails >= STREAM_TRIES ? STREAM_RETRY_MS : backoffMs(this.fails));
  }

  /** Back to polling, from what the stream last showed. */
  private down(): void {
    clearInterval(this.ping);
    if (!this.streaming) return;
    this.streaming = false;
    for (const book of this.books.values()) book.live = undefined;
    this.schedule(0);
  }

  /** The cached summary and candles have a trade once their edge cache (2 s) has expired. */
  private refreshSoon(): void {
    this.refresh ??= setTimeout(async () => {
      await this.poll();
      this.refresh = undefined;
      const behind = [...this.books.values()].some((b) => b.live && (b.rest?.last_price ?? null) !== b.live.last_price);
      if (this.streaming && behind && ++this.refreshes < REFRESH_TRIES) this.refreshSoon();
    }, REFRESH_AFTER_MS);
  }

  private message(data: unknown): void {
    let m: Record<string, string | null>;
    try {
      m = JSON.parse(String(data));
    } catch {
      return;
    }
    const book = this.books.get(String(m.book).replace(':', '/'));
    if (!book) return;
    if (m.type === 'snapshot') {
      book.live = { best_bid: m.best_bid!, best_ask: m.best_ask!, last_price: m.last!, change_24h: m.change_24h!, change_24h_pct: changePct(m.last!, m.change_24h!) };
    } else if (!book.live) return;
    else if (m.type === 'quote') {
      book.live.best_bid = m.best_bid!;
      book.live.best_ask = m.best_ask!;
    } else if (m.type === 'trade') {
      book.live.last_price = m.price!;
      this.refreshes = 0;
      this.refreshSoon();
    } else return;
    // Still loading until the first poll has brought the sparkline, unless that poll failed.
    this.emit(book, { ...book.view, status: book.view.status === 'unavailable' ? 'live' : book.view.status, summary: merged(book) });
  }
}

const sources = new Map<string, PollingSource>();

/** The source for an API origin, one per page. */
export function sourceFor(api: string): MarketSource {
  let source = sources.get(api);
  if (!source) {
    const created = new StreamSource(api);
    sources.set(api, created);
    if (typeof window !== 'undefined') {
      window.addEventListener('online', () => created.wake());
      document.addEventListener('visibilitychange', () => created.wake());
    }
    source = created;
  }
  return source;
}
