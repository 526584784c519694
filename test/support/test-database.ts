// One migrated libSQL database for a test file: started before its tests, closed after them.
import { afterAll, beforeAll } from 'vitest';
import { startTestDatabase, type TestDatabase } from './libsql.ts';

/** Call at the top of a test file; the returned function gives the database inside tests. */
export function useTestDatabase(): () => TestDatabase {
  let db: TestDatabase | undefined;
  beforeAll(async () => {
    db = await startTestDatabase();
  });
  afterAll(async () => db?.close());
  return () => {
    if (!db) throw new Error('the test database is not started yet');
    return db;
  };
}
