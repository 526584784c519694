// Pure rules for ledger transactions: which postings each money operation makes.
// No I/O, no clock; the store (store.ts) writes what these return.
import { MAX_AMOUNT } from '../money/amount.ts';
import type { Asset } from '../money/assets.ts';
import { platformAccount, userAccount, type LedgerAccountRef } from './accounts.ts';

export const TRANSACTION_KINDS = [
  'deposit',
  'faucet',
  'hold',
  'release',
  'capture',
  'transfer',
  'reversal',
  'withdrawal',
  'withdrawal_paid',
  'withdrawal_failed',
  'adjustment',
  'bond',
  'unbond',
  'mint',
  'reward',
  'slash',
  'supply_reward',
  'vesting_release',
  'forfeit',
  'stake',
  'unstake',
  'stake_slash',
] as const;
export type TransactionKind = (typeof TRANSACTION_KINDS)[number];

export interface Posting {
  account: LedgerAccountRef;
  /** Signed micro-units: positive adds to the account's balance. */
  amount: bigint;
}

export interface TransactionSpec {
  kind: TransactionKind;
  /** Unique for all time; retrying with the same key and the same spec has no second effect. */
  idempotencyKey: string;
  /** What the money moved for: a deposit id, lease id, withdrawal id … */
  reference: string | null;
  /** The transaction this one reverses, if any (each may be reversed once). */
  reverses?: string | null;
  memo?: string | null;
  postings: Posting[];
}

export type RuleProblem = 'non_positive_amount' | 'amount_too_large' | 'fee_out_of_range' | 'same_account' | 'unbalanced' | 'empty';
export type RuleResult = { ok: true; spec: TransactionSpec } | { ok: false; problem: RuleProblem };

const MAX_POSTINGS = 32;

/** Every transaction: at least two postings, none zero, each asset summing to zero. */
export function validate(spec: TransactionSpec): RuleResult {
  if (spec.postings.length < 2 || spec.postings.length > MAX_POSTINGS) return { ok: false, problem: 'empty' };
  const sums = new Map<Asset, bigint>();
  for (const p of spec.postings) {
    if (p.amount === 0n) return { ok: false, problem: 'non_positive_amount' };
    if (p.amount > MAX_AMOUNT || p.amount < -MAX_AMOUNT) return { ok: false, problem: 'amount_too_large' };
    sums.set(p.account.asset, (sums.get(p.account.asset) ?? 0n) + p.amount);
  }
  for (const sum of sums.values()) if (sum !== 0n) return { ok: false, problem: 'unbalanced' };
  return { ok: true, spec };
}

function positive(amount: bigint): RuleProblem | null {
  if (amount <= 0n) return 'non_positive_amount';
  if (amount > MAX_AMOUNT) return 'amount_too_large';
  return null;
}

/** Moves `amount` from one account to another; the building block of every operation. */
function leg(from: LedgerAccountRef, to: LedgerAccountRef, amount: bigint): Posting[] {
  return [
    { account: from, amount: -amount },
    { account: to, amount },
  ];
}

interface Base {
  idempotencyKey: string;
  reference: string | null;
  memo?: string | null;
}

function build(kind: TransactionKind, base: Base, amounts: bigint[], postings: () => Posting[]): RuleResult {
  for (const a of amounts) {
    const problem = positive(a);
    if (problem) return { ok: false, problem };
  }
  return validate({ kind, idempotencyKey: base.idempotencyKey, reference: base.reference, memo: base.memo ?? null, postings: postings() });
}

export type CreditSource = 'stripe' | 'chain' | 'faucet';

/** Money arriving from outside: the gateway's clearing account goes down, the user's available up. */
export function credit(a: Base & { owner: string; asset: Asset; amount: bigint; source: CreditSource }): RuleResult {
  const clearing = platformAccount(a.asset, `clearing_${a.source}`);
  return build(a.source === 'faucet' ? 'faucet' : 'deposit', a, [a.amount], () =>
    leg(clearing, userAccount(a.owner, a.asset, 'available'), a.amount),
  );
}

/** Escrow: available → held. */
export function hold(a: Base & { owner: string; asset: Asset; amount: bigint }): RuleResult {
  return build('hold', a, [a.amount], () => leg(userAccount(a.owner, a.asset, 'available'), userAccount(a.owner, a.asset, 'held'), a.amount));
}

