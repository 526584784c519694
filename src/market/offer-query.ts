// Offer search for `GET /v1/offers?q=…&order=…`: parses the filter grammar and the sort order,
// then matches and sorts offers. Pure: no Workers imports, no I/O, no clock; every problem is
// returned as a value naming the clause as the caller wrote it. A filter is never dropped, so a
// typo fails loudly instead of silently widening the search.
//
// Grammar (clauses are ANDed; the input is the already URL-decoded `q`):
//   query  := ws* (clause (ws+ clause)*)? ws*
//   clause := field ws* cmp ws* word          e.g. gpus>=2, gpus >= 2
//           | field ws+ ("in" | "notin") ws+ list
//   cmp    := "=" | "!=" | "<" | "<=" | ">" | ">="
//   list   := "[" item ("," item)* "]"       items trimmed; spaces around commas allowed
//   field  := [A-Za-z0-9_.-]+                 wider than the real names, so `gpu-model` is
//                                             reported as an unknown field with a suggestion
//   word   := any run of non-whitespace       then checked against the field's type
// Numbers are decimals without exponent or leading zeros (`0.5`, not `.5`, `05` or `5e-1`);
// money is parsed exactly by `parseAmount`; booleans are `true`/`false`; strings are catalog ids.
import { GPU_MODEL_IDS } from '../catalog/gpus.ts';
import { REGION_IDS } from '../catalog/regions.ts';
import { AMOUNT_PROBLEM_TEXT, parseAmount } from '../money/amount.ts';

export const MAX_QUERY_CHARS = 1000;
export const MAX_CLAUSES = 20;

export interface Offer {
  id: string;
  gpu_model: string;
  region: string;
  gpus: number;
  /** Micro-units per GPU-hour. */
  price: bigint;
  reliability: number;
  verified: boolean;
  vram_gb: number;
  cpu_cores: number;
  ram_gb: number;
  disk_gb: number;
}

type FieldType = 'string' | 'number' | 'money' | 'boolean';
const FIELDS = {
  gpu_model: 'string', region: 'string', gpus: 'number', price: 'money', reliability: 'number',
  verified: 'boolean', vram_gb: 'number', cpu_cores: 'number', ram_gb: 'number', disk_gb: 'number',
} as const satisfies Record<Exclude<keyof Offer, 'id'>, FieldType>;
export type Field = keyof typeof FIELDS;
export const FIELD_NAMES = Object.keys(FIELDS) as Field[];
export const SORTABLE_FIELDS = ['price', 'gpus', 'reliability', 'vram_gb', 'cpu_cores', 'ram_gb', 'disk_gb'] as const;
export type SortField = (typeof SORTABLE_FIELDS)[number];

export type CmpOp = '=' | '!=' | '<' | '<=' | '>' | '>=';
export type ListOp = 'in' | 'notin';
const ORDERING: readonly CmpOp[] = ['<', '<=', '>', '>='];
const OPS: Record<FieldType, readonly (CmpOp | ListOp)[]> = {
  string: ['=', '!=', 'in', 'notin'],
  boolean: ['=', '!='], // `in [true,false]` is no filter at all, and `in [true]` is just `=`
  number: ['=', '!=', ...ORDERING, 'in', 'notin'],
  money: ['=', '!=', ...ORDERING, 'in', 'notin'],
};

export type Scalar = string | number | bigint | boolean;
export type Filter = { field: Field; op: CmpOp; value: Scalar } | { field: Field; op: ListOp; values: Scalar[] };
export interface OfferQuery {
  filters: Filter[];
  order: { field: SortField; desc: boolean };
}
export interface OfferQueryError {
  /** The clause as written (for `order`, the order text); what the caller should fix. */
  clause: string;
  message: string;
}
type Fail = { ok: false; error: OfferQueryError };
const fail = (clause: string, message: string): Fail => ({ ok: false, error: { clause, message } });

