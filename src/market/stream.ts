// The live market stream on the wire: which books a connection asked for, and the messages it
// receives. Pure: no Workers imports, no I/O, no clock (times are passed in). Like the REST
// market data, nothing here carries an order, account or node id.
import { gpuModel } from '../catalog/gpus.ts';
import { isRegion } from '../catalog/regions.ts';
import { gpuHours, priceChange, wirePrice, wirePriceOrNull } from './market-data.ts';

/** Books one connection may follow. */
export const MAX_STREAM_BOOKS = 20;

/** Answered by the runtime itself, so an idle socket is kept alive without waking its book. */
export const PING = '{"type":"ping"}';
export const PONG = '{"type":"pong"}';

/** A book named `region:gpu_model`, as in `us-east:h100-80gb`. */
export interface StreamBook {
  name: string;
  region: string;
  gpuModel: string;
}

export type BooksParse = { ok: true; books: StreamBook[] } | { ok: false; problem: string };

/** Parses `books=us-east:h100-80gb,eu-west:a100-80gb`: catalog ids only, no repeats, at most 20. */
export function parseStreamBooks(text: string): BooksParse {
  const names = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) return { ok: false, problem: 'name at least one book as region:gpu_model' };
  if (names.length > MAX_STREAM_BOOKS) return { ok: false, problem: `at most ${MAX_STREAM_BOOKS} books per connection` };
  const books: StreamBook[] = [];
  for (const name of new Set(names)) {
    const [region = '', model = '', ...rest] = name.split(':');
    if (rest.length > 0 || !isRegion(region) || !gpuModel(model)) {
      return { ok: false, problem: `unknown book "${name}"; books are region:gpu_model from /v1/catalog/regions and /v1/catalog/gpus` };
    }
    books.push({ name, region, gpuModel: model });
  }
  return { ok: true, books };
}

export interface BookStats {
  bestBid: number | null;
  bestAsk: number | null;
  last: number | null;
  reference: number | null;
  volume24hGpuS: number;
}

export interface TapeTrade {
  tradeId: string;
  price: number;
  gpus: number;
  durationS: number;
  at: number;
}

export type StreamMessage =
  | {
      type: 'snapshot';
      book: string;
      best_bid: string | null;
      best_ask: string | null;
      last: string | null;
      change_24h: string | null;
      volume_24h_gpu_hours: string;
      at: string;
    }
  | { type: 'trade'; book: string; id: string; price: string; gpus: number; duration_s: number; at: string }
  | { type: 'quote'; book: string; best_bid: string | null; best_ask: string | null; at: string };

const iso = (ms: number) => new Date(ms).toISOString();

export function snapshotMessage(book: string, s: BookStats, now: number): StreamMessage {
  return {
    type: 'snapshot',
    book,
    best_bid: wirePriceOrNull(s.bestBid),
    best_ask: wirePriceOrNull(s.bestAsk),
    last: wirePriceOrNull(s.last),
    change_24h: priceChange(s.last, s.reference).change,
    volume_24h_gpu_hours: gpuHours(s.volume24hGpuS),
    at: iso(now),
  };
}

/**
 * What one committed change of a book tells its subscribers: each trade in order, then the
 * best prices if either moved.
 */
export function changeMessages(
  book: string,
  before: { bestBid: number | null; bestAsk: number | null },
  after: { bestBid: number | null; bestAsk: number | null },
  trades: readonly TapeTrade[],
  now: number,
): StreamMessage[] {
  const out: StreamMessage[] = trades.map((t) => ({
    type: 'trade',
    book,
    id: t.tradeId,
    price: wirePrice(t.price),
    gpus: t.gpus,
    duration_s: t.durationS,
    at: iso(t.at),
  }));
  if (before.bestBid !== after.bestBid || before.bestAsk !== after.bestAsk) {
    out.push({ type: 'quote', book, best_bid: wirePriceOrNull(after.bestBid), best_ask: wirePriceOrNull(after.bestAsk), at: iso(now) });
  }
  return out;
}
