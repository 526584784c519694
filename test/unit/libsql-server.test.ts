// Specification of the local libSQL server (local/libsql-server.ts), exercised through the
// official @libsql/client (http:// URL and @libsql/client/web) and, for protocol edge
// cases, raw fetch. Every test has its own database file and server on a random port.
import { createClient, LibsqlError, type Client, type Config } from '@libsql/client';
import { createClient as createWebClient } from '@libsql/client/web';
import Database from 'libsql';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startLibsqlServer, type LibsqlServer, type LibsqlServerOptions } from '../../local/libsql-server.ts';
import { startLibsqlServerThread } from '../../local/libsql-server/thread.ts';

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDbFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'libsql-server-test-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'test.db');
}

async function startServer(opts: Partial<LibsqlServerOptions> = {}): Promise<LibsqlServer> {
  const server = await startLibsqlServer({ file: opts.file ?? tempDbFile(), port: 0, ...opts });
  cleanups.push(() => server.close());
  return server;
}

function clientFor(server: LibsqlServer, config: Partial<Config> = {}): Client {
  const client = createClient({ url: server.url, ...config });
  cleanups.push(() => client.close());
  return client;
}

async function setup(opts: Partial<LibsqlServerOptions> = {}, config: Partial<Config> = {}) {
  const server = await startServer(opts);
  return { server, client: clientFor(server, config) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function pipeline(server: LibsqlServer, body: unknown, path = '/v2/pipeline') {
  const res = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, contentType: res.headers.get('content-type'), body: (await res.json()) as any };
}

/** Executes each statement in turn in one stream (so on one connection), then closes it. */
function inOneStream(server: LibsqlServer, sqls: string[]) {
  return pipeline(server, { baton: null, requests: [...sqls.map((sql) => ({ type: 'execute', stmt: { sql, want_rows: true } })), { type: 'close' }] });
}

/** The rejection of a promise, asserted to be a LibsqlError. */
async function libsqlError(promise: Promise<unknown>): Promise<LibsqlError> {
  const err = await promise.then(
    () => {
      throw new Error('expected the promise to reject');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LibsqlError);
  return err as LibsqlError;
}

async function expectServerAlive(server: LibsqlServer) {
  expect((await fetch(`${server.url}/health`)).status).toBe(200);
  const client = clientFor(server);
  expect((await client.execute('SELECT 41 + 1 AS answer')).rows[0]?.answer).toBe(42);
}

describe('listening', () => {
  it('binds to 127.0.0.1 by default and answers the health and version probes', async () => {
    const server = await startServer();
    const url = new URL(server.url);
    expect(url.protocol).toBe('http:');
    expect(url.hostname).toBe('127.0.0.1');
    expect(Number(url.port)).toBe(server.port);
    for (const path of ['/health', '/v2', '/v3']) expect((await fetch(`${server.url}${path}`)).status).toBe(200);
  });

  it('rejects with a clear message naming the port when the port is taken', async () => {
    const first = await startServer();
    await expect(startLibsqlServer({ file: tempDbFile(), port: first.port })).rejects.toThrow(
      `port ${first.port} is already in use (set LIBSQL_PORT to another port)`,
    );
    await expectServerAlive(first);
  });

  // Node names its worker threads "WorkerThread"; the only ones this file starts are the servers'.
  const workerThreads = () =>
    readdirSync('/proc/self/task').filter((task) => {
      try {
        return readFileSync(`/proc/self/task/${task}/comm`, 'utf8').trim() === 'WorkerThread';
      } catch {
        return false; // ended while listed
      }
    }).length;

  it.skipIf(process.platform !== 'linux')('has ended its checkpoint thread once close() resolves or starting fails', async () => {
    // A thread still running after that would touch the database's folder, which the caller may be removing.
    const before = workerThreads();
    const server = await startServer();
    await vi.waitFor(() => expect(workerThreads()).toBe(before + 1));
    await expect(startLibsqlServer({ file: tempDbFile(), port: server.port })).rejects.toThrow('already in use');
    expect(workerThreads()).toBe(before + 1);
    await server.close();
    expect(workerThreads()).toBe(before);
  });
});

describe('on its own thread (as npm start runs it)', () => {
  it('serves the client, hands its log records to the caller, keeps data across restarts and stops on close', async () => {
    const file = tempDbFile();
    const lines: Record<string, unknown>[] = [];
    const server = await startLibsqlServerThread({ file, port: 0, log: (line) => lines.push(line) });
    cleanups.push(() => server.close());
    const client = clientFor(server);
    await client.execute('CREATE TABLE t (v TEXT NOT NULL)');
    await client.execute({ sql: 'INSERT INTO t VALUES (?)', args: ['kept'] });
    // A failing statement is logged by the server thread; the record reaches this thread.
    expect((await libsqlError(client.execute('SELECT * FROM missing_table'))).message).toContain('no such table');
    await vi.waitFor(() => expect(lines.some((l) => l.level === 'error' && JSON.stringify(l).includes('missing_table'))).toBe(true));
    client.close();
    await server.close();
    await expect(fetch(`${server.url}/health`)).rejects.toThrow();

    const again = await startLibsqlServerThread({ file, port: 0 });
    cleanups.push(() => again.close());
    expect((await clientFor(again).execute('SELECT v FROM t')).rows.map((r) => r.v)).toEqual(['kept']);
  });

  it('tells its owner once if the thread stops on its own, and still closes cleanly', async () => {
    const reasons: string[] = [];
    const server = await startLibsqlServerThread({ file: tempDbFile(), port: 0, onStopped: (reason) => reasons.push(reason) });
    cleanups.push(() => server.close());
    await expectServerAlive(server);
    await server.thread.terminate();
    await vi.waitFor(() => expect(reasons).toEqual([expect.stringMatching(/^the libSQL server thread exited with code \d+$/)]));
    await expect(fetch(`${server.url}/health`)).rejects.toThrow();
    await server.close();
    expect(reasons).toHaveLength(1);

    // An asked-for close is not a stop to report.
    const quiet: string[] = [];
    const other = await startLibsqlServerThread({ file: tempDbFile(), port: 0, onStopped: (reason) => quiet.push(reason) });
    await other.close();
    expect(quiet).toEqual([]);
  });

  it('rejects with the same clear message when its port is taken, leaving the first server serving', async () => {
    const first = await startServer();
    await expect(startLibsqlServerThread({ file: tempDbFile(), port: first.port })).rejects.toThrow(
      `port ${first.port} is already in use (set LIBSQL_PORT to another port)`,
    );
    await expectServerAlive(first);
  });
});

describe('execute', () => {
  it('binds positional and named arguments and reports rowsAffected, lastInsertRowid and columns', async () => {
    const { client } = await setup();
    await client.execute('CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER)');

    const first = await client.execute({ sql: 'INSERT INTO people (name, age) VALUES (?, ?)', args: ['Ada', 36] });
    expect(first.rowsAffected).toBe(1);
    expect(first.lastInsertRowid).toBe(1n);
    const second = await client.execute({ sql: 'INSERT INTO people (name, age) VALUES (:name, $age)', args: { name: 'Grace', $age: 45 } });
    expect(second.lastInsertRowid).toBe(2n);
    const third = await client.execute({ sql: 'INSERT INTO people (name, age) VALUES (@name, @age)', args: { '@name': 'Linus', age: null } });
    expect(third.lastInsertRowid).toBe(3n);

    const updated = await client.execute({ sql: 'UPDATE people SET age = age + 1 WHERE age > ?', args: [0] });
    expect(updated.rowsAffected).toBe(2);
    expect(updated.lastInsertRowid).toBeUndefined();

    const rows = await client.execute({ sql: 'SELECT id, name, age AS years FROM people WHERE name IN (:a, :b) ORDER BY id', args: { a: 'Ada', ':b': 'Grace' } });
    expect(rows.columns).toEqual(['id', 'name', 'years']);
    expect(rows.columnTypes).toEqual(['INTEGER', 'TEXT', 'INTEGER']);
    expect(rows.rowsAffected).toBe(0);
    expect(rows.rows.map((r) => ({ ...r }))).toEqual([
      { id: 1, name: 'Ada', years: 37 },
      { id: 2, name: 'Grace', years: 46 },
    ]);
    expect(rows.rows[1]?.[1]).toBe('Grace'); // rows are also indexable by position
  });

  it('round-trips 64-bit integers, floats, unicode text, blobs and nulls exactly', async () => {
    const { client } = await setup({}, { intMode: 'bigint' });
    await client.execute('CREATE TABLE vals (k INTEGER PRIMARY KEY, i INTEGER, f REAL, t TEXT, b BLOB, n)');
    const ints = [2n ** 62n, -(2n ** 62n), 2n ** 63n - 1n, -(2n ** 63n), 9007199254740993n, -1n, 0n];
    for (const [k, i] of ints.entries()) {
      await client.execute({ sql: 'INSERT INTO vals (k, i) VALUES (?, ?)', args: [k, i] });
    }
    const read = await client.execute('SELECT i, typeof(i) AS ty FROM vals ORDER BY k');
    expect(read.rows.map((r) => r.i)).toEqual(ints);
    expect(read.rows.every((r) => r.ty === 'integer')).toBe(true);
    // Arithmetic happens on the server with the exact values.
    expect((await client.execute({ sql: 'SELECT ? + 1 AS v', args: [2n ** 62n] })).rows[0]?.v).toBe(2n ** 62n + 1n);

    const text = 'héllo wörld — 日本語 🚀 \t"quotes" end';
    const blob = new Uint8Array([0, 1, 2, 253, 254, 255]);
    await client.execute({
      sql: 'INSERT INTO vals (k, f, t, b, n) VALUES (100, ?, ?, ?, ?)',
      args: [3.25, text, blob, null],
    });
    await client.execute({ sql: 'INSERT INTO vals (k, f, b) VALUES (101, ?, ?)', args: [-0.5e-10, blob.buffer.slice(1, 4)] });
    const row = (await client.execute('SELECT f, t, b, n, typeof(f) AS tf, typeof(b) AS tb, typeof(n) AS tn FROM vals WHERE k = 100')).rows[0];
    expect(row?.f).toBe(3.25);
    expect(row?.t).toBe(text);
    expect(row?.b).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(row?.b as ArrayBuffer)]).toEqual([...blob]);
    expect(row?.n).toBeNull();
    expect([row?.tf, row?.tb, row?.tn]).toEqual(['real', 'blob', 'null']);
    const other = (await client.execute('SELECT f, b FROM vals WHERE k = 101')).rows[0];
    expect(other?.f).toBe(-0.5e-10);
    expect([...new Uint8Array(other?.b as ArrayBuffer)]).toEqual([1, 2, 253]);
    // A JS number is sent as a float (as to sqld); an empty blob stays a blob.
    const types = (await client.execute({ sql: 'SELECT typeof(?) AS a, typeof(?) AS b, length(?) AS c', args: [1, new Uint8Array(0), new Uint8Array(0)] })).rows[0];
    expect([types?.a, types?.b, types?.c]).toEqual(['real', 'blob', 0n]);
  });

  it('rejects statements the way sqld does: parse errors, several statements, missing arguments', async () => {
    const { client } = await setup();
    expect((await libsqlError(client.execute('SELEC 1'))).code).toBe('SQL_PARSE_ERROR');
    expect((await libsqlError(client.execute('SELECT 1; SELECT 2'))).code).toBe('SQL_MANY_STATEMENTS');
    expect((await libsqlError(client.execute('-- nothing'))).code).toBe('SQL_NO_STATEMENT');
    expect((await libsqlError(client.execute('SELECT ?, ?', [1]))).code).toBe('ARGS_INVALID');
    expect((await libsqlError(client.execute({ sql: 'SELECT :a', args: { b: 1 } }))).code).toBe('ARGS_INVALID');
    expect((await libsqlError(client.execute('SELECT * FROM missing_table'))).code).toBe('SQLITE_ERROR');
    // `;` and `?` inside strings, identifiers and comments are not statement boundaries or parameters.
    const odd = await client.execute({ sql: `SELECT 'a;b?' AS "x;?", ? AS p -- trailing; comment ?`, args: ['ok'] });
    expect(odd.rows[0]?.['x;?']).toBe('a;b?');
    expect(odd.rows[0]?.p).toBe('ok');
  });

  it('exposes a SQLITE_CONSTRAINT code on a LibsqlError for a constraint violation', async () => {
    const { client } = await setup();
    await client.execute('CREATE TABLE users (email TEXT UNIQUE NOT NULL)');
    await client.execute("INSERT INTO users VALUES ('a@example.com')");
    const unique = await libsqlError(client.execute("INSERT INTO users VALUES ('a@example.com')"));
    expect(unique.code).toMatch(/^SQLITE_CONSTRAINT/);
    expect(unique.message).toContain('UNIQUE constraint failed: users.email');
    const notNull = await libsqlError(client.execute('INSERT INTO users VALUES (NULL)'));
    expect(notNull.code).toMatch(/^SQLITE_CONSTRAINT/);
  });

  it('enforces foreign keys', async () => {
    const { client } = await setup();
    await client.executeMultiple(`
      CREATE TABLE parent (id INTEGER PRIMARY KEY);
      CREATE TABLE child (parent_id INTEGER NOT NULL REFERENCES parent (id));
    `);
    const err = await libsqlError(client.execute('INSERT INTO child VALUES (7)'));
    expect(err.code).toMatch(/^SQLITE_CONSTRAINT/);
    expect(err.message).toContain('FOREIGN KEY');
  });
  it('reports rowsAffected and lastInsertRowid exactly as changes() and last_insert_rowid() read right after', async () => {
    const server = await startServer();
    const setupSql = `
      CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INTEGER DEFAULT 0);
      CREATE TABLE audit (item_id INTEGER, note TEXT);
      CREATE TRIGGER items_audit AFTER INSERT ON items BEGIN
        INSERT INTO audit VALUES (new.id, 'a'); INSERT INTO audit VALUES (new.id, 'b');
      END;
      CREATE VIEW named AS SELECT name FROM items;
      CREATE TRIGGER named_insert INSTEAD OF INSERT ON named BEGIN INSERT INTO items (name) VALUES (new.name); END;`;
    const statements = [
      "INSERT INTO items (name) VALUES ('a')",
      "INSERT INTO items (name) VALUES ('b'), ('c')",
      "INSERT INTO items (name) VALUES ('a') ON CONFLICT (name) DO NOTHING",
      "INSERT INTO items (name) VALUES ('a') ON CONFLICT (name) DO UPDATE SET n = n + 1",
      "REPLACE INTO items (id, name) VALUES (1, 'a2')",
      "UPDATE items SET n = n + 1 WHERE name = 'nobody'",
      'UPDATE items SET n = n + 1',
      "INSERT INTO named VALUES ('through the view')",
      "INSERT INTO items (id, name) VALUES (4611686018427387904, 'huge')", // 2^62: past 2^53
      "INSERT INTO items (id, name) VALUES (9007199254740993, 'just past 2^53')",
      "INSERT INTO items (name) VALUES ('d') RETURNING id",
      "UPDATE items SET n = 0 WHERE name IN ('b', 'c') RETURNING id",
      "DELETE FROM items WHERE name = 'd'",
      'DELETE FROM audit',
      "WITH x AS (SELECT 'e' AS name) INSERT INTO items (name) SELECT name FROM x",
      "SELECT count(*) FROM items",
    ];
    const requests: unknown[] = [{ type: 'sequence', sql: setupSql }];
    for (const sql of statements) {
      requests.push({ type: 'execute', stmt: { sql } }, { type: 'execute', stmt: { sql: 'SELECT changes(), last_insert_rowid()' } });
    }
    requests.push({ type: 'close' });
    const { status, body } = await pipeline(server, { baton: null, requests });
    expect(status).toBe(200);
    for (const [i, sql] of statements.entries()) {
      const result = body.results[1 + 2 * i];
      const stats = body.results[2 + 2 * i];
      expect(result.type, sql).toBe('ok');
      const [changes, rowid] = stats.response.result.rows[0].map((v: { value: string }) => v.value);
      const r = result.response.result;
      const dml = /^(INSERT|REPLACE|UPDATE|DELETE|WITH)/.test(sql);
      expect(r.affected_row_count, sql).toBe(dml ? Number(changes) : 0);
      expect(r.rows_written, sql).toBe(dml ? Number(changes) : 0);
      expect(r.last_insert_rowid, sql).toBe(/^(INSERT|REPLACE|WITH)/.test(sql) ? rowid : null);
    }
    // The exact rowids past 2^53 came back as inserted.
    expect(body.results[1 + 2 * 8].response.result.last_insert_rowid).toBe('4611686018427387904');
    expect(body.results[1 + 2 * 9].response.result.last_insert_rowid).toBe('9007199254740993');
  });

  it('does not let a stream that turned foreign keys off pass that on with its pooled connection', async () => {
    const { server, client } = await setup();
    await client.executeMultiple(`
      CREATE TABLE parent (id INTEGER PRIMARY KEY);
      CREATE TABLE child (parent_id INTEGER NOT NULL REFERENCES parent (id));
    `);
    let parentId = 100;
    const fkViolation = async () => {
      // New SQL text each time: a statement prepared while foreign keys are off never checks them.
      const err = await libsqlError(client.execute(`INSERT INTO child VALUES (${parentId++})`));
      expect(err.message).toContain('FOREIGN KEY');
    };
    // Each execute is its own stream; the connection goes back to the pool after it.
    for (const off of ['PRAGMA foreign_keys = OFF', 'pragma FOREIGN_KEYS=0', '/* x */ PRAGMA main.foreign_keys = false']) {
      await client.execute(off);
      await fkViolation();
      await client.execute(off); // the same text again: a cached prepared statement
      await fkViolation();
    }
    // A stream that only describes (prepares) the pragma: SQLite applies it when preparing.
    const described = await pipeline(server, { baton: null, requests: [{ type: 'describe', sql: 'PRAGMA foreign_keys = OFF' }, { type: 'close' }] });
    expect(described.body.results[0].type).toBe('ok');
    await fkViolation();
    // Within one stream the pragma holds, as on sqld.
    const tx = await client.transaction('write');
    await tx.execute('PRAGMA foreign_keys = OFF'); // a no-op inside a transaction, as in SQLite
    await tx.rollback();
    const own = await inOneStream(server, ['PRAGMA foreign_keys = OFF', 'INSERT INTO child VALUES (8)', 'DELETE FROM child']);
    expect(own.body.results.map((r: any) => r.type)).toEqual(['ok', 'ok', 'ok', 'ok']);
    await fkViolation();
  });

  it('gives no stream the TEMP objects, attached databases or pragmas of an earlier one', async () => {
    const { server, client } = await setup();
    await client.execute('CREATE TABLE kept (v TEXT)');
    let inserted = 0;
    const fresh = async (after: string) => {
      // One stream, so one connection: the pool hands out the one returned last, which is the
      // one that ran `after` if it went back to the pool. Nothing here may name the state it
      // looks for (that alone keeps a connection out of the pool).
      const { body } = await inOneStream(server, [
        "SELECT count(*) FROM sqlite_temp_master WHERE name LIKE 'scratch%'",
        'SELECT count(*) FROM side.sqlite_master',
        `INSERT INTO kept VALUES ('${inserted}')`,
        "SELECT 'A' LIKE 'a'",
      ]);
      const [temp, attached, insert, like] = body.results;
      expect(temp.response.result.rows, after).toEqual([[{ type: 'integer', value: '0' }]]);
      expect(attached.type, after).toBe('error'); // no database `side` here
      expect(insert.type, after).toBe('ok'); // refused if query_only were on
      inserted++;
      expect(like.response.result.rows, after).toEqual([[{ type: 'integer', value: '1' }]]); // SQLite's default
    };
    // Each execute is its own stream.
    for (const sql of [
      'CREATE TEMP TABLE scratch (v TEXT)',
      'create temporary view scratch_view AS SELECT 1 AS one',
      `ATTACH DATABASE ':memory:' AS side`,
      'PRAGMA query_only = ON',
      'PRAGMA case_sensitive_like = ON',
    ]) {
      await client.execute(sql);
      await fresh(sql);
    }
    // Within one stream, its own TEMP table is there to use, as on sqld.
    const own = await inOneStream(server, ['CREATE TEMP TABLE mine (v TEXT)', "INSERT INTO mine VALUES ('x')", 'SELECT v FROM mine']);
    expect(own.body.results.map((r: any) => r.type)).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(own.body.results[2].response.result.rows).toEqual([[{ type: 'text', value: 'x' }]]);
    expect(Number((await client.execute('SELECT count(*) AS n FROM kept')).rows[0]!.n)).toBe(inserted);
  });

  it('answers the same SQL text the same way every time it is sent', async () => {
    const { client } = await setup();
    for (let round = 0; round < 3; round++) {
      expect((await libsqlError(client.execute('SELEC 1'))).code).toBe('SQL_PARSE_ERROR');
      expect((await libsqlError(client.execute('SELECT 1; SELECT 2'))).code).toBe('SQL_MANY_STATEMENTS');
      expect((await libsqlError(client.execute('-- nothing'))).code).toBe('SQL_NO_STATEMENT');
      expect((await libsqlError(client.execute('SELECT ?, ?', [1]))).code).toBe('ARGS_INVALID');
      const row = (await client.execute({ sql: 'SELECT :a AS a, ? AS b;  -- trailing', args: { a: round, '?2': 'x' } }).catch((e) => e)) as unknown;
      expect(row).toBeInstanceOf(LibsqlError); // mixing named and positional, as sqld
      expect((await client.execute({ sql: 'SELECT ? AS v; ', args: [round] })).rows[0]?.v).toBe(round);
    }
  });
  it('reports the columns of the current schema for a statement it has run before', async () => {
    const { client } = await setup();
    const star = async (c: Pick<Client, 'execute'> = client) => {
      const rs = await c.execute('SELECT * FROM t');
      return { columns: rs.columns, types: rs.columnTypes, rows: rs.rows.map((r) => [...Object.values({ ...r })]) };
    };
    await client.execute('CREATE TABLE t (a INTEGER)');
    await client.execute('INSERT INTO t VALUES (1)');
    expect(await star()).toEqual({ columns: ['a'], types: ['INTEGER'], rows: [[1]] });
    await client.execute("ALTER TABLE t ADD COLUMN b TEXT DEFAULT 'x'");
    expect(await star()).toEqual({ columns: ['a', 'b'], types: ['INTEGER', 'TEXT'], rows: [[1, 'x']] });
    await client.executeMultiple("DROP TABLE t; CREATE TABLE t (z TEXT, y REAL); INSERT INTO t VALUES ('1', 2.5);");
    expect(await star()).toEqual({ columns: ['z', 'y'], types: ['TEXT', 'REAL'], rows: [['1', 2.5]] });

    // A schema change inside a transaction: seen at once by its own stream, by others after COMMIT.
    const tx = await client.transaction('write');
    expect((await star(tx)).columns).toEqual(['z', 'y']);
    await tx.execute('ALTER TABLE t ADD COLUMN w INTEGER DEFAULT 7');
    expect(await star(tx)).toEqual({ columns: ['z', 'y', 'w'], types: ['TEXT', 'REAL', 'INTEGER'], rows: [['1', 2.5, 7]] });
    expect((await star()).columns).toEqual(['z', 'y']); // not committed yet
    await tx.commit();
    expect(await star()).toEqual({ columns: ['z', 'y', 'w'], types: ['TEXT', 'REAL', 'INTEGER'], rows: [['1', 2.5, 7]] });

    // ... and a schema change rolled back is undone for everyone.
    const undone = await client.transaction('write');
    await undone.execute('ALTER TABLE t ADD COLUMN v TEXT');
    expect((await star(undone)).columns).toEqual(['z', 'y', 'w', 'v']);
    await undone.rollback();
    expect((await star()).columns).toEqual(['z', 'y', 'w']);
  });

});

