// An Io for running the CLI in-process: captures what it prints, reads stdin from a string.
import type { Io } from '../../cli/src/context.ts';

export interface CapturedIo extends Io {
  stdout: () => string;
  stderr: () => string;
  abort: () => void;
}

export function captureIo(env: NodeJS.ProcessEnv, opts: { stdin?: string; isTTY?: boolean } = {}): CapturedIo {
  let stdout = '';
  let stderr = '';
  const stop = new AbortController();
  return {
    out: (text, newline = true) => void (stdout += newline ? `${text}\n` : text),
    err: (text, newline = true) => void (stderr += newline ? `${text}\n` : text),
    env,
    readStdin: async () => opts.stdin ?? '',
    isTTY: opts.isTTY ?? false,
    signal: stop.signal,
    // Polling waits pass at once: the tests decide what each poll sees.
    sleep: async () => {
      if (stop.signal.aborted) throw stop.signal.reason;
    },
    stdout: () => stdout,
    stderr: () => stderr,
    abort: () => stop.abort(),
  };
}
