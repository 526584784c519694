// `npm start`: the whole platform on this machine, with no account anywhere.
//   1. migrations applied to an embedded libSQL file under the data folder;
//   2. a local libSQL server speaking Hrana over HTTP, as Turso/sqld do;
//   3. the Worker and its Durable Objects in workerd, state persisted under the data folder.
// Ctrl-C (SIGINT) or SIGTERM stops everything; starting again keeps the data.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startLibsqlServer, type LibsqlServer } from './libsql-server.ts';
import { applyMigrations } from './migrate.ts';
import { assertPortFree, portFromEnv } from './ports.ts';
import { loadOrCreateSecrets } from './secrets.ts';
import { ROOT, bundleWorker, startWorker } from './worker.ts';

const HOST = '127.0.0.1';

async function main(): Promise<void> {
  const dataDir = resolve(ROOT, process.env.GRIDLEASE_DATA_DIR ?? '.data');
  const port = portFromEnv('PORT', 8787);
  const libsqlPort = portFromEnv('LIBSQL_PORT', 8081);
  mkdirSync(dataDir, { recursive: true });

  // Check both ports before starting anything, so a clash leaves nothing half-started.
  await assertPortFree(HOST, port, 'PORT');
  await assertPortFree(HOST, libsqlPort, 'LIBSQL_PORT');

  const dbFile = join(dataDir, 'gridlease.db');
  await applyMigrations(`file:${dbFile}`);
  const secrets = await loadOrCreateSecrets(dataDir);
  const libsqlToken = process.env.LIBSQL_AUTH_TOKEN || undefined;

  let libsql: LibsqlServer | undefined;
  let stopWorker: (() => Promise<void>) | undefined;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping…`);
    await stopWorker?.().catch((err: unknown) => console.error(`worker: ${String(err)}`));
    await libsql?.close().catch((err: unknown) => console.error(`libsql: ${String(err)}`));
    console.log('stopped');
    process.exit(0);
  };
  const onSignal = (signal: NodeJS.Signals) => void stop(signal);
  const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const signal of SIGNALS) process.on(signal, onSignal);

  libsql = await startLibsqlServer({
    file: dbFile,
    host: HOST,
    port: libsqlPort,
    authToken: libsqlToken,
    log: (line) => console.error(JSON.stringify({ component: 'libsql', ...line })),
  });

  const script = bundleWorker(join(ROOT, '.wrangler', 'local-build'));
  const origin = `http://${HOST}:${port}`;
  const { mf, url } = await startWorker({
    script,
    host: HOST,
    port,
    persistDir: dataDir,
    verbose: process.env.GRIDLEASE_VERBOSE === '1',
    bindings: {
      ENVIRONMENT: 'development',
      LIBSQL_URL: libsql.url,
      ...(libsqlToken ? { LIBSQL_AUTH_TOKEN: libsqlToken } : {}),
      JWT_ISSUER: origin,
      JWT_PRIVATE_KEYS: secrets.JWT_PRIVATE_KEYS,
      ...(process.env.LOG_REQUESTS ? { LOG_REQUESTS: process.env.LOG_REQUESTS } : {}),
    },
  });
  stopWorker = () => mf.dispose();
  // Miniflare installs signal handlers that kill workerd and exit at once (status 143);
  // ours stop workerd and the libSQL server in order and exit 0. Its exit hook stays as a
  // last resort that still kills workerd if this process dies some other way.
  for (const signal of SIGNALS) {
    for (const listener of process.listeners(signal)) if (listener !== onSignal) process.removeListener(signal, listener);
  }
  if (stopping) return;

  const api = url.origin;
  console.log(
    [
      '',
      'Gridlease is running',
      `  API        ${api}`,
      `  API docs   ${api}/docs`,
      `  health     ${api}/healthz`,
      `  libSQL     ${libsql.url}  (file ${dbFile})`,
      `  data       ${dataDir}`,
      '',
      'Press Ctrl-C to stop.',
    ].join('\n'),
  );
}

main().catch((err: unknown) => {
  console.error(`gridlease: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
