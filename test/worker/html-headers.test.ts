// Security headers on every HTML page the Worker serves: each operation of /openapi.json that
// answers text/html, and the market page, which the document leaves out. A new HTML route must
// be added to PAGES (with a URL that renders it), or this test fails.
import { describe, expect, it } from 'vitest';
import { call } from './support.ts';

const PAGES: Record<string, { url: string; framable: boolean }> = {
  'GET /': { url: '/', framable: false },
  'GET /docs': { url: '/docs', framable: false },
  // The price widget's page is made to be embedded on other sites.
  'GET /embed/price': { url: '/embed/price?region=us-east&gpu_model=h100-80gb', framable: true },
};

describe('HTML pages', () => {
  it('are all listed here: every operation that answers text/html', async () => {
    const doc = (await (await call('/openapi.json')).json()) as { paths: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, unknown> }> }>> };
    const html: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        if (Object.values(op.responses ?? {}).some((r) => r.content && 'text/html' in r.content)) html.push(`${method.toUpperCase()} ${path}`);
      }
    }
    expect(html.length).toBeGreaterThan(0);
    for (const key of html) expect(Object.keys(PAGES), `${key} answers HTML and is not in PAGES`).toContain(key);
  });

  it.each(Object.entries(PAGES))('%s carries a script-restricting CSP, nosniff, no referrer and its frame policy', async (_key, page) => {
    const res = await call(page.url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html; charset=utf-8/i);
    const csp = res.headers.get('content-security-policy') ?? '';
    const directives = new Map(csp.split(';').map((d) => d.trim().split(/\s+/)).filter((d) => d[0]).map((d) => [d[0]!, d.slice(1)]));
    expect(directives.get('default-src'), csp).toBeDefined();
    const scripts = directives.get('script-src') ?? directives.get('default-src')!;
    expect(scripts, csp).not.toContain("'unsafe-inline'");
    expect(scripts, csp).not.toContain('*');
    expect(directives.get('object-src') ?? directives.get('default-src'), csp).toEqual(["'none'"]);
    expect(directives.get('base-uri'), csp).toBeDefined();
    if (page.framable) expect(directives.get('frame-ancestors') ?? ['*'], csp).toContain('*');
    else expect(directives.get('frame-ancestors'), csp).toEqual(["'none'"]);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  });
});
