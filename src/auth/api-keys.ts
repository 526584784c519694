import { and, eq, isNull } from 'drizzle-orm';
import type { Database } from '../db/client.ts';
import { accounts, apiKeys, type AccountRow, type ApiKeyRow } from '../db/schema.ts';
import { newId } from '../ids.ts';
import { sha256Hex, toHex } from './encoding.ts';
import { isRole, isScope, type Principal, type Scope } from './principal.ts';

/** Keys look like `glk_` + 40 hex characters, so secret scanners and people can spot them. */
export const API_KEY_PREFIX = 'glk_';
const KEY_FORMAT = /^glk_[0-9a-f]{40}$/;
/** Writing last-used on every request would turn reads into writes; once a minute is enough. */
const LAST_USED_RESOLUTION_MS = 60_000;

export function looksLikeApiKey(token: string): boolean {
  return token.startsWith(API_KEY_PREFIX);
}

export interface NewApiKey {
  row: typeof apiKeys.$inferInsert;
  /** The only time the full key exists outside the caller's hands. */
  secret: string;
}

export async function mintApiKey(accountId: string, name: string, scopes: readonly Scope[], expiresAt: number | null): Promise<NewApiKey> {
  const secret = API_KEY_PREFIX + toHex(crypto.getRandomValues(new Uint8Array(20)));
  return {
    secret,
    row: {
      id: newId('key'),
      accountId,
      name,
      prefix: secret.slice(0, 12),
      hash: await sha256Hex(secret),
      scopes: [...scopes],
      expiresAt,
    },
  };
}

export function publicApiKey(row: ApiKeyRow) {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes.filter(isScope),
    created_at: new Date(row.createdAt).toISOString(),
    last_used_at: row.lastUsedAt === null ? null : new Date(row.lastUsedAt).toISOString(),
    expires_at: row.expiresAt === null ? null : new Date(row.expiresAt).toISOString(),
    revoked_at: row.revokedAt === null ? null : new Date(row.revokedAt).toISOString(),
  };
}

export type ApiKeyFailure = 'unknown' | 'revoked' | 'expired' | 'suspended';

/**
 * Resolves a presented key to its principal. Not cached: a revoked key must stop
 * working on the very next request.
 */
export async function authenticateApiKey(
  db: Database,
  secret: string,
  now: number,
  /** Lets a suspended account's key through, for the few routes that only stop spending. */
  opts: { allowSuspended?: boolean } = {},
): Promise<{ ok: true; principal: Principal; account: AccountRow; touch: (() => Promise<unknown>) | null } | { ok: false; reason: ApiKeyFailure }> {
  if (!KEY_FORMAT.test(secret)) return { ok: false, reason: 'unknown' };
  const hash = await sha256Hex(secret);
  const [row] = await db
    .select({ key: apiKeys, account: accounts })
    .from(apiKeys)
    .innerJoin(accounts, eq(accounts.id, apiKeys.accountId))
    .where(eq(apiKeys.hash, hash))
    .limit(1);
  if (!row) return { ok: false, reason: 'unknown' };
  if (row.key.revokedAt !== null) return { ok: false, reason: 'revoked' };
  if (row.key.expiresAt !== null && row.key.expiresAt <= now) return { ok: false, reason: 'expired' };
  if (row.account.status !== 'active' && !opts.allowSuspended) return { ok: false, reason: 'suspended' };

  const stale = row.key.lastUsedAt === null || now - row.key.lastUsedAt >= LAST_USED_RESOLUTION_MS;
  const touch = stale
    ? async () => db.update(apiKeys).set({ lastUsedAt: now }).where(and(eq(apiKeys.id, row.key.id), isNull(apiKeys.revokedAt)))
    : null;
  return {
    ok: true,
    touch,
    account: row.account,
    principal: {
      accountId: row.key.accountId,
      roles: row.account.roles.filter(isRole),
      scopes: new Set(row.key.scopes.filter(isScope)),
      via: 'api_key',
      apiKeyId: row.key.id,
    },
  };
}
