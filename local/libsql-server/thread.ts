// The local libSQL server on its own thread, as `npm start` runs it.
//
// The launcher's main thread also forwards every log line workerd writes, and serves the mock
// Stripe API; the garbage that leaves behind is collected in pauses of 10–20 ms, and a server
// on the same event loop would stop answering for each of them. On its own thread the server has
// its own event loop and its own heap (a worker thread is a separate V8 isolate), as sqld is its
// own process. Log records come back to the caller's `log` as messages.
import { Worker } from 'node:worker_threads';
import type { LibsqlServer, LibsqlServerOptions } from '../libsql-server.ts';

/** What the thread posts back: where it listens, a failure to start, one log record, or that it has closed. */
export type ThreadMessage =
  | { type: 'listening'; url: string; port: number }
  | { type: 'failed'; message: string }
  | { type: 'log'; line: Record<string, unknown> }
  | { type: 'closed' };

export type ThreadOptions = Omit<LibsqlServerOptions, 'log'>;

const CLOSE_GRACE_MS = 5_000;

export interface LibsqlServerThreadOptions extends LibsqlServerOptions {
  /** Called once if the thread stops after it started listening and before close() was asked. */
  onStopped?: (reason: string) => void;
}

export interface LibsqlServerThread extends LibsqlServer {
  /** The thread itself (diagnostics and tests). */
  thread: Worker;
}

export function startLibsqlServerThread(opts: LibsqlServerThreadOptions): Promise<LibsqlServerThread> {
  const { log, onStopped, ...options } = opts;
  const worker = new Worker(new URL('./thread-entry.ts', import.meta.url), { workerData: options satisfies ThreadOptions });
  let closing: Promise<void> | undefined;
  let ended: (() => void) | undefined;
  const whenEnded = new Promise<void>((resolve) => {
    ended = resolve;
  });
  return new Promise<LibsqlServerThread>((resolve, reject) => {
    let started = false;
    let stopped = false;
    const stop = (reason: string) => {
      ended!();
      if (!started || closing || stopped) return;
      stopped = true;
      onStopped?.(reason);
    };
    worker.on('message', (m: ThreadMessage) => {
      if (m.type === 'log') log?.(m.line);
      else if (m.type === 'failed') reject(new Error(m.message));
      else if (m.type === 'closed') ended!();
      else if (m.type === 'listening') {
        started = true;
        resolve({
          url: m.url,
          port: m.port,
          thread: worker,
          close() {
            closing ??= (async () => {
              if (!stopped) worker.postMessage('close');
              // The server gives open connections a second (libsql-server.ts); a thread that has not
              // finished well after that is ended anyway.
              await Promise.race([whenEnded, new Promise((resolve) => setTimeout(resolve, CLOSE_GRACE_MS).unref())]);
              await worker.terminate();
            })();
            return closing;
          },
        });
      }
    });
    worker.on('error', (err) => {
      if (!started) reject(err);
      else stop(`the libSQL server thread failed: ${err.message}`);
    });
    worker.on('exit', (code) => {
      if (!started) reject(new Error(`the libSQL server thread exited with code ${code} before listening`));
      stop(`the libSQL server thread exited with code ${code}`);
    });
  });
}
