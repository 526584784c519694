// <gridlease-price region="us-east" gpu-model="h100-80gb" [theme=light|dark|auto] [compact]
// [locale=de-DE] [api=https://api.gridlease.example]>: best ask, last trade, 24h change and a
// 24h sparkline of one book, kept current by the page's shared market source.
import { direction, formatChange, formatPrice, formatsFor, sparklinePath } from './format.ts';
import { sourceFor, type BookListener, type MarketSource } from './hub.ts';
import type { BookView } from './market.ts';
import { CSS } from './styles.ts';

const SPARK_W = 120;
const SPARK_H = 28;
const HOUR_MS = 3_600_000;

const TEMPLATE = `<div class="w" part="widget" data-state="loading">
<p class="top"><span class="name"></span><span class="region"></span></p>
<div class="vals" aria-live="polite">
<span class="cell"><span class="lbl">Best ask</span><span class="v ask">—</span></span>
<span class="cell"><span class="lbl">Last trade</span><span class="v last">—</span></span>
<span class="cell"><span class="lbl">24h change</span><span class="v chg">—</span></span>
</div>
<svg class="spark" viewBox="0 0 ${SPARK_W} ${SPARK_H}" preserveAspectRatio="none" role="img" aria-label="Last trade price over 24 hours"><path/></svg>
<p class="off" role="status"></p>
</div>`;

let sheet: CSSStyleSheet | null | undefined;
/** One constructed stylesheet for every widget; unlike a <style> element it is not blocked by a page's CSP. */
function sharedSheet(): CSSStyleSheet | null {
  if (sheet === undefined) {
    try {
      sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
    } catch {
      sheet = null;
    }
  }
  return sheet;
}

export function definePriceElement(defaultApi: string): void {
  if (customElements.get('gridlease-price')) return;

  class GridleasePrice extends HTMLElement {
    static observedAttributes = ['region', 'gpu-model', 'api', 'locale'];

    private readonly root: ShadowRoot;
    private source: MarketSource | null = null;
    private subscribed: { region: string; gpuModel: string } | null = null;
    private locale = '';
    private view: BookView | null = null;
    private readonly listener: BookListener = (view) => {
      this.view = view;
      this.render();
    };

    constructor() {
      super();
      this.root = this.attachShadow({ mode: 'open' });
      const shared = sharedSheet();
      const adopt = !!shared && 'adoptedStyleSheets' in this.root;
      if (adopt) this.root.adoptedStyleSheets = [shared];
      this.root.innerHTML = (adopt ? '' : `<style>${CSS}</style>`) + TEMPLATE;
    }

    // The skeleton is in the shadow root from the constructor; connecting only subscribes, so
    // nothing here waits for the network or builds number formats before the first paint.
    connectedCallback(): void {
      this.connect();
    }

    disconnectedCallback(): void {
      this.disconnect();
    }

    attributeChangedCallback(): void {
      if (!this.isConnected) return;
      this.connect();
    }

    private connect(): void {
      this.disconnect();
      const locale = (this.locale = this.getAttribute('locale') || navigator.language);
      const region = this.getAttribute('region') ?? '';
      const gpuModel = this.getAttribute('gpu-model') ?? '';
      this.text('.name', gpuModel.toUpperCase());
      this.text('.region', region);
      if (!region || !gpuModel) {
        this.view = { status: 'unknown', summary: null, candles: [] };
        return this.render();
      }
      this.source = sourceFor((this.getAttribute('api') || defaultApi).replace(/\/+$/, ''));
      this.subscribed = { region, gpuModel };
      this.source.subscribe(region, gpuModel, this.listener);
      // Builds the number formats after the skeleton is painted, while the first request is out.
      if (typeof requestAnimationFrame === 'function') requestAnimationFrame(() => setTimeout(() => formatsFor(locale)));
    }

    private disconnect(): void {
      if (this.source && this.subscribed) this.source.unsubscribe(this.subscribed.region, this.subscribed.gpuModel, this.listener);
      this.source = null;
      this.subscribed = null;
    }

    private render(): void {
      const view = this.view;
      if (!view) return;
      const box = this.root.querySelector<HTMLElement>('.w')!;
      box.dataset.state = view.status;
      if (view.status === 'unavailable') this.text('.off', 'Price data unavailable. Retrying…');
      else if (view.status === 'unknown') this.text('.off', 'Unknown region or GPU model.');
      else this.text('.off', '');
      const s = view.summary;
      // Without a summary every cell is a dash, and no number format is needed yet.
      const f = s ? formatsFor(this.locale) : null;
      this.text('.ask', s && f ? formatPrice(f, s.best_ask) : '—');
      this.text('.last', s && f ? formatPrice(f, s.last_price) : '—');
      const change = s?.change_24h ?? null;
      const chg = this.root.querySelector('.chg')!;
      const dir = direction(change);
      chg.classList.toggle('up', dir === 'up');
      chg.classList.toggle('down', dir === 'down');
      this.text('.chg', s && f ? formatChange(f, change, s.change_24h_pct) : '—');
      const to = (Math.floor(Date.now() / HOUR_MS) + 1) * HOUR_MS;
      const d = sparklinePath(view.candles, to - 24 * HOUR_MS, to, SPARK_W, SPARK_H);
      const path = this.root.querySelector('.spark path')!;
      if (path.getAttribute('d') !== d) path.setAttribute('d', d);
    }

    /** Writes only on change, so the live region announces real updates only. */
    private text(selector: string, value: string): void {
      const el = this.root.querySelector(selector);
      if (el && el.textContent !== value) el.textContent = value;
    }
  }

  customElements.define('gridlease-price', GridleasePrice);
}

