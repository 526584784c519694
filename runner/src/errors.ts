/** Exit codes of the CLI. */
export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  /** The API rejected the node token (node revoked or re-registered elsewhere). */
  revoked: 3,
} as const;

/** An error meant for the user: the CLI prints `message` as one line and exits with `exitCode`. */
export class RunnerError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = EXIT.error) {
    super(message);
    this.name = 'RunnerError';
    this.exitCode = exitCode;
  }
}

/** One line, whatever the error: the message of the error and of its causes (fetch hides the reason in `cause`). */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    if (e instanceof Error) {
      const code = (e as { code?: unknown }).code;
      const text = typeof code === 'string' && !e.message.includes(code) ? `${e.message} (${code})` : e.message;
      if (text && !parts.includes(text)) parts.push(text);
      e = (e as { cause?: unknown }).cause;
    } else {
      parts.push(String(e));
      break;
    }
  }
  return oneLine(parts.join(': ') || 'unknown error');
}

export function oneLine(text: string, max = 300): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
