import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GPU_MODEL_IDS } from '../../src/catalog/gpus.ts';
import { REGION_IDS } from '../../src/catalog/regions.ts';
import {
  compareOffers, FIELD_NAMES, matchesOffer, MAX_CLAUSES, MAX_QUERY_CHARS, parseOfferQuery,
  type CmpOp, type Field, type Filter, type ListOp, type Offer, type OfferQuery, type Scalar,
} from '../../src/market/offer-query.ts';
import { formatAmount, MAX_AMOUNT } from '../../src/money/amount.ts';

const offer = (o: Partial<Offer> = {}): Offer => ({
  id: 'offer_1',
  gpu_model: 'h100-80gb',
  region: 'us-east',
  gpus: 4,
  price: 2_500_000n,
  reliability: 0.99,
  verified: true,
  vram_gb: 80,
  cpu_cores: 32,
  ram_gb: 256,
  disk_gb: 1000,
  ...o,
});

function parse(q: string, order?: string): OfferQuery {
  const r = parseOfferQuery(q, order);
  if (!r.ok) throw new Error(`${r.error.clause}: ${r.error.message}`);
  return r.query;
}
const matches = (q: string, o: Partial<Offer> = {}) => matchesOffer(parse(q), offer(o));

describe('parseOfferQuery', () => {
  it('reads the spec example', () => {
    const q = parse('gpu_model=h100-80gb gpus>=2 reliability>0.98 region in [us-east,eu-central]', '-reliability');
    expect(q).toEqual({
      filters: [
        { field: 'gpu_model', op: '=', value: 'h100-80gb' },
        { field: 'gpus', op: '>=', value: 2 },
        { field: 'reliability', op: '>', value: 0.98 },
        { field: 'region', op: 'in', values: ['us-east', 'eu-central'] },
      ],
      order: { field: 'reliability', desc: true },
    });
    expect(parse('', 'price').order).toEqual({ field: 'price', desc: false });
  });

  it('treats an empty or blank q as no filters, ordered by price ascending', () => {
    for (const q of ['', '   ', '\t\n']) expect(parse(q)).toEqual({ filters: [], order: { field: 'price', desc: false } });
    expect(matchesOffer(parse(''), offer())).toBe(true);
  });

  it('accepts comparison operators with or without spaces, and any whitespace between clauses', () => {
    const want = parse('gpus>=2 price<3');
    for (const q of ['gpus >= 2 price < 3', 'gpus>= 2  price <3', ' gpus >=2\tprice<  3 ', 'gpus\n>=\n2\nprice<3']) {
      expect(parse(q)).toEqual(want);
    }
  });

  it('reads lists with spaces inside, of one or many values, for strings, numbers and money', () => {
    expect(parse('region in [ us-east ,eu-central,  us-west ]').filters).toEqual([{ field: 'region', op: 'in', values: ['us-east', 'eu-central', 'us-west'] }]);
    expect(parse('gpu_model notin [a100-40gb]').filters).toEqual([{ field: 'gpu_model', op: 'notin', values: ['a100-40gb'] }]);
    expect(parse('gpus in [1, 2,8]').filters).toEqual([{ field: 'gpus', op: 'in', values: [1, 2, 8] }]);
    expect(parse('price notin [1.5, 2.000001]').filters).toEqual([{ field: 'price', op: 'notin', values: [1_500_000n, 2_000_001n] }]);
  });

  it('parses money exactly into micro-units, including zero', () => {
    expect(parse('price<=2.000001').filters).toEqual([{ field: 'price', op: '<=', value: 2_000_001n }]);
    expect(parse('price>=0').filters).toEqual([{ field: 'price', op: '>=', value: 0n }]);
    expect(parse('price<1000000000').filters).toEqual([{ field: 'price', op: '<', value: MAX_AMOUNT }]);
  });

  it('keeps every clause, even repeated ones (they are ANDed)', () => {
    expect(parse('gpus>=2 gpus<=4 gpus!=3').filters).toHaveLength(3);
    expect(matches('gpus>=2 gpus<=4 gpus!=3', { gpus: 4 })).toBe(true);
    expect(matches('gpus>=2 gpus<=4 gpus!=3', { gpus: 3 })).toBe(false);
  });

  it('allows exactly 20 clauses and 1,000 characters', () => {
    const twenty = Array.from({ length: MAX_CLAUSES }, (_, i) => `vram_gb>=${i}`).join(' ');
    expect(parse(twenty).filters).toHaveLength(20);
    const long = `disk_gb>=${'9'.repeat(MAX_QUERY_CHARS - 'disk_gb>=0.'.length)}.0`;
    expect(long).toHaveLength(MAX_QUERY_CHARS);
    expect(parseOfferQuery(long).ok).toBe(true);
  });
});

