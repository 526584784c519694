// Starts `npm start`'s launcher as a child process, as a person would, for end-to-end
// tests and benchmarks.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Ports this process has handed out: each goes to one listener only. */
const handedOut = new Set<number>();

/**
 * A TCP port nothing listens on now, never one this process handed out before: the system can
 * give the same free port to two calls in a row (2 in 2,000 triples here), and a platform's
 * API, libSQL and mock Stripe ports must differ, or the last of them to start fails with
 * "Address already in use".
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

export interface Platform {
  child: ChildProcess;
  url: string;
  output: () => string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop: () => Promise<number | null>;
}

export interface LaunchOptions {
  dataDir: string;
  port: number;
  libsqlPort: number;
  /** Defaults to a free port. */
  stripePort?: number;
  env?: Record<string, string>;
  /** Sees every chunk the launcher writes (stdout and stderr), as it arrives. */
  onOutput?: (chunk: string) => void;
}

/** Spawns the launcher; resolves once it prints that it is running, rejects if it exits first. */
export async function launch(opts: LaunchOptions, timeoutMs = 90_000): Promise<Platform> {
  const stripePort = opts.stripePort ?? (await freePort());
  const child = spawn(process.execPath, ['local/start.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(opts.port),
      LIBSQL_PORT: String(opts.libsqlPort),
      MOCK_STRIPE_PORT: String(stripePort),
      GRIDLEASE_DATA_DIR: opts.dataDir,
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Keeps the start of the output (URLs, errors) and the latest lines, not every access-log line.
  let out = '';
  const keep = (d: Buffer) => {
    const text = d.toString();
    out += text;
    opts.onOutput?.(text);
    if (out.length > 64_000) out = `${out.slice(0, 16_000)}\n…\n${out.slice(-16_000)}`;
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const platform: Platform = {
    child,
    url: `http://127.0.0.1:${opts.port}`,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`platform did not start in ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = () => {
      if (out.includes('Gridlease is running')) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolve(platform);
      }
    };
    child.stdout!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`platform exited with ${code}:\n${out}`), { code, output: out }));
    });
  });
}
