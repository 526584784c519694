import { describe, expect, it } from 'vitest';
import { bondConfig, bondedAccountId, roleStatement, standing, unbondStatement } from '../../src/inspections/bonds.ts';
import { accountId, mayGoNegative, userAccount } from '../../src/ledger/accounts.ts';
import { bond, unbond, type RuleResult } from '../../src/ledger/rules.ts';

const MICRO = 1_000_000n;

function postings(r: RuleResult) {
  if (!r.ok) throw new Error(r.problem);
  return r.spec.postings.map((p) => [accountId(p.account), p.amount]);
}

describe('inspector bond rules', () => {
  it('bonds from available into a bonded account of its own, apart from escrow', () => {
    expect(postings(bond({ idempotencyKey: 'k', reference: 'bnd_1', owner: 'acc_i', asset: 'GRID', amount: 7n }))).toEqual([
      ['acc_i:GRID:available', -7n],
      ['acc_i:GRID:bonded', 7n],
    ]);
    expect(mayGoNegative(userAccount('acc_i', 'GRID', 'bonded'))).toBe(false);
    expect(bondedAccountId('acc_i')).toBe('acc_i:GRID:bonded');
  });

  it('releases an unbonding from bonded back to available', () => {
    expect(postings(unbond({ idempotencyKey: 'k', reference: 'ubd_1', owner: 'acc_i', asset: 'GRID', amount: 7n }))).toEqual([
      ['acc_i:GRID:bonded', -7n],
      ['acc_i:GRID:available', 7n],
    ]);
  });

  it('refuses a zero or negative bond', () => {
    expect(bond({ idempotencyKey: 'k', reference: null, owner: 'acc_i', asset: 'GRID', amount: 0n })).toEqual({ ok: false, problem: 'non_positive_amount' });
    expect(unbond({ idempotencyKey: 'k', reference: null, owner: 'acc_i', asset: 'GRID', amount: -1n })).toEqual({ ok: false, problem: 'non_positive_amount' });
  });

  it('holds the role at the minimum and not one micro-unit below, counting pending unbondings as gone', () => {
    const min = 1_000n * MICRO;
    expect(standing(min, 0n, min).inspector).toBe(true);
    expect(standing(min - 1n, 0n, min).inspector).toBe(false);
    expect(standing(2n * min, min + 1n, min)).toEqual({ bonded: 2n * min, unbonding: min + 1n, active: min - 1n, inspector: false });
    expect(standing(2n * min, min, min).inspector).toBe(true);
    expect(standing(0n, 0n, 0n).inspector).toBe(false);
  });

  it('reads its configuration, falling back to the defaults on unset or invalid values', () => {
    expect(bondConfig({})).toEqual({ minBond: 1_000n * MICRO, cooldownMs: 14 * 86_400_000 });
    expect(bondConfig({ INSPECTOR_MIN_BOND: '250.5', INSPECTOR_UNBOND_COOLDOWN_S: '60' })).toEqual({ minBond: 250_500_000n, cooldownMs: 60_000 });
    expect(bondConfig({ INSPECTOR_MIN_BOND: '0', INSPECTOR_UNBOND_COOLDOWN_S: 'soon' })).toEqual({ minBond: 1_000n * MICRO, cooldownMs: 14 * 86_400_000 });
    expect(bondConfig({ INSPECTOR_MIN_BOND: '-5', INSPECTOR_UNBOND_COOLDOWN_S: '-1' }).cooldownMs).toBe(14 * 86_400_000);
  });

  it('binds the unbonding to its amount and release time, and the role to the minimum', () => {
    const s = unbondStatement({ id: 'ubd_1', owner: 'acc_i', idempotencyKey: 'key', requestHash: 'h', amount: 5n, now: 1_000, cooldownMs: 60_000 });
    expect(typeof s === 'object' && 'args' in s ? s.args : null).toEqual(['ubd_1', 'acc_i', 'key', 'h', 5n, 61_000, 1_000, 'acc_i:GRID:bonded', 'acc_i', 5n]);
    const r = roleStatement('acc_i', 9n);
    expect(typeof r === 'object' && 'args' in r ? r.args : null).toEqual(['acc_i:GRID:bonded', 'acc_i', 9n, 9n, 'acc_i']);
  });
});