/** Escrow back: held → available. */
export function release(a: Base & { owner: string; asset: Asset; amount: bigint }): RuleResult {
  return build('release', a, [a.amount], () => leg(userAccount(a.owner, a.asset, 'held'), userAccount(a.owner, a.asset, 'available'), a.amount));
}

/**
 * Pays from one user's escrow to another's available balance, the platform fee split off:
 * payer held → payee available (amount − fee) and payer held → platform fees (fee).
 */
export function capture(a: Base & { payer: string; payee: string; asset: Asset; amount: bigint; fee: bigint }): RuleResult {
  if (a.fee < 0n || a.fee > a.amount) return { ok: false, problem: 'fee_out_of_range' };
  if (a.payer === a.payee) return { ok: false, problem: 'same_account' };
  const held = userAccount(a.payer, a.asset, 'held');
  return build('capture', a, [a.amount], () => [
    ...(a.amount > a.fee ? leg(held, userAccount(a.payee, a.asset, 'available'), a.amount - a.fee) : []),
    ...(a.fee > 0n ? leg(held, platformAccount(a.asset, 'fees'), a.fee) : []),
  ]);
}

/** available → another account's available. */
export function transfer(a: Base & { from: string; to: string; asset: Asset; amount: bigint }): RuleResult {
  if (a.from === a.to) return { ok: false, problem: 'same_account' };
  return build('transfer', a, [a.amount], () => leg(userAccount(a.from, a.asset, 'available'), userAccount(a.to, a.asset, 'available'), a.amount));
}

/** Undoes a transaction by posting its entries negated. Funds must still be there. */
export function reversal(a: Base & { original: { id: string; postings: Posting[] } }): RuleResult {
  const result = validate({
    kind: 'reversal',
    idempotencyKey: a.idempotencyKey,
    reference: a.reference,
    reverses: a.original.id,
    memo: a.memo ?? null,
    postings: a.original.postings.map((p) => ({ account: p.account, amount: -p.amount })),
  });
  return result;
}

/** A withdrawal request: available → withdrawals in flight until the payout is paid or fails. */
export function withdrawal(a: Base & { owner: string; asset: Asset; amount: bigint }): RuleResult {
  return build('withdrawal', a, [a.amount], () => leg(userAccount(a.owner, a.asset, 'available'), platformAccount(a.asset, 'withdrawals_in_flight'), a.amount));
}

export function withdrawalPaid(a: Base & { asset: Asset; amount: bigint }): RuleResult {
  return build('withdrawal_paid', a, [a.amount], () =>
    leg(platformAccount(a.asset, 'withdrawals_in_flight'), platformAccount(a.asset, 'clearing_payouts'), a.amount),
  );
}

export function withdrawalFailed(a: Base & { owner: string; asset: Asset; amount: bigint }): RuleResult {
  return build('withdrawal_failed', a, [a.amount], () =>
    leg(platformAccount(a.asset, 'withdrawals_in_flight'), userAccount(a.owner, a.asset, 'available'), a.amount),
  );
}

/** An operator correction of a user's available balance, against the adjustments account. */
export function adjustment(a: Base & { owner: string; asset: Asset; amount: bigint }): RuleResult {
  const magnitude = a.amount < 0n ? -a.amount : a.amount;
  const user = userAccount(a.owner, a.asset, 'available');
  const adjustments = platformAccount(a.asset, 'adjustments');
  return build('adjustment', a, [magnitude], () => (a.amount > 0n ? leg(adjustments, user, magnitude) : leg(user, adjustments, magnitude)));
}

/** An inspector's bond: available → bonded. */
export function bond(a: Base & { owner: string; asset: Asset; amount: bigint }): RuleResult {
  return build('bond', a, [a.amount], () => leg(userAccount(a.owner, a.asset, 'available'), userAccount(a.owner, a.asset, 'bonded'), a.amount));
}

/** A matured unbonding: bonded → available. */
export function unbond(a: Base & { owner: string; asset: Asset; amount: bigint }): RuleResult {
  return build('unbond', a, [a.amount], () => leg(userAccount(a.owner, a.asset, 'bonded'), userAccount(a.owner, a.asset, 'available'), a.amount));
}

