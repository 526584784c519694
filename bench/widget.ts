// npm run bench:widget — the price widget and the data it reads, on the local platform:
//   1. size: the bytes GET /widget.js serves (as decoded by the client), raw and gzipped with
//      node:zlib at level 9, and the Content-Encoding the platform sent;
//   2. Chromium (CHROMIUM_PATH, default /usr/bin/chromium, headless, through playwright-core):
//      BENCH_PAGES (20) loads of the platform's own /embed/price page (us-east, h100-80gb,
//      en-US), each in a new browser context with the HTTP cache disabled (CDP
//      Network.setCacheDisabled), after BENCH_WARMUP_PAGES (2) loads that are not reported. An
//      init script records, with performance marks in the page: the widget script's resource
//      entry responseEnd (PerformanceObserver) and its `load` event; the first render (a
//      MutationObserver on the document, then on the element's shadow root, sees the shadow
//      root hold the widget's markup) and the next animation frame after it; the first price
//      (the widget's state is `live` and its last-trade cell shows a price) and the frame after
//      it. The first price includes the widget's GET /v1/market/summary and, since the book has
//      trades, its candles request; the summary may come from the edge cache (max-age 2 s)
//      when loads are less than 2 s apart. A load whose price is not shown within 10 s fails;
//   3. GET /v1/market/summary latency, BENCH_SAMPLES (200) requests one at a time over one
//      keep-alive connection, each for: GET /livez (the floor); cached: the same URL again and
//      again after one priming request, within the route's max-age=2, each reply classified by
//      the cache that answered it: the isolate's memory (RFC 9211 `Cache-Status:
//      gridlease-isolate; hit`) or the Workers cache (`cf-cache-status: HIT`); only hits of
//      either enter the cached percentiles, and the table counts each kind. The local runtime
//      labels no miss, so a reply after the entries expired is counted under "no header" and
//      left out; uncached: a query string unique to each request (the route ignores the query
//      and both caches key on the full URL, so every request misses, asks every RegionBook for
//      its stats and stores a new entry).
// Setup: a fresh platform (temp data folder, HEARTBEAT_INTERVAL_S=1, HEARTBEAT_MIN_INTERVAL_S=0.5),
// a provider and a renter (dev faucet: 100 USD), one node registered with a fake 4 × H100
// machine in us-east and kept online by heartbeats from this process every second (acking its
// commands and reporting its leases started), then two trades (sells at 3.60 and 3.20, each
// crossed by a buy at 3.60) and an ask resting at 4.00, so the summary has a book with an ask,
// a last price and a 24 h change. The heartbeats go on during the measurements.
// Request logging: off unless LOG_REQUESTS=true is in the environment (passed through).
// Goals: ≤ 8 KiB gzipped; first render p95 ≤ 150 ms after the script's responseEnd; cached
// summary p50 ≤ 2 ms.
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium, type Browser } from 'playwright-core';
import { freePort, launch, type Platform } from '../test/support/platform.ts';
import { h100Machine, num, percentile } from './support.ts';
import { generateNodeKey } from '../runner/src/identity.ts';

const PAGES = num('BENCH_PAGES', 20);
const WARMUP_PAGES = num('BENCH_WARMUP_PAGES', 2);
const SAMPLES = num('BENCH_SAMPLES', 200);
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const LOG_REQUESTS = process.env.LOG_REQUESTS === 'true' ? 'true' : 'false';
const REGION = 'us-east';
const MODEL = 'h100-80gb';
const PRICE_TIMEOUT_MS = 10_000;

const GOAL_GZIP_BYTES = 8 * 1024;
const GOAL_RENDER_MS = 150;
const GOAL_CACHED_P50_MS = 2;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

