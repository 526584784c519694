import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { docsAsset, docsAssets, type DocsAsset, type DocsAssets } from '../docs/assets.ts';
import { ApiError } from '../http/errors.ts';

// Names carry a hash of their content, so a URL never changes what it serves.
const IMMUTABLE_CACHE = 'public, max-age=31536000, immutable';

// Everything the page loads comes from this Worker; nothing inline runs.
const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  // Swagger UI's stylesheet draws its icons as data: URLs.
  "img-src 'self' data:",
  // The spec, and "Try it out" against the spec's server, which is this origin.
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const ASSETS_PATH = '/docs/assets';

function page(assets: DocsAssets): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Gridlease API</title>
<link rel="stylesheet" href="${ASSETS_PATH}/${assets.style.file}">
</head>
<body>
<div id="swagger-ui" data-spec-url="/openapi.json"></div>
<noscript><p>This page needs JavaScript. The OpenAPI document is at <a href="/openapi.json">/openapi.json</a>.</p></noscript>
<script src="${ASSETS_PATH}/${assets.script.file}"></script>
<script src="${ASSETS_PATH}/${assets.start.file}"></script>
</body>
</html>`;
}

function serveAsset(c: Context<AppEnv>, asset: DocsAsset): Response {
  const headers = {
    'Content-Type': asset.contentType,
    'Cache-Control': IMMUTABLE_CACHE,
    ETag: asset.etag,
    'X-Content-Type-Options': 'nosniff',
  };
  const match = c.req.header('If-None-Match');
  if (match && match.split(',').some((tag) => tag.trim().replace(/^W\//, '') === asset.etag)) return c.body(null, 304, headers);
  return c.body(asset.body, 200, headers);
}

/** Serves the OpenAPI document generated from the route schemas, and a page to try it. */
export function mountDocs(app: OpenAPIHono<AppEnv>): void {
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'An access token from POST /v1/auth/token, or an API key (glk_…)',
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'nodeToken', {
    type: 'http',
    scheme: 'bearer',
    description: 'The node token gridlease-runner received at registration',
  });
  app.doc31('/openapi.json', (c) => ({
    openapi: '3.1.0',
    info: {
      title: 'Gridlease API',
      version: '1',
      description: 'An exchange for GPU time. Errors are always {"error": {"code", "message", "request_id"}}.',
    },
    servers: [{ url: new URL(c.req.url).origin }],
  }));

  // Swagger UI, served from this Worker so that the page works without reaching any other host.
  app.get('/docs', async (c) => {
    const html = page(await docsAssets());
    c.header('Content-Security-Policy', DOCS_CSP);
    // The page names the current assets; a cached copy would outlive them after a deploy.
    c.header('Cache-Control', 'no-cache');
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    return c.html(html);
  });
  app.get(`${ASSETS_PATH}/:file`, async (c) => {
    const asset = await docsAsset(c.req.param('file'));
    if (!asset) throw new ApiError('not_found', 'no such docs asset; load /docs');
    return serveAsset(c, asset);
  });
}
