// openapi-typescript, as `npm run build:sdk` runs it: the SDK's own binary (it needs TypeScript 5;
// the repository's is 7). Shared with the test that checks schema.d.ts matches openapi.json.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export const DOCUMENT = here('./openapi.json');
export const TYPES = here('./src/schema.d.ts');

/** Writes the types of the OpenAPI document `docFile` to `outFile`; throws with the tool's output on failure. */
export function generateTypes(docFile: string, outFile: string): void {
  // A field with a default (tif, verified_only) stays optional in what callers send: the server
  // fills it in.
  const args = [docFile, '--output', outFile, '--alphabetize', '--default-non-nullable', 'false'];
  const result = spawnSync(here('./node_modules/.bin/openapi-typescript'), args, { cwd: here('.'), encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`openapi-typescript failed:\n${result.stderr || result.stdout || result.error?.message}`);
}
