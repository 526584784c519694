import type { Database } from './client.ts';

// Building SQL from drizzle's query builder costs more CPU per request than the rest of
// an authenticated read; hot-path queries are built once per isolate and database.
const cache = new WeakMap<Database, Map<string, unknown>>();

export function prepared<T>(db: Database, name: string, build: (db: Database) => T): T {
  let byName = cache.get(db);
  if (!byName) {
    byName = new Map();
    cache.set(db, byName);
  }
  let query = byName.get(name) as T | undefined;
  if (!query) {
    query = build(db);
    byName.set(name, query);
  }
  return query;
}
