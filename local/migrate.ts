// Applies migrations/ to a libSQL database: `npm run db:migrate` (LIBSQL_URL and
// LIBSQL_AUTH_TOKEN from the environment, e.g. a Turso database), or imported by the
// local launcher and the test setup. Runs in Node: drizzle's migrator reads files.
import { createClient } from '@libsql/client/node';
import { drizzle } from 'drizzle-orm/libsql/node';
import { migrate } from 'drizzle-orm/libsql/migrator';
import { fileURLToPath } from 'node:url';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations', import.meta.url));

export async function applyMigrations(url: string, authToken?: string): Promise<void> {
  const client = createClient({ url, authToken });
  try {
    await migrate(drizzle(client), { migrationsFolder: MIGRATIONS_DIR });
  } finally {
    client.close();
  }
}

if (import.meta.main) {
  const url = process.argv[2] ?? process.env.LIBSQL_URL;
  if (!url) {
    console.error('usage: npm run db:migrate -- <libsql url>   (or set LIBSQL_URL; LIBSQL_AUTH_TOKEN for Turso)');
    process.exit(2);
  }
  try {
    await applyMigrations(url, process.env.LIBSQL_AUTH_TOKEN);
    console.log(`migrations applied to ${url.replace(/\?.*$/, '')}`);
  } catch (err) {
    console.error(`migration failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
