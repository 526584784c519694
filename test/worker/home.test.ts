import { describe, expect, it } from 'vitest';
import { rewardsSection } from '../../src/routes/home.ts';
import { call, json } from './support.ts';

/** Micro-units of a decimal string, and back with thousands grouped as the page writes them. */
const micro = (s: string) => {
  const [w, f = ''] = s.split('.');
  return BigInt(w!) * 1_000_000n + BigInt(f.padEnd(6, '0'));
};
const grid = (v: bigint) => {
  let f = (v % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
  if (f.length < 2) f = f.padEnd(2, '0');
  return `${(v / 1_000_000n).toLocaleString('en-US')}.${f} GRID`;
};

describe('home page', () => {
  it('serves the market table and the snippet builder as one self-contained HTML page under a nonce CSP', async () => {
    const res = await call('/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html; charset=utf-8/i);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)![1]!;
    const html = await res.text();
    expect(html).toContain(`<script nonce="${nonce}">`);
    expect(html).toContain(`<style nonce="${nonce}">`);
    // Every executable script carries the nonce; the catalog block is data.
    for (const tag of html.match(/<script[^>]*>/g)!) expect(tag === `<script nonce="${nonce}">` || tag.includes('type="application/json"')).toBe(true);
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).toContain('/v1/market/summary');
    expect(html).toContain('id="snippet-builder"');
    expect(html).toContain('<option value="us-east" selected>');
    expect(html).toContain('<option value="h100-80gb" selected>');
    expect(html).toContain('gridlease-price');
    expect(html).toContain('/embed/price?');
    expect(html).toContain('id="preview"');
    expect(html).toContain('<table class="figures" id="rewards"');
    expect(html).toContain('/v1/rewards/schedule');
  });

  it('shows the current epoch, the emission left and the last closed epoch from the same data as GET /v1/rewards/schedule', async () => {
    // Other files close epochs meanwhile: read the schedule before and after the page, and compare when they agree.
    for (let attempt = 0; ; attempt++) {
      const before = await json(await call('/v1/rewards/schedule'));
      const html = await (await call('/')).text();
      const after = await json(await call('/v1/rewards/schedule'));
      if ((before.emitted !== after.emitted || before.closed_epochs !== after.closed_epochs || before.current_epoch !== after.current_epoch) && attempt < 5) continue;
      const cell = (id: string) => new RegExp(`id="${id}">([^<]*)<`).exec(html)?.[1];
      expect(cell('rewards-current-epoch')).toBe(after.current_epoch === null ? 'not started' : String(after.current_epoch));
      expect(cell('rewards-current-ends')).toBe(after.current_epoch_end ?? after.start);
      expect(cell('rewards-left')).toBe(grid(micro(after.allocation) - micro(after.emitted)));
      expect(html).toContain(`data-closed="${after.closed_epochs}"`);
      if (after.closed_epochs === 0) {
        expect(cell('rewards-last-epoch')).toBe('none yet');
      } else {
        const n = after.closed_epochs - 1;
        const report = await json(await call(`/v1/rewards/epochs/${n}?limit=1000`));
        expect(cell('rewards-last-epoch')).toBe(String(n));
        expect(cell('rewards-last-paid')).toBe(grid(micro(report.paid)));
        expect(cell('rewards-last-nodes')).toBe(String(report.lines.filter((l: { amount: string }) => micro(l.amount) > 0n).length));
        const t = report.taper_ppm as number;
        expect(cell('rewards-last-taper')).toBe(`${Math.floor(t / 10_000)}${t % 10_000 ? `.${String(t % 10_000).padStart(4, '0').replace(/0+$/, '')}` : ''}%`);
      }
      return;
    }
  });

  it('writes the last closed epoch as paid GRID, nodes paid and the taper in percent', () => {
    const html = rewardsSection({
      currentEpoch: 12,
      currentEnds: '2026-12-07T05:13:00.000Z',
      left: 399_988_000_123_456n,
      closedEpochs: 12,
      last: { epoch: 11, paid: 5_999_912_345n, nodesPaid: 2, taperPpm: 875_000 },
    });
    expect(html).toContain('id="rewards-current-epoch">12<');
    expect(html).toContain('id="rewards-current-ends">2026-12-07T05:13:00.000Z<');
    expect(html).toContain('id="rewards-left">399,988,000.123456 GRID<');
    expect(html).toContain('id="rewards-last-epoch">11<');
    expect(html).toContain('id="rewards-last-paid">5,999.912345 GRID<');
    expect(html).toContain('id="rewards-last-nodes">2<');
    expect(html).toContain('id="rewards-last-taper">87.5%<');
    const none = rewardsSection({ currentEpoch: null, currentEnds: '2027-01-01T00:00:00.000Z', left: 400_000_000_000_000n, closedEpochs: 0, last: null });
    expect(none).toContain('id="rewards-current-epoch">not started<');
    expect(none).toContain('>Starts<');
    expect(none).toContain('id="rewards-left">400,000,000.00 GRID<');
    expect(none).toContain('id="rewards-last-epoch">none yet<');
  });

  it('uses a new nonce on every response', async () => {
    const a = (await call('/')).headers.get('content-security-policy');
    const b = (await call('/')).headers.get('content-security-policy');
    expect(a).not.toBe(b);
  });
});
