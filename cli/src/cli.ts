// gridlease: the renter CLI. Entry point of the bundle: wires run() to this process.
import { webcrypto } from 'node:crypto';
import { run } from './run.ts';
import type { Io } from './context.ts';

// Node 18 has no global crypto unflagged; the SDK's Idempotency-Keys come from crypto.randomUUID().
globalThis.crypto ??= webcrypto as Crypto;

const stop = new AbortController();
let interrupts = 0;
process.on('SIGINT', () => {
  // The first Ctrl-C ends waits and `logs -f` cleanly; a second one does not wait for that.
  if (++interrupts > 1) process.exit(130);
  stop.abort();
});

const write = (stream: NodeJS.WriteStream) => (text: string, newline = true) => {
  stream.write(newline ? `${text}\n` : text);
};

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads a line from the terminal without echoing it. */
function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    stdin.setRawMode(true);
    stdin.resume();
    let answer = '';
    const onData = (data: Buffer) => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish(() => resolve(answer));
        if (ch === '\u0003') return finish(() => reject(Object.assign(new Error('interrupted'), { name: 'AbortError' })));
        if (ch === '\u007f' || ch === '\b') answer = answer.slice(0, -1);
        else answer += ch;
      }
    };
    const finish = (then: () => void) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      then();
    };
    stdin.on('data', onData);
  });
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)), { once: true });
  });

const io: Io = {
  out: write(process.stdout),
  err: write(process.stderr),
  env: process.env,
  readStdin,
  ...(process.stdin.isTTY ? { promptHidden } : {}),
  isTTY: Boolean(process.stderr.isTTY),
  signal: stop.signal,
  sleep,
};

run(process.argv.slice(2), io).then(
  (code) => {
    // Not process.exit() at once: on a pipe (asynchronous on macOS) it would cut a long --json
    // output short. Whatever still holds the event loop (a keep-alive socket) gets 2 s.
    process.exitCode = code;
    setTimeout(() => process.exit(code), 2000).unref();
  },
  () => process.exit(1),
);
