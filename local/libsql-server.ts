// A local libSQL server: Hrana over HTTP (v2/v3 JSON pipeline), as spoken by sqld/Turso
// and by @libsql/client (http:// URLs) and @libsql/client/web, backed by an embedded
// database file through the `libsql` driver. For local development and tests only.
//
//   node local/libsql-server.ts --file data/x.db [--port 8081] [--host 127.0.0.1]
//   (or LIBSQL_FILE, LIBSQL_PORT, LIBSQL_HOST, LIBSQL_AUTH_TOKEN)
//
// Routes: POST /v2/pipeline and /v3/pipeline; GET /v2, /v3 and /health (200, empty).
// Errors are JSON {message, code} with content-type exactly application/json, which is
// what the client requires to surface them as LibsqlError with that code.
// Streams, batons, execution and the write-serialisation design: libsql-server/engine.ts;
// WAL checkpoints on a background thread: libsql-server/checkpointer.ts.
import { createHash, timingSafeEqual } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { dirname, resolve } from 'node:path';
import { Engine } from './libsql-server/engine.ts';
import { HranaError, parsePipelineRequest } from './libsql-server/proto.ts';

export interface LibsqlServerOptions {
  /** Database file path (created if missing, with its folder). */
  file: string;
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
  /** If set, every request except GET /health needs `Authorization: Bearer <token>`. */
  authToken?: string;
  /** An idle stream is closed (its transaction rolled back) after this long; default 10 s like sqld. */
  streamIdleTimeoutMs?: number;
  /** How long a statement waits for the write lock before SQLITE_BUSY; default idle timeout + 5 s. */
  busyTimeoutMs?: number;
  /** WAL checkpoints on a background thread this often; 0 leaves them to SQLite's commits. Default 200 ms. */
  checkpointIntervalMs?: number;
  /** Receives one JSON-able record per error (SQL errors, rejected requests). Default: nothing. */
  log?: (line: Record<string, unknown>) => void;
}

