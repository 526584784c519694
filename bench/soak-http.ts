// The soak's HTTP client: every request is counted by status class and route, its latency kept
// in the current minute's window, and a 4xx that the traffic did not provoke on purpose is
// recorded with a sample of its body.
import { Agent, request } from 'node:http';

export interface Reply {
  status: number;
  body: any;
  headers: Record<string, string | string[] | undefined>;
}

export interface CallOptions {
  auth?: string;
  body?: unknown;
  /** Sends a fresh Idempotency-Key unless one is given. */
  key?: string | true;
  /**
   * Non-2xx statuses this request may meet by the traffic's own making (a cancel racing a fill:
   * 409; a renter out of money: 402). 429 is always counted apart; any other 4xx is unexpected.
   */
  expect?: number[];
}

/** Counts for one window (a minute) or the whole run. */
export interface Window {
  requests: number;
  ok2xx: number;
  c4xx: number;
  limited: number;
  c5xx: number;
  /** Connection errors and timeouts: no status at all. */
  failed: number;
  unexpected4xx: number;
  latencies: number[];
}

export const emptyWindow = (): Window => ({ requests: 0, ok2xx: 0, c4xx: 0, limited: 0, c5xx: 0, failed: 0, unexpected4xx: 0, latencies: [] });

export interface RouteStats {
  count: number;
  statuses: Map<number, number>;
  latencies: number[];
}

export interface Sample {
  route: string;
  status: number;
  body: string;
}

const TIMEOUT_MS = 20_000;
const MAX_SAMPLES = 8;

export class SoakClient {
  readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  minute = emptyWindow();
  readonly total = emptyWindow();
  readonly routes = new Map<string, RouteStats>();
  /** Unexpected 4xx and every 5xx, a few of each route and status. */
  readonly samples: Sample[] = [];
  /** The first and the latest answer of each expected refusal (route and status), to read what it said. */
  readonly refusals = new Map<string, { first: string; latest: string }>();
  inFlight = 0;

  private readonly base: URL;

  constructor(base: URL) {
    this.base = base;
  }

  /** Starts a new minute; returns the one that ended. */
  roll(): Window {
    const ended = this.minute;
    this.minute = emptyWindow();
    return ended;
  }

  /** `route` names the request in the report, with ids replaced by placeholders. */
  call(route: string, method: string, path: string, opts: CallOptions = {}): Promise<Reply> {
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers: Record<string, string | number> = {};
    if (payload !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
    if (opts.auth) headers.authorization = `Bearer ${opts.auth}`;
    if (opts.key) headers['idempotency-key'] = opts.key === true ? crypto.randomUUID() : opts.key;
    const started = performance.now();
    this.inFlight++;
    return new Promise<Reply>((resolve, reject) => {
      const req = request({ agent: this.agent, host: this.base.hostname, port: this.base.port, path, method, headers, timeout: TIMEOUT_MS }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('error', (err) => {
          this.inFlight--;
          this.failure();
          reject(err);
        });
        res.on('end', () => {
          this.inFlight--;
          const status = res.statusCode ?? 0;
          this.record(route, status, performance.now() - started, text, opts.expect ?? []);
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // not JSON: keep the text
          }
          resolve({ status, body, headers: res.headers });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`timeout after ${TIMEOUT_MS} ms`)));
      req.on('error', (err) => {
        this.inFlight--;
        this.failure();
        reject(err);
      });
      req.end(payload);
    });
  }

  private failure(): void {
    for (const w of [this.minute, this.total]) {
      w.requests++;
      w.failed++;
    }
  }

  /** Counts a reply received outside `call` (a stream's headers). */
  record(route: string, status: number, ms: number, text: string, expect: number[]): void {
    const unexpected = status >= 400 && status < 500 && status !== 429 && !expect.includes(status);
    for (const w of [this.minute, this.total]) {
      w.requests++;
      w.latencies.push(ms);
      if (status < 300) w.ok2xx++;
      else if (status === 429) w.limited++;
      else if (status < 500) w.c4xx++;
      else w.c5xx++;
      if (unexpected) w.unexpected4xx++;
    }
    let r = this.routes.get(route);
    if (!r) this.routes.set(route, (r = { count: 0, statuses: new Map(), latencies: [] }));
    r.count++;
    r.statuses.set(status, (r.statuses.get(status) ?? 0) + 1);
    r.latencies.push(ms);
    if (status >= 400 && !unexpected && status < 500) {
      const key = `${route} → ${status}`;
      const seen = this.refusals.get(key);
      if (seen) seen.latest = text.slice(0, 200);
      else this.refusals.set(key, { first: text.slice(0, 200), latest: text.slice(0, 200) });
    }
    if ((unexpected || status >= 500) && this.samples.filter((s) => s.route === route && s.status === status).length < 2 && this.samples.length < MAX_SAMPLES) {
      this.samples.push({ route, status, body: text.slice(0, 300) });
    }
  }

  close(): void {
    this.agent.destroy();
  }
}
