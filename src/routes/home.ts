// GET /: a page to watch the market and copy a price widget. Self-contained (inline CSS and JS
// under a per-response nonce, nothing else allowed); it polls /v1/market/summary every 2 s, the
// same cached data any client gets. The widget snippets point at /widget.js and /embed/price.
import { Hono } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { GPU_MODELS } from '../catalog/gpus.ts';
import { REGIONS } from '../catalog/regions.ts';

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
})();
`;

app.get('/', (c) => {
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
