import { createClient, type Client } from '@libsql/client/web';
import { drizzle } from 'drizzle-orm/libsql/web';
import * as schema from './schema.ts';

export interface DatabaseConfig {
  LIBSQL_URL: string;
  LIBSQL_AUTH_TOKEN?: string;
}

function connect(url: string, authToken: string | undefined) {
  const client = createClient({ url, authToken, intMode: 'number' });
  // Money code reads integers as bigint, so balances beyond 2^53 micro-units stay exact.
  const money = createClient({ url, authToken, intMode: 'bigint' });
  return { client, money, db: drizzle(client, { schema }) };
}

export type Database = ReturnType<typeof connect>['db'];
export interface Connection {
  client: Client;
  /** The same database, integers as bigint: for the ledger's raw SQL. */
  money: Client;
  db: Database;
}

// The HTTP client holds no socket between calls (each call is one fetch), so
// one per isolate and URL is safe to share across requests and saves setup work.
const connections = new Map<string, Connection>();

export function connection(env: DatabaseConfig): Connection {
  const key = `${env.LIBSQL_URL}\n${env.LIBSQL_AUTH_TOKEN ?? ''}`;
  let conn = connections.get(key);
  if (!conn) {
    conn = connect(env.LIBSQL_URL, env.LIBSQL_AUTH_TOKEN || undefined);
    connections.set(key, conn);
  }
  return conn;
}