describe('batch', () => {
  it('commits all steps of a successful batch', async () => {
    const { client } = await setup();
    await client.execute('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT UNIQUE)');
    const results = await client.batch(
      [
        { sql: 'INSERT INTO items (name) VALUES (?)', args: ['a'] },
        { sql: 'INSERT INTO items (name) VALUES (?)', args: ['b'] },
        'SELECT count(*) AS n FROM items',
      ],
      'write',
    );
    expect(results.map((r) => r.lastInsertRowid)).toEqual([1n, 2n, undefined]);
    expect(results[2]?.rows[0]?.n).toBe(2);
    expect((await client.execute('SELECT name FROM items ORDER BY id')).rows.map((r) => r.name)).toEqual(['a', 'b']);
  });

  it('leaves nothing behind when a middle step fails', async () => {
    const { client } = await setup();
    await client.execute('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT UNIQUE)');
    await client.execute("INSERT INTO items (name) VALUES ('taken')");
    for (const mode of ['write', 'deferred'] as const) {
      const err = await libsqlError(
        client.batch(
          [
            "INSERT INTO items (name) VALUES ('first')",
            "INSERT INTO items (name) VALUES ('taken')",
            "INSERT INTO items (name) VALUES ('third')",
          ],
          mode,
        ),
      );
      expect(err.code).toMatch(/^SQLITE_CONSTRAINT/);
    }
    expect((await client.execute('SELECT name FROM items')).rows.map((r) => r.name)).toEqual(['taken']);
  });

  it('evaluates step conditions (ok, error, not, and, or, is_autocommit) like sqld', async () => {
    const server = await startServer();
    const stmt = (sql: string) => ({ sql, want_rows: true });
    const { status, body } = await pipeline(server, {
      baton: null,
      requests: [
        {
          type: 'batch',
          batch: {
            steps: [
              { stmt: stmt('SELECT 1') },
              { stmt: stmt('SELECT nope') },
              { stmt: stmt('SELECT 3'), condition: { type: 'ok', step: 1 } },
              { stmt: stmt('SELECT 4'), condition: { type: 'error', step: 1 } },
              { stmt: stmt('SELECT 5'), condition: { type: 'and', conds: [{ type: 'ok', step: 0 }, { type: 'not', cond: { type: 'ok', step: 2 } }] } },
              { stmt: stmt('SELECT 6'), condition: { type: 'or', conds: [{ type: 'ok', step: 1 }, { type: 'is_autocommit' }] } },
              { stmt: stmt('SELECT 7'), condition: { type: 'ok', step: 9 } },
            ],
          },
        },
        { type: 'close' },
      ],
    });
    expect(status).toBe(200);
    expect(body.baton).toBeNull();
    const { step_results, step_errors } = body.results[0].response.result;
    const ran = step_results.map((r: any) => (r === null ? null : r.rows[0][0].value));
    expect(ran).toEqual(['1', null, null, '4', '5', '6', null]);
    expect(step_errors.map((e: any) => e?.code ?? null)).toEqual([null, 'SQLITE_ERROR', null, null, null, null, 'INVALID_BATCH_STEP']);
  });
});

