import { eq } from 'drizzle-orm';
import type { Database } from './client.ts';
import { accounts, type AccountRow } from './schema.ts';

export async function accountById(db: Database, id: string): Promise<AccountRow | undefined> {
  const [row] = await db.select().from(accounts).where(eq(accounts.id, id)).limit(1);
  return row;
}
