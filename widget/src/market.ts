// The public market data the widget reads: the wire shapes of GET /v1/market/summary and
// GET /v1/market/{region}/{gpu_model}/candles, kept to the fields it shows.

export interface BookSummary {
  region: string;
  gpu_model: string;
  best_bid: string | null;
  best_ask: string | null;
  last_price: string | null;
  change_24h: string | null;
  change_24h_pct: number | null;
  trades_24h: number;
}

export interface Candle {
  start: string;
  close: string;
}

/**
 * What one widget shows for one book. `unavailable`: the API cannot be reached (retrying);
 * `unknown`: the API answered that the region or GPU model does not exist.
 */
export interface BookView {
  status: 'loading' | 'live' | 'unavailable' | 'unknown';
  /** Null while live: the book has no orders and no trades in the last 24 hours. */
  summary: BookSummary | null;
  candles: readonly Candle[];
}

export const bookKey = (region: string, gpuModel: string) => `${region}/${gpuModel}`;
