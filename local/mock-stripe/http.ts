// HTTP plumbing of the mock Stripe API: bodies, headers, responses, API-key checks and
// Stripe's idempotency store.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StripeApiError } from './form.ts';

const MAX_BODY_BYTES = 1024 * 1024;
const MAX_SAVED_KEYS = 10_000;

export const digest = (s: string) => createHash('sha256').update(s).digest();
export const isLoopback = (host: string) => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
const redact = (key: string) => (key.length <= 12 ? '*'.repeat(key.length) : `${key.slice(0, 8)}${'*'.repeat(key.length - 12)}${key.slice(-4)}`);

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () =>
      size > MAX_BODY_BYTES
        ? reject(new StripeApiError(400, 'invalid_request_error', `Request body exceeds ${MAX_BODY_BYTES} bytes`))
        : resolve(Buffer.concat(chunks).toString('utf8')),
    );
    req.on('error', reject);
  });
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function sendJson(res: ServerResponse, status: number, body: string, headers: Record<string, string>): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

export function sendHtml(res: ServerResponse, status: number, page: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(page), 'cache-control': 'no-store' });
  res.end(page);
}

export function redirect(res: ServerResponse, location: string): void {
  res.writeHead(303, { location, 'content-length': 0, 'cache-control': 'no-store' });
  res.end();
}

/** `Authorization: Bearer <key>` or Basic with the key as user name; 401s worded as Stripe's. */
export function authenticate(req: IncomingMessage, expectedDigest: Buffer): void {
  const auth = header(req, 'authorization');
  const bearer = auth === undefined ? null : /^Bearer\s+(\S*)\s*$/i.exec(auth);
  const basic = auth === undefined ? null : /^Basic\s+(\S+)\s*$/i.exec(auth);
  let key: string | undefined;
  if (bearer) key = bearer[1];
  else if (basic) key = Buffer.from(basic[1] as string, 'base64').toString('utf8').split(':')[0];
  if (key === undefined || key === '') {
    throw new StripeApiError(
      401,
      'invalid_request_error',
      "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
    );
  }
  if (!timingSafeEqual(digest(key), expectedDigest)) throw new StripeApiError(401, 'invalid_request_error', `Invalid API Key provided: ${redact(key)}`);
}

export interface SavedResponse {
  endpoint: string;
  fingerprint: string;
  status: number;
  body: string;
  requestId: string;
}

/** Results of successful POSTs by Idempotency-Key (the oldest dropped past 10,000 keys). */
export class IdempotencyStore {
  private readonly saved = new Map<string, SavedResponse>();

  /** The saved response to replay, or undefined; 400 idempotency_error on a conflicting reuse. */
  replay(key: string, endpoint: string, fingerprint: string): SavedResponse | undefined {
    if (key.length > 255) throw new StripeApiError(400, 'invalid_request_error', 'Idempotency-Key must be at most 255 characters long');
    const previous = this.saved.get(key);
    if (previous === undefined) return undefined;
    if (previous.endpoint !== endpoint) {
      throw new StripeApiError(
        400,
        'idempotency_error',
        `Keys for idempotent requests can only be used for the same endpoint they were first used for ('${previous.endpoint}' vs '${endpoint}'). Try using a key other than '${key}' if you meant to execute a different request.`,
      );
    }
    if (previous.fingerprint !== fingerprint) {
      throw new StripeApiError(
        400,
        'idempotency_error',
        `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
      );
    }
    return previous;
  }

  save(key: string, response: SavedResponse): void {
    this.saved.set(key, response);
    if (this.saved.size > MAX_SAVED_KEYS) this.saved.delete(this.saved.keys().next().value as string);
  }
}
