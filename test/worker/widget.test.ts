import { describe, expect, it } from 'vitest';
import { WIDGET_HASH, WIDGET_JS } from '../../src/widget/bundle.ts';
import { call, expectError } from './support.ts';

describe('GET /widget.js', () => {
  it('serves the current build as JavaScript, cached for five minutes, to any origin', async () => {
    const res = await call('/widget.js', { headers: { origin: 'https://blog.example' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('etag')).toBe(`"${WIDGET_HASH}"`);
    expect(await res.text()).toBe(WIDGET_JS);
  });

  it('answers 304 to a revalidation with the current ETag', async () => {
    const res = await call('/widget.js', { headers: { 'if-none-match': `W/"${WIDGET_HASH}"` } });
    expect(res.status).toBe(304);
    expect(await res.text()).toBe('');
  });
});

describe('GET /widget/<hash>.js', () => {
  it('serves the same build under its content hash, cacheable for a year', async () => {
    expect(WIDGET_HASH).toMatch(/^[0-9a-f]{16}$/);
    const res = await call(`/widget/${WIDGET_HASH}.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await res.text()).toBe(WIDGET_JS);
  });

  it('is 404 in the error shape for any other hash', async () => {
    await expectError(await call('/widget/0123456789abcdef.js'), 404, 'not_found');
  });
});

describe('GET /embed/price', () => {
  it('is a page with the widget, loading the versioned script from its own origin under a strict CSP', async () => {
    const res = await call('/embed/price?region=us-east&gpu_model=h100-80gb&theme=dark&compact=true&locale=de-DE');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    const html = await res.text();
    expect(html).toContain(`<script src="/widget/${WIDGET_HASH}.js"></script>`);
    expect(html).toContain('<gridlease-price region="us-east" gpu-model="h100-80gb" theme="dark" compact locale="de-DE"></gridlease-price>');
    const csp = Object.fromEntries(
      res.headers
        .get('content-security-policy')!
        .split(';')
        .map((d) => d.trim().split(/\s+/))
        .map(([name, ...values]) => [name, values]),
    );
    expect(csp['default-src']).toEqual(["'none'"]);
    expect(csp['script-src']).toEqual(["'self'"]);
    expect(csp['connect-src']).toEqual(["'self'"]);
    expect(csp['base-uri']).toEqual(["'none'"]);
    expect(csp['style-src']).toHaveLength(2);
    for (const source of csp['style-src']) expect(source).toMatch(/^'sha256-[A-Za-z0-9+/]+=*'$/);
    // Meant to be framed anywhere: no frame-ancestors, no X-Frame-Options.
    expect(csp['frame-ancestors']).toBeUndefined();
    expect(res.headers.get('x-frame-options')).toBeNull();
  });

  it('defaults to the automatic theme and the regular layout', async () => {
    const html = await (await call('/embed/price?region=eu-west&gpu_model=a100-80gb')).text();
    expect(html).toContain('<gridlease-price region="eu-west" gpu-model="a100-80gb" theme="auto"></gridlease-price>');
  });

  it('is 400 in the error shape for an unknown region or GPU model', async () => {
    await expectError(await call('/embed/price?region=mars-north&gpu_model=h100-80gb'), 400, 'validation_failed');
    await expectError(await call('/embed/price?region=us-east&gpu_model=voodoo-2'), 400, 'validation_failed');
    await expectError(await call('/embed/price?gpu_model=h100-80gb'), 400, 'validation_failed');
  });

  it('is 400 for a bad theme, locale or unknown parameter, never echoing markup', async () => {
    await expectError(await call('/embed/price?region=us-east&gpu_model=h100-80gb&theme=neon'), 400, 'validation_failed');
    const res = await call('/embed/price?region=us-east&gpu_model=h100-80gb&locale=%22%3E%3Cscript%3E');
    expect((await expectError(res, 400, 'validation_failed')).message).not.toContain('<script');
    await expectError(await call('/embed/price?region=us-east&gpu_model=h100-80gb&colour=red'), 400, 'validation_failed');
  });
});
