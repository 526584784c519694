// The API answers every failure as {"error": {"code", "message", "request_id"}}; the SDK throws it
// as one error class so callers branch on `code` and quote `request_id` to support.

/** The API's error codes, plus the two the SDK adds for answers that never came or did not parse. */
export type GridleaseErrorCode =
  | 'bad_request'
  | 'invalid_json'
  | 'validation_failed'
  | 'missing_idempotency_key'
  | 'invalid_signature'
  | 'unauthorized'
  | 'insufficient_funds'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'conflict'
  | 'idempotency_conflict'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'upgrade_required'
  | 'rate_limited'
  | 'internal'
  | 'service_unavailable'
  /** No answer: DNS, refused connection, reset, timeout. `status` is 0. */
  | 'network_error'
  /** An answer that is not the API's error shape (a proxy's HTML page, say). */
  | 'unexpected_response';

export interface GridleaseErrorShape {
  code: GridleaseErrorCode;
  message: string;
  /** The server's request id (x-request-id), or null when no answer came. */
  request_id: string | null;
  /** HTTP status; 0 when no answer came. */
  status: number;
}

export class GridleaseError extends Error implements GridleaseErrorShape {
  readonly code: GridleaseErrorCode;
  readonly request_id: string | null;
  readonly status: number;
  readonly details: unknown;

  constructor(shape: GridleaseErrorShape & { details?: unknown }, options?: { cause?: unknown }) {
    super(shape.message, options);
    this.name = 'GridleaseError';
    this.code = shape.code;
    this.request_id = shape.request_id;
    this.status = shape.status;
    this.details = shape.details;
  }

  toJSON(): GridleaseErrorShape {
    return { code: this.code, message: this.message, request_id: this.request_id, status: this.status };
  }
}

/** The error a non-2xx answer stands for; its body is read here (pass a clone to keep it). */
export async function errorFromResponse(response: Response): Promise<GridleaseError> {
  const headerId = response.headers.get('x-request-id');
  const text = await response.text().catch(() => '');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const e = (body as { error?: { code?: unknown; message?: unknown; request_id?: unknown; details?: unknown } } | undefined)?.error;
  if (e && typeof e.code === 'string' && typeof e.message === 'string') {
    return new GridleaseError({
      code: e.code as GridleaseErrorCode,
      message: e.message,
      request_id: typeof e.request_id === 'string' ? e.request_id : headerId,
      status: response.status,
      details: e.details,
    });
  }
  const snippet = text.replace(/\s+/g, ' ').trim().slice(0, 200);
  return new GridleaseError({
    code: 'unexpected_response',
    message: `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}${snippet ? `: ${snippet}` : ''}`,
    request_id: headerId,
    status: response.status,
  });
}

/** A fetch that threw: the reason is often only in `cause` (ECONNREFUSED, ENOTFOUND). */
export function networkError(err: unknown, url: string): GridleaseError {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e instanceof Error && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    const text = typeof code === 'string' && !e.message.includes(code) ? `${e.message} (${code})` : e.message;
    if (text && !parts.includes(text)) parts.push(text);
    e = (e as { cause?: unknown }).cause;
  }
  const origin = (() => {
    try {
      return new URL(url).origin;
    } catch {
      return url;
    }
  })();
  return new GridleaseError({ code: 'network_error', message: `cannot reach ${origin}: ${parts.join(': ') || String(err)}`, request_id: null, status: 0 }, { cause: err });
}
