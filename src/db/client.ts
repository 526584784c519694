import { createClient, type Client } from '@libsql/client/web';
import { drizzle } from 'drizzle-orm/libsql/web';

export interface DatabaseConfig {
  LIBSQL_URL: string;
  LIBSQL_AUTH_TOKEN?: string;
  /** See LocalBindings in env.ts. */
  LIBSQL_HTTP?: Fetcher;
}

/** Each client is made when first used: most requests need only one of them, many none. */
function connect(url: string, authToken: string | undefined, service: Fetcher | undefined): Connection {
  const viaService = service ? (request: Request) => service.fetch(request) : undefined;
  let client: Client | undefined;
  let money: Client | undefined;
  let db: Database | undefined;
  return {
    get client() {
      return (client ??= createClient({ url, authToken, intMode: 'number', fetch: viaService }));
    },
    // Money code reads integers as bigint, so balances beyond 2^53 micro-units stay exact.
    get money() {
      return (money ??= createClient({ url, authToken, intMode: 'bigint', fetch: viaService }));
    },
    get db() {
      return (db ??= drizzle(this.client));
    },
  };
}

export type Database = ReturnType<typeof drizzle<Record<string, never>>>;
export interface Connection {
  client: Client;
  /** The same database, integers as bigint: for the ledger's raw SQL. */
  money: Client;
  db: Database;
}

/**
 * New clients on every call: cheap (an HTTP client holds no socket; each call is one fetch,
 * and protocol version 2 needs no endpoint probe), and never shared between requests. A client
 * shared by an isolate queues calls past its concurrency limit on promises that another
 * request resolves, which workerd cancels as hung; and a cancelled request's slot is never
 * given back, so the whole isolate would stall.
 */
export function connection(env: DatabaseConfig): Connection {
  return connect(env.LIBSQL_URL, env.LIBSQL_AUTH_TOKEN || undefined, env.LIBSQL_HTTP);
}

/**
 * The request's Database, made on first use: a request that never reads libSQL (health checks,
 * cached market data, a bid's write through the money client) builds no client for it.
 */
export function lazyDatabase(env: DatabaseConfig): Database {
  let db: Database | undefined;
  const real = () => (db ??= connection(env).db);
  return new Proxy({} as Database, {
    get: (_target, key) => Reflect.get(real(), key),
    has: (_target, key) => Reflect.has(real(), key),
  });
}
