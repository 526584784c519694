// Maps ledger results onto API errors, for routes that move money on a caller's behalf.
import type { Client } from '@libsql/client/web';
import { ApiError } from '../http/errors.ts';
import { idempotencyConflict } from '../http/idempotency.ts';
import { type RuleProblem, type RuleResult } from './rules.ts';
import { postTransaction, type LedgerTransaction, type PostOptions } from './store.ts';

const RULE_TEXT: { readonly [K in RuleProblem]: string } = {
  non_positive_amount: 'amount must be greater than zero',
  amount_too_large: 'amount is too large',
  fee_out_of_range: 'fee must be between zero and the amount',
  same_account: 'source and destination are the same account',
  unbalanced: 'entries do not balance',
  empty: 'a transaction needs at least two entries',
};

export async function postOrThrow(
  client: Client,
  rule: RuleResult,
  opts?: PostOptions,
): Promise<{ transaction: LedgerTransaction; replayed: boolean }> {
  if (!rule.ok) throw new ApiError('validation_failed', RULE_TEXT[rule.problem]);
  const result = await postTransaction(client, rule.spec, opts);
  if (result.ok) return result;
  switch (result.reason) {
    case 'insufficient_funds':
      throw new ApiError('insufficient_funds', `insufficient available ${result.asset} balance`);
    case 'idempotency_conflict':
      throw idempotencyConflict();
    case 'already_reversed':
      throw new ApiError('conflict', 'this transaction has already been reversed');
  }
}