let base: URL;
function send(agent: Agent, method: string, path: string, headers: Record<string, string | number> = {}, body?: unknown): Promise<Reply> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  const all = text === undefined ? headers : { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) };
  return new Promise((resolve, reject) => {
    const req = request({ agent, host: base.hostname, port: base.port, path, method, headers: all, timeout: 10_000 }, (res) => {
      let out = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (out += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: out }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(text);
  });
}

async function api(agent: Agent, method: string, path: string, opts: { auth?: string; body?: unknown } = {}, expect = method === 'POST' ? 201 : 200): Promise<any> {
  const headers: Record<string, string> = { 'idempotency-key': crypto.randomUUID() };
  if (opts.auth) headers.authorization = `Bearer ${opts.auth}`;
  const r = await send(agent, method, path, headers, opts.body);
  if (r.status !== expect) throw new Error(`${method} ${path}: ${r.status} ${r.text.slice(0, 300)}`);
  return JSON.parse(r.text);
}

// ── A simulated runner for one node ─────────────────────────────────────────────────
interface Node {
  id: string;
  token: string;
  bootId: string;
  seq: number;
  leases: Map<string, 'starting' | 'running'>;
  acks: Set<string>;
  handled: Set<string>;
  stopped: boolean;
}

async function heartbeat(agent: Agent, n: Node): Promise<void> {
  const body = {
    node_id: n.id,
    boot_id: n.bootId,
    seq: n.seq++,
    sent_at: new Date().toISOString(),
    draining: false,
    gpus: [0, 1, 2, 3].map((index) => ({ index, utilization_pct: 90, memory_used_mib: 60_000, temperature_c: 65, power_w: 600 })),
    leases: [...n.leases].map(([lease_id, state]) => ({ lease_id, state })),
    acks: [...n.acks],
  };
  const r = await send(agent, 'POST', '/v1/runner/heartbeats', { authorization: `Bearer ${n.token}` }, body);
  if (r.status !== 202) return;
  const reply = JSON.parse(r.text) as { accepted?: boolean; commands?: Array<{ id: string; type: string; lease_id?: string }> };
  if (!reply.accepted) return;
  for (const id of body.acks) n.acks.delete(id);
  for (const cmd of reply.commands ?? []) {
    n.acks.add(cmd.id);
    if (n.handled.has(cmd.id)) continue;
    n.handled.add(cmd.id);
    if (cmd.type === 'start_lease' && cmd.lease_id) {
      n.leases.set(cmd.lease_id, 'starting');
      const started = await send(agent, 'POST', `/v1/runner/leases/${cmd.lease_id}/events`, { authorization: `Bearer ${n.token}` }, { type: 'started', at: new Date().toISOString() });
      if (started.status === 202) n.leases.set(cmd.lease_id, 'running');
    } else if (cmd.type === 'stop_lease' && cmd.lease_id) {
      n.leases.delete(cmd.lease_id);
    }
  }
}

function keepOnline(agent: Agent, n: Node): void {
  const tick = () => {
    if (n.stopped) return;
    heartbeat(agent, n)
      .catch(() => undefined)
      .finally(() => {
        if (!n.stopped) setTimeout(tick, 1000);
      });
  };
  tick();
}

async function setup(agent: Agent): Promise<Node> {
  const account = async (role: string) =>
    (await api(agent, 'POST', '/v1/accounts', { body: { email: `bench.widget.${role}.${crypto.randomUUID().slice(0, 8)}@example.com`, password: 'Benchmark-Widget-5173', roles: [role] } })).api_key
      .key as string;
  const provider = await account('provider');
  const renter = await account('renter');
  await api(agent, 'POST', '/v1/dev/faucet', { auth: renter, body: { asset: 'USD', amount: '100' } });
  const { join_token } = await api(agent, 'POST', '/v1/nodes/join-tokens', { auth: provider, body: {} });
  const machine = h100Machine('bench-widget-0', 4);
  const reg = await api(agent, 'POST', '/v1/runner/register', { body: { join_token, region: REGION, machine, public_key: generateNodeKey().publicKey } });
  const node: Node = { id: reg.node_id, token: reg.node_token, bootId: crypto.randomUUID(), seq: 0, leases: new Map(), acks: new Set(), handled: new Set(), stopped: false };
  keepOnline(agent, node);
  const onlineBy = Date.now() + 30_000;
  while ((await api(agent, 'GET', `/v1/nodes/${node.id}`, { auth: provider })).node?.status !== 'online') {
    if (Date.now() > onlineBy) throw new Error('the node is not online after 30 s');
    await sleep(250);
  }
  const sell = (price: string, gpus: number) =>
    api(agent, 'POST', '/v1/orders', { auth: provider, body: { side: 'sell', region: REGION, gpu_model: MODEL, gpus, price, node_id: node.id } });
  const buy = async () => {
    const workload = { image: 'busybox', command: [], env: {}, ports: [] };
    const placed = await api(agent, 'POST', '/v1/orders', { auth: renter, body: { side: 'buy', region: REGION, gpu_model: MODEL, gpus: 1, price: '3.60', duration_s: 600, pay_with: 'USD', workload } });
    if (placed.order.status !== 'filled') throw new Error(`buy did not fill: ${JSON.stringify(placed).slice(0, 300)}`);
  };
  await sell('3.60', 1);
  await buy();
  await sell('3.20', 1);
  await buy();
  await sell('4.00', 2);
  const tradedBy = Date.now() + 15_000;
  for (;;) {
    const data = (await api(agent, 'GET', `/v1/market/summary?setup=${crypto.randomUUID()}`)).data as Array<{ region: string; gpu_model: string; trades_24h: number }>;
    if (data.find((b) => b.region === REGION && b.gpu_model === MODEL)?.trades_24h === 2) break;
    if (Date.now() > tradedBy) throw new Error(`the summary does not show 2 trades after 15 s: ${JSON.stringify(data)}`);
    await sleep(250);
  }
  return node;
}

// ── The widget in Chromium ──────────────────────────────────────────────────────────
/** Runs in the page before any of its scripts: performance marks for the widget's milestones. */
function instrument() {
  const at: Record<string, number> = {};
  (window as unknown as { __gl: Record<string, number> }).__gl = at;
  const mark = (name: string) => {
    if (!(name in at)) at[name] = performance.mark(`gridlease:${name}`).startTime;
  };
  const isWidget = (url: string) => /\/widget(\.js|\/[0-9a-f]+\.js)(\?|$)/.test(url);
  new PerformanceObserver((list) => {
    for (const e of list.getEntries() as PerformanceResourceTiming[]) if (isWidget(e.name) && !('responseEnd' in at)) at.responseEnd = e.responseEnd;
  }).observe({ type: 'resource', buffered: true });
  document.addEventListener('load', (e) => {
    if (e.target instanceof HTMLScriptElement && isWidget(e.target.src)) mark('load');
  }, true);
  const check = (root: ShadowRoot) => {
    const box = root.querySelector<HTMLElement>('.w');
    if (!box) return;
    if (!('render' in at)) {
      mark('render');
      requestAnimationFrame(() => mark('renderFrame'));
    }
    const last = root.querySelector('.last')?.textContent ?? '';
    if (box.dataset.state === 'live' && /\d/.test(last) && !('price' in at)) {
      mark('price');
      requestAnimationFrame(() => mark('priceFrame'));
    } else if (box.dataset.state !== 'loading' && box.dataset.state !== 'live') {
      at.otherState ??= performance.now();
    }
  };
  let watched = false;
  new MutationObserver((_, self) => {
    const root = document.querySelector('gridlease-price')?.shadowRoot;
    if (!root || watched) return;
    watched = true;
    self.disconnect();
    check(root);
    new MutationObserver(() => check(root)).observe(root, { subtree: true, childList: true, characterData: true, attributes: true });
  }).observe(document, { subtree: true, childList: true });
}

interface Load {
  responseEnd: number;
  load: number;
  render: number;
  renderFrame: number;
  price: number;
  priceFrame: number;
}

async function pageLoad(browser: Browser, url: string): Promise<Load> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    await page.addInitScript(instrument);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(url);
    try {
      await page.waitForFunction(() => {
        const at = (window as unknown as { __gl: Record<string, number> }).__gl;
        return 'priceFrame' in at && 'responseEnd' in at;
      }, undefined, { timeout: PRICE_TIMEOUT_MS, polling: 50 });
    } catch {
      const at = await page.evaluate(() => (window as unknown as { __gl: Record<string, number> }).__gl);
      throw new Error(`no price within ${PRICE_TIMEOUT_MS} ms: marks ${JSON.stringify(at)}; errors ${JSON.stringify(errors)}`);
    }
    if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
    return (await page.evaluate(() => (window as unknown as { __gl: Record<string, number> }).__gl)) as unknown as Load;
  } finally {
    await context.close();
  }
}

