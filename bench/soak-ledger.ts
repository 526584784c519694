// The money checks at the end of a soak, read straight from libSQL (the launcher's server, or the
// database file once the platform has stopped), not through the API under test.
import type { Client } from '@libsql/client';
import { mayGoNegative, type AccountKind, type LedgerAccountRef } from '../src/ledger/accounts.ts';
import type { Asset } from '../src/money/assets.ts';

export interface LedgerCheck {
  /** Σ balance per asset; every one must be 0. */
  sums: Array<{ asset: string; sum: bigint }>;
  /** Accounts below zero that may not go negative, or that allow it without being allowed to. */
  negatives: Array<{ id: string; balance: bigint; allowNegative: boolean }>;
  /** Accounts whose balance is not the sum of their entries. */
  drift: Array<{ id: string; balance: bigint; entries: bigint }>;
  /** Held accounts whose balance ≠ their open bids' holds + their live leases' escrow. */
  heldMismatch: Array<{ id: string; held: bigint; expected: bigint }>;
  /** Escrow left held for a bid that is closed and whose lease (if any) has ended. */
  stuck: Array<{ owner: string; bid: string; lease: string | null; state: string; amount: bigint }>;
  /** Held money under a reference that is neither a bid nor a lease. */
  unknownHeld: Array<{ reference: string | null; amount: bigint }>;
  openBids: number;
  liveLeases: number;
  accounts: number;
}

const LIVE = new Set(['provisioning', 'running']);
const big = (v: unknown) => BigInt(v as number | bigint | string);

/** Open orders by side and live leases, for the per-minute row. */
export async function marketCounts(db: Client): Promise<{ openAsks: number; openBids: number; liveLeases: number }> {
  const [o, l] = await db.batch(
    ["SELECT side, count(*) AS n FROM orders WHERE status = 'open' GROUP BY side", "SELECT count(*) AS n FROM leases WHERE state IN ('provisioning', 'running')"],
    'read',
  );
  const side = (s: string) => Number(o!.rows.find((r) => r.side === s)?.n ?? 0);
  return { openAsks: side('sell'), openBids: side('buy'), liveLeases: Number(l!.rows[0]!.n) };
}

/**
 * An escrow unit is a buy order and the lease it filled into (gpus = 1 buys: at most one): the
 * bid's hold is posted under the order id; the lease's improvement, settlements, extensions and
 * refund under the lease id. Once the bid is closed and its lease (if any) has ended, the unit
 * holds nothing.
 */
export async function checkLedger(db: Client): Promise<LedgerCheck> {
  const [sums, accounts, entrySums, held, bids, leases] = await db.batch(
    [
      'SELECT asset, sum(balance) AS s FROM ledger_accounts GROUP BY asset ORDER BY asset',
      'SELECT id, owner_id, asset, kind, allow_negative, balance FROM ledger_accounts',
      'SELECT account_id, sum(amount) AS s FROM ledger_entries GROUP BY account_id',
      `SELECT e.owner_id, e.asset, t.reference, sum(e.amount) AS s FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
        WHERE e.account_kind = 'held' GROUP BY e.owner_id, e.asset, t.reference`,
      "SELECT id, account_id, status, hold_amount, pay_with FROM orders WHERE side = 'buy'",
      'SELECT id, bid_id, renter_id, state FROM leases',
    ],
    'read',
  );
  const check: LedgerCheck = {
    sums: sums!.rows.map((r) => ({ asset: String(r.asset), sum: big(r.s) })),
    negatives: [],
    drift: [],
    heldMismatch: [],
    stuck: [],
    unknownHeld: [],
    openBids: 0,
    liveLeases: 0,
    accounts: accounts!.rows.length,
  };
  const entries = new Map(entrySums!.rows.map((r) => [String(r.account_id), big(r.s)]));
  for (const r of accounts!.rows) {
    const id = String(r.id);
    const balance = big(r.balance);
    const allowNegative = Number(r.allow_negative) === 1;
    const ref: LedgerAccountRef = { owner: String(r.owner_id), asset: String(r.asset) as Asset, kind: String(r.kind) as AccountKind };
    if ((balance < 0n && !mayGoNegative(ref)) || (allowNegative && !mayGoNegative(ref))) check.negatives.push({ id, balance, allowNegative });
    const sum = entries.get(id) ?? 0n;
    if (sum !== balance) check.drift.push({ id, balance, entries: sum });
  }

  const bidById = new Map(bids!.rows.map((r) => [String(r.id), r]));
  const leaseByBid = new Map(leases!.rows.map((r) => [String(r.bid_id), r]));
  const bidOfLease = new Map(leases!.rows.map((r) => [String(r.id), String(r.bid_id)]));
  /** Net held per bid (its unit), from the entries. */
  const unit = new Map<string, bigint>();
  for (const r of held!.rows) {
    const reference = r.reference === null ? null : String(r.reference);
    const bid = reference !== null && bidById.has(reference) ? reference : reference !== null ? bidOfLease.get(reference) : undefined;
    if (bid === undefined) {
      if (big(r.s) !== 0n) check.unknownHeld.push({ reference, amount: big(r.s) });
      continue;
    }
    unit.set(bid, (unit.get(bid) ?? 0n) + big(r.s));
  }

  const expected = new Map<string, bigint>();
  for (const [bid, amount] of unit) {
    const order = bidById.get(bid)!;
    const lease = leaseByBid.get(bid);
    const live = order.status === 'open' || (lease !== undefined && LIVE.has(String(lease.state)));
    const account = `${order.account_id}:${order.pay_with}:held`;
    if (live) expected.set(account, (expected.get(account) ?? 0n) + amount);
    else if (amount !== 0n) check.stuck.push({ owner: String(order.account_id), bid, lease: lease ? String(lease.id) : null, state: lease ? `lease ${lease.state}` : `bid ${order.status}`, amount });
    // A resting bid holds exactly its maximum cost.
    if (order.status === 'open' && !lease && amount !== big(order.hold_amount)) check.heldMismatch.push({ id: `${account} (bid ${bid})`, held: amount, expected: big(order.hold_amount) });
  }
  check.openBids = bids!.rows.filter((r) => r.status === 'open').length;
  check.liveLeases = leases!.rows.filter((r) => LIVE.has(String(r.state))).length;
  for (const r of accounts!.rows) {
    if (r.kind !== 'held') continue;
    const id = String(r.id);
    const want = expected.get(id) ?? 0n;
    if (big(r.balance) !== want) check.heldMismatch.push({ id, held: big(r.balance), expected: want });
  }
  return check;
}