describe('operators by type', () => {
  it.each<[string, Partial<Offer>, boolean]>([
    // strings
    ['gpu_model=h100-80gb', {}, true],
    ['gpu_model=a100-80gb', {}, false],
    ['gpu_model!=a100-80gb', {}, true],
    ['gpu_model!=h100-80gb', {}, false],
    ['gpu_model in [a100-80gb,h100-80gb]', {}, true],
    ['gpu_model in [a100-80gb]', {}, false],
    ['gpu_model notin [a100-80gb]', {}, true],
    ['gpu_model notin [a100-80gb, h100-80gb]', {}, false],
    ['region=us-east', {}, true],
    ['region!=us-east', {}, false],
    ['region in [eu-west, eu-central]', { region: 'eu-west' }, true],
    ['region notin [eu-west, eu-central]', { region: 'eu-west' }, false],
    // booleans
    ['verified=true', {}, true],
    ['verified=false', {}, false],
    ['verified!=true', { verified: false }, true],
    ['verified!=false', { verified: false }, false],
    // integers
    ['gpus=4', {}, true],
    ['gpus!=4', {}, false],
    ['gpus<4', {}, false],
    ['gpus<5', {}, true],
    ['gpus<=4', {}, true],
    ['gpus<=3', {}, false],
    ['gpus>4', {}, false],
    ['gpus>3', {}, true],
    ['gpus>=4', {}, true],
    ['gpus>=5', {}, false],
    ['gpus in [2,4,8]', {}, true],
    ['gpus notin [2,4,8]', {}, false],
    // decimals
    ['reliability=0.99', {}, true],
    ['reliability!=0.99', {}, false],
    ['reliability>0.98', {}, true],
    ['reliability>0.99', {}, false],
    ['reliability>=0.99', {}, true],
    ['reliability<0.99', {}, false],
    ['reliability<=0.99', {}, true],
    ['reliability<1', {}, true],
    ['reliability in [0.9, 0.99]', {}, true],
    ['reliability notin [0.9, 0.99]', {}, false],
    ['vram_gb>=80', {}, true],
    ['cpu_cores<32', {}, false],
    ['ram_gb>255.5', {}, true],
    ['disk_gb<=999.99', {}, false],
    ['disk_gb=0', { disk_gb: 0 }, true],
    // money
    ['price=2.5', {}, true],
    ['price=2.50', {}, true],
    ['price!=2.5', {}, false],
    ['price<2.5', {}, false],
    ['price<=2.5', {}, true],
    ['price>2.499999', {}, true],
    ['price>=2.500001', {}, false],
    ['price in [1, 2.5]', {}, true],
    ['price notin [1, 2.5]', {}, false],
  ])('%s on the sample offer %o is %s', (q, o, want) => {
    expect(matches(q, o)).toBe(want);
  });

  it('compares money exactly at the 6th decimal', () => {
    for (const [price, want] of [[2_000_000n, true], [2_000_001n, true], [2_000_002n, false]] as const) {
      expect(matches('price<=2.000001', { price })).toBe(want);
      expect(matches('price>2.000001', { price })).toBe(!want);
    }
    expect(matches('price=2.000001', { price: 2_000_001n })).toBe(true);
    expect(matches('price=2.000001', { price: 2_000_000n })).toBe(false);
    expect(matches('price in [0.000001]', { price: 1n })).toBe(true);
    // beyond 2^53 micro-units a double would merge neighbours; bigint does not
    expect(matches('price<999999999.999999', { price: MAX_AMOUNT - 1n })).toBe(false);
    expect(matches('price<999999999.999999', { price: MAX_AMOUNT - 2n })).toBe(true);
  });
});