describe('interactive transactions', () => {
  it('commits, and other streams see only committed data meanwhile', async () => {
    const { client } = await setup();
    await client.execute('CREATE TABLE notes (body TEXT)');
    const tx = await client.transaction('write');
    await tx.execute("INSERT INTO notes VALUES ('draft')");
    expect((await tx.execute('SELECT count(*) AS n FROM notes')).rows[0]?.n).toBe(1);
    // A read on another stream neither blocks nor sees the uncommitted row.
    expect((await client.execute('SELECT count(*) AS n FROM notes')).rows[0]?.n).toBe(0);
    await tx.commit();
    expect((await client.execute('SELECT body FROM notes')).rows.map((r) => r.body)).toEqual(['draft']);
  });

  it('rolls back, leaving nothing', async () => {
    const { client } = await setup();
    await client.execute('CREATE TABLE notes (body TEXT)');
    const tx = await client.transaction('write');
    await tx.execute("INSERT INTO notes VALUES ('one')");
    await tx.batch(["INSERT INTO notes VALUES ('two')", "UPDATE notes SET body = 'x'"]);
    await tx.rollback();
    expect((await client.execute('SELECT count(*) AS n FROM notes')).rows[0]?.n).toBe(0);
  });

  it('serialises concurrent read-modify-write transactions on one counter', async () => {
    const { client } = await setup();
    await client.batch(['CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)', 'INSERT INTO counter VALUES (1, 0)'], 'write');
    const increment = async () => {
      const tx = await client.transaction('write');
      try {
        const value = Number((await tx.execute('SELECT value FROM counter WHERE id = 1')).rows[0]?.value);
        await sleep(50); // let the other transaction try to interleave
        await tx.execute({ sql: 'UPDATE counter SET value = ? WHERE id = 1', args: [value + 1] });
        await tx.commit();
      } finally {
        tx.close();
      }
    };
    await Promise.all([increment(), increment(), increment()]);
    expect((await client.execute('SELECT value FROM counter')).rows[0]?.value).toBe(3);
  });

  it('makes one-shot writes and deferred batches wait for an open write transaction without stalling the server', async () => {
    const { client } = await setup();
    await client.execute('CREATE TABLE log (n INTEGER)');
    const tx = await client.transaction('write');
    await tx.execute('INSERT INTO log VALUES (1)');
    let writeDone = false;
    const write = client.execute('INSERT INTO log VALUES (2)').then(() => (writeDone = true));
    const batch = client.batch(['INSERT INTO log VALUES (3)', 'INSERT INTO log VALUES (4)']); // "deferred" mode
    await sleep(100);
    expect(writeDone).toBe(false);
    // The event loop is free: reads are served while the writers wait.
    expect((await client.execute('SELECT count(*) AS n FROM log')).rows[0]?.n).toBe(0);
    await tx.commit();
    await Promise.all([write, batch]);
    expect((await client.execute('SELECT n FROM log ORDER BY n')).rows.map((r) => r.n)).toEqual([1, 2, 3, 4]);
  });

  it('waits asynchronously for a writer outside the server, and gives up with SQLITE_BUSY after busyTimeoutMs', async () => {
    const file = tempDbFile();
    const { client } = await setup({ file, busyTimeoutMs: 1_000 });
    await client.execute('CREATE TABLE t (v INTEGER)');
    const outsider = new Database(file); // e.g. a migration script using the file directly
    cleanups.push(() => void outsider.close());
    outsider.exec('BEGIN IMMEDIATE');
    outsider.exec('INSERT INTO t VALUES (1)');
    const pending = client.execute('INSERT INTO t VALUES (2)');
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    await sleep(200);
    clearInterval(ticker);
    expect(ticks).toBeGreaterThan(5); // the event loop kept running while the write waited
    outsider.exec('COMMIT');
    await pending;
    expect((await client.execute('SELECT v FROM t ORDER BY v')).rows.map((r) => r.v)).toEqual([1, 2]);

    outsider.exec('BEGIN IMMEDIATE');
    const started = Date.now();
    expect((await libsqlError(client.execute('INSERT INTO t VALUES (3)'))).code).toBe('SQLITE_BUSY');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    outsider.exec('ROLLBACK');
    await client.execute('INSERT INTO t VALUES (4)');
    expect((await client.execute('SELECT v FROM t ORDER BY v')).rows.map((r) => r.v)).toEqual([1, 2, 4]);
  });

  it('expires an idle stream: the transaction is rolled back, its baton rejected, the lock released', async () => {
    const { server, client } = await setup({ streamIdleTimeoutMs: 200 });
    await client.execute('CREATE TABLE t (v TEXT)');
    await client.execute("INSERT INTO t VALUES ('before')");
    const tx = await client.transaction('write');
    await tx.execute("UPDATE t SET v = 'during'");
    await sleep(600);
    const err = await libsqlError(tx.execute("UPDATE t SET v = 'after'"));
    expect(err.code).toBe('STREAM_EXPIRED');
    tx.close();
    expect((await client.execute('SELECT v FROM t')).rows.map((r) => r.v)).toEqual(['before']);
    await client.execute("INSERT INTO t VALUES ('writable')"); // the write lock was released
    await expectServerAlive(server);
  });
});

