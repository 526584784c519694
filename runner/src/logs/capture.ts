// A workload's output stream → its lease log, line by line (lines.ts), as it is read: nothing
// waits in memory but the line being cut.
import type { Readable } from 'node:stream';
import { LineSplitter } from './lines.ts';
import type { LeaseLog, LogStream } from './shipper.ts';

/** Resolves once the stream closed (its last line taken). */
export function captureStream(stream: Readable, name: LogStream, log: LeaseLog): Promise<void> {
  const splitter = new LineSplitter((piece) => log.line(name, piece.text, piece.partial));
  return new Promise((resolve) => {
    stream.on('data', (chunk: Buffer) => splitter.write(chunk));
    stream.on('error', () => {}); // 'close' follows; what was read is kept
    // 'close' comes after 'end', and also when the stream is destroyed without one.
    stream.once('close', () => {
      splitter.end();
      resolve();
    });
  });
}
