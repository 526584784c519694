import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.ts';
import { ApiError } from './errors.ts';

const DEFAULT_LIMIT = 64 * 1024;
/** Queue callbacks carry batches (up to 1,000 nodes each). */
const INTERNAL_LIMIT = 4 * 1024 * 1024;
/**
 * A capacity challenge's openings: per GPU (up to 16) 64 leaves of 1,024 int32 in base64 with
 * their Merkle paths, about 470 KB each, so about 7.5 MB at most with the default sizes.
 */
const OPENINGS_LIMIT = 8 * 1024 * 1024;
const OPENINGS_PATH = /^\/v1\/runner\/challenges\/[^/]+\/openings$/;
/**
 * A batch of workload log lines: up to LOG_MAX_BATCH_CHARS (1 Mi) UTF-16 units of text, each of
 * which JSON may spell as 6 bytes (`\u001b`); the route then refuses more than the char limit.
 */
const LOGS_LIMIT = 8 * 1024 * 1024;
const LOGS_PATH = /^\/v1\/runner\/leases\/[^/]+\/logs$/;
const WITH_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Shared: a non-streaming decode keeps no state between calls. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * Every body the API accepts is JSON and small. This middleware enforces the size
 * limit on the bytes actually received (Content-Length can lie or be absent with
 * chunked encoding), requires `application/json`, and parses once, so malformed
 * JSON is a 400 here rather than a surprise inside a handler.
 */
export function jsonBody(): MiddlewareHandler<AppEnv> {
  return async function jsonBody(c, next) {
    if (!WITH_BODY.has(c.req.method)) return next();
    const path = c.req.path;
    const limit = path.startsWith('/internal/')
      ? INTERNAL_LIMIT
      : OPENINGS_PATH.test(path)
        ? OPENINGS_LIMIT
        : LOGS_PATH.test(path)
          ? LOGS_LIMIT
          : Number(c.env.BODY_LIMIT_BYTES) || DEFAULT_LIMIT;
    const declared = c.req.header('content-length');
    if (declared !== undefined && Number(declared) > limit) throw tooLarge(limit);

    // With a Content-Length (within the limit, checked above) the runtime delivers exactly that
    // many bytes, so the body is read in one go; without one it is counted as it streams.
    const raw = !c.req.raw.body ? new Uint8Array() : declared !== undefined ? new Uint8Array(await c.req.raw.arrayBuffer()) : await readLimited(c.req.raw.body, limit);
    if (raw.byteLength > limit) throw tooLarge(limit);
    if (raw.byteLength === 0) return next();

    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') {
      throw new ApiError('unsupported_media_type', 'request body must be JSON with Content-Type: application/json');
    }
    let text: string;
    let json: unknown;
    try {
      text = strictUtf8.decode(raw);
      json = JSON.parse(text);
    } catch {
      throw new ApiError('invalid_json', 'request body is not valid JSON');
    }
    // The stream is consumed; validators and handlers read the body from this cache, the
    // JSON already parsed. (Hono stores promises there, though its type names the Body methods.)
    const cache = c.req.bodyCache as Record<string, unknown>;
    cache.text = Promise.resolve(text);
    cache.json = Promise.resolve(json);
    await next();
  };
}

function tooLarge(limit: number): ApiError {
  return new ApiError('payload_too_large', `request body exceeds ${limit} bytes`);
}

async function readLimited(stream: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