describe('sequence (executeMultiple) and persistence', () => {
  it('runs a multi-statement script, including a trigger body, and keeps data across restarts', async () => {
    const file = tempDbFile();
    const first = await startServer({ file });
    const client = clientFor(first);
    await client.executeMultiple(`
      CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
      CREATE TABLE audit (account_id INTEGER, note TEXT);
      CREATE TRIGGER accounts_audit AFTER UPDATE ON accounts BEGIN
        INSERT INTO audit VALUES (new.id, CASE WHEN new.balance < 0 THEN 'overdrawn; check' ELSE 'ok' END);
        UPDATE audit SET note = note || '!' WHERE account_id = new.id;
      END;
      INSERT INTO accounts VALUES (1, 10); -- comment; with a semicolon
      UPDATE accounts SET balance = -5 WHERE id = 1;
    `);
    expect((await client.execute('SELECT note FROM audit')).rows.map((r) => r.note)).toEqual(['overdrawn; check!']);
    // A failing statement stops the script; earlier statements stay applied.
    const err = await libsqlError(client.executeMultiple('INSERT INTO accounts VALUES (2, 0); INSERT INTO nowhere VALUES (1); INSERT INTO accounts VALUES (3, 0);'));
    expect(err.code).toBe('SQLITE_ERROR');
    client.close();
    await first.close();

    const second = await startServer({ file });
    const again = clientFor(second);
    expect((await again.execute('SELECT id, balance FROM accounts ORDER BY id')).rows.map((r) => [r.id, r.balance])).toEqual([
      [1, -5],
      [2, 0],
    ]);
  });
});