describe('errors name the clause', () => {
  it.each<[string, string, RegExp]>([
    // unknown fields, with a suggestion when one is close
    ['gpus>=2 gpu=2', 'gpu=2', /unknown field 'gpu'; did you mean 'gpus' or 'gpu_model'\?/],
    ['gpu-model=h100-80gb', 'gpu-model=h100-80gb', /unknown field 'gpu-model'; did you mean 'gpu_model'/],
    ['vram>=24', 'vram>=24', /unknown field 'vram'; did you mean 'vram_gb'/],
    ['colour = red', 'colour = red', /^unknown field 'colour'$/],
    // operators the type does not allow
    ['verified in [true]', 'verified in [true]', /operator in is not allowed for verified \(boolean\); use = !=/],
    ['verified>false', 'verified>false', /operator > is not allowed for verified/],
    ['region < us-east', 'region < us-east', /operator < is not allowed for region \(string\); use = != in notin/],
    ['gpu_model>=h100-80gb', 'gpu_model>=h100-80gb', /operator >= is not allowed for gpu_model/],
    ['gpus>=[1,2]', 'gpus>=[1,2]', />= takes one value, not a list/],
    ['region in us-east', 'region in us-east', /in takes a list/],
    // malformed values
    ['gpus>=two', 'gpus>=two', /gpus value 'two' is not a number/],
    ['gpus>=1.5', 'gpus>=1.5', /whole number of at least 1/],
    ['gpus>=0', 'gpus>=0', /whole number of at least 1/],
    ['gpus>=.5', 'gpus>=.5', /is not a number/],
    ['gpus>=05', 'gpus>=05', /is not a number/],
    ['reliability>1.5', 'reliability>1.5', /between 0 and 1/],
    ['reliability>1e-2', 'reliability>1e-2', /must not use an exponent/],
    ['vram_gb>=-1', 'vram_gb>=-1', /must not be negative/],
    ['price<1.0000001', 'price<1.0000001', /at most 6 decimal places/],
    ['price<1e3', 'price<1e3', /no exponent/],
    ['price<-1', 'price<-1', /must not be negative/],
    ['price in [1, 2.1234567]', 'price in [1, 2.1234567]', /'2.1234567' must have at most 6 decimal places/],
    ['verified=yes', 'verified=yes', /must be true or false/],
    ['gpu_model=h100', 'gpu_model=h100', /'h100' is not a known gpu_model; did you mean 'h100-80gb'/],
    ['gpu_model=b200', 'gpu_model=b200', /'b200' is not a known gpu_model$/],
    ['region in [us-east, us-eas]', 'region in [us-east, us-eas]', /'us-eas' is not a known region; did you mean 'us-east'/],
    ['gpus>=', 'gpus>=', /missing value after >=/],
    ['gpus>=2 region in', 'region in', /missing value after in/],
    // lists
    ['region in []', 'region in []', /empty list/],
    ['region notin [ ]', 'region notin [ ]', /empty list/],
    ['region in [us-east,]', 'region in [us-east,]', /empty item/],
    ['region in [us-east eu-west]', 'region in [us-east eu-west]', /separate list items with commas/],
    ['region in [us-east, eu-west gpus>=2', 'region in [us-east, eu-west gpus>=2', /unterminated list/],
    ['region in[us-east]', 'region in[us-east]', /'in' needs spaces around it/],
    ['region notin[us-east]', 'region notin[us-east]', /'notin' needs spaces around it/],
    // garbage between clauses
    ['gpus>=2 , region=us-east', ',', /unexpected ','/],
    ['gpus>=2 && region=us-east', '&&', /unexpected '&&'/],
    ['gpus>=2 AND region=us-east', 'AND', /'AND' is not a clause/],
    ['gpus>=2 region', 'region', /'region' is not a clause/],
    ['(gpus>=2)', '(gpus>=2)', /unexpected '\(gpus>=2\)'/],
    ['region in [us-east]x gpus>=2', 'region in [us-east]x', /unexpected 'x' after the list/],
    ['gpus>=2,region=us-east', 'gpus>=2,region=us-east', /is not a number/],
  ])('%s', (q, clause, message) => {
    const r = parseOfferQuery(q);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.clause).toBe(clause);
    expect(r.error.message).toMatch(message);
  });

  it('rejects more than 20 clauses, naming the 21st', () => {
    const q = Array.from({ length: MAX_CLAUSES + 1 }, (_, i) => `vram_gb>=${i}`).join(' ');
    expect(parseOfferQuery(q)).toEqual({ ok: false, error: { clause: 'vram_gb>=20', message: 'too many clauses: at most 20 are allowed' } });
  });

  it('rejects a query over 1,000 characters, naming the text at the limit', () => {
    const list = `[${Array(130).fill('us-east').join(',')}]`;
    const r = parseOfferQuery(`gpus>=2 region in ${list} verified=true`);
    expect(r).toMatchObject({ ok: false, error: { clause: list, message: expect.stringMatching(/at most 1000 are allowed/) } });
    const padded = parseOfferQuery(`gpus>=2${' '.repeat(MAX_QUERY_CHARS)}verified=true`);
    expect(padded).toMatchObject({ ok: false, error: { clause: 'verified=true' } });
  });

  it.each<[string, RegExp]>([
    ['region', /cannot order by region; sortable fields: price gpus reliability/],
    ['-verified', /cannot order by verified/],
    ['prise', /unknown order field 'prise'; did you mean 'price'/],
    ['--price', /unknown order field '-price'/],
    ['price asc', /unknown order field 'price asc'/],
  ])('rejects order=%s', (order, message) => {
    const r = parseOfferQuery('gpus>=1', order);
    expect(r).toMatchObject({ ok: false, error: { clause: order, message: expect.stringMatching(message) } });
  });
});

