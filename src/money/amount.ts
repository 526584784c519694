/**
 * Money is integer micro-units (1 USD = 1,000,000) held in bigint; on the wire it is a
 * decimal string. Parsing is exact: no floats, no exponents, at most 6 decimals.
 */
export const MICRO = 1_000_000n;
/** The largest amount one operation may move: 1e9 whole units, far inside SQLite's int64. */
export const MAX_AMOUNT = 1_000_000_000n * MICRO;

const DECIMAL = /^(-)?(0|[1-9][0-9]{0,17})(?:\.([0-9]{1,6}))?$/;

export type AmountProblem = 'not_a_decimal' | 'too_many_decimals' | 'negative' | 'zero' | 'too_large';

export interface ParseOptions {
  allowZero?: boolean;
  allowNegative?: boolean;
}

export function parseAmount(text: string, opts: ParseOptions = {}): { ok: true; value: bigint } | { ok: false; problem: AmountProblem } {
  const m = DECIMAL.exec(text);
  if (!m) {
    return { ok: false, problem: /^-?[0-9]+\.[0-9]{7,}$/.test(text) ? 'too_many_decimals' : 'not_a_decimal' };
  }
  const [, minus, whole, fraction = ''] = m;
  const magnitude = BigInt(whole!) * MICRO + BigInt(fraction.padEnd(6, '0'));
  if (magnitude > MAX_AMOUNT) return { ok: false, problem: 'too_large' };
  if (minus && magnitude > 0n && !opts.allowNegative) return { ok: false, problem: 'negative' };
  if (magnitude === 0n && !opts.allowZero) return { ok: false, problem: 'zero' };
  return { ok: true, value: minus ? -magnitude : magnitude };
}

export const AMOUNT_PROBLEM_TEXT: { readonly [K in AmountProblem]: string } = {
  not_a_decimal: 'must be a decimal string such as "12.50" (no exponent, no spaces)',
  too_many_decimals: 'must have at most 6 decimal places',
  negative: 'must not be negative',
  zero: 'must be greater than zero',
  too_large: 'is larger than 1,000,000,000',
};

/** Formats micro-units as a decimal string with at least 2 decimals: 2350000n → "2.35". */
export function formatAmount(micro: bigint): string {
  const negative = micro < 0n;
  const abs = negative ? -micro : micro;
  const whole = abs / MICRO;
  let fraction = (abs % MICRO).toString().padStart(6, '0').replace(/0+$/, '');
  if (fraction.length < 2) fraction = fraction.padEnd(2, '0');
  return `${negative ? '-' : ''}${whole}.${fraction}`;
}