export function parseOfferQuery(q: string, order?: string): { ok: true; query: OfferQuery } | Fail {
  if (q.length > MAX_QUERY_CHARS) {
    // Name the word at the limit (or the first one after it) so the caller sees where to cut.
    const start = q.slice(0, MAX_QUERY_CHARS + 1).search(/\S*$/);
    return fail(/\S+/.exec(q.slice(start))?.[0] ?? '', `the query is ${q.length} characters; at most ${MAX_QUERY_CHARS} are allowed`);
  }
  const filters: Filter[] = [];
  for (let pos = skipWs(q, 0); pos < q.length; ) {
    const clause = readClause(q, pos);
    if (!clause.ok) return clause;
    if (filters.length === MAX_CLAUSES) return fail(clause.text, `too many clauses: at most ${MAX_CLAUSES} are allowed`);
    const filter = checkClause(clause);
    if (!filter.ok) return filter;
    filters.push(filter.filter);
    pos = skipWs(q, clause.end);
  }
  const sort = parseOrder(order ?? '');
  return sort.ok ? { ok: true, query: { filters, order: sort.order } } : sort;
}

interface RawClause { ok: true; text: string; field: string; op: CmpOp | ListOp; value: string | string[]; end: number }

/** Splits one clause off the text at `start` (which is not whitespace); types come later. */
function readClause(q: string, start: number): RawClause | Fail {
  const word = match(/\S+/y, q, start)!; // the text to name when the clause cannot even be split
  const field = match(/[A-Za-z0-9_.-]+/y, q, start);
  if (!field) return fail(word, `unexpected '${word}' where a clause such as gpus>=2 should start`);
  let pos = skipWs(q, start + field.length);
  let op: CmpOp | ListOp | null = match(/!=|<=|>=|=|<|>/y, q, pos) as CmpOp | null;
  if (!op) {
    const keyword = match(/[a-z]+/y, q, pos);
    if (keyword !== 'in' && keyword !== 'notin') {
      return fail(word, `'${word}' is not a clause: expected field, operator (= != < <= > >= in notin) and value`);
    }
    op = keyword;
    if (/\S/.test(q[pos + op.length] ?? ' ')) return fail(q.slice(start, pos) + match(/\S+/y, q, pos), `'${op}' needs spaces around it, as in region ${op} [us-east,eu-west]`);
  }
  pos = skipWs(q, pos + op.length);
  if (q[pos] === '[') {
    const close = q.indexOf(']', pos);
    if (close < 0) return fail(q.slice(start).trimEnd(), 'unterminated list: missing ]');
    const text = q.slice(start, close + 1);
    const after = match(/\S+/y, q, close + 1);
    if (after) return fail(text + after, `unexpected '${after}' after the list; separate clauses with spaces`);
    const items = q.slice(pos + 1, close).split(',').map((s) => s.trim());
    if (items.length === 1 && items[0] === '') return fail(text, 'empty list: give at least one value');
    if (items.includes('')) return fail(text, 'empty item in the list');
    const spaced = items.find((s) => /\s/.test(s));
    if (spaced) return fail(text, `'${spaced}' is not one value: separate list items with commas`);
    return { ok: true, text, field, op, value: items, end: close + 1 };
  }
  const value = match(/\S+/y, q, pos);
  if (!value) return fail(q.slice(start, pos).trimEnd(), `missing value after ${op}`);
  return { ok: true, text: q.slice(start, pos + value.length), field, op, value, end: pos + value.length };
}

/** Types one raw clause against its field: the operator must suit the type, and every value must parse. */
function checkClause(c: RawClause): { ok: true; filter: Filter } | Fail {
  if (!(c.field in FIELDS)) return fail(c.text, `unknown field '${c.field}'${suggest(c.field, FIELD_NAMES)}`);
  const field = c.field as Field;
  const type = FIELDS[field];
  if (!OPS[type].includes(c.op)) return fail(c.text, `operator ${c.op} is not allowed for ${field} (${type}); use ${OPS[type].join(' ')}`);
  const listOp = c.op === 'in' || c.op === 'notin';
  if (listOp !== Array.isArray(c.value)) {
    return fail(c.text, listOp ? `${c.op} takes a list such as [a,b]` : `${c.op} takes one value, not a list (use in)`);
  }
  const values: Scalar[] = [];
  for (const text of typeof c.value === 'string' ? [c.value] : c.value) {
    const v = parseValue(field, text);
    if (!v.ok) return fail(c.text, v.message);
    values.push(v.value);
  }
  const filter: Filter = listOp ? { field, op: c.op as ListOp, values } : { field, op: c.op as CmpOp, value: values[0]! };
  return { ok: true, filter };
}

const NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/;

