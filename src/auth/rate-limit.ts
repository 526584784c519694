import type { Context } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { ApiError } from '../http/errors.ts';
import { log } from '../http/log.ts';
import { parseLimit } from './sliding-window.ts';

const DEFAULT_PER_IDENTITY = { limit: 10, windowMs: 60_000 };
const DEFAULT_PER_IP = { limit: 60, windowMs: 60_000 };
const DEFAULT_STREAM_PER_IP = { limit: 30, windowMs: 60_000 };
const DEFAULT_ORDERS_PER_ACCOUNT = { limit: 300, windowMs: 60_000 };
const DEFAULT_OFFER_SEARCHES_PER_IP = { limit: 120, windowMs: 60_000 };
const DEFAULT_REPORT_READS_PER_IP = { limit: 120, windowMs: 60_000 };
const DEFAULT_WRITES_PER_ACCOUNT = { limit: 600, windowMs: 60_000 };
const DEFAULT_WRITES_PER_IP = { limit: 3000, windowMs: 60_000 };

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Whether a request writes: every method but GET, HEAD and OPTIONS counts against the write limits. */
export const isWrite = (method: string) => !READ_METHODS.has(method);

/** On Cloudflare the edge sets this header and strips any the client sent. */
export function clientIp(c: Context<AppEnv>): string {
  return c.req.header('cf-connecting-ip') ?? 'unknown';
}

/**
 * Brute-force guard for credential endpoints: one bucket per client IP and one
 * per identity (email or key prefix), so neither a single attacker nor a botnet
 * aimed at one account gets more than a few guesses a minute.
 */
export async function limitCredentialAttempts(c: Context<AppEnv>, action: string, identity: string | null): Promise<void> {
  const perIdentity = parseLimit(c.env.AUTH_RATE_LIMIT, DEFAULT_PER_IDENTITY);
  const perIp = parseLimit(c.env.AUTH_IP_RATE_LIMIT, DEFAULT_PER_IP);
  const buckets: Bucket[] = [[`${action}:ip:${clientIp(c)}`, perIp]];
  if (identity) buckets.push([`${action}:id:${identity}`, perIdentity]);
  await enforce(c, buckets, 'attempts');
}

/** Market stream connection attempts per client IP (`STREAM_IP_RATE_LIMIT`), counted whether or not they succeed. */
export async function limitStreamConnections(c: Context<AppEnv>): Promise<void> {
  await enforce(c, [[`stream:ip:${clientIp(c)}`, parseLimit(c.env.STREAM_IP_RATE_LIMIT, DEFAULT_STREAM_PER_IP)]], 'connection attempts');
}

/** The bucket counting one account's order placements. */
export const orderPlacementBucket = (accountId: string) => `orders:account:${accountId}`;

/** Order placements per account (`ORDER_RATE_LIMIT`), counted whether or not they succeed. */
export async function limitOrderPlacement(c: Context<AppEnv>, accountId: string): Promise<void> {
  await enforce(c, [[orderPlacementBucket(accountId), parseLimit(c.env.ORDER_RATE_LIMIT, DEFAULT_ORDERS_PER_ACCOUNT)]], 'orders placed');
}

/** The bucket counting one client IP's offer searches. */
export const offerSearchBucket = (ip: string) => `offers:ip:${ip}`;

/** Offer searches per client IP (`OFFERS_IP_RATE_LIMIT`): each one asks every book it may match. */
export async function limitOfferSearches(c: Context<AppEnv>): Promise<void> {
  await enforce(c, [[offerSearchBucket(clientIp(c)), parseLimit(c.env.OFFERS_IP_RATE_LIMIT, DEFAULT_OFFER_SEARCHES_PER_IP)]], 'offer searches');
}

export const reportReadBucket = (ip: string) => `reports:ip:${ip}`;

/** Public challenge report reads per client IP (`REPORTS_IP_RATE_LIMIT`): each signs its report. */
export async function limitReportReads(c: Context<AppEnv>): Promise<void> {
  await enforce(c, [[reportReadBucket(clientIp(c)), parseLimit(c.env.REPORTS_IP_RATE_LIMIT, DEFAULT_REPORT_READS_PER_IP)]], 'report reads');
}

/** The bucket counting one account's writes. */
export const accountWriteBucket = (accountId: string) => `writes:account:${accountId}`;

/**
 * Writes (every method but GET, HEAD and OPTIONS) per account on the private routes
 * (`WRITE_RATE_LIMIT`), counted whether or not they succeed: one account cannot flood the
 * ledger, the books or the mailboxes, whatever route it uses. Order placements have their own,
 * tighter limit on top.
 */
export async function limitAccountWrites(c: Context<AppEnv>, accountId: string): Promise<void> {
  await enforce(c, [[accountWriteBucket(accountId), parseLimit(c.env.WRITE_RATE_LIMIT, DEFAULT_WRITES_PER_ACCOUNT)]], 'writes');
}

/** The bucket counting one client IP's writes. */
export const ipWriteBucket = (ip: string) => `writes:ip:${ip}`;

/**
 * Writes per client IP (`WRITE_IP_RATE_LIMIT`), counted before the caller is known: many
 * accounts (or none, with made-up credentials) from one address cannot flood us either.
 * Approximate (a sliding-window counter), since the limit is thousands.
 */
export async function limitIpWrites(c: Context<AppEnv>): Promise<void> {
  await enforce(c, [[ipWriteBucket(clientIp(c)), parseLimit(c.env.WRITE_IP_RATE_LIMIT, DEFAULT_WRITES_PER_IP), 'counter']], 'writes from this address');
}

type Rate = { limit: number; windowMs: number };
/** `counter` buckets keep an approximate count instead of a log of every hit. */
type Bucket = [name: string, rate: Rate | null, kind?: 'log' | 'counter'];

/** Counts one request in each bucket whose limit is on; 429 with Retry-After when any is full. */
async function enforce(c: Context<AppEnv>, all: Bucket[], what: string): Promise<void> {
  const buckets = all.filter((b): b is [string, Rate, 'log' | 'counter' | undefined] => b[1] !== null);
  if (buckets.length === 0) return;
  let decisions: Array<{ allowed: boolean; retryAfterMs: number }>;
  try {
    decisions = await Promise.all(
      buckets.map(([name, rate, kind]) => {
        const limiter = c.env.RATE_LIMITER.getByName(name);
        return kind === 'counter' ? limiter.count(rate.limit, rate.windowMs) : limiter.hit(rate.limit, rate.windowMs);
      }),
    );
  } catch (err) {
    // Failing open keeps sign-in (and the stream, orders, search) working through a storage incident; the password hash cost still applies.
    log('error', 'rate limiter unavailable', { request_id: c.get('requestId'), error: String(err) });
    return;
  }
  const refused = decisions.filter((d) => !d.allowed);
  if (refused.length > 0) {
    const retryAfter = Math.max(1, Math.ceil(Math.max(...refused.map((d) => d.retryAfterMs)) / 1000));
    throw new ApiError('rate_limited', `too many ${what}; try again in ${retryAfter} s`, {
      headers: { 'Retry-After': String(retryAfter) },
    });
  }
}
