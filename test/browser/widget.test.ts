// The price widget in Chromium against the local platform: a provider's machine (the bundled
// runner with a fake nvidia-smi) sells, a renter buys, and the widget must show what the REST
// API says, follow new trades over the live stream, share one WebSocket (or, without it, one
// poll) between widgets, survive hostile page CSS, work inside the /embed/price iframe, and show
// "unavailable" while the API is down, then recover.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Frame, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, freePort, launch, type Platform } from '../support/platform.ts';
import { formatChange, formatPrice, formatsFor } from '../../widget/src/format.ts';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const RUNNER = join(ROOT, 'runner', 'dist', 'gridlease-runner.js');
const SMI = join(ROOT, 'test', 'fixtures', 'nvidia-smi');
const ARTIFACTS = join(ROOT, 'test', 'browser', 'artifacts');
const REGION = 'eu-central';
const MODEL = 'a100-80gb';

const work = mkdtempSync(join(tmpdir(), 'gridlease-widget-browser-'));
let ports: { port: number; libsqlPort: number; stripePort: number };
let platform: Platform | undefined;
let browser: Browser | undefined;
let runner: ChildProcess | undefined;
let host: Server | undefined;
let hostUrl: string;
/** The customer's site: another origin (its own port) serving these pages by path. */
const hostPages = new Map<string, string>();
let provider: string;
let renter: string;
let nodeId: string;

const start = () => launch({ dataDir: join(work, 'data'), ...ports, env: { HEARTBEAT_INTERVAL_S: '1', HEARTBEAT_MIN_INTERVAL_S: '0.5' } });