function parseValue(field: Field, text: string): { ok: true; value: Scalar } | { ok: false; message: string } {
  const bad = (why: string) => ({ ok: false as const, message: `${field} value '${text}' ${why}` });
  switch (FIELDS[field]) {
    case 'boolean':
      return text === 'true' || text === 'false' ? { ok: true, value: text === 'true' } : bad('must be true or false');
    case 'money': {
      const amount = parseAmount(text, { allowZero: true });
      return amount.ok ? amount : bad(AMOUNT_PROBLEM_TEXT[amount.problem]);
    }
    case 'string': {
      const known = field === 'gpu_model' ? GPU_MODEL_IDS : REGION_IDS;
      return known.includes(text) ? { ok: true, value: text } : bad(`is not a known ${field}${suggest(text, known)}`);
    }
    case 'number': {
      if (!NUMBER.test(text)) {
        return bad(/^[-+.0-9]*[eE][-+]?[0-9]+$/.test(text) ? 'must not use an exponent' : 'is not a number (write decimals as 0.5)');
      }
      const n = Number(text);
      if (field === 'gpus' && !(Number.isSafeInteger(n) && n >= 1)) return bad('must be a whole number of at least 1');
      if (field === 'reliability' && !(n >= 0 && n <= 1)) return bad('must be between 0 and 1');
      return n >= 0 ? { ok: true, value: n } : bad('must not be negative');
    }
  }
}

function parseOrder(text: string): { ok: true; order: OfferQuery['order'] } | Fail {
  const t = text.trim();
  if (t === '') return { ok: true, order: { field: 'price', desc: false } };
  const desc = t.startsWith('-');
  const name = desc ? t.slice(1) : t;
  if ((SORTABLE_FIELDS as readonly string[]).includes(name)) return { ok: true, order: { field: name as SortField, desc } };
  if (name in FIELDS) return fail(text, `cannot order by ${name}; sortable fields: ${SORTABLE_FIELDS.join(' ')}`);
  return fail(text, `unknown order field '${name}'${suggest(name, SORTABLE_FIELDS)}; prefix - for descending`);
}

export function matchesOffer(query: OfferQuery, offer: Offer): boolean {
  return query.filters.every((f) => {
    const actual = offer[f.field];
    if ('values' in f) return f.values.some((v) => v === actual) === (f.op === 'in');
    const c = cmp(actual, f.value);
    switch (f.op) {
      case '=': return c === 0;
      case '!=': return c !== 0;
      case '<': return c < 0;
      case '<=': return c <= 0;
      case '>': return c > 0;
      case '>=': return c >= 0;
    }
  });
}

/**
 * Sorts by the query's order, then breaks ties so pages are stable: price ascending (cheapest
 * first), then reliability descending (best first), skipping whichever is the primary key, and
 * finally the offer id ascending (code-unit order, not locale order, so it is the same everywhere).
 */
export function compareOffers(query: OfferQuery): (a: Offer, b: Offer) => number {
  const { field, desc } = query.order;
  const keys: [SortField, boolean][] = [[field, desc], ...([['price', false], ['reliability', true]] as [SortField, boolean][]).filter(([f]) => f !== field)];
  return (a, b) => {
    for (const [f, d] of keys) {
      const c = cmp(a[f], b[f]);
      if (c !== 0) return d ? -c : c;
    }
    return cmp(a.id, b.id);
  };
}

/** Values of one field share a type (bigint with bigint for money), so `<` compares exactly. */
function cmp(a: Scalar, b: Scalar): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function skipWs(q: string, pos: number): number {
  return pos + match(/\s*/y, q, pos)!.length;
}

function match(re: RegExp, q: string, pos: number): string | null {
  re.lastIndex = pos;
  return re.exec(q)?.[0] ?? null;
}

/** Close names for an unknown one, closest first: edit distance ≤ 2, or a prefix (`h100` → `h100-80gb`). */
function suggest(text: string, known: readonly string[]): string {
  const t = text.toLowerCase();
  const close = known
    .filter((k) => (k.startsWith(t) && /^[-_]/.test(k.slice(t.length))) || distance(t, k) <= 2)
    .sort((a, b) => distance(t, a) - distance(t, b)) // stable, so equally close names keep catalog order
    .slice(0, 3);
  return close.length ? `; did you mean ${close.map((k) => `'${k}'`).join(' or ')}?` : '';
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}
