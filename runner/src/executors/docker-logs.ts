// A container's output, read with `docker logs --follow --timestamps <name>`. Chosen over
// `docker attach`: it reads from the log driver (the local driver CONFINEMENT sets), so a runner
// that reads slowly or not at all never stalls the workload's writes; stdout and stderr stay
// apart (docker writes them to its own stdout and stderr); and each line carries docker's
// timestamp, so `at` is when the workload wrote it and, after a runner restart, `--since <the
// last timestamp taken>` reads on from there (lines at or before it are skipped: --since
// includes its own instant). When `docker logs` fails while the container runs (the daemon
// restarting), it is run again from the same point, with back-off.
import { spawn } from 'node:child_process';
import { anySignal } from '../api.ts';
import { LineSplitter } from '../logs/lines.ts';
import type { LeaseLog, LogStream } from '../logs/shipper.ts';
import { DOCKER_TIMESTAMP, compareTimestamps } from '../logs/spool.ts';
import { sleep } from '../time.ts';

export interface FollowOptions {
  bin: string;
  env: NodeJS.ProcessEnv;
  name: string;
  log: LeaseLog;
  /** Stops reading at once (the runner detaching, or the rest took too long). */
  stop: AbortSignal;
  /** The container is over: read what is left once more if the last read failed, then end. */
  over: AbortSignal;
}

export async function followContainerLogs(o: FollowOptions): Promise<void> {
  const wake = anySignal(o.stop, o.over);
  for (let attempt = 0; !o.stop.aborted; attempt++) {
    const last = o.over.aborted;
    const code = await readOnce(o);
    // --follow ends by itself (0) once the container stopped.
    if (code === 0 || last || o.stop.aborted) return;
    await sleep(Math.min(30_000, 500 * 2 ** Math.min(attempt, 6)), wake);
  }
}

function readOnce(o: FollowOptions): Promise<number> {
  const since = o.log.cursor;
  const args = ['logs', '--follow', '--timestamps', ...(since ? ['--since', since] : []), o.name];
  return new Promise((resolve) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(o.bin, args, { env: o.env, stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true, signal: o.stop });
    } catch {
      return resolve(1);
    }
    child.once('error', () => resolve(1));
    const streams = [read(child.stdout!, 'stdout', since, o.log), read(child.stderr!, 'stderr', since, o.log)];
    child.once('close', (code) => void Promise.all(streams).then(() => resolve(code ?? 1)));
  });
}

/** One of docker's output streams: `<timestamp> <line>` each, the prefix taken off. */
function read(stream: NodeJS.ReadableStream, name: LogStream, since: string | null, log: LeaseLog): Promise<void> {
  let timestamp: string | undefined;
  let skipping = false;
  const splitter = new LineSplitter((piece) => {
    let text = piece.text;
    if (piece.first) {
      const space = text.indexOf(' ');
      const prefix = space > 0 ? text.slice(0, space) : text;
      // Docker prefixes every line of the workload's; a line without a prefix is docker's own
      // (an error on its stderr), not the workload's: left out.
      timestamp = DOCKER_TIMESTAMP.test(prefix) ? prefix : undefined;
      if (timestamp) text = space > 0 ? text.slice(space + 1) : '';
      skipping = timestamp === undefined || (since !== null && compareTimestamps(timestamp, since) <= 0);
    }
    if (!skipping) log.line(name, text, piece.partial, timestamp);
  });
  return new Promise((resolve) => {
    stream.on('data', (chunk: Buffer) => splitter.write(chunk));
    stream.on('error', () => {});
    stream.once('close', () => {
      splitter.end();
      resolve();
    });
  });
}
