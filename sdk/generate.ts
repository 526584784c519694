// Regenerates the SDK's types from the API as it is now: bundles the Worker as `wrangler deploy`
// would, runs it in workerd (it cannot run in Node), reads /openapi.json, writes sdk/openapi.json
// and sdk/src/schema.d.ts. `npm run build:sdk`. test/worker/sdk-schema.test.ts fails when
// openapi.json is stale, test/unit/cli/sdk-types.test.ts when schema.d.ts does not match it.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, matchesGlob } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Log, LogLevel, Miniflare, convertV4MiniflareOptions, type V4MiniflareOptions } from 'miniflare';
import { unstable_getMiniflareWorkerOptions } from 'wrangler';
import { bundleWorker } from '../local/worker.ts';
import { DOCUMENT, TYPES, generateTypes } from './types.ts';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const ROOT = here('..');

/** The published document without `servers`: it names whichever origin served it. */
function canonicalDocument(doc: Record<string, unknown>): Record<string, unknown> {
  const { servers: _servers, ...rest } = doc;
  return rest;
}

type ModuleType = 'ESModule' | 'Text' | 'Data' | 'CompiledWasm';

/**
 * The bundle's modules, typed as wrangler.toml's [[rules]] type them: wrangler writes the entry
 * and, beside it, each file a rule matched, its name prefixed with a content hash.
 */
function bundleModules(outDir: string, rules: { type: ModuleType; include: string[] }[]) {
  return readdirSync(outDir)
    .filter((name) => name !== 'README.md' && !name.endsWith('.map'))
    // The first module is the Worker's main module.
    .sort((a, b) => Number(b === 'index.js') - Number(a === 'index.js'))
    .map((name) => {
      if (name === 'index.js') return { type: 'ESModule' as const, path: join(outDir, name) };
      const original = name.replace(/^[0-9a-f]{40}-/, '');
      const rule = rules.find((r) => r.include.some((glob) => matchesGlob(original, glob) || matchesGlob(`x/${original}`, glob)));
      return { type: rule?.type ?? ('ESModule' as const), path: join(outDir, name) };
    });
}

const started = Date.now();
const outDir = join(ROOT, '.wrangler', 'sdk-build');
rmSync(outDir, { recursive: true, force: true });
bundleWorker(outDir);
const persistDir = mkdtempSync(join(tmpdir(), 'gridlease-sdk-'));
let doc: Record<string, unknown>;
const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, 'wrangler.toml'));
const { modulesRules, ...fromConfig } = workerOptions;
const mf = new Miniflare(
  convertV4MiniflareOptions({
    ...fromConfig,
    name: 'gridlease',
    rootPath: outDir,
    modulesRoot: outDir,
    modules: bundleModules(outDir, (modulesRules ?? []) as { type: ModuleType; include: string[] }[]),
    bindings: { ...(workerOptions.bindings as Record<string, unknown>), ENVIRONMENT: 'development', LOG_REQUESTS: 'false' },
    port: 0,
    resourcePersistencePath: persistDir,
    cf: { colo: 'LCL', country: 'ZZ', city: 'Localhost' },
    telemetry: { enabled: false },
    log: new Log(LogLevel.WARN),
  } as V4MiniflareOptions),
);
try {
  const res = await mf.dispatchFetch('http://localhost/openapi.json');
  if (res.status !== 200) throw new Error(`/openapi.json answered ${res.status}: ${await res.text()}`);
  doc = canonicalDocument((await res.json()) as Record<string, unknown>);
} finally {
  await mf.dispose();
  rmSync(persistDir, { recursive: true, force: true });
}

writeFileSync(DOCUMENT, `${JSON.stringify(doc, null, 2)}\n`);
try {
  generateTypes(DOCUMENT, TYPES);
} catch (err) {
  console.error(`sdk: ${(err as Error).message}`);
  process.exit(1);
}
const paths = Object.keys(doc.paths as object).length;
console.log(`sdk: ${paths} paths → sdk/openapi.json, sdk/src/schema.d.ts (${Date.now() - started} ms)`);
