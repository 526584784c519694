// The libSQL server thread's entry (see thread.ts): starts the server with the options it was
// given, reports where it listens, forwards log records, and closes on request.
import { parentPort, workerData } from 'node:worker_threads';
import { startLibsqlServer } from '../libsql-server.ts';
import type { ThreadMessage, ThreadOptions } from './thread.ts';

const port = parentPort!;
const post = (m: ThreadMessage) => port.postMessage(m);

try {
  const server = await startLibsqlServer({ ...(workerData as ThreadOptions), log: (line) => post({ type: 'log', line }) });
  port.on('message', (m: unknown) => {
    if (m !== 'close') return;
    void server.close().then(() => {
      post({ type: 'closed' });
      port.close();
    });
  });
  post({ type: 'listening', url: server.url, port: server.port });
} catch (err) {
  post({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
  port.close();
}