describe('WAL checkpoints', () => {
  /** Writes ≈ 1.6 MB in one batch: under SQLite's own checkpoint threshold (1,000 pages ≈ 4 MB). */
  async function writeRows(client: Client) {
    await client.execute('CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL)');
    await client.batch(Array.from({ length: 400 }, (_, i) => ({ sql: 'INSERT INTO blobs VALUES (?, randomblob(4000))', args: [i] })), 'write');
  }

  it('copies the WAL into the database file on the background thread, without waiting for a commit to cross the threshold', async () => {
    const file = tempDbFile();
    const { client } = await setup({ file, checkpointIntervalMs: 50 });
    await writeRows(client);
    let size = 0;
    for (let waited = 0; waited < 5_000 && size < 1_600_000; waited += 50) {
      await sleep(50);
      size = statSync(file).size;
    }
    expect(size).toBeGreaterThanOrEqual(1_600_000);
    // Nothing was lost on the way, and the server goes on.
    expect((await client.execute('SELECT count(*) AS n, sum(length(data)) AS bytes FROM blobs')).rows[0]).toMatchObject({ n: 400, bytes: 1_600_000 });
  });

  it('leaves them to SQLite when turned off: the same writes stay in the WAL', async () => {
    const file = tempDbFile();
    const { client } = await setup({ file, checkpointIntervalMs: 0 });
    await writeRows(client);
    await sleep(300);
    expect(statSync(file).size).toBeLessThan(100_000);
    expect(statSync(`${file}-wal`).size).toBeGreaterThanOrEqual(1_600_000);
  });
});

