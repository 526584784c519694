// Exit codes (cli/README.md lists them) and the one error type commands throw for the user.
import { GridleaseError } from '../../sdk/src/errors.ts';

export const EXIT = {
  ok: 0,
  /** The API refused the request for another reason (validation, conflict, server error). */
  api: 1,
  usage: 2,
  /** No credentials, or the API refused them (401) or their scope (403). */
  auth: 3,
  notFound: 4,
  /** Not enough available balance (402). */
  funds: 5,
  /** The API could not be reached (DNS, refused, reset, timeout). */
  network: 6,
  /** The lease ended (failed, cancelled, completed) or timed out before reaching `running`. */
  notRunning: 7,
  /** Stopped by Ctrl-C. */
  interrupted: 130,
} as const;

/** A failure meant for the user: printed as one line, then the process exits with `exitCode`. */
export class CliError extends Error {
  readonly exitCode: number;
  readonly requestId: string | null;
  readonly code: string | null;
  readonly status: number | null;
  constructor(message: string, exitCode: number = EXIT.api, extra: { requestId?: string | null; code?: string | null; status?: number | null } = {}) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
    this.requestId = extra.requestId ?? null;
    this.code = extra.code ?? null;
    this.status = extra.status ?? null;
  }
}

export const usageError = (message: string) => new CliError(`${message} (see gridlease --help)`, EXIT.usage);

/** The exit code an API error maps to. */
export function exitCodeOf(err: GridleaseError): number {
  switch (err.code) {
    case 'unauthorized':
    case 'forbidden':
      return EXIT.auth;
    case 'not_found':
      return EXIT.notFound;
    case 'insufficient_funds':
      return EXIT.funds;
    case 'network_error':
      return EXIT.network;
    default:
      return err.status === 401 || err.status === 403 ? EXIT.auth : err.status === 404 ? EXIT.notFound : EXIT.api;
  }
}

export function fromApiError(err: GridleaseError, hint?: string): CliError {
  const message = hint ? `${err.message} (${hint})` : err.message;
  return new CliError(message, exitCodeOf(err), { requestId: err.request_id, code: err.code, status: err.status });
}
