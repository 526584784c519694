// A migrated database behind the local libSQL server, for Node tests and benchmarks.
import { createClient, type Client } from '@libsql/client/web';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLibsqlServer } from '../../local/libsql-server.ts';
import { applyMigrations } from '../../local/migrate.ts';

export interface TestDatabase {
  url: string;
  /** Integers as bigint, as the Worker's money code uses it. */
  money: Client;
  close(): Promise<void>;
}

export async function startTestDatabase(): Promise<TestDatabase> {
  const dir = mkdtempSync(join(tmpdir(), 'gridlease-db-'));
  const file = join(dir, 'db.sqlite');
  await applyMigrations(`file:${file}`);
  const server = await startLibsqlServer({ file, port: 0 });
  const money = createClient({ url: server.url, intMode: 'bigint' });
  return {
    url: server.url,
    money,
    close: async () => {
      money.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
