import type { Asset } from '../money/assets.ts';

/**
 * Ledger accounts are named, not numbered: `<owner>:<asset>:<kind>`. A user owns one
 * `available` and one `held` (escrow) account per asset, a `bonded` one for an inspector's
 * bond (apart from escrow, so that escrow checks and slashing each see only their own money),
 * a `vesting` one (GRID) for supply rewards not yet released (docs/rewards.md, "Vesting"), and a
 * `staked` one (GRID) for a provider's node stakes (docs/rewards.md, "Stake"), apart from `bonded`
 * so that a provider's stake never counts toward the inspector role;
 * the platform owns the rest.
 */
export const USER_KINDS = ['available', 'held', 'bonded', 'vesting', 'staked'] as const;
export const PLATFORM_KINDS = [
  'fees',
  'rewards_pool',
  'clearing_stripe',
  'clearing_chain',
  'clearing_faucet',
  'clearing_payouts',
  'withdrawals_in_flight',
  'adjustments',
  'genesis',
] as const;
export type UserKind = (typeof USER_KINDS)[number];
export type PlatformKind = (typeof PLATFORM_KINDS)[number];
export type AccountKind = UserKind | PlatformKind;

export const PLATFORM = 'platform';

/**
 * Accounts that mirror money outside the ledger (a gateway's settlement, operator
 * corrections, GRID not yet issued: `genesis` goes as negative as the GRID minted) may go negative; every other account, and every user account, may not.
 */
const MAY_GO_NEGATIVE: ReadonlySet<AccountKind> = new Set(['clearing_stripe', 'clearing_chain', 'clearing_faucet', 'clearing_payouts', 'adjustments', 'genesis']);

export interface LedgerAccountRef {
  owner: string;
  asset: Asset;
  kind: AccountKind;
}

export function accountId(ref: LedgerAccountRef): string {
  return `${ref.owner}:${ref.asset}:${ref.kind}`;
}

export function mayGoNegative(ref: LedgerAccountRef): boolean {
  return ref.owner === PLATFORM && MAY_GO_NEGATIVE.has(ref.kind);
}

export function userAccount(owner: string, asset: Asset, kind: UserKind): LedgerAccountRef {
  return { owner, asset, kind };
}

export function platformAccount(asset: Asset, kind: PlatformKind): LedgerAccountRef {
  return { owner: PLATFORM, asset, kind };
}
