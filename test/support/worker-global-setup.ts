// Starts what the Worker under test talks to, outside workerd: a local libSQL server
// over a fresh, migrated database file. Its URL reaches the Worker as LIBSQL_URL.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startLibsqlServer } from '../../local/libsql-server.ts';
import { applyMigrations } from '../../local/migrate.ts';
import { generateSigningJwk } from '../../local/secrets.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    libsqlUrl: string;
    jwtPrivateKeys: string;
  }
}

export default async function setup(project: TestProject) {
  const dir = mkdtempSync(join(tmpdir(), 'gridlease-test-'));
  const file = join(dir, 'test.db');
  await applyMigrations(`file:${file}`);
  const server = await startLibsqlServer({ file, port: 0 });
  // Two keys: the first signs, the second is a rotated-out key whose tokens must still verify.
  const keys = [await generateSigningJwk('test-current'), await generateSigningJwk('test-previous')];
  project.provide('libsqlUrl', server.url);
  project.provide('jwtPrivateKeys', JSON.stringify(keys));
  return async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  };
}