async function api(path: string, init: { body?: unknown; auth?: string } = {}) {
  const res = await fetch(`${platform!.url}${path}`, {
    method: init.body ? 'POST' : 'GET',
    headers: { 'content-type': 'application/json', 'idempotency-key': crypto.randomUUID(), ...(init.auth ? { authorization: `Bearer ${init.auth}` } : {}) },
    body: init.body ? JSON.stringify(init.body) : undefined,
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function account(role: string): Promise<string> {
  const res = await api('/v1/accounts', { body: { email: `${role}.${crypto.randomUUID().slice(0, 8)}@example.com`, password: 'Widget-Harbor-4417', roles: [role] } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.api_key.key as string;
}

const sell = async (price: string, gpus: number) => {
  const res = await api('/v1/orders', { auth: provider, body: { side: 'sell', region: REGION, gpu_model: MODEL, gpus, price, node_id: nodeId } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
};
const workload = { image: 'local/process', command: [process.execPath, '-e', 'setTimeout(() => {}, 120000)'], env: {}, ports: [] };
const buy = async (price: string) => {
  const res = await api('/v1/orders', { auth: renter, body: { side: 'buy', region: REGION, gpu_model: MODEL, gpus: 1, price, duration_s: 60, pay_with: 'USD', workload } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  expect(res.body.order.status).toBe('filled');
};

const summary = async () => ((await api('/v1/market/summary')).body.data as any[]).find((b) => b.region === REGION && b.gpu_model === MODEL);

/** A page on another origin that embeds the widget like a customer's site would. */
async function hostPage(body: string, head = ''): Promise<Page> {
  const page = await browser!.newPage();
  await page.goto(serve(`<!doctype html><html><head>${head}<script src="${platform!.url}/widget.js"></script></head><body>${body}</body></html>`));
  return page;
}

function serve(html: string): string {
  const path = `/${crypto.randomUUID()}`;
  hostPages.set(path, html);
  return hostUrl + path;
}

const widget = (attrs = '') => `<gridlease-price region="${REGION}" gpu-model="${MODEL}" locale="en-US" ${attrs}></gridlease-price>`;

/** What the nth widget shows, read through its (open) shadow root. */
function shown(where: Page | Frame, index = 0) {
  return where.evaluate((i) => {
    const root = document.querySelectorAll('gridlease-price')[i]!.shadowRoot!;
    const text = (selector: string) => root.querySelector(selector)!.textContent;
    return {
      state: (root.querySelector('.w') as HTMLElement).dataset.state,
      ask: text('.ask'),
      last: text('.last'),
      change: text('.chg'),
      message: text('.off'),
      spark: root.querySelector('.spark path')!.getAttribute('d'),
      live: root.querySelector('.vals')!.getAttribute('aria-live'),
    };
  }, index);
}

/** Setup's wait (expect.poll belongs to tests): resolves once `ok(await get())`, or throws after `timeoutMs`. */
async function until<T>(what: string, get: () => Promise<T>, ok: (value: T) => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await get();
    if (ok(last)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: still ${JSON.stringify(last)} after ${timeoutMs} ms`);
}

function expected(s: any) {
  const f = formatsFor('en-US');
  return { ask: formatPrice(f, s.best_ask), last: formatPrice(f, s.last_price), change: formatChange(f, s.change_24h, s.change_24h_pct) };
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not at ${CHROMIUM}; the browser tests need it. Install it (apt-get install -y --no-install-recommends chromium) or set CHROMIUM_PATH.`);
  }
  ports = { port: await freePort(), libsqlPort: await freePort(), stripePort: await freePort() };
  platform = await start();
  [provider, renter] = await Promise.all([account('provider'), account('renter')]);
  expect((await api('/v1/dev/faucet', { auth: renter, body: { asset: 'USD', amount: '100.00' } })).status).toBe(201);

  const { join_token } = (await api('/v1/nodes/join-tokens', { auth: provider, body: {} })).body;
  const config = join(work, 'runner.json');
  const env = { ...process.env, GRIDLEASE_CONFIG: config, GRIDLEASE_NVIDIA_SMI: join(SMI, 'fake-nvidia-smi'), FAKE_SMI_GPUS: join(SMI, 'a100x8-header-units.csv'), FAKE_SMI_METRICS: join(SMI, 'metrics-a100x8-header-units.csv') };
  const joined = spawnSync(process.execPath, [RUNNER, 'join', '--api', platform.url, '--token', join_token, '--region', REGION], { env, encoding: 'utf8' });
  expect(joined.status, joined.stderr).toBe(0);
  nodeId = JSON.parse(readFileSync(config, 'utf8')).node_id;
  runner = spawn(process.execPath, [RUNNER, 'start', '--executor', 'process'], { env, stdio: 'ignore' });
  await until('node status', async () => (await api(`/v1/nodes/${nodeId}`, { auth: provider })).body.node?.status, (s) => s === 'online', 20_000);

  // Two trades (3.60, then 3.20) and an ask left resting at 4.00.
  await sell('3.60', 1);
  await buy('3.60');
  await sell('3.20', 1);
  await buy('3.60');
  await sell('4.00', 2);
  await until('trades in the summary', async () => (await summary())?.trades_24h, (n) => n === 2, 10_000);

  host = createServer((req, res) => {
    const html = hostPages.get(req.url ?? '');
    res.writeHead(html ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' }).end(html ?? 'not found');
  });
  await new Promise<void>((resolve) => host!.listen(0, '127.0.0.1', resolve));
  hostUrl = `http://127.0.0.1:${(host.address() as { port: number }).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  host?.close();
  runner?.kill('SIGKILL');
  await platform?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('the price widget in Chromium', () => {
  it('shows the same best ask, last trade and 24h change as the REST API', async () => {
    const page = await hostPage(widget());
    const rest = await summary();
    expect(rest).toMatchObject({ best_ask: '4.00', last_price: '3.20' });
    await expect.poll(() => shown(page), { timeout: 10_000 }).toMatchObject({ state: 'live', ...expected(rest) });
    const got = await shown(page);
    expect(got).toMatchObject({ ask: '$4.00', last: '$3.20', live: 'polite' });
    expect(got.spark).toMatch(/^M[\d.]+ [\d.]+/);
    await page.close();
  });

  it('draws its skeleton as soon as it connects, before any data and without building number formats', async () => {
    const page = await hostPage('');
    const drawn = await page.evaluate(([region, model]) => {
      let formats = 0;
      const NumberFormat = Intl.NumberFormat;
      Intl.NumberFormat = function (...args: ConstructorParameters<typeof Intl.NumberFormat>) {
        formats++;
        return new NumberFormat(...args);
      } as unknown as typeof Intl.NumberFormat;
      const el = document.createElement('gridlease-price');
      el.setAttribute('region', region);
      el.setAttribute('gpu-model', model);
      el.setAttribute('locale', 'en-US');
      document.body.append(el);
      // Read in the same task as the append: nothing has been fetched or painted yet.
      const root = el.shadowRoot!;
      const text = (selector: string) => root.querySelector(selector)!.textContent;
      const skeleton = { state: (root.querySelector('.w') as HTMLElement).dataset.state, name: text('.name'), region: text('.region'), last: text('.last'), formats };
      Intl.NumberFormat = NumberFormat;
      return skeleton;
    }, [REGION, MODEL] as const);
    expect(drawn).toEqual({ state: 'loading', name: MODEL.toUpperCase(), region: REGION, last: '—', formats: 0 });
    await expect.poll(async () => (await shown(page)).last, { timeout: 10_000 }).toMatch(/^\$\d/);
    await page.close();
  });

  it('shows a new trade within 2 s of the trade, over the stream', async () => {
    const page = await browser!.newPage();
    let frames = 0;
    page.on('websocket', (ws) => ws.on('framereceived', () => frames++));
    await page.goto(serve(`<script src="${platform!.url}/widget.js"></script>${widget()}`));
    await expect.poll(async () => (await shown(page)).last, { timeout: 10_000 }).toBe('$3.20');
    await expect.poll(() => frames, { timeout: 10_000 }).toBeGreaterThan(0);
    await sell('3.40', 1);
    const traded = Date.now();
    await buy('3.60');
    await expect.poll(async () => (await shown(page)).last, { timeout: 2_000, interval: 50 }).toBe('$3.40');
    expect(Date.now() - traded).toBeLessThanOrEqual(2_000);
    // The 24h change and sparkline follow from the REST endpoints once their cache has expired.
    await expect.poll(async () => (await summary())?.last_price, { timeout: 10_000, interval: 100 }).toBe('3.40');
    const rest = await summary();
    await expect.poll(() => shown(page), { timeout: 10_000 }).toMatchObject({ state: 'live', ...expected(rest) });
    await page.close();
  });

  it('opens one WebSocket for three widgets on one page', async () => {
    const page = await browser!.newPage();
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await page.goto(serve(`<script src="${platform!.url}/widget.js"></script>${widget()}${widget('compact')}<gridlease-price region="us-east" gpu-model="h100-80gb"></gridlease-price>`));
    await expect.poll(() => shown(page, 2), { timeout: 10_000 }).toMatchObject({ state: 'live' });
    await page.waitForTimeout(3_000);
    expect(sockets).toHaveLength(1);
    const url = new URL(sockets[0]!);
    expect(url.pathname).toBe('/v1/market/stream');
    expect(url.searchParams.get('books')!.split(',').sort()).toEqual([`${REGION}:${MODEL}`, 'us-east:h100-80gb'].sort());
    await page.close();
  });

  it('polls, one summary request per poll for three widgets, when the stream is blocked', async () => {
    const page = await browser!.newPage();
    // page.route does not see WebSocket upgrades; routeWebSocket refuses them.
    await page.routeWebSocket(/\/v1\/market\/stream/, (ws) => ws.close({ code: 1011, reason: 'blocked' }));
    const at: number[] = [];
    page.on('request', (req) => {
      if (new URL(req.url()).pathname === '/v1/market/summary') at.push(Date.now());
    });
    await page.goto(serve(`<script src="${platform!.url}/widget.js"></script>${widget()}${widget('compact')}<gridlease-price region="us-east" gpu-model="h100-80gb"></gridlease-price>`));
    const rest = await summary();
    await expect.poll(() => shown(page), { timeout: 10_000 }).toMatchObject({ state: 'live', ...expected(rest) });
    await expect.poll(() => shown(page, 2), { timeout: 10_000 }).toMatchObject({ state: 'live' });
    const first = at.length;
    await page.waitForTimeout(6_500);
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    expect(at.length - first, `summary requests at ${JSON.stringify(gaps)} ms apart`).toBeGreaterThanOrEqual(2);
    expect(at.length - first).toBeLessThanOrEqual(4);
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(1_500);
    await page.close();
  });

  it('is unaffected by hostile CSS on the host page', async () => {
    const hostile = '<style>body * { display: none !important; color: red !important; font-size: 40px !important; visibility: hidden !important } body { color: red }</style>';
    const page = await hostPage(widget(), hostile);
    await expect.poll(async () => (await shown(page)).last, { timeout: 10_000 }).toMatch(/^\$\d/);
    const box = await page.locator('gridlease-price').boundingBox();
    expect(box?.height).toBeGreaterThan(40);
    const style = await page.evaluate(() => {
      const root = document.querySelector('gridlease-price')!.shadowRoot!;
      const last = getComputedStyle(root.querySelector('.last')!);
      return { color: last.color, size: last.fontSize, visibility: last.visibility };
    });
    expect(style.color).not.toBe('rgb(255, 0, 0)');
    expect(style.size).toBe('16px');
    expect(style.visibility).toBe('visible');
    await page.close();
  });

  it('works inside the /embed/price iframe, in both themes and compact', async () => {
    const page = await browser!.newPage({ viewport: { width: 720, height: 420 } });
    const src = (q: string) => `${platform!.url}/embed/price?region=${REGION}&gpu_model=${MODEL}&locale=en-US${q}`;
    const url = serve(
          `<body style="font-family:serif;display:grid;gap:8px;width:340px;margin:16px">` +
          `<iframe title="price" src="${src('&theme=light')}" width="340" height="120" style="border:0"></iframe>` +
          `<iframe title="price dark" src="${src('&theme=dark')}" width="340" height="120" style="border:0"></iframe>` +
          `<iframe title="price compact" src="${src('&compact=true')}" width="340" height="64" style="border:0"></iframe></body>`,
    );
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(url);
    const rest = await summary();
    for (const frame of page.frames().slice(1)) {
      await expect.poll(() => shown(frame), { timeout: 10_000 }).toMatchObject({ state: 'live', ...expected(rest) });
      // The widget fits the documented height without scrolling.
      const overflow = await frame.evaluate(() => document.documentElement.scrollHeight - document.documentElement.clientHeight);
      expect(overflow).toBeLessThanOrEqual(0);
    }
    expect(errors, 'no CSP violations or script errors').toEqual([]);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'widget-embed.png') });
    await page.close();
  });

  it('shows "unavailable" while the API is down and recovers by itself', async () => {
    const page = await hostPage(widget());
    await expect.poll(async () => (await shown(page)).state, { timeout: 10_000 }).toBe('live');
    await platform!.stop();
    await expect.poll(() => shown(page), { timeout: 10_000, interval: 200 }).toMatchObject({ state: 'unavailable', message: 'Price data unavailable. Retrying…' });
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'widget-unavailable.png') });
    platform = await start();
    await expect.poll(() => shown(page), { timeout: 30_000, interval: 250 }).toMatchObject({ state: 'live', last: '$3.40' });
    await page.close();
  });
});
