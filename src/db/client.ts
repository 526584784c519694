import { createClient, type Client } from '@libsql/client/web';
import { drizzle } from 'drizzle-orm/libsql/web';

export interface DatabaseConfig {
  LIBSQL_URL: string;
  LIBSQL_AUTH_TOKEN?: string;
}

function connect(url: string, authToken: string | undefined): Connection {
  const client = createClient({ url, authToken, intMode: 'number' });
  // Money code reads integers as bigint, so balances beyond 2^53 micro-units stay exact.
  const money = createClient({ url, authToken, intMode: 'bigint' });
  return { client, money, db: drizzle(client) };
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
  return connect(env.LIBSQL_URL, env.LIBSQL_AUTH_TOKEN || undefined);
}
