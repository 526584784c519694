// The soak's mixed traffic, modelled on the demo (local/demo.ts): providers place and cancel asks
// around a drifting mid price per book, renters place buys (some cross and fill into leases,
// some rest and are cancelled or expire); of the leases, some are terminated early and some
// extended; public market reads, account reads, lease and log reads. Each action is one request
// (plus its follow-ups), drawn by weight at the stated rate, open loop.
import type { SoakClient } from './soak-http.ts';
import type { Book, SimNode } from './soak-runners.ts';

export interface Provider {
  key: string;
  nodes: SimNode[];
  /** Open asks per book name, oldest first. */
  asks: Map<string, string[]>;
}

export interface Renter {
  key: string;
  /** Open bids, oldest first. */
  bids: string[];
  /** Its most recent leases, newest last. */
  leases: string[];
}

/** What happens to a lease after it fills: most run to their paid end. */
type Fate = 'run' | 'terminate' | 'extend';
interface LeaseFate {
  renter: Renter;
  fate: Fate;
  at: number;
}

export interface TrafficCounts {
  asks: number;
  bids: number;
  fills: number;
  terminated: number;
  extended: number;
  cancelled: number;
}

const randInt = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
const cents = (c: number) => `${Math.floor(c / 100)}.${String(c % 100).padStart(2, '0')}`;
const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString();
export const bookName = (b: Book) => `${b.region}:${b.gpuModel}`;
const RECENT_LEASES = 40;

export class Traffic {
  readonly counts: TrafficCounts = { asks: 0, bids: 0, fills: 0, terminated: 0, extended: 0, cancelled: 0 };
  private readonly fates = new Map<string, LeaseFate>();
  private readonly seen = new Set<string>();
  private readonly actions: Array<[weight: number, run: () => Promise<void>]>;
  private readonly totalWeight: number;

  private readonly http: SoakClient;
  readonly books: Book[];
  readonly providers: Provider[];
  readonly renters: Renter[];

  constructor(http: SoakClient, books: Book[], providers: Provider[], renters: Renter[]) {
    this.http = http;
    this.books = books;
    this.providers = providers;
    this.renters = renters;
    this.actions = [
      [12, () => this.sell()],
      [16, () => this.buy()],
      [4, () => this.cancelBid()],
      [10, () => this.read('GET /v1/market/summary', '/v1/market/summary')],
      [4, () => this.read('GET /v1/offers', `/v1/offers?q=${encodeURIComponent(`gpu_model=${pick(this.books).gpuModel} gpus>=1`)}&limit=20`)],
      [8, () => this.bookRead('book', '?levels=10')],
      [4, () => this.bookRead('trades', '?limit=20')],
      [3, () => this.bookRead('candles', '?interval=1m&limit=60')],
      [8, () => this.leaseRead()],
      [3, () => this.accountRead('GET /v1/leases', '/v1/leases?limit=20')],
      [3, () => this.accountRead('GET /v1/orders', '/v1/orders?status=open&limit=20')],
      [3, () => this.accountRead('GET /v1/balances', '/v1/balances')],
      [6, () => this.logRead()],
    ];
    this.totalWeight = this.actions.reduce((s, [w]) => s + w, 0);
  }

  /** One action drawn by weight. */
  next(): Promise<void> {
    let r = Math.random() * this.totalWeight;
    for (const [w, run] of this.actions) if ((r -= w) < 0) return run();
    return this.actions[0]![1]();
  }

  /** Terminations and extensions now due; returns how many requests it started. */
  due(now: number): Array<Promise<void>> {
    const started: Array<Promise<void>> = [];
    for (const [id, f] of this.fates) {
      if (f.at > now) continue;
      this.fates.delete(id);
      if (f.fate === 'terminate') started.push(this.terminate(f.renter, id));
      else if (f.fate === 'extend') started.push(this.extend(f.renter, id));
    }
    return started;
  }

  /** Leases the renters know of, newest last. */
  knownLeases(): Array<{ renter: Renter; id: string }> {
    return this.renters.flatMap((renter) => renter.leases.map((id) => ({ renter, id })));
  }

  private drift(book: Book): void {
    book.midCents = Math.min(Math.round(book.startCents * 1.4), Math.max(Math.round(book.startCents * 0.6), book.midCents + randInt(-2, 2)));
  }

  private async sell(): Promise<void> {
    const provider = pick(this.providers);
    const node = pick(provider.nodes);
    const book = node.book;
    this.drift(book);
    const asks = provider.asks.get(bookName(book)) ?? [];
    provider.asks.set(bookName(book), asks);
    if (asks.length > 4) await this.cancel('ask', provider.key, asks.shift()!);
    const body = {
      side: 'sell',
      region: book.region,
      gpu_model: book.gpuModel,
      gpus: randInt(1, 2),
      price: cents(book.midCents + randInt(1, 6)),
      node_id: node.nodeId,
      max_duration_s: 600,
      expires_at: inSeconds(90),
    };
    // 409: every GPU of the node is already offered or leased.
    const r = await this.http.call('POST /v1/orders sell', 'POST', '/v1/orders', { auth: provider.key, key: true, body, expect: [409] });
    if (r.status !== 201) return;
    this.counts.asks++;
    if (r.body.order.status === 'open') asks.push(r.body.order.id);
  }