describe('@libsql/client/web', () => {
  it('works unchanged against the server', async () => {
    const server = await startServer();
    const web = createWebClient({ url: server.url, intMode: 'bigint' });
    cleanups.push(() => web.close());
    await web.batch(['CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)', { sql: 'INSERT INTO kv VALUES (?, ?)', args: ['big', 2n ** 62n] }], 'write');
    const tx = await web.transaction('write');
    await tx.execute({ sql: 'UPDATE kv SET v = v + 1 WHERE k = :k', args: { k: 'big' } });
    await tx.commit();
    expect((await web.execute('SELECT v FROM kv')).rows[0]?.v).toBe(2n ** 62n + 1n);
    expect((await libsqlError(web.execute("INSERT INTO kv VALUES ('big', 0)"))).code).toMatch(/^SQLITE_CONSTRAINT/);
  });
});

describe('protocol', () => {
  it('rotates the baton on every response and closes the stream on request', async () => {
    const server = await startServer();
    const open = await pipeline(server, { baton: null, requests: [{ type: 'execute', stmt: { sql: 'BEGIN' } }] });
    expect(open.status).toBe(200);
    expect(open.contentType).toBe('application/json');
    expect(open.body.base_url).toBeNull();
    expect(open.body.baton).toMatch(/^[A-Za-z0-9_-]{32,}$/);

    const next = await pipeline(server, {
      baton: open.body.baton,
      requests: [{ type: 'get_autocommit' }, { type: 'store_sql', sql_id: 1, sql: 'SELECT ?' }, { type: 'execute', stmt: { sql_id: 1, args: [{ type: 'integer', value: '-9223372036854775808' }] } }],
    }, '/v3/pipeline');
    expect(next.status).toBe(200);
    expect(next.body.baton).not.toBe(open.body.baton);
    expect(next.body.results[0].response).toEqual({ type: 'get_autocommit', is_autocommit: false });
    expect(next.body.results[2].response.result.rows).toEqual([[{ type: 'integer', value: '-9223372036854775808' }]]);

    const reused = await pipeline(server, { baton: open.body.baton, requests: [] });
    expect(reused.status).toBe(400);
    expect(reused.body.code).toBe('BATON_INVALID');

    const closed = await pipeline(server, { baton: next.body.baton, requests: [{ type: 'close' }] });
    expect(closed.body).toEqual({ baton: null, base_url: null, results: [{ type: 'ok', response: { type: 'close' } }] });
  });

  it('answers malformed requests with 4xx JSON {message, code} and keeps serving', async () => {
    const server = await startServer();
    const cases: [unknown, number][] = [
      ['{not json', 400],
      [[1, 2], 400],
      [{ baton: null }, 400],
      [{ baton: null, requests: [{ type: 'teleport' }] }, 400],
      [{ baton: null, requests: [{ type: 'execute', stmt: { sql: 'SELECT ?', args: [{ type: 'integer', value: '1.5' }] } }] }, 400],
      [{ baton: null, requests: [{ type: 'execute', stmt: { sql: 'SELECT ?', args: [{ type: 'integer', value: '9223372036854775808' }] } }] }, 400],
      [{ baton: 'not-a-real-baton', requests: [] }, 400],
    ];
    for (const [body, status] of cases) {
      const res = await pipeline(server, body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(res.contentType).toBe('application/json');
      expect(typeof res.body.message).toBe('string');
      expect(typeof res.body.code).toBe('string');
    }
    const tooBig = await fetch(`${server.url}/v2/pipeline`, { method: 'POST', body: 'x'.repeat(11 * 1024 * 1024) });
    expect(tooBig.status).toBe(413);
    expect(((await tooBig.json()) as any).code).toBe('REQUEST_TOO_LARGE');
    const unknown = await fetch(`${server.url}/v1/execute`, { method: 'POST', body: '{}' });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as any).code).toBe('NOT_FOUND');
    expect((await fetch(`${server.url}/v2/pipeline`)).status).toBe(405);
    await expectServerAlive(server);
  });

  it('requires the auth token when one is configured', async () => {
    const server = await startServer({ authToken: 's3cret-token' });
    const anonymous = clientFor(server);
    expect((await libsqlError(anonymous.execute('SELECT 1'))).code).toBe('AUTH_HEADER_NOT_FOUND');
    const wrong = clientFor(server, { authToken: 'guess' });
    expect((await libsqlError(wrong.execute('SELECT 1'))).code).toBe('AUTH_JWT_INVALID');
    const authorised = clientFor(server, { authToken: 's3cret-token' });
    expect((await authorised.execute('SELECT 1 AS one')).rows[0]?.one).toBe(1);
    const raw = await fetch(`${server.url}/v2/pipeline`, { method: 'POST', body: '{}' });
    expect(raw.status).toBe(401);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });
});
