// What the fuzzer sends: a case is a kind of request (valid, or one mutation) plus the random
// material it is built from, drawn from a seeded fast-check sample so that a seed and a case
// number replay it exactly.
import fc from 'fast-check';

export const BODY_KINDS = [
  'valid',
  'missing-required',
  'extra-field',
  'wrong-type',
  'boundary-number',
  'huge-string',
  'deep-nesting',
  'odd-unicode',
  'invalid-json',
  'invalid-utf8',
  'content-type',
] as const;
export const IDEMPOTENCY_KINDS = ['missing-idempotency-key', 'repeated-idempotency-key', 'reused-idempotency-key'] as const;
export const QUERY_KINDS = ['odd-query', 'odd-query', 'odd-path'] as const;
export const AUTH_KINDS = ['no-auth', 'garbage-auth'] as const;
export const OTHER_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type CaseKind = (typeof BODY_KINDS)[number] | (typeof IDEMPOTENCY_KINDS)[number] | (typeof QUERY_KINDS)[number] | (typeof AUTH_KINDS)[number] | 'wrong-method';

export interface Material {
  /** A body the schema accepts (in shape). */
  body: unknown;
  /** Index choices for which field, value or parameter a mutation touches. */
  picks: number[];
  /** Path-parameter values, by name: a real id from the context or a random one. */
  path: Record<string, string>;
  /** Query parameters drawn from their schemas. */
  query: Record<string, string>;
}

export interface Built {
  path: string;
  query: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
}

const pick = <T>(items: readonly T[], n: number): T => items[Math.abs(n) % items.length]!;

const WRONG_TYPES: unknown[] = [123, 'a string', true, null, [], {}, [1, 2], 1.5];
const BOUNDARY_NUMBERS: unknown[] = [-1, 0, 2 ** 53, -(2 ** 53), 1e308, -1e308, 'NaN', 'Infinity', 0.5, 1e-7, -0];
const ODD_STRINGS = [
  '\ud800',
  'a\udfffb',
  '\u0000\u0001\u001b[31m',
  '\u202egpu',
  '𝔊𝔯𝔦𝔡 💸',
  '\r\nX-Injected: 1',
  '<script>alert(1)</script>',
  "' OR 1=1 --",
  '../../etc/passwd',
  ' ',
  '',
];
const ODD_QUERY_VALUES = ['0x10', '1e3', ' 5', '-1', 'NaN', '', '%00', '%ZZ', '9'.repeat(400), 'x'.repeat(20_000), '1.5', 'true', '[]'];
const ODD_PATH_VALUES = ['%ZZ', '%00', '..', '%2F..%2F', 'x'.repeat(5_000), '%F0%9F%92%A9', '-1', '0', ' ', '%20', 'null', "'"];
const INVALID_JSON = ['{', '{"a":', '{"a":1,}', "{'a':1}", 'nul', '[1,2', '{"a":1}{"b":2}', '\u0000', 'NaN', '{"a":01}'];
const CONTENT_TYPES = [undefined, 'text/plain', 'application/x-www-form-urlencoded', 'application/jsonx', 'application/json-patch+json', 'multipart/form-data; boundary=x'];

export function materialArbitrary(body: fc.Arbitrary<unknown>, path: Record<string, fc.Arbitrary<string>>, query: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<Material> {
  return fc.record({
    body,
    picks: fc.array(fc.nat({ max: 1_000_000 }), { minLength: 6, maxLength: 6 }),
    path: fc.record(path),
    query: fc.record(query, { requiredKeys: [] }) as fc.Arbitrary<Record<string, string>>,
  });
}

/** Dotted paths to every value inside a JSON value (objects and arrays), the root last. */
function locations(value: unknown, at: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...locations(v, [...at, i])));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) out.push(...locations(v, [...at, k]));
  out.push(at);
  return out;
}

function setAt(root: unknown, at: (string | number)[], value: unknown): unknown {
  if (at.length === 0) return value;
  const copy: any = structuredClone(root);
  let node = copy;
  for (const key of at.slice(0, -1)) node = node[key];
  node[at[at.length - 1]!] = value;
  return copy;
}

function valuesAt(root: unknown, test: (v: unknown) => boolean) {
  return locations(root).filter((at) => at.length > 0 && test(at.reduce((n: any, k) => n?.[k], root)));
}

/** Replaces one value (of the kind `test` picks, else any field, else the root). */
function replaceOne(root: unknown, n: number, test: (v: unknown) => boolean, value: unknown): unknown {
  const spots = valuesAt(root, test);
  const fallback = valuesAt(root, () => true);
  const at = spots.length ? pick(spots, n) : fallback.length ? pick(fallback, n) : [];
  return setAt(root, at, value);
}

