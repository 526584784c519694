// WAL checkpoints off the server's event loop.
//
// SQLite copies the write-ahead log back into the database file once it passes
// `wal_autocheckpoint` pages (1,000 by default), inside whichever commit crosses the line. The
// `libsql` driver is synchronous, so that commit stalls the whole server for the copy and its
// two fsyncs (≈ 10 ms on this kind of disk, about one order in a hundred), and every request
// queued behind it waits. Instead, the server's connections turn automatic checkpoints off and
// this worker thread, with its own connection to the same file, runs a PASSIVE checkpoint every
// `intervalMs`: PASSIVE never waits for readers or writers and never blocks them, and the
// fsyncs happen on this thread. Durability is unchanged (the same `synchronous` setting, the
// same WAL); only who pays for the copy moves.
//
// If the thread cannot start or dies, `onStopped` tells the engine, which turns automatic
// checkpoints back on, so the WAL never grows without bound.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface Checkpointer {
  /**
   * Stops the thread; resolves once it has exited, so nothing touches the file after the
   * server is closed (a thread still opening or closing its connection would recreate files
   * next to the database). The connections' own close checkpoints what is left.
   */
  stop(): Promise<void>;
}

/** A thread that has not closed its connection by then is ended. */
const STOP_GRACE_MS = 2_000;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { timeout: 0 });
db.exec('PRAGMA busy_timeout = 0');
db.exec('PRAGMA synchronous = NORMAL');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)').raw(true);
const timer = setInterval(() => {
  try {
    checkpoint.all();
  } catch (err) {
    // SQLITE_BUSY: another checkpoint is running; the next tick tries again.
    if (!String(err && err.code).startsWith('SQLITE_BUSY')) throw err;
  }
}, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
parentPort.postMessage('ready');
`;

export function startCheckpointer(file: string, intervalMs: number, onStopped: (reason: string) => void): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('libsql');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, intervalMs, driver } });
  worker.unref();
  let stopping = false;
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.on('error', (err) => {
    if (!stopping) onStopped(`checkpoint thread failed: ${err instanceof Error ? err.message : String(err)}`);
    stopping = true;
  });
  worker.on('exit', (code) => {
    if (!stopping) onStopped(`checkpoint thread exited with code ${code}`);
    stopping = true;
  });
  return {
    stop() {
      if (!stopping) {
        stopping = true;
        worker.postMessage('stop');
      }
      // Waiting for an unref'd thread would not keep this event loop alive (the server's own
      // thread, when it is closing, has nothing else left).
      worker.ref();
      const timer = setTimeout(() => void worker.terminate(), STOP_GRACE_MS).unref();
      return exited.finally(() => clearTimeout(timer));
    },
  };
}
