// GET /: a page to watch the market and copy a price widget. Self-contained (inline CSS and JS
// under a per-response nonce, nothing else allowed); it polls /v1/market/summary every 2 s, the
// same cached data any client gets. The widget snippets point at /widget.js and /embed/price.
// The supply-rewards figures (docs/rewards.md) are rendered from the data GET
// /v1/rewards/schedule reads (the configuration, the closed epochs' Σ paid) and the last closed
// epoch's row, and refreshed from /v1/rewards/schedule and /v1/rewards/epochs/{n} every 30 s.
import { Hono } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { GPU_MODELS } from '../catalog/gpus.ts';
import { REGIONS } from '../catalog/regions.ts';
import { money } from '../contracts/money.ts';
import { connection } from '../db/client.ts';
import type { Bindings } from '../env.ts';
import { log } from '../http/log.ts';
import { rewardsConfig } from '../rewards/config.ts';
import { epochBounds, epochOf } from '../rewards/schedule.ts';

const app = new Hono<AppEnv>();

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

function contentSecurityPolicy(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "connect-src 'self'",
    "frame-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

const STYLE = `
  body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1.5rem; color: #1b1f24; }
  h1 { font-size: 1.5rem; margin: 0 0 .25rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
  .muted { color: #5b6470; font-size: .9rem; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  th, td { padding: .35rem .6rem; border-bottom: 1px solid #e3e6ea; text-align: right; }
  th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
  .up { color: #137333; } .down { color: #b3261e; } .flash { background: #fff6cc; }
  label { margin-right: 1rem; } select { font: inherit; }
  pre { background: #f4f6f8; padding: .75rem; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
  iframe { border: 1px solid #e3e6ea; width: 100%; max-width: 24rem; }
  a { color: #0b57d0; }
  table.figures { width: auto; min-width: 24rem; }
  table.figures th { font-weight: 600; }
`;

// Reads the catalog from the page's JSON block; builds every node with textContent, never HTML.
const SCRIPT = `
(() => {
  const catalog = JSON.parse(document.getElementById('catalog').textContent);
  const body = document.getElementById('rows');
  const status = document.getElementById('status');
  const name = (list, id) => (list.find((x) => x.id === id) || { name: id }).name;
  const seen = new Map();
  function cell(row, text, cls) {
    const td = document.createElement('td');
    td.textContent = text === null || text === undefined ? '—' : text;
    if (cls) td.className = cls;
    row.appendChild(td);
  }
  async function refresh() {
    try {
      const res = await fetch('/v1/market/summary');
      if (!res.ok) throw new Error(res.status);
      const { data } = await res.json();
      body.replaceChildren();
      for (const b of data) {
        const tr = document.createElement('tr');
        const key = b.region + ':' + b.gpu_model;
        const sig = [b.best_bid, b.best_ask, b.last_price].join('|');
        if (seen.has(key) && seen.get(key) !== sig) tr.className = 'flash';
        seen.set(key, sig);
        cell(tr, name(catalog.regions, b.region));
        cell(tr, name(catalog.gpus, b.gpu_model));
        cell(tr, b.best_bid);
        cell(tr, b.best_ask);
        cell(tr, b.last_price);
        const pct = b.change_24h_pct;
        cell(tr, b.change_24h === null ? null : b.change_24h + (pct === null ? '' : ' (' + (pct > 0 ? '+' : '') + pct + '%)'), pct > 0 ? 'up' : pct < 0 ? 'down' : '');
        cell(tr, b.volume_24h_gpu_hours);
        body.appendChild(tr);
      }
      if (data.length === 0) {
        const tr = document.createElement('tr');
        const td = document.createElement('td');
        td.colSpan = 7;
        td.textContent = 'No orders yet. Run npm run demo to start a market.';
        tr.appendChild(td);
        body.appendChild(tr);
      }
      status.textContent = 'Updated ' + new Date().toLocaleTimeString();
    } catch (err) {
      status.textContent = 'Could not load the summary (' + err.message + '); retrying';
    }
  }
  refresh();
  setInterval(refresh, 2000);

  const region = document.getElementById('region');
  const model = document.getElementById('gpu-model');
  const origin = location.origin;
  function build() {
    const r = region.value, m = model.value;
    const q = 'region=' + encodeURIComponent(r) + '&gpu_model=' + encodeURIComponent(m);
    document.getElementById('snippet-element').textContent =
      '<' + 'script src="' + origin + '/widget.js" async></' + 'script>\\n<gridlease-price region="' + r + '" gpu-model="' + m + '"></gridlease-price>';
    document.getElementById('snippet-iframe').textContent =
      '<iframe src="' + origin + '/embed/price?' + q + '" height="120" title="Gridlease price"></iframe>';
    document.getElementById('preview').src = '/embed/price?' + q;
  }
  region.addEventListener('change', build);
  model.addEventListener('change', build);
  build();

  // Supply rewards: the schedule every 30 s; the last closed epoch's report when another closes.
  const rewards = document.getElementById('rewards');
  const put = (id, text) => { document.getElementById(id).textContent = text; };
  const micro = (s) => { const [w, f = ''] = s.replace('-', '').split('.'); const v = BigInt(w) * 1000000n + BigInt(f.padEnd(6, '0')); return s.startsWith('-') ? -v : v; };
  const grid = (v) => {
    const neg = v < 0n, a = neg ? -v : v;
    let f = (a % 1000000n).toString().padStart(6, '0').replace(/0+$/, '');
    if (f.length < 2) f = f.padEnd(2, '0');
    return (neg ? '-' : '') + (a / 1000000n).toString().replace(/\\B(?=(\\d{3})+(?!\\d))/g, ',') + '.' + f + ' GRID';
  };
  const percent = (ppm) => Math.floor(ppm / 10000) + (ppm % 10000 ? '.' + String(ppm % 10000).padStart(4, '0').replace(/0+$/, '') : '') + '%';
  async function lastClosed(n) {
    let cursor = null, nodes = 0, first = null;
    do {
      const res = await fetch('/v1/rewards/epochs/' + n + '?limit=1000' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
      if (!res.ok) throw new Error(res.status);
      const page = await res.json();
      first = first || page;
      nodes += page.lines.filter((l) => micro(l.amount) > 0n).length;
      cursor = page.next_cursor;
    } while (cursor);
    put('rewards-last-epoch', String(n));
    put('rewards-last-paid', grid(micro(first.paid)));
    put('rewards-last-nodes', String(nodes));
    put('rewards-last-taper', percent(first.taper_ppm));
  }
  async function refreshRewards() {
    try {
      const res = await fetch('/v1/rewards/schedule');
      if (!res.ok) throw new Error(res.status);
      const s = await res.json();
      put('rewards-current-epoch', s.current_epoch === null ? 'not started' : String(s.current_epoch));
      put('rewards-current-ends', s.current_epoch_end === null ? 'starts ' + s.start : s.current_epoch_end);
      put('rewards-left', grid(micro(s.allocation) - micro(s.emitted)));
      if (s.closed_epochs > 0 && String(s.closed_epochs) !== rewards.dataset.closed) {
        await lastClosed(s.closed_epochs - 1);
        rewards.dataset.closed = String(s.closed_epochs);
      }
    } catch (err) {
      // Keep the last figures; the next refresh tries again.
    }
  }
  setInterval(refreshRewards, 30000);
})();
`;

/** Micro-units as the API writes them, with thousands grouped: 399998000000000n → "399,998,000.00 GRID". */
function grid(micro: bigint): string {
  const [whole, fraction] = money(micro).split('.');
  return `${whole!.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${fraction} GRID`;
}

/** Parts per million as a percentage: 1,000,000 → "100%", 875,000 → "87.5%". */
function percent(ppm: number): string {
  const rest = ppm % 10_000;
  return `${Math.floor(ppm / 10_000)}${rest ? `.${String(rest).padStart(4, '0').replace(/0+$/, '')}` : ''}%`;
}

export interface RewardsFigures {
  currentEpoch: number | null;
  /** ISO time the current epoch ends, or when epoch 0 starts. */
  currentEnds: string;
  /** The allocation less Σ paid over closed epochs. */
  left: bigint;
  closedEpochs: number;
  last: { epoch: number; paid: bigint; nodesPaid: number; taperPpm: number } | null;
}

/** The page's rewards figures: GET /v1/rewards/schedule's reads, and the newest closed epoch with its count of paid lines. */
export async function rewardsFigures(env: Bindings, now = Date.now()): Promise<RewardsFigures> {
  const config = rewardsConfig(env);
  const current = epochOf(config, now);
  const [totals, last] = await connection(env).money.batch(
    [
      "SELECT COALESCE(SUM(paid), 0) AS paid, COUNT(*) AS n FROM reward_epochs WHERE status = 'closed'",
      `SELECT e.epoch, e.paid, e.taper_ppm, (SELECT COUNT(*) FROM reward_lines l WHERE l.epoch = e.epoch AND l.amount > 0) AS nodes_paid
         FROM reward_epochs e WHERE e.status = 'closed' ORDER BY e.epoch DESC LIMIT 1`,
    ],
    'read',
  );
  const emitted = BigInt((totals!.rows[0]?.paid as bigint | undefined) ?? 0n);
  const row = last!.rows[0];
  return {
    currentEpoch: current >= 0 ? current : null,
    currentEnds: new Date(current >= 0 ? epochBounds(config, current).endMs : config.startMs).toISOString(),
    left: config.allocation - emitted,
    closedEpochs: Number(totals!.rows[0]?.n ?? 0),
    last: row ? { epoch: Number(row.epoch), paid: BigInt(row.paid as bigint), nodesPaid: Number(row.nodes_paid), taperPpm: Number(row.taper_ppm) } : null,
  };
}

/** The rewards section's table; every value is a number or an ISO time, so nothing needs escaping beyond the helper's. */
export function rewardsSection(f: RewardsFigures | null): string {
  if (f === null) return `<p class="muted" id="rewards" data-closed="">The rewards figures could not be read just now; see <a href="/v1/rewards/schedule">/v1/rewards/schedule</a>.</p>`;
  const row = (label: string, id: string, value: string) => `<tr><th scope="row">${label}</th><td id="${id}">${escapeHtml(value)}</td></tr>`;
  const last = f.last;
  return `<table class="figures" id="rewards" data-closed="${f.closedEpochs}">
<tbody>
${row('Current epoch', 'rewards-current-epoch', f.currentEpoch === null ? 'not started' : String(f.currentEpoch))}
${row(f.currentEpoch === null ? 'Starts' : 'Ends', 'rewards-current-ends', f.currentEnds)}
${row('Emission left', 'rewards-left', grid(f.left))}
${row('Last closed epoch', 'rewards-last-epoch', last ? String(last.epoch) : 'none yet')}
${row('Paid', 'rewards-last-paid', last ? grid(last.paid) : '—')}
${row('Nodes paid', 'rewards-last-nodes', last ? String(last.nodesPaid) : '—')}
${row('Taper', 'rewards-last-taper', last ? percent(last.taperPpm) : '—')}
</tbody>
</table>`;
}

app.get('/', async (c) => {
  const figures = await rewardsFigures(c.env).catch((err: unknown) => {
    log('warn', 'market page: rewards figures not read', { error: String(err) });
    return null;
  });
  const nonce = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const catalog = JSON.stringify({
    regions: REGIONS.map((r) => ({ id: r.id, name: r.name })),
    gpus: GPU_MODELS.map((g) => ({ id: g.id, name: g.id })),
  }).replace(/</g, '\\u003c');
  const options = (items: readonly { id: string; name: string }[], selected: string) =>
    items.map((i) => `<option value="${escapeHtml(i.id)}"${i.id === selected ? ' selected' : ''}>${escapeHtml(i.name)}</option>`).join('');
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Gridlease — GPU-time market</title>
<style nonce="${nonce}">${STYLE}</style>
</head>
<body>
<h1>Gridlease market</h1>
<p class="muted">USD per GPU-hour. Live from <a href="/v1/market/summary">/v1/market/summary</a>, refreshed every 2 s.
API: <a href="/docs">/docs</a>. Live stream: <code>GET /v1/market/stream?books=region:gpu_model,…</code> (WebSocket).</p>
<table>
<thead><tr><th>Region</th><th>GPU</th><th>Best bid</th><th>Best ask</th><th>Last</th><th>24 h change</th><th>24 h volume (GPU-h)</th></tr></thead>
<tbody id="rows"><tr><td colspan="7">Loading…</td></tr></tbody>
</table>
<p id="status" class="muted"></p>

<h2>Supply rewards</h2>
<p class="muted">GRID paid each epoch to providers whose verified GPUs are up and offered here; the pool's
allocation less what closed epochs paid is what is left to emit. From <a href="/v1/rewards/schedule">/v1/rewards/schedule</a>
and <code>/v1/rewards/epochs/{n}</code> (each epoch's public report), refreshed every 30 s.</p>
${rewardsSection(figures)}

<h2>Put a live price on your page</h2>
<form id="snippet-builder">
<label>Region <select id="region">${options(REGIONS, 'us-east')}</select></label>
<label>GPU model <select id="gpu-model">${options(GPU_MODELS.map((g) => ({ id: g.id, name: g.id })), 'h100-80gb')}</select></label>
</form>
<p>As a custom element:</p>
<pre id="snippet-element"></pre>
<p>Or as an iframe:</p>
<pre id="snippet-iframe"></pre>
<p class="muted">Preview:</p>
<iframe id="preview" height="120" title="Price widget preview"></iframe>
<script type="application/json" id="catalog">${catalog}</script>
<script nonce="${nonce}">${SCRIPT}</script>
</body>
</html>`;
  c.header('Content-Security-Policy', contentSecurityPolicy(nonce));
  c.header('Cache-Control', 'no-store');
  c.header('X-Content-Type-Options', 'nosniff');
  c.header('Referrer-Policy', 'no-referrer');
  return c.html(html);
});

export default app;