describe('compareOffers', () => {
  const ids = (q: OfferQuery, offers: Offer[]) => [...offers].sort(compareOffers(q)).map((o) => o.id);
  const book = [
    offer({ id: 'd', price: 3_000_000n, reliability: 0.9, gpus: 8 }),
    offer({ id: 'b', price: 2_000_000n, reliability: 0.95, gpus: 2 }),
    offer({ id: 'c', price: 2_000_000n, reliability: 0.99, gpus: 2 }),
    offer({ id: 'a', price: 2_000_000n, reliability: 0.95, gpus: 4 }),
    offer({ id: 'e', price: 2_000_001n, reliability: 0.99, gpus: 1 }),
  ];

  it('orders by price ascending by default; ties by reliability descending, then id', () => {
    expect(ids(parse(''), book)).toEqual(['c', 'a', 'b', 'e', 'd']);
    expect(ids(parse('', 'price'), book)).toEqual(['c', 'a', 'b', 'e', 'd']);
  });

  it('orders by price descending; ties keep reliability descending, then id', () => {
    expect(ids(parse('', '-price'), book)).toEqual(['d', 'e', 'c', 'a', 'b']);
  });

  it('orders by reliability either way; ties by price ascending, then id', () => {
    expect(ids(parse('', '-reliability'), book)).toEqual(['c', 'e', 'a', 'b', 'd']);
    expect(ids(parse('', 'reliability'), book)).toEqual(['d', 'a', 'b', 'c', 'e']);
  });

  it('orders by gpus either way; ties by price, then reliability, then id', () => {
    expect(ids(parse('', 'gpus'), book)).toEqual(['e', 'c', 'b', 'a', 'd']);
    expect(ids(parse('', '-gpus'), book)).toEqual(['d', 'a', 'c', 'b', 'e']);
  });
});

// ---- properties ------------------------------------------------------------------------------

const TYPES: Record<Field, 'string' | 'number' | 'money' | 'boolean'> = {
  gpu_model: 'string', region: 'string', gpus: 'number', price: 'money', reliability: 'number',
  verified: 'boolean', vram_gb: 'number', cpu_cores: 'number', ram_gb: 'number', disk_gb: 'number',
};
const CMP: CmpOp[] = ['=', '!=', '<', '<=', '>', '>='];
const OPS_FOR = {
  string: ['=', '!=', 'in', 'notin'],
  boolean: ['=', '!='],
  number: [...CMP, 'in', 'notin'],
  money: [...CMP, 'in', 'notin'],
} as const;

// Small pools shared by filters and offers, so random offers often sit exactly on a filter's
// boundary; the wide arbitraries keep the round trip honest.
const size = fc.oneof(fc.constantFrom(0, 24, 80, 256), fc.integer({ min: 0, max: 100_000 }).map((n) => n / 100));
const VALUE: Record<Field, fc.Arbitrary<Scalar>> = {
  gpu_model: fc.constantFrom(...GPU_MODEL_IDS),
  region: fc.constantFrom(...REGION_IDS),
  gpus: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 1_000_000 })),
  price: fc.oneof(fc.constantFrom(1_999_999n, 2_000_000n, 2_000_001n), fc.bigInt({ min: 0n, max: MAX_AMOUNT })),
  reliability: fc.oneof(fc.constantFrom(0, 0.5, 0.98, 0.99, 1), fc.integer({ min: 0, max: 1_000_000 }).map((n) => n / 1_000_000)),
  verified: fc.boolean(),
  vram_gb: size,
  cpu_cores: size,
  ram_gb: size,
  disk_gb: size,
};