export interface LibsqlServer {
  /** e.g. http://127.0.0.1:8081 */
  url: string;
  port: number;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 10 * 1024 * 1024;

class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolveBody, reject) => {
    if (Number(req.headers['content-length'] ?? 0) > limit) {
      req.resume(); // drain and discard
      reject(new HttpError(413, 'REQUEST_TOO_LARGE', `Request body exceeds ${limit} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > limit) reject(new HttpError(413, 'REQUEST_TOO_LARGE', `Request body exceeds ${limit} bytes`));
      else resolveBody(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Codes as sqld's auth errors (AUTH_HEADER_NOT_FOUND, AUTH_HEADER_MALFORMED, AUTH_JWT_INVALID). */
function checkAuth(req: IncomingMessage, expected: Buffer | undefined): void {
  if (expected === undefined) return;
  const header = req.headers.authorization;
  if (header === undefined) throw new HttpError(401, 'AUTH_HEADER_NOT_FOUND', 'Authentication required: missing Authorization header');
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (match === null) throw new HttpError(401, 'AUTH_HEADER_MALFORMED', 'Authorization header must be "Bearer <token>"');
  // Compare fixed-length digests so the comparison time does not depend on the token.
  if (!timingSafeEqual(digest(match[1] as string), expected)) throw new HttpError(401, 'AUTH_JWT_INVALID', 'Authentication failed: invalid token');
}

export async function startLibsqlServer(opts: LibsqlServerOptions): Promise<LibsqlServer> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 0;
  const streamIdleTimeoutMs = opts.streamIdleTimeoutMs ?? 10_000;
  const log = opts.log ?? (() => {});
  const logError = (fields: Record<string, unknown>) => {
    try {
      log({ time: new Date().toISOString(), level: 'error', ...fields });
    } catch {
      // a failing logger must not break request handling
    }
  };
  const expectedToken = opts.authToken === undefined || opts.authToken === '' ? undefined : digest(opts.authToken);

  const file = resolve(opts.file);
  let engine: Engine;
  try {
    mkdirSync(dirname(file), { recursive: true });
    engine = new Engine({ file, streamIdleTimeoutMs, busyTimeoutMs: opts.busyTimeoutMs ?? streamIdleTimeoutMs + 5_000, logError, checkpointIntervalMs: opts.checkpointIntervalMs });
  } catch (err) {
    throw new Error(`cannot open database ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const method = req.method ?? 'GET';
    if (path === '/health' && (method === 'GET' || method === 'HEAD')) {
      res.writeHead(200).end();
      return;
    }
    checkAuth(req, expectedToken);
    if ((path === '/v2' || path === '/v3') && (method === 'GET' || method === 'HEAD')) {
      res.writeHead(200).end();
      return;
    }
    if (path !== '/v2/pipeline' && path !== '/v3/pipeline') throw new HttpError(404, 'NOT_FOUND', `No route for ${method} ${path}`);
    if (method !== 'POST') throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${path} only accepts POST`);
    const raw = await readBody(req, MAX_BODY_BYTES);
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      throw new HttpError(400, 'PROTOCOL_ERROR', `Invalid request: body is not valid JSON (${err instanceof Error ? err.message : String(err)})`);
    }
    sendJson(res, 200, await engine.pipeline(parsePipelineRequest(json)));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const known = err instanceof HttpError || err instanceof HranaError;
      const status = known ? err.status : 500;
      const code = known ? err.code : 'INTERNAL_ERROR';
      const message = known ? err.message : `Internal server error: ${err instanceof Error ? err.message : String(err)}`;
      logError({ event: 'http_error', method: req.method, path: req.url, status, code, message, ...(known ? {} : { stack: (err as Error)?.stack }) });
      if (res.headersSent) res.destroy();
      else sendJson(res, status, { message, code });
    });
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });

  try {
    await new Promise<void>((resolveListen, reject) => {
      server.once('error', reject);
      server.listen({ host, port, exclusive: true }, () => {
        server.off('error', reject);
        resolveListen();
      });
    });
  } catch (err) {
    await engine.close();
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') throw new Error(`port ${port} is already in use (set LIBSQL_PORT to another port)`);
    throw new Error(`cannot listen on ${host}:${port}: ${e.message}`);
  }
  server.on('error', (err) => logError({ event: 'server_error', message: err.message }));

  const address = server.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
  let closing: Promise<void> | undefined;
  return {
    url,
    port: boundPort,
    close() {
      closing ??= Promise.all([
        new Promise<void>((resolveClose) => {
          server.close(() => resolveClose());
          server.closeIdleConnections();
          setTimeout(() => server.closeAllConnections(), 1_000).unref();
        }),
        engine.close(), // rolls back open transactions, closes connections and the checkpoint thread
      ]).then(() => undefined);
      return closing;
    },
  };
}

function parseCli(argv: string[]): { file?: string; port?: string; host?: string; authToken?: string } {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const m = /^--(file|port|host|auth-token)(?:=(.*))?$/.exec(arg);
    if (m === null) throw new Error(`unknown argument ${arg}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new Error(`${arg} needs a value`);
    out[m[1] as string] = value;
  }
  return { file: out.file, port: out.port, host: out.host, authToken: out['auth-token'] };
}

async function main(): Promise<void> {
  const cli = parseCli(process.argv.slice(2));
  const file = cli.file ?? process.env.LIBSQL_FILE;
  if (file === undefined || file === '') {
    console.error('usage: node local/libsql-server.ts --file <db file> [--port 8081] [--host 127.0.0.1] [--auth-token <token>]');
    process.exit(2);
  }
  const rawPort = cli.port ?? process.env.LIBSQL_PORT ?? '8081';
  const port = Number(rawPort);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new Error(`port must be a number 0-65535, got "${rawPort}"`);
  const server = await startLibsqlServer({
    file,
    port,
    host: cli.host ?? process.env.LIBSQL_HOST ?? '127.0.0.1',
    authToken: cli.authToken ?? (process.env.LIBSQL_AUTH_TOKEN || undefined),
    log: (line) => console.error(JSON.stringify({ component: 'libsql', ...line })),
  });
  console.log(server.url);
  const stop = () => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    console.error(`libsql-server: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