const usd = (m: bigint) => {
  const abs = m < 0n ? -m : m;
  return `${m < 0n ? '-' : ''}${abs / 1_000_000n}.${(abs % 1_000_000n).toString().padStart(6, '0')}`;
};

/** The report's lines; `quiet` says whether the platform had settled (no open bids, no live leases expected). */
export function describeLedger(c: LedgerCheck, settled: boolean): { lines: string[]; ok: boolean } {
  const lines: string[] = [];
  const sumsOk = c.sums.every((s) => s.sum === 0n);
  lines.push(`- Σ ledger_accounts.balance per asset = 0: ${sumsOk ? 'yes' : 'NO'} (${c.sums.map((s) => `${s.asset} ${usd(s.sum)}`).join(', ')}; ${c.accounts} accounts)`);
  lines.push(`- no negative balance where not allowed (mayGoNegative / allow_negative): ${c.negatives.length === 0 ? 'yes' : `NO: ${c.negatives.slice(0, 5).map((n) => `${n.id} ${usd(n.balance)}${n.allowNegative ? ' (allow_negative)' : ''}`).join('; ')}`}`);
  lines.push(`- each balance = Σ its entries: ${c.drift.length === 0 ? 'yes' : `NO (${c.drift.length}): ${c.drift.slice(0, 5).map((d) => `${d.id} ${usd(d.balance)} vs ${usd(d.entries)}`).join('; ')}`}`);
  lines.push(
    `- held = open bids' holds + live leases' escrow, per account (${c.openBids} open bids, ${c.liveLeases} live leases${settled ? '' : '; read mid-flight, so a fill or release in progress can show here'}): ` +
      `${c.heldMismatch.length === 0 ? 'yes' : `NO (${c.heldMismatch.length}): ${c.heldMismatch.slice(0, 5).map((h) => `${h.id} held ${usd(h.held)}, expected ${usd(h.expected)}`).join('; ')}`}`,
  );
  lines.push(`- stuck escrow (closed bid, ended or no lease, money still held): ${c.stuck.length === 0 ? 'none' : `${c.stuck.length}: ${c.stuck.slice(0, 5).map((s) => `${s.bid}${s.lease ? `/${s.lease}` : ''} (${s.state}) ${usd(s.amount)}`).join('; ')}`}`);
  if (c.unknownHeld.length > 0) lines.push(`- held under other references: ${c.unknownHeld.slice(0, 5).map((u) => `${u.reference} ${usd(u.amount)}`).join('; ')}`);
  const ok = sumsOk && c.negatives.length === 0 && c.drift.length === 0 && c.heldMismatch.length === 0 && c.stuck.length === 0;
  return { lines, ok };
}
