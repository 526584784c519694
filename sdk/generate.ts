// Regenerates the SDK's types from the API as it is now: bundles the Worker as `wrangler deploy`
// would, runs it in workerd (it cannot run in Node), reads /openapi.json, writes sdk/openapi.json
// and sdk/src/schema.d.ts. `npm run build:sdk`; test/worker/sdk-schema.test.ts fails when the two
// files are stale.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorker, startWorker } from '../local/worker.ts';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const ROOT = here('..');

/** The published document without `servers`: it names whichever origin served it. */
function canonicalDocument(doc: Record<string, unknown>): Record<string, unknown> {
  const { servers: _servers, ...rest } = doc;
  return rest;
}

const started = Date.now();
const script = bundleWorker(join(ROOT, '.wrangler', 'sdk-build'));
const persistDir = mkdtempSync(join(tmpdir(), 'gridlease-sdk-'));
let doc: Record<string, unknown>;
const { mf } = await startWorker({ script, host: '127.0.0.1', port: 0, persistDir, bindings: { ENVIRONMENT: 'development', LOG_REQUESTS: 'false' } });
try {
  const res = await mf.dispatchFetch('http://localhost/openapi.json');
  if (res.status !== 200) throw new Error(`/openapi.json answered ${res.status}: ${await res.text()}`);
  doc = canonicalDocument((await res.json()) as Record<string, unknown>);
} finally {
  await mf.dispose();
  rmSync(persistDir, { recursive: true, force: true });
}

const docFile = here('./openapi.json');
writeFileSync(docFile, `${JSON.stringify(doc, null, 2)}\n`);
// openapi-typescript needs TypeScript 5; the SDK has its own copy (the root's is 7).
const bin = here('./node_modules/.bin/openapi-typescript');
const out = here('./src/schema.d.ts');
const result = spawnSync(bin, [docFile, '--output', out, '--alphabetize'], { cwd: here('.'), encoding: 'utf8' });
if (result.status !== 0) {
  console.error(`sdk: openapi-typescript failed:\n${result.stderr || result.stdout}`);
  process.exit(1);
}
const paths = Object.keys(doc.paths as object).length;
console.log(`sdk: ${paths} paths → sdk/openapi.json, sdk/src/schema.d.ts (${Date.now() - started} ms)`);
