import { z } from '@hono/zod-openapi';
import { and, desc, eq, lt, or, type SQL } from 'drizzle-orm';
import type { SQLiteColumn, SQLiteTable } from 'drizzle-orm/sqlite-core';
import { ApiError } from '../http/errors.ts';
import type { Database } from './client.ts';

/**
 * A page size in the query string: plain decimal digits only, so `1e1`, `0x10`, `+5` or `05`
 * are refused rather than read as some number.
 */
export function limitQuery(max: number, fallback: number) {
  const problem = `must be a whole number from 1 to ${max}`;
  return z
    .string()
    .regex(/^[1-9][0-9]{0,5}$/, problem)
    .transform(Number)
    .refine((n) => n <= max, problem)
    .optional()
    .transform((n) => n ?? fallback)
    .openapi({ type: 'integer', minimum: 1, maximum: max, default: fallback });
}

/**
 * A whole number from 0 to `max` in a path or query: decimal digits only, so `0x10`, `1e2`,
 * ` 7` or `7.0` are refused rather than coerced.
 */
export function wholeNumber(max: number) {
  const problem = `must be a whole number from 0 to ${max}`;
  return z
    .string()
    .regex(/^(0|[1-9][0-9]{0,14})$/, problem)
    .transform(Number)
    .refine((n) => n <= max, problem)
    .openapi({ type: 'integer', minimum: 0, maximum: max });
}

/** The largest integer libSQL can bind; a larger cursor would fail in the driver as a 5xx. */
export const INT64_MAX = 9_223_372_036_854_775_807n;

/** A cursor that is a positive int64 row id, in canonical decimal. */
export const RowIdCursor = z
  .string()
  .regex(/^[1-9][0-9]{0,18}$/, 'cursor must be a next_cursor value')
  // Checks run on after a failed one: the digits are tested again before BigInt sees them.
  .refine((s) => /^[0-9]+$/.test(s) && BigInt(s) <= INT64_MAX, 'cursor must be a next_cursor value')
  .openapi({ description: 'next_cursor from the previous page' });

/** `?limit&cursor` for lists ordered newest first; the cursor is the last id of a page. */
export const PageQuery = z
  .object({
    limit: limitQuery(200, 50),
    cursor: z
      .string()
      .regex(/^[A-Za-z0-9_]{1,64}$/, 'cursor must be a next_cursor value')
      .optional()
      .openapi({ description: 'next_cursor from the previous page' }),
  })
  .strict();

/** Rows strictly after `ref` in (created_at DESC, id DESC) order. */
export function olderThan(cols: { createdAt: SQLiteColumn; id: SQLiteColumn }, ref: { createdAt: number; id: string }): SQL {
  return or(lt(cols.createdAt, ref.createdAt), and(eq(cols.createdAt, ref.createdAt), lt(cols.id, ref.id)))!;
}

/** Fetch `limit + 1` rows, then cut: the extra row only says whether there is a next page. */
export function toPage<T extends { id: string }>(rows: T[], limit: number): { page: T[]; nextCursor: string | null } {
  const page = rows.slice(0, limit);
  return { page, nextCursor: rows.length > limit ? page.at(-1)!.id : null };
}

type Listable = SQLiteTable & { id: SQLiteColumn; createdAt: SQLiteColumn };

/**
 * One page of `table` rows matching `where`, newest first, continuing after `cursor`
 * (an id from a previous page, which must itself match `where`).
 */
export async function newestFirst<T extends Listable>(
  db: Database,
  table: T,
  where: SQL | undefined,
  query: { limit: number; cursor?: string | undefined },
): Promise<{ page: T['$inferSelect'][]; nextCursor: string | null }> {
  // drizzle cannot type a select over a generic table; the row type is restored on return.
  const from = () => db.select().from(table as SQLiteTable) as unknown as {
    where(w: SQL | undefined): { orderBy(...o: SQL[]): { limit(n: number): Promise<Array<{ id: string; createdAt: number }>> } } & Promise<Array<{ id: string; createdAt: number }>>;
  };
  let after: SQL | undefined;
  if (query.cursor) {
    const [ref] = await from().where(and(where, eq(table.id, query.cursor)));
    if (!ref) throw new ApiError('validation_failed', 'invalid query: cursor: unknown cursor');
    after = olderThan(table, ref);
  }
  const rows = await from()
    .where(and(where, after))
    .orderBy(desc(table.createdAt), desc(table.id))
    .limit(query.limit + 1);
  return toPage(rows, query.limit) as { page: T['$inferSelect'][]; nextCursor: string | null };
}
