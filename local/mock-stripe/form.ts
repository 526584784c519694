// Stripe v1 request bodies: application/x-www-form-urlencoded with bracket notation, as the
// official SDK writes them (stripe/esm/utils.js stringifyRequestData): `a[b][c]=v` for
// objects, `a[0][b]=v` for arrays (brackets left unencoded, spaces as %20), Dates as unix
// seconds, null as an empty value ("unset"). Parsed here into nested string records; array
// positions stay as "0", "1", … keys and are read back in order by `asList`.

/** A Stripe-shaped API error: HTTP status plus the `error` object of the response body. */
export class StripeApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly code: string | undefined;
  readonly param: string | undefined;
  constructor(status: number, type: string, message: string, extra: { code?: string; param?: string } = {}) {
    super(message);
    this.status = status;
    this.type = type;
    this.code = extra.code;
    this.param = extra.param;
  }
  body(): { error: Record<string, string> } {
    const error: Record<string, string> = { type: this.type, message: this.message };
    if (this.code !== undefined) {
      error.code = this.code;
      error.doc_url = `https://stripe.com/docs/error-codes/${this.code.replaceAll('_', '-')}`;
    }
    if (this.param !== undefined) error.param = this.param;
    return { error };
  }
}

export const invalid = (message: string, param?: string, code?: string) =>
  new StripeApiError(400, 'invalid_request_error', message, { param, code });

export type FormValue = string | FormObject;
export interface FormObject {
  [key: string]: FormValue;
}

const MAX_PAIRS = 2_000;
const MAX_DEPTH = 8;
const KEY = /^([^[\]]+)((?:\[[^[\]]*\])*)$/;

/** Parses a form body into nested records. Throws a 400 StripeApiError on malformed keys. */
export function parseForm(body: string): FormObject {
  const root: FormObject = {};
  const params = new URLSearchParams(body);
  let count = 0;
  for (const [rawKey, value] of params) {
    if (++count > MAX_PAIRS) throw invalid(`Too many parameters (more than ${MAX_PAIRS})`);
    const m = KEY.exec(rawKey);
    if (m === null) throw invalid(`Invalid parameter name: ${rawKey}`, rawKey);
    const path = [m[1] as string, ...[...(m[2] as string).matchAll(/\[([^[\]]*)\]/g)].map((s) => s[1] as string)];
    if (path.length > MAX_DEPTH) throw invalid(`Parameter nested too deeply: ${rawKey}`, rawKey);
    let node = root;
    for (let i = 0; i < path.length; i++) {
      let seg = path[i] as string;
      if (seg === '') seg = String(Object.keys(node).length); // `a[]=x` appends
      const last = i === path.length - 1;
      const existing = Object.hasOwn(node, seg) ? node[seg] : undefined;
      if (last) {
        if (typeof existing === 'object') throw invalid(`Invalid value for ${rawKey}: it is also given as an object`, rawKey);
        define(node, seg, value); // a repeated scalar: the last one wins
      } else if (existing === undefined) {
        const child: FormObject = {};
        define(node, seg, child);
        node = child;
      } else if (typeof existing === 'string') {
        throw invalid(`Invalid value for ${path.slice(0, i + 1).join('.')}: it is given both as a string and as an object`, rawKey);
      } else {
        node = existing;
      }
    }
  }
  return root;
}

// An own data property even for names like "__proto__", so no key can reach a prototype.
function define(obj: FormObject, key: string, value: FormValue): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Canonical JSON (sorted keys) of parsed params, to compare idempotent requests. */
export function fingerprint(value: FormValue): string {
  if (typeof value === 'string') return JSON.stringify(value);
  return `{${Object.keys(value)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${fingerprint(value[k] as FormValue)}`)
    .join(',')}}`;
}

/** The elements of an array parameter (`x[0]…`, `x[1]…`), in index order. */
export function asList(value: FormValue | undefined, param: string): FormValue[] {
  if (value === undefined || value === '') return [];
  if (typeof value === 'string') throw invalid(`Invalid array`, param, 'parameter_invalid_array');
  const keys = Object.keys(value);
  if (!keys.every((k) => /^\d+$/.test(k))) throw invalid(`Invalid array`, param, 'parameter_invalid_array');
  return keys.sort((a, b) => Number(a) - Number(b)).map((k) => value[k] as FormValue);
}

/** Rejects keys that are not parameters of this object, as Stripe does. */
export function rejectUnknown(obj: FormObject, allowed: ReadonlySet<string>, prefix: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.has(key)) {
      const param = prefix === '' ? key : `${prefix}[${key}]`;
      throw invalid(`Received unknown parameter: ${param}`, param, 'parameter_unknown');
    }
  }
}
