import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { sha256 } from '../auth/encoding.ts';
import { gpuModel } from '../catalog/gpus.ts';
import { isRegion } from '../catalog/regions.ts';
import { errorResponses } from '../contracts/common.ts';
import { ApiError } from '../http/errors.ts';
import { router } from '../http/router.ts';
import { WIDGET_CSS_SHA256, WIDGET_HASH, WIDGET_JS } from '../widget/bundle.ts';

/** The price widget: its script at a stable and a versioned URL, and an iframe page for sites whose CSP forbids it. */
const app = router();

// The stable URL is what people embed, so a new build reaches them within minutes; the versioned
// URL never changes content and may be cached for good.
const STABLE_CACHE = 'public, max-age=300';
const IMMUTABLE_CACHE = 'public, max-age=31536000, immutable';
const EMBED_CACHE = 'public, max-age=300';
const ETAG = `"${WIDGET_HASH}"`;

/** The iframe heights the embed page is laid out for (documented in the README). */
export const EMBED_HEIGHT_PX = { regular: 120, compact: 64 } as const;

function script(c: Context<AppEnv>, cacheControl: string): Response {
  const headers = {
    'Content-Type': 'text/javascript; charset=utf-8',
    'Cache-Control': cacheControl,
    ETag: ETAG,
    'X-Content-Type-Options': 'nosniff',
  };
  const match = c.req.header('If-None-Match');
  if (match && match.split(',').some((tag) => tag.trim().replace(/^W\//, '') === ETAG)) return c.body(null, 304, headers);
  return c.body(WIDGET_JS, 200, headers);
}

const javascript = (description: string) => ({ description, content: { 'text/javascript': { schema: z.string() } } });

app.openapi(
  createRoute({
    method: 'get',
    path: '/widget.js',
    tags: ['widget'],
    summary: 'The price widget script (<gridlease-price>), the URL to embed; cached for 5 minutes',
    responses: { 200: javascript('The current widget build'), 304: { description: 'Not modified' } },
  }),
  (c) => script(c, STABLE_CACHE),
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/widget/{file}',
    tags: ['widget'],
    summary: 'The widget build with content hash `<hash>`, as `/widget/<hash>.js`; immutable. Only the current build is served',
    request: { params: z.object({ file: z.string().openapi({ param: { name: 'file', in: 'path' }, example: `${WIDGET_HASH}.js` }) }) },
    responses: { 200: javascript('That widget build'), 304: { description: 'Not modified' }, ...errorResponses(404) },
  }),
  (c) => {
    if (c.req.valid('param').file !== `${WIDGET_HASH}.js`) throw new ApiError('not_found', 'no such widget build; embed /widget.js');
    return script(c, IMMUTABLE_CACHE);
  },
);

// Only what a BCP 47 tag can contain; Intl then decides whether it knows it.
function isLocale(tag: string): boolean {
  if (!/^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,6}$/.test(tag)) return false;
  try {
    return Intl.getCanonicalLocales(tag).length === 1;
  } catch {
    return false;
  }
}

const EmbedQuery = z
  .object({
    region: z.string().refine(isRegion, 'unknown region; see /v1/catalog/regions').openapi({ example: 'us-east' }),
    gpu_model: z.string().refine((id) => gpuModel(id) !== null, 'unknown gpu_model; see /v1/catalog/gpus').openapi({ example: 'h100-80gb' }),
    theme: z.enum(['light', 'dark', 'auto']).default('auto'),
    compact: z.enum(['true', 'false', '1', '0']).optional().openapi({ description: `Single-row layout, ${EMBED_HEIGHT_PX.compact} px high instead of ${EMBED_HEIGHT_PX.regular}` }),
    locale: z.string().refine(isLocale, 'is not a BCP 47 language tag').optional().openapi({ example: 'de-DE' }),
  })
  .strict();

const PAGE_CSS = 'html,body{margin:0;height:100%;background:transparent}gridlease-price{display:block;width:100%;height:100%;min-width:0}';
let pageCssHash: Promise<string> | undefined;
async function sha256Base64(text: string): Promise<string> {
  return btoa(String.fromCharCode(...(await sha256(text))));
}

const escapeAttr = (value: string) => value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

app.openapi(
  createRoute({
    method: 'get',
    path: '/embed/price',
    tags: ['widget'],
    summary: `A page holding only the price widget, for an iframe ${EMBED_HEIGHT_PX.regular} px high (${EMBED_HEIGHT_PX.compact} px compact); scripts only from this origin`,
    request: { query: EmbedQuery },
    responses: { 200: { description: 'The embed page', content: { 'text/html': { schema: z.string() } } }, ...errorResponses(400) },
  }),
  async (c) => {
    const { region, gpu_model, theme, compact, locale } = c.req.valid('query');
    pageCssHash ??= sha256Base64(PAGE_CSS);
    const csp = [
      "default-src 'none'",
      "script-src 'self'",
      "connect-src 'self'",
      `style-src 'sha256-${await pageCssHash}' '${WIDGET_CSS_SHA256}'`,
      "base-uri 'none'",
      "form-action 'none'",
    ].join('; ');
    const attrs = [`region="${escapeAttr(region)}"`, `gpu-model="${escapeAttr(gpu_model)}"`, `theme="${theme}"`];
    if (compact === 'true' || compact === '1') attrs.push('compact');
    if (locale) attrs.push(`locale="${escapeAttr(locale)}"`);
    const html =
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
      `<title>Gridlease price: ${escapeAttr(gpu_model)} in ${escapeAttr(region)}</title><style>${PAGE_CSS}</style>` +
      `<script src="/widget/${WIDGET_HASH}.js"></script></head>` +
      `<body><gridlease-price ${attrs.join(' ')}></gridlease-price></body></html>`;
    return c.body(html, 200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': EMBED_CACHE,
      'Content-Security-Policy': csp,
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
    });
  },
);

export default app;