// ── Sequential HTTP samples ─────────────────────────────────────────────────────────
interface Samples {
  name: string;
  latencies: number[];
  /** Hits from the isolate's memory. */
  memoryHits: number;
  /** Hits from the Workers cache. */
  hits: number;
  misses: number;
  /** Replies that name no cache. */
  unlabelled: number;
  failures: number;
  firstFailure: string | null;
}

async function sample(agent: Agent, name: string, path: (i: number) => string, cachedOnly: boolean): Promise<Samples> {
  const s: Samples = { name, latencies: [], memoryHits: 0, hits: 0, misses: 0, unlabelled: 0, failures: 0, firstFailure: null };
  for (let i = 0; i < SAMPLES; i++) {
    const started = performance.now();
    let r: Reply;
    try {
      r = await send(agent, 'GET', path(i));
    } catch (err) {
      s.failures++;
      s.firstFailure ??= String(err);
      continue;
    }
    const took = performance.now() - started;
    if (r.status !== 200) {
      s.failures++;
      s.firstFailure ??= `${r.status} ${r.text.slice(0, 200)}`;
      continue;
    }
    const memory = /^gridlease-isolate; hit(;|$)/.test(String(r.headers['cache-status'] ?? ''));
    const status = String(r.headers['cf-cache-status'] ?? '').toUpperCase();
    if (memory) s.memoryHits++;
    else if (status === 'HIT') s.hits++;
    else if (status) s.misses++;
    else s.unlabelled++;
    if (!cachedOnly || memory || status === 'HIT') s.latencies.push(took);
  }
  s.latencies.sort((a, b) => a - b);
  return s;
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'gridlease-bench-widget-'));
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  const sampler = new Agent({ keepAlive: true, maxSockets: 1 });
  let platform: Platform | undefined;
  let browser: Browser | undefined;
  let node: Node | undefined;
  try {
    platform = await launch({
      dataDir,
      port: await freePort(),
      libsqlPort: await freePort(),
      env: { LOG_REQUESTS, HEARTBEAT_INTERVAL_S: '1', HEARTBEAT_MIN_INTERVAL_S: '0.5' },
    });
    base = new URL(platform.url);
    const loadAtStart = loadavg()[0]!;
    node = await setup(agent);
    console.error('setup done: node online, 2 trades, an ask resting');

    // 1. Size of what is served.
    const served = await fetch(`${platform.url}/widget.js`, { headers: { 'accept-encoding': 'identity' } });
    if (served.status !== 200) throw new Error(`GET /widget.js: ${served.status}`);
    const bytes = Buffer.from(await served.arrayBuffer());
    const encoding = served.headers.get('content-encoding') ?? 'none';
    const gzipped = gzipSync(bytes, { level: 9 }).length;

    // 2. Chromium.
    browser = await chromium.launch({ executablePath: CHROMIUM });
    const chromiumVersion = browser.version();
    const embed = `${platform.url}/embed/price?region=${REGION}&gpu_model=${MODEL}&locale=en-US`;
    for (let i = 0; i < WARMUP_PAGES; i++) await pageLoad(browser, embed);
    const loads: Load[] = [];
    for (let i = 0; i < PAGES; i++) loads.push(await pageLoad(browser, embed));
    await browser.close();
    browser = undefined;
    console.error(`${PAGES} page loads done`);

    // 3. Summary latency, one request at a time, the floor first.
    const livez = await sample(sampler, 'GET /livez (floor)', () => '/livez', false);
    const primed = await send(sampler, 'GET', '/v1/market/summary?bench=cached');
    if (primed.status !== 200) throw new Error(`GET /v1/market/summary: ${primed.status} ${primed.text.slice(0, 200)}`);
    await sleep(50); // the priming reply's Workers cache put runs after the reply (waitUntil)
    const cached = await sample(sampler, 'GET /v1/market/summary, cached (same URL, cache hits only)', () => '/v1/market/summary?bench=cached', true);
    const uncached = await sample(sampler, 'GET /v1/market/summary, uncached (unique query string each)', () => `/v1/market/summary?bench=${crypto.randomUUID()}`, false);

    const books = (JSON.parse(primed.text).data as unknown[]).length;
    console.log(
      `\n${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? 'unknown'}) shared by Chromium, this process, the launcher (libSQL server) and workerd; ` +
        `1-min load average ${loadAtStart.toFixed(2)} before, ${loadavg()[0]!.toFixed(2)} after; Node ${process.version}; Chromium ${chromiumVersion}; ` +
        `request logging ${LOG_REQUESTS === 'true' ? 'on' : 'off'}; the summary lists ${books} book(s)\n`,
    );

    console.log('## Size\n');
    console.log('| script | raw B | gzip -9 B | Content-Encoding served |');
    console.log('|---|---:|---:|---|');
    console.log(`| GET /widget.js | ${bytes.length} | ${gzipped} (${(gzipped / 1024).toFixed(2)} KiB) | ${encoding} |`);

    const col = (f: (l: Load) => number) => loads.map(f).filter(Number.isFinite).sort((a, b) => a - b);
    const rows: Array<[string, number[]]> = [
      ['script responseEnd → first render (shadow root markup)', col((l) => l.render - l.responseEnd)],
      ['script responseEnd → first frame after render', col((l) => l.renderFrame - l.responseEnd)],
      ['script load event → first render', col((l) => l.render - l.load)],
      ['script responseEnd → first price (state live)', col((l) => l.price - l.responseEnd)],
      ['script responseEnd → first frame after price', col((l) => l.priceFrame - l.responseEnd)],
      ['navigation start → script responseEnd', col((l) => l.responseEnd)],
    ];
    console.log(`\n## Chromium: /embed/price, ${PAGES} fresh contexts, cache disabled (${WARMUP_PAGES} warm-up loads not reported)\n`);
    console.log('| interval | n | p50 ms | p95 ms | max ms |');
    console.log('|---|---:|---:|---:|---:|');
    for (const [name, l] of rows) console.log(`| ${name} | ${l.length} | ${ms(percentile(l, 50))} | ${ms(percentile(l, 95))} | ${ms(l.at(-1) ?? NaN)} |`);
    console.log(
      `\ntimes from performance marks in the page (performance.now(), ms since navigation start); p95 of ${PAGES} is the ${Math.min(PAGES, Math.floor(0.95 * PAGES) + 1)}th smallest; ` +
        'first price includes GET /v1/market/summary and the book\'s candles request.',
    );

    console.log(`\n## GET /v1/market/summary, ${SAMPLES} requests one at a time each\n`);
    console.log('| row | 2xx samples used | p50 ms | p99 ms | max ms | p50 vs floor | memory HIT / Workers cache HIT / MISS / no header | failures |');
    console.log('|---|---:|---:|---:|---:|---:|---|---:|');
    const floorP50 = percentile(livez.latencies, 50);
    for (const s of [livez, cached, uncached]) {
      const l = s.latencies;
      const vs = s === livez ? '—' : `${(percentile(l, 50) / floorP50).toFixed(1)}×`;
      console.log(`| ${s.name} | ${l.length} | ${ms(percentile(l, 50))} | ${ms(percentile(l, 99))} | ${ms(l.at(-1) ?? NaN)} | ${vs} | ${s.memoryHits} / ${s.hits} / ${s.misses} / ${s.unlabelled} | ${s.failures} |`);
    }
    for (const s of [livez, cached, uncached]) if (s.firstFailure) console.log(`\nfirst failure, ${s.name}: ${s.firstFailure}`);
    console.log('\nlatency: the HTTP round trip over one keep-alive connection, from this process.');

    const render = col((l) => l.render - l.responseEnd);
    const renderP95 = percentile(render, 95);
    const cachedP50 = percentile(cached.latencies, 50);
    const allLoaded = render.length === PAGES;
    const enoughHits = cached.latencies.length >= SAMPLES / 2;
    console.log('\n## Goals\n');
    console.log(`- widget ≤ ${GOAL_GZIP_BYTES} B gzipped: ${gzipped} B → ${gzipped <= GOAL_GZIP_BYTES ? 'met' : 'NOT met'}`);
    console.log(
      `- first render ≤ ${GOAL_RENDER_MS} ms after the script loads (p95, from responseEnd): ${ms(renderP95)} ms (max ${ms(render.at(-1) ?? NaN)} ms)` +
        `${allLoaded ? '' : `, over only ${render.length} of ${PAGES} loads`} → ${allLoaded && renderP95 <= GOAL_RENDER_MS ? 'met' : 'NOT met'}`,
    );
    console.log(
      `- cached summary p50 ≤ ${GOAL_CACHED_P50_MS} ms: ${ms(cachedP50)} ms over ${cached.latencies.length} hits of ${SAMPLES} (uncached p50 ${ms(percentile(uncached.latencies, 50))} ms, ` +
        `GET /livez p50 ${ms(floorP50)} ms) → ${enoughHits && cachedP50 <= GOAL_CACHED_P50_MS ? 'met' : 'NOT met'}`,
    );
  } finally {
    if (node) node.stopped = true;
    await browser?.close();
    agent.destroy();
    sampler.destroy();
    if (platform) await platform.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
