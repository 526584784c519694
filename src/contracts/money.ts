import { z } from '@hono/zod-openapi';
import { AMOUNT_PROBLEM_TEXT, formatAmount, parseAmount, type ParseOptions } from '../money/amount.ts';
import { ASSETS } from '../money/assets.ts';

/** A decimal string parsed exactly into bigint micro-units; anything else is a 400. */
export function amountSchema(opts: ParseOptions = {}) {
  return z
    .string()
    .transform((text, ctx) => {
      const parsed = parseAmount(text, opts);
      if (!parsed.ok) {
        ctx.addIssue({ code: 'custom', message: AMOUNT_PROBLEM_TEXT[parsed.problem] });
        return z.NEVER;
      }
      return parsed.value;
    })
    .openapi({ type: 'string', example: '25.00', description: 'Decimal string, at most 6 decimals' });
}

export const AssetSchema = z.enum(ASSETS).openapi({ example: 'USD' });

/** Wire form of an amount: a decimal string. */
export const money = (micro: bigint | number) => formatAmount(BigInt(micro));
export const MoneyString = z.string().openapi({ example: '25.00' });

export const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
