// Inspector bonds: the `inspector` role is earned by bonding GRID, never taken at sign-up.
// The rules (config, standing, the role and unbonding statements) are pure; the cron step
// at the bottom releases matured unbondings through the ledger, one idempotent transaction
// per unbonding.
import type { Client, InStatement } from '@libsql/client/web';
import { log } from '../http/log.ts';
import { accountId, userAccount } from '../ledger/accounts.ts';
import { unbond } from '../ledger/rules.ts';
import { postTransaction } from '../ledger/store.ts';
import { MICRO, parseAmount } from '../money/amount.ts';
import type { Asset } from '../money/assets.ts';

export const BOND_ASSET: Asset = 'GRID';
const DEFAULT_MIN_BOND = 1_000n * MICRO;
const DEFAULT_COOLDOWN_S = 14 * 86_400;
const RELEASE_PER_RUN = 200;

export interface BondVars {
  INSPECTOR_MIN_BOND?: string;
  INSPECTOR_UNBOND_COOLDOWN_S?: string;
}

export interface BondConfig {
  /** GRID micro-units an account must keep bonded, not unbonding, to hold the role. */
  minBond: bigint;
  cooldownMs: number;
}

/** Unset or invalid values fall back to the defaults; a minimum of zero is invalid (everyone would inspect). */
export function bondConfig(env: BondVars): BondConfig {
  const min = parseAmount(env.INSPECTOR_MIN_BOND ?? '');
  const cooldown = Number(env.INSPECTOR_UNBOND_COOLDOWN_S);
  return {
    minBond: min.ok ? min.value : DEFAULT_MIN_BOND,
    cooldownMs: (env.INSPECTOR_UNBOND_COOLDOWN_S && Number.isFinite(cooldown) && cooldown >= 0 ? cooldown : DEFAULT_COOLDOWN_S) * 1000,
  };
}

export interface Standing {
  /** Everything in the bonded ledger account, unbonding included: all of it is slashable. */
  bonded: bigint;
  /** Pending unbondings: still bonded, but no longer counted for the role. */
  unbonding: bigint;
  /** What counts for the role and what may still be unbonded. */
  active: bigint;
  inspector: boolean;
}

export function standing(bonded: bigint, unbonding: bigint, minBond: bigint): Standing {
  const active = bonded - unbonding;
  return { bonded, unbonding, active, inspector: active >= minBond && active > 0n };
}

export function bondedAccountId(owner: string): string {
  return accountId(userAccount(owner, BOND_ASSET, 'bonded'));
}

/** The SQL value of an account's active bond: its bonded balance less its pending unbondings. */
const ACTIVE_BOND = `(COALESCE((SELECT balance FROM ledger_accounts WHERE id = ?), 0)
  - COALESCE((SELECT SUM(amount) FROM inspector_bonds WHERE account_id = ? AND kind = 'unbond' AND status = 'pending'), 0))`;

/**
 * Grants or withdraws the role from the balances as they stand inside the same batch, so two
 * concurrent movements cannot leave a role that the bond no longer supports.
 */
export function roleStatement(owner: string, minBond: bigint): InStatement {
  return {
    sql: `UPDATE accounts SET roles = CASE
            WHEN ${ACTIVE_BOND} >= ? AND ? > 0 THEN
              CASE WHEN EXISTS (SELECT 1 FROM json_each(accounts.roles) WHERE value = 'inspector') THEN roles
                   ELSE json_insert(roles, '$[#]', 'inspector') END
            ELSE (SELECT json_group_array(value) FROM json_each(accounts.roles) WHERE value <> 'inspector')
          END
          WHERE id = ?`,
    args: [bondedAccountId(owner), owner, minBond, minBond, owner],
  };
}

export interface UnbondRequest {
  id: string;
  owner: string;
  idempotencyKey: string;
  requestHash: string;
  amount: bigint;
  now: number;
  cooldownMs: number;
}

/**
 * Records an unbonding only if the active bond covers it; a repeated key inserts nothing.
 * No money moves yet: it stays bonded, and slashable, until `release_at`.
 */
export function unbondStatement(r: UnbondRequest): InStatement {
  return {
    sql: `INSERT INTO inspector_bonds (id, account_id, kind, idempotency_key, request_hash, amount, status, release_at, created_at)
          SELECT ?, ?, 'unbond', ?, ?, ?, 'pending', ?, ? WHERE ${ACTIVE_BOND} >= ?
          ON CONFLICT (account_id, kind, idempotency_key) DO NOTHING`,
    args: [r.id, r.owner, r.idempotencyKey, r.requestHash, r.amount, r.now + r.cooldownMs, r.now, bondedAccountId(r.owner), r.owner, r.amount],
  };
}

export interface BondCronResult {
  released: string[];
}

/**
 * The bonds' part of the each-minute cron: matured unbondings go back to available. It takes
 * the money client, not the environment, so that this module stays free of Workers types.
 */
export async function releaseMaturedUnbondings(money: Client, now = Date.now()): Promise<BondCronResult> {
  const result: BondCronResult = { released: [] };
  const due = await money.execute({
    sql: `SELECT id, account_id, amount FROM inspector_bonds WHERE status = 'pending' AND release_at <= ? ORDER BY release_at LIMIT ?`,
    args: [now, RELEASE_PER_RUN],
  });
  for (const r of due.rows) {
    const id = String(r.id);
    const owner = String(r.account_id);
    const rule = unbond({ owner, asset: BOND_ASSET, amount: BigInt(r.amount as bigint), idempotencyKey: `unbond:${id}`, reference: id });
    if (!rule.ok) {
      log('error', 'unbonding not releasable', { unbonding_id: id, problem: rule.problem });
      continue;
    }
    const markReleased: InStatement = {
      sql: `UPDATE inspector_bonds SET status = 'released', released_at = ?,
              transaction_id = (SELECT id FROM ledger_transactions WHERE idempotency_key = ?)
            WHERE id = ? AND status = 'pending'`,
      args: [now, `unbond:${id}`, id],
    };
    try {
      const posted = await postTransaction(money, rule.spec, { now, alongside: [markReleased] });
      if (!posted.ok) {
        // Only a later slash could leave less bonded than the unbonding; it waits for an operator.
        log('error', 'unbonding release refused by the ledger', { unbonding_id: id, reason: posted.reason });
        continue;
      }
      // A replay means the money moved before; the row's update went with it in the same batch.
      if (posted.replayed) await money.execute(markReleased);
      result.released.push(id);
    } catch (err) {
      log('warn', 'unbonding not released; the next run retries', { unbonding_id: id, error: String(err) });
    }
  }
  return result;
}
