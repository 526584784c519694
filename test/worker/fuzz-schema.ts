// JSON Schema (the subset /openapi.json uses) → fast-check arbitrary of values the schema accepts.
// The server's zod schemas refine further (amounts, ids, signatures), so a "valid" value is valid
// in shape only; examples are mixed in where the document gives one, to reach past the refinements.
import fc from 'fast-check';

export type Schema = Record<string, any>;
export interface OpenApiDoc {
  paths: Record<string, Record<string, any>>;
  components?: { schemas?: Record<string, Schema>; parameters?: Record<string, any> };
}

/** Follows `#/components/...` references. */
export function resolve(doc: OpenApiDoc, schema: Schema | undefined): Schema | undefined {
  let s = schema;
  for (let i = 0; s && typeof s.$ref === 'string' && i < 20; i++) {
    s = s.$ref.replace(/^#\//, '').split('/').reduce((node: any, part: string) => node?.[part], doc as any);
  }
  return s;
}

const DATE_MIN = Date.parse('2020-01-01T00:00:00Z');
const DATE_MAX = Date.parse('2030-01-01T00:00:00Z');

export function arbitraryOf(doc: OpenApiDoc, raw: Schema | undefined, depth = 0): fc.Arbitrary<unknown> {
  const schema = resolve(doc, raw);
  if (!schema || depth > 8) return fc.constant(null);
  if (Array.isArray(schema.allOf)) return arbitraryOf(doc, merged(doc, schema.allOf), depth);
  const alternatives = schema.oneOf ?? schema.anyOf;
  if (Array.isArray(alternatives)) return fc.oneof(...alternatives.map((s: Schema) => arbitraryOf(doc, s, depth + 1)));
  if (Array.isArray(schema.enum)) return fc.constantFrom(...schema.enum);
  if (Array.isArray(schema.type)) {
    const nonNull = schema.type.filter((t: string) => t !== 'null');
    const arbs = nonNull.map((t: string) => arbitraryOf(doc, { ...schema, type: t }, depth));
    if (schema.type.includes('null')) arbs.push(fc.constant(null));
    return fc.oneof(...arbs);
  }
  const withExample = (arb: fc.Arbitrary<unknown>) =>
    schema.example !== undefined ? fc.oneof({ weight: 3, arbitrary: fc.constant(schema.example) }, { weight: 1, arbitrary: arb }) : arb;
  switch (schema.type) {
    case 'object':
      return objectOf(doc, schema, depth);
    case 'array': {
      const minLength = schema.minItems ?? 0;
      const maxLength = Math.max(minLength, Math.min(schema.maxItems ?? 3, 3));
      return fc.array(arbitraryOf(doc, schema.items, depth + 1), { minLength, maxLength });
    }
    case 'boolean':
      return fc.boolean();
    case 'integer': {
      const min = schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : (schema.minimum ?? -1_000_000);
      const max = schema.maximum ?? Math.max(min, 1_000_000);
      return withExample(fc.integer({ min: Math.max(min, Number.MIN_SAFE_INTEGER), max: Math.min(max, Number.MAX_SAFE_INTEGER) }));
    }
    case 'number':
      return withExample(fc.double({ min: schema.minimum ?? -1e6, max: schema.maximum ?? 1e6, noNaN: true, noDefaultInfinity: true }));
    case 'string':
      return withExample(stringOf(schema));
    default:
      return fc.constant(schema.example ?? null);
  }
}

/** allOf of object schemas, as the one object schema they add up to. */
function merged(doc: OpenApiDoc, parts: Schema[]): Schema {
  const out: Schema = { type: 'object', properties: {}, required: [] };
  for (const part of parts.map((p) => resolve(doc, p) ?? {})) {
    Object.assign(out.properties, part.properties ?? {});
    out.required.push(...(part.required ?? []));
  }
  return out;
}

function objectOf(doc: OpenApiDoc, schema: Schema, depth: number): fc.Arbitrary<unknown> {
  const properties: Record<string, Schema> = schema.properties ?? {};
  if (Object.keys(properties).length === 0 && schema.additionalProperties && typeof schema.additionalProperties === 'object') {
    return fc.dictionary(fc.stringMatching(/^[A-Z][A-Z0-9_]{0,11}$/), arbitraryOf(doc, schema.additionalProperties, depth + 1), { maxKeys: 3 });
  }
  const model = Object.fromEntries(Object.entries(properties).map(([k, s]) => [k, arbitraryOf(doc, s, depth + 1)]));
  return fc.record(model, { requiredKeys: (schema.required ?? []).filter((k: string) => k in properties) });
}

function stringOf(schema: Schema): fc.Arbitrary<string> {
  const minLength = schema.minLength ?? 0;
  const maxLength = Math.max(minLength, Math.min(schema.maxLength ?? 24, 24));
  if (schema.format === 'date-time') return fc.integer({ min: DATE_MIN, max: DATE_MAX }).map((t) => new Date(t).toISOString());
  if (schema.format === 'uuid') return fc.uuid();
  if (schema.format === 'email') return fc.emailAddress();
  if (typeof schema.pattern === 'string') {
    const inLength = (s: string) => s.length >= minLength && s.length <= (schema.maxLength ?? Infinity);
    try {
      return fc.stringMatching(new RegExp(schema.pattern), { size: 'xsmall' }).filter(inLength);
    } catch {
      // fast-check cannot draw from every regex (lookaheads): the example, or any string.
      return schema.example !== undefined ? fc.constant(String(schema.example)) : fc.string({ minLength, maxLength });
    }
  }
  return fc.string({ minLength, maxLength });
}
