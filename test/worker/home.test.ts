import { describe, expect, it } from 'vitest';
import { call } from './support.ts';

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
  });

  it('uses a new nonce on every response', async () => {
    const a = (await call('/')).headers.get('content-security-policy');
    const b = (await call('/')).headers.get('content-security-policy');
    expect(a).not.toBe(b);
  });
});
