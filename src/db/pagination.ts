import { z } from '@hono/zod-openapi';
import { and, eq, lt, or, type SQL } from 'drizzle-orm';
import type { SQLiteColumn } from 'drizzle-orm/sqlite-core';

/** `?limit&cursor` for lists ordered newest first; the cursor is the last id of a page. */
export const PageQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(200).default(50),
    cursor: z.string().max(64).optional().openapi({ description: 'next_cursor from the previous page' }),
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
