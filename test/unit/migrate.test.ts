import { createClient } from '@libsql/client/node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startLibsqlServer, type LibsqlServer } from '../../local/libsql-server.ts';
import { MIGRATIONS_DIR, applyMigrations } from '../../local/migrate.ts';
import { readFileSync } from 'node:fs';

let server: LibsqlServer | undefined;
let dir: string | undefined;
afterEach(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('db:migrate', () => {
  it('applies the migrations over HTTP, as to a Turso URL with a token, and is idempotent', async () => {
    dir = mkdtempSync(join(tmpdir(), 'gridlease-migrate-'));
    server = await startLibsqlServer({ file: join(dir, 'db.sqlite'), port: 0, authToken: 'secret-token' });
    await expect(applyMigrations(server.url)).rejects.toThrow();
    await applyMigrations(server.url, 'secret-token');
    await applyMigrations(server.url, 'secret-token');

    const client = createClient({ url: server.url, authToken: 'secret-token' });
    const tables = await client.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
    expect(tables.rows.map((r) => r.name)).toEqual(expect.arrayContaining(['accounts', 'api_keys', 'audit_log', '__drizzle_migrations']));
    const applied = await client.execute('SELECT count(*) AS n FROM __drizzle_migrations');
    const journal = JSON.parse(readFileSync(join(MIGRATIONS_DIR, 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] };
    expect(applied.rows[0]!.n).toBe(journal.entries.length);
    client.close();
  });
});
