import { describe, expect, it } from 'vitest';
import { accountId, mayGoNegative, platformAccount, userAccount } from '../../src/ledger/accounts.ts';
import { adjustment, capture, credit, hold, reversal, transfer, validate, withdrawal, type RuleResult } from '../../src/ledger/rules.ts';

const base = { idempotencyKey: 'k', reference: null };

function postings(r: RuleResult) {
  if (!r.ok) throw new Error(r.problem);
  return r.spec.postings.map((p) => [accountId(p.account), p.amount]);
}

describe('ledger rules', () => {
  it('credit moves money from the gateway clearing account to the user', () => {
    expect(postings(credit({ ...base, owner: 'acc_a', asset: 'USD', amount: 5n, source: 'stripe' }))).toEqual([
      ['platform:USD:clearing_stripe', -5n],
      ['acc_a:USD:available', 5n],
    ]);
  });

  it('capture pays the payee and the fee from the payer’s escrow, summing to zero', () => {
    const r = capture({ ...base, payer: 'acc_r', payee: 'acc_p', asset: 'GRID', amount: 100n, fee: 5n });
    expect(postings(r)).toEqual([
      ['acc_r:GRID:held', -95n],
      ['acc_p:GRID:available', 95n],
      ['acc_r:GRID:held', -5n],
      ['platform:GRID:fees', 5n],
    ]);
    expect(postings(capture({ ...base, payer: 'acc_r', payee: 'acc_p', asset: 'GRID', amount: 100n, fee: 0n }))).toHaveLength(2);
  });

  it('refuses zero, negative and out-of-range amounts and fees, and self-payments', () => {
    expect(hold({ ...base, owner: 'a', asset: 'USD', amount: 0n })).toEqual({ ok: false, problem: 'non_positive_amount' });
    expect(hold({ ...base, owner: 'a', asset: 'USD', amount: -1n })).toEqual({ ok: false, problem: 'non_positive_amount' });
    expect(withdrawal({ ...base, owner: 'a', asset: 'USD', amount: 10n ** 16n })).toEqual({ ok: false, problem: 'amount_too_large' });
    expect(capture({ ...base, payer: 'a', payee: 'b', asset: 'USD', amount: 5n, fee: 6n })).toEqual({ ok: false, problem: 'fee_out_of_range' });
    expect(capture({ ...base, payer: 'a', payee: 'a', asset: 'USD', amount: 5n, fee: 1n })).toEqual({ ok: false, problem: 'same_account' });
    expect(transfer({ ...base, from: 'a', to: 'a', asset: 'USD', amount: 5n })).toEqual({ ok: false, problem: 'same_account' });
  });

  it('refuses an unbalanced or one-sided transaction', () => {
    const user = userAccount('a', 'USD', 'available');
    expect(validate({ ...base, kind: 'transfer', postings: [{ account: user, amount: 1n }] })).toEqual({ ok: false, problem: 'empty' });
    expect(
      validate({ ...base, kind: 'transfer', postings: [{ account: user, amount: 1n }, { account: userAccount('b', 'GRID', 'available'), amount: -1n }] }),
    ).toEqual({ ok: false, problem: 'unbalanced' });
  });

  it('reversal negates every posting of the original', () => {
    const original = transfer({ ...base, from: 'a', to: 'b', asset: 'USD', amount: 7n });
    if (!original.ok) throw new Error();
    const r = reversal({ ...base, original: { id: 'ltx_1', postings: original.spec.postings } });
    expect(r.ok && r.spec.reverses).toBe('ltx_1');
    expect(postings(r)).toEqual([
      ['a:USD:available', 7n],
      ['b:USD:available', -7n],
    ]);
  });

  it('adjustment goes either way against the adjustments account', () => {
    expect(postings(adjustment({ ...base, owner: 'a', asset: 'USD', amount: -3n }))).toEqual([
      ['a:USD:available', -3n],
      ['platform:USD:adjustments', 3n],
    ]);
  });

  it('lets only clearing and adjustment accounts go negative', () => {
    expect(mayGoNegative(platformAccount('USD', 'clearing_stripe'))).toBe(true);
    expect(mayGoNegative(platformAccount('USD', 'adjustments'))).toBe(true);
    expect(mayGoNegative(platformAccount('USD', 'fees'))).toBe(false);
    expect(mayGoNegative(platformAccount('GRID', 'withdrawals_in_flight'))).toBe(false);
    expect(mayGoNegative(userAccount('platform_lookalike', 'USD', 'available'))).toBe(false);
  });
});
