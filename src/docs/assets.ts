// The files the /docs page loads, all from this Worker: Swagger UI from swagger-ui-dist (imported
// as text by wrangler.toml's [[rules]]) and the few lines that start it. Each is served under a
// name carrying a hash of its content, so a new Swagger UI or a new start script gets a new URL
// and every URL may be cached for good.
import swaggerUiJs from 'swagger-ui-dist/swagger-ui-bundle.js';
import swaggerUiCss from 'swagger-ui-dist/swagger-ui.css';

/**
 * Starts Swagger UI on the page's #swagger-ui element, with the spec URL the page gives it. A file
 * of its own, since the page's CSP allows no inline script.
 */
export const DOCS_START_JS = `(() => {
  const root = document.getElementById('swagger-ui');
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    // The default sends the spec's URL to validator.swagger.io and shows its badge.
    validatorUrl: null,
  });
})();
`;

export interface DocsAsset {
  /** The name it is served under, e.g. `swagger-ui-bundle.3f2a9c01d4e5b6a7.js`. */
  file: string;
  contentType: string;
  body: string;
  etag: string;
}

export interface DocsAssets {
  script: DocsAsset;
  style: DocsAsset;
  start: DocsAsset;
}

const SOURCES = {
  script: { name: 'swagger-ui-bundle', ext: 'js', contentType: 'text/javascript; charset=utf-8', body: swaggerUiJs },
  style: { name: 'swagger-ui', ext: 'css', contentType: 'text/css; charset=utf-8', body: swaggerUiCss },
  start: { name: 'docs-start', ext: 'js', contentType: 'text/javascript; charset=utf-8', body: DOCS_START_JS },
} as const;

async function contentHash(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  return [...digest.slice(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

async function build(): Promise<DocsAssets> {
  const entries = await Promise.all(
    Object.entries(SOURCES).map(async ([key, s]) => {
      const hash = await contentHash(s.body);
      const asset: DocsAsset = { file: `${s.name}.${hash}.${s.ext}`, contentType: s.contentType, body: s.body, etag: `"${hash}"` };
      return [key, asset] as const;
    }),
  );
  return Object.fromEntries(entries) as unknown as DocsAssets;
}

// Hashing 2 MB takes a few milliseconds: once per isolate, on the first request that needs it,
// so that isolates serving only the API never pay for it.
let assets: Promise<DocsAssets> | undefined;
export function docsAssets(): Promise<DocsAssets> {
  assets ??= build().catch((err: unknown) => {
    assets = undefined;
    throw err;
  });
  return assets;
}

/** The asset served under `file`, or null: only the current build of each is served. */
export async function docsAsset(file: string): Promise<DocsAsset | null> {
  const all = await docsAssets();
  return Object.values(all).find((a) => a.file === file) ?? null;
}