/** GRID issued into the rewards pool: genesis (its negative balance is the GRID issued so far) → rewards_pool. */
export function mint(a: Base & { asset: Asset; amount: bigint }): RuleResult {
  return build('mint', a, [a.amount], () => leg(platformAccount(a.asset, 'genesis'), platformAccount(a.asset, 'rewards_pool'), a.amount));
}

/** A reward paid from the pool: rewards_pool → the user's available. */
export function reward(a: Base & { owner: string; asset: Asset; amount: bigint }): RuleResult {
  return build('reward', a, [a.amount], () => leg(platformAccount(a.asset, 'rewards_pool'), userAccount(a.owner, a.asset, 'available'), a.amount));
}

/** A slash: the user's bonded → rewards_pool. */
export function slash(a: Base & { owner: string; asset: Asset; amount: bigint }): RuleResult {
  return build('slash', a, [a.amount], () => leg(userAccount(a.owner, a.asset, 'bonded'), platformAccount(a.asset, 'rewards_pool'), a.amount));
}

/**
 * A provider's supply reward for one node and epoch (docs/rewards.md): rewards_pool → the owner's
 * available (`immediate`) and the owner's vesting (`vesting`), in one transaction. Either part
 * may be zero, not both.
 */
export function supplyReward(a: Base & { owner: string; asset: Asset; immediate: bigint; vesting: bigint }): RuleResult {
  if (a.immediate < 0n || a.vesting < 0n) return { ok: false, problem: 'non_positive_amount' };
  const total = a.immediate + a.vesting;
  const pool = platformAccount(a.asset, 'rewards_pool');
  return build('supply_reward', a, [total], () => [
    { account: pool, amount: -total },
    ...(a.immediate > 0n ? [{ account: userAccount(a.owner, a.asset, 'available'), amount: a.immediate }] : []),
    ...(a.vesting > 0n ? [{ account: userAccount(a.owner, a.asset, 'vesting'), amount: a.vesting }] : []),
  ]);
}

/** Vested supply rewards released: the owner's vesting → available. */
export function vestingRelease(a: Base & { owner: string; asset: Asset; amount: bigint }): RuleResult {
  return build('vesting_release', a, [a.amount], () => leg(userAccount(a.owner, a.asset, 'vesting'), userAccount(a.owner, a.asset, 'available'), a.amount));
}

/** Unvested supply rewards forfeited (proven deception): the owner's vesting → rewards_pool. */
export function forfeit(a: Base & { owner: string; asset: Asset; amount: bigint }): RuleResult {
  return build('forfeit', a, [a.amount], () => leg(userAccount(a.owner, a.asset, 'vesting'), platformAccount(a.asset, 'rewards_pool'), a.amount));
}

/** A provider's stake for a node: available → staked. */
export function stake(a: Base & { owner: string; asset: Asset; amount: bigint }): RuleResult {
  return build('stake', a, [a.amount], () => leg(userAccount(a.owner, a.asset, 'available'), userAccount(a.owner, a.asset, 'staked'), a.amount));
}

/** A matured unstake: staked → available. */
export function unstake(a: Base & { owner: string; asset: Asset; amount: bigint }): RuleResult {
  return build('unstake', a, [a.amount], () => leg(userAccount(a.owner, a.asset, 'staked'), userAccount(a.owner, a.asset, 'available'), a.amount));
}

/** A node's stake slashed (a failed capacity inspection proved deception): staked → rewards_pool. */
export function stakeSlash(a: Base & { owner: string; asset: Asset; amount: bigint }): RuleResult {
  return build('stake_slash', a, [a.amount], () => leg(userAccount(a.owner, a.asset, 'staked'), platformAccount(a.asset, 'rewards_pool'), a.amount));
}

/** The canonical text of a spec, hashed to tell a retry from a different request under one key. */
export function canonicalSpec(spec: TransactionSpec): string {
  return JSON.stringify({
    kind: spec.kind,
    reference: spec.reference,
    reverses: spec.reverses ?? null,
    memo: spec.memo ?? null,
    postings: spec.postings.map((p) => [p.account.owner, p.account.asset, p.account.kind, p.amount.toString()]),
  });
}
