import { oneLine } from './errors.ts';

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Log lines go to stderr (stdout is for command output such as `detect` JSON), one line each. */
export function stderrLogger(now: () => Date = () => new Date()): Logger {
  const write = (level: string, message: string) => {
    process.stderr.write(`${now().toISOString()} ${level} ${oneLine(message, 2000)}\n`);
  };
  return {
    info: (m) => write('info', m),
    warn: (m) => write('warn', m),
    error: (m) => write('error', m),
  };
}

/** For tests: keeps the lines. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(`info ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    error: (m) => lines.push(`error ${m}`),
  };
}