const text = (v: Scalar) => (typeof v === 'bigint' ? formatAmount(v) : String(v));

/** A random valid filter and one of the many ways to write it. */
type Clause = { filter: Filter; text: string };
const clause: fc.Arbitrary<Clause> = fc.constantFrom(...FIELD_NAMES).chain((field) =>
  fc.constantFrom(...OPS_FOR[TYPES[field]]).chain((op) =>
    op === 'in' || op === 'notin'
      ? fc.record({ values: fc.array(VALUE[field], { minLength: 1, maxLength: 4 }), ws: fc.constantFrom(' ', '  ', '\t'), comma: fc.constantFrom(',', ', ', ' , ') }).map(({ values, ws, comma }): Clause => ({
          filter: { field, op: op as ListOp, values },
          text: `${field}${ws}${op}${ws}[${values.map(text).join(comma)}]`,
        }))
      : fc.record({ value: VALUE[field], ws: fc.constantFrom('', ' ', '  ') }).map(({ value, ws }): Clause => ({
          filter: { field, op: op as CmpOp, value },
          text: `${field}${ws}${op}${ws}${text(value)}`,
        })),
  ),
);
const query = fc.record({
  clauses: fc.array(clause, { maxLength: 8 }),
  sep: fc.constantFrom(' ', '  ', '\t', '\n'),
  lead: fc.constantFrom('', ' '),
});
const randomOffer: fc.Arbitrary<Offer> = fc.record({ id: fc.string({ maxLength: 3 }), ...VALUE }) as fc.Arbitrary<Offer>;

/** The filters evaluated directly with JS operators, independently of the module's code. */
function oracle(filters: Filter[], o: Offer): boolean {
  return filters.every((f) => {
    const a = o[f.field];
    if ('values' in f) return f.op === 'in' ? f.values.includes(a) : !f.values.includes(a);
    const b = f.value;
    switch (f.op) {
      case '=': return a === b;
      case '!=': return a !== b;
      case '<': return a < b;
      case '<=': return a <= b;
      case '>': return a > b;
      case '>=': return a >= b;
    }
  });
}

describe('properties', () => {
  it('formatting a valid query and parsing it back gives the same filters', () => {
    fc.assert(
      fc.property(query, ({ clauses, sep, lead }) => {
        const q = lead + clauses.map((c) => c.text).join(sep) + lead;
        fc.pre(q.length <= MAX_QUERY_CHARS);
        expect(parse(q).filters).toEqual(clauses.map((c) => c.filter));
      }),
      { numRuns: 500 },
    );
  });

  it('matchesOffer agrees with a direct evaluation of the filters', () => {
    fc.assert(
      fc.property(fc.array(clause, { maxLength: 3 }), fc.array(randomOffer, { minLength: 1, maxLength: 10 }), (clauses, offers) => {
        const q = parse(clauses.map((c) => c.text).join(' '));
        for (const o of offers) expect(matchesOffer(q, o)).toBe(oracle(q.filters, o));
      }),
      { numRuns: 500 },
    );
  });

  it('compareOffers is a total order: any permutation sorts to the same sequence, sorted by the key', () => {
    const order = fc.constantFrom('price', '-price', 'gpus', '-gpus', 'reliability', '-reliability', 'vram_gb', '-disk_gb');
    fc.assert(
      fc.property(order, fc.uniqueArray(randomOffer, { selector: (o) => o.id, maxLength: 12 }), fc.infiniteStream(fc.nat()), (ord, offers, seeds) => {
        const q = parse('', ord);
        const sorted = [...offers].sort(compareOffers(q));
        const shuffled = offers.map((o) => ({ o, k: seeds.next().value as number })).sort((x, y) => x.k - y.k).map((x) => x.o);
        expect(shuffled.sort(compareOffers(q)).map((o) => o.id)).toEqual(sorted.map((o) => o.id));
        const key = q.order.field;
        for (let i = 1; i < sorted.length; i++) {
          const [prev, next] = [sorted[i - 1]![key], sorted[i]![key]];
          expect(q.order.desc ? prev >= next : prev <= next).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});