  private async buy(): Promise<void> {
    const renter = pick(this.renters);
    const book = pick(this.books);
    this.drift(book);
    if (renter.bids.length > 3) await this.cancel('bid', renter.key, renter.bids.shift()!);
    const body = {
      side: 'buy',
      region: book.region,
      gpu_model: book.gpuModel,
      gpus: 1,
      price: cents(book.midCents + randInt(-6, 5)),
      duration_s: randInt(60, 120),
      pay_with: 'USD',
      workload: { image: 'ghcr.io/gridlease/demo:latest', command: ['serve', '--port', '8888'], env: {}, ports: [8888] },
      expires_at: inSeconds(30),
    };
    // 402: the small renter's money is all held.
    const r = await this.http.call('POST /v1/orders buy', 'POST', '/v1/orders', { auth: renter.key, key: true, body, expect: [402] });
    if (r.status !== 201) return;
    this.counts.bids++;
    if (r.body.order.status === 'open') renter.bids.push(r.body.order.id);
    for (const lease of r.body.leases ?? []) this.filled(renter, lease.id);
  }

  private filled(renter: Renter, id: string): void {
    this.seen.add(id);
    this.counts.fills++;
    renter.leases.push(id);
    if (renter.leases.length > RECENT_LEASES) renter.leases.shift();
    const roll = Math.random();
    const fate: Fate = roll < 0.15 ? 'terminate' : roll < 0.3 ? 'extend' : 'run';
    if (fate !== 'run') this.fates.set(id, { renter, fate, at: Date.now() + randInt(10, 30) * 1000 });
  }

  private async cancelBid(): Promise<void> {
    const renter = pick(this.renters);
    if (renter.bids.length === 0) return this.read('GET /v1/market/summary', '/v1/market/summary');
    await this.cancel('bid', renter.key, renter.bids.shift()!);
  }

  /** 409: the order filled or expired meanwhile. */
  private async cancel(side: 'ask' | 'bid', key: string, id: string): Promise<void> {
    const r = await this.http.call(`DELETE /v1/orders/{id} ${side}`, 'DELETE', `/v1/orders/${id}`, { auth: key, expect: [409] });
    if (r.status === 200) this.counts.cancelled++;
    // A bid that filled meanwhile: its lease is found by the renter's list reads, not here.
  }

  private async terminate(renter: Renter, id: string): Promise<void> {
    const r = await this.http.call('POST /v1/leases/{id}/terminate', 'POST', `/v1/leases/${id}/terminate`, { auth: renter.key });
    if (r.status === 200) this.counts.terminated++;
  }

  /** 409: the lease is over, or its node is not online; 402: not enough money for the time. */
  private async extend(renter: Renter, id: string): Promise<void> {
    const r = await this.http.call('POST /v1/leases/{id}/extend', 'POST', `/v1/leases/${id}/extend`, { auth: renter.key, key: true, body: { duration_s: 60 }, expect: [402, 409] });
    if (r.status === 200) this.counts.extended++;
  }

  private async read(route: string, path: string, auth?: string): Promise<void> {
    await this.http.call(route, 'GET', path, { auth });
  }

  private bookRead(what: 'book' | 'trades' | 'candles', query: string): Promise<void> {
    const b = pick(this.books);
    return this.read(`GET /v1/market/{book}/${what}`, `/v1/market/${b.region}/${b.gpuModel}/${what}${query}`);
  }

  private async accountRead(route: string, path: string): Promise<void> {
    const renter = Math.random() < 0.75 ? pick(this.renters) : null;
    const r = await this.http.call(route, 'GET', path, { auth: renter?.key ?? pick(this.providers).key });
    // A resting bid that an ask filled later: the renter learns of its lease from the list.
    if (renter && r.status === 200 && route === 'GET /v1/leases') {
      for (const l of r.body.data as Array<{ id: string; role: string }>) if (l.role === 'renter' && !this.seen.has(l.id)) this.filled(renter, l.id);
    }
  }

  private leaseRead(): Promise<void> {
    const known = this.knownLeases();
    if (known.length === 0) return this.read('GET /v1/market/summary', '/v1/market/summary');
    const { renter, id } = pick(known);
    return this.read('GET /v1/leases/{id}', `/v1/leases/${id}`, renter.key);
  }

  private logRead(): Promise<void> {
    const known = this.knownLeases();
    if (known.length === 0) return this.read('GET /v1/market/summary', '/v1/market/summary');
    const { renter, id } = pick(known);
    return this.read('GET /v1/leases/{id}/logs', `/v1/leases/${id}/logs?tail=20`, renter.key);
  }
}
