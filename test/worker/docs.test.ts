// GET /docs: Swagger UI served entirely from this Worker, under a CSP that allows no other origin.
import { describe, expect, it } from 'vitest';
import { ORIGIN, call, json } from './support.ts';

/** Every src/href the page's <script> and <link rel=stylesheet> elements point at. */
function references(html: string): { scripts: string[]; styles: string[] } {
  const scripts = [...html.matchAll(/<script\b[^>]*\bsrc="([^"]*)"/g)].map((m) => m[1]!);
  const styles = [...html.matchAll(/<link\b[^>]*\brel="stylesheet"[^>]*\bhref="([^"]*)"/g)].map((m) => m[1]!);
  return { scripts, styles };
}

async function docsPage() {
  const res = await call('/docs');
  expect(res.status).toBe(200);
  return { res, html: await res.text() };
}

/** The CSP as directive → sources. */
function csp(header: string | null): Map<string, string[]> {
  expect(header).toBeTruthy();
  return new Map(
    header!
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((parts) => parts[0])
      .map(([name, ...sources]) => [name!, sources]),
  );
}

describe('GET /docs', () => {
  it('is an HTML page that loads Swagger UI only from this origin', async () => {
    const { res, html } = await docsPage();
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const { scripts, styles } = references(html);
    expect(scripts.length).toBeGreaterThanOrEqual(2);
    expect(styles.length).toBeGreaterThanOrEqual(1);
    for (const ref of [...scripts, ...styles]) {
      expect(ref, ref).toMatch(/^\/docs\/assets\/[\w.-]+$/);
      expect(new URL(ref, ORIGIN).origin).toBe(ORIGIN);
    }
    // No other host anywhere in the markup, and no inline script or style to allow.
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style\b|\sstyle=/);
  });

  it('sends a CSP that allows scripts, styles and requests from this origin only', async () => {
    const { res } = await docsPage();
    const policy = csp(res.headers.get('content-security-policy'));
    expect(policy.get('default-src')).toEqual(["'none'"]);
    expect(policy.get('script-src')).toEqual(["'self'"]);
    expect(policy.get('style-src')).toEqual(["'self'"]);
    expect(policy.get('connect-src')).toEqual(["'self'"]);
    expect(policy.get('img-src')).toEqual(["'self'", 'data:']);
    expect(policy.get('frame-ancestors')).toEqual(["'none'"]);
    expect(policy.get('base-uri')).toEqual(["'none'"]);
    for (const [directive, sources] of policy) {
      for (const source of sources) expect(source, `${directive} ${source}`).toMatch(/^('none'|'self'|data:)$/);
    }
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('serves each referenced asset with its content type, immutable caching and an ETag', async () => {
    const { html } = await docsPage();
    const { scripts, styles } = references(html);
    const expected = [...scripts.map((ref) => [ref, 'text/javascript'] as const), ...styles.map((ref) => [ref, 'text/css'] as const)];
    for (const [ref, type] of expected) {
      const res = await call(ref);
      expect(res.status, ref).toBe(200);
      expect(res.headers.get('content-type'), ref).toBe(`${type}; charset=utf-8`);
      expect(res.headers.get('cache-control'), ref).toBe('public, max-age=31536000, immutable');
      expect(res.headers.get('x-content-type-options'), ref).toBe('nosniff');
      const etag = res.headers.get('etag');
      expect(etag, ref).toMatch(/^"[0-9a-f]{16}"$/);
      // The name carries the same content hash as the ETag.
      expect(ref).toContain(`.${etag!.slice(1, -1)}.`);
      const body = await res.text();
      expect(body.length, ref).toBeGreaterThan(0);

      const again = await call(ref, { headers: { 'if-none-match': etag! } });
      expect(again.status, ref).toBe(304);
      expect(await again.text()).toBe('');
    }
  });

  it('serves the real Swagger UI bundle and a start script pointed at /openapi.json', async () => {
    const { html } = await docsPage();
    expect(html).toContain('<div id="swagger-ui" data-spec-url="/openapi.json">');
    const { scripts, styles } = references(html);
    const bodies = await Promise.all([...scripts, ...styles].map(async (ref) => [ref, await (await call(ref)).text()] as const));
    const bundle = bodies.find(([ref]) => ref.includes('/swagger-ui-bundle.'));
    expect(bundle?.[1].length).toBeGreaterThan(1_000_000);
    expect(bundle?.[1]).toContain('SwaggerUIBundle');
    const css = bodies.find(([ref]) => ref.includes('/swagger-ui.'));
    expect(css?.[1]).toContain('.swagger-ui');
    // The script that starts it comes after the bundle and takes the spec URL from the page.
    const start = bodies.at(scripts.length - 1)!;
    expect(start[0]).not.toContain('swagger-ui-bundle');
    expect(start[1]).toContain("document.getElementById('swagger-ui')");
    expect(start[1]).toContain('url: root.dataset.specUrl');
    expect(start[1]).toContain('SwaggerUIBundle(');
  });

  it('answers 404 in the error shape for an asset it does not have', async () => {
    for (const path of ['/docs/assets/swagger-ui-bundle.0000000000000000.js', '/docs/assets/swagger-ui-bundle.js', '/docs/assets/..%2F..%2Fopenapi.json']) {
      const res = await call(path);
      expect(res.status, path).toBe(404);
      const body = await json(res);
      expect(body.error.code).toBe('not_found');
      expect(body.error.request_id).toBe(res.headers.get('x-request-id'));
      expect(res.headers.get('cache-control') ?? '').not.toContain('immutable');
    }
  });

  it('still serves /openapi.json for the page to load', async () => {
    const res = await call('/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    const doc = await json(res);
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.servers).toEqual([{ url: ORIGIN }]);
  });
});
