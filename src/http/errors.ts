import type { ContentfulStatusCode } from 'hono/utils/http-status';

/**
 * Every error the API can answer with. The code is part of the public contract:
 * clients branch on it, so codes are only ever added, never renamed.
 */
export const ERROR_CODES = [
  'bad_request',
  'invalid_json',
  'validation_failed',
  'missing_idempotency_key',
  'invalid_signature',
  'unauthorized',
  'insufficient_funds',
  'forbidden',
  'not_found',
  'method_not_allowed',
  'conflict',
  'idempotency_conflict',
  'payload_too_large',
  'unsupported_media_type',
  'upgrade_required',
  'rate_limited',
  'internal',
  'service_unavailable',
  'lease_ended',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Exhaustive: adding a code without a status is a type error. */
export const STATUS_BY_CODE: { readonly [K in ErrorCode]: ContentfulStatusCode } = {
  bad_request: 400,
  invalid_json: 400,
  validation_failed: 400,
  missing_idempotency_key: 400,
  invalid_signature: 400,
  unauthorized: 401,
  insufficient_funds: 402,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  idempotency_conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  upgrade_required: 426,
  rate_limited: 429,
  internal: 500,
  service_unavailable: 503,
  lease_ended: 409,
};

export interface ErrorBody {
  error: { code: ErrorCode; message: string; request_id: string; details?: unknown };
}

export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  /** Extra response headers, e.g. Retry-After on 429 or WWW-Authenticate on 401. */
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message: string, opts: { details?: unknown; headers?: Record<string, string> } = {}) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.details = opts.details;
    this.headers = opts.headers ?? {};
  }

  get status(): ContentfulStatusCode {
    return STATUS_BY_CODE[this.code];
  }

  toBody(requestId: string): ErrorBody {
    const error: ErrorBody['error'] = { code: this.code, message: this.message, request_id: requestId };
    if (this.details !== undefined) error.details = this.details;
    return { error };
  }
}