/** Builds the request for one case; `query` keys not in the operation are left out. */
export function build(kind: CaseKind, template: string, m: Material, idempotencyKey: string | undefined): Built {
  const [p0 = 0, p1 = 0, p2 = 0, p3 = 0] = m.picks;
  let pathValues = { ...m.path };
  if (kind === 'odd-path' && Object.keys(pathValues).length) {
    const name = pick(Object.keys(pathValues), p0);
    pathValues = { ...pathValues, [name]: pick(ODD_PATH_VALUES, p1) };
  }
  const path = template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const v = pathValues[name] ?? 'x';
    // Odd path values are sent as written: their escapes are what is being tested.
    return kind === 'odd-path' ? v : encodeURIComponent(v);
  });

  const pairs: [string, string][] = Object.entries(m.query).map(([k, v]) => [k, encodeURIComponent(v)]);
  if (kind === 'odd-query') {
    const names = Object.keys(m.query).length ? Object.keys(m.query) : ['limit', 'cursor'];
    const name = pick(names, p0);
    const odd = pick(ODD_QUERY_VALUES, p1);
    pairs.push([name, odd]);
    // Duplicated key, sometimes with another value; and a parameter no route declares.
    if (p2 % 2 === 0) pairs.push([name, pick(ODD_QUERY_VALUES, p3)]);
    else pairs.push([`${name}[]`, odd], ['unknown_param', odd]);
  }
  const query = pairs.length ? '?' + pairs.map(([k, v]) => `${k}=${v}`).join('&') : '';

  const headers: Record<string, string> = {};
  if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;
  if (kind === 'missing-idempotency-key') delete headers['idempotency-key'];
  if (kind === 'repeated-idempotency-key') headers['idempotency-key'] = `${idempotencyKey}, ${idempotencyKey}-again`;

  let body: unknown = m.body;
  switch (kind) {
    case 'missing-required': {
      if (body && typeof body === 'object' && !Array.isArray(body)) {
        const keys = Object.keys(body);
        if (keys.length) {
          const copy: any = { ...body };
          delete copy[pick(keys, p0)];
          body = copy;
        } else body = undefined;
      } else body = undefined;
      break;
    }
    case 'extra-field': {
      const objects = locations(body).filter((at) => {
        const v = at.reduce((n: any, k) => n?.[k], body);
        return v !== null && typeof v === 'object' && !Array.isArray(v);
      });
      const at = objects.length ? pick(objects, p0) : [];
      const target = at.reduce((n: any, k) => n?.[k], body);
      body = setAt(body, at, { ...(target && typeof target === 'object' ? target : {}), fuzz_extra_field: pick(WRONG_TYPES, p1) });
      break;
    }
    case 'wrong-type':
      body = replaceOne(body, p0, () => true, pick(WRONG_TYPES, p1));
      break;
    case 'boundary-number':
      body = replaceOne(body, p0, (v) => typeof v === 'number', pick(BOUNDARY_NUMBERS, p1));
      break;
    case 'huge-string':
      body = replaceOne(body, p0, (v) => typeof v === 'string', 'A'.repeat(100 * 1024));
      break;
    case 'odd-unicode':
      body = replaceOne(body, p0, (v) => typeof v === 'string', pick(ODD_STRINGS, p1));
      break;
  }

  let text: string | Uint8Array | undefined = body === undefined ? undefined : JSON.stringify(body);
  if (kind === 'deep-nesting') {
    const deep = '['.repeat(1_000) + ']'.repeat(1_000);
    const inner = body && typeof body === 'object' && !Array.isArray(body) ? JSON.stringify(body).slice(1, -1) : '';
    text = p0 % 2 === 0 ? `{${inner}${inner ? ',' : ''}"nested":${deep}}` : '{"a":'.repeat(1_000) + '1' + '}'.repeat(1_000);
  }
  if (kind === 'invalid-json') text = pick(INVALID_JSON, p0);
  if (kind === 'invalid-utf8') text = new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x22, 0x7d]);
  if (text !== undefined) {
    headers['content-type'] = 'application/json';
    if (kind === 'content-type') {
      const type = pick(CONTENT_TYPES, p0);
      if (type === undefined) delete headers['content-type'];
      else headers['content-type'] = type;
    }
  }
  return { path, query, headers, body: text };
}

/** A short, printable description of a built request, for failure messages. */
export function describeBuilt(method: string, b: Built): string {
  const body = b.body === undefined ? '' : typeof b.body === 'string' ? b.body : `bytes[${Array.from(b.body).join(',')}]`;
  const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}…(${s.length} chars)` : s);
  return `${method} ${cut(b.path + b.query, 300)} headers=${JSON.stringify(b.headers)} body=${cut(body, 400)}`;
}
