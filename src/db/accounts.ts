import { eq, sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { prepared } from './prepared.ts';
import { accounts, type AccountRow } from './schema.ts';

export async function accountById(db: Database, id: string): Promise<AccountRow | undefined> {
  const [row] = await prepared(db, 'accountById', (db) =>
    db.select().from(accounts).where(eq(accounts.id, sql.placeholder('id'))).limit(1).prepare(),
  ).execute({ id });
  return row;
}
