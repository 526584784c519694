// Writes ledger transactions to libSQL. One transaction = one libSQL batch (one round trip,
// atomic): the transaction row (its idempotency key is UNIQUE), the accounts it touches
// (created on first use), one conditional balance update and one entry per posting, plus
// any statements the caller needs committed with it (a withdrawal row, a deposit's status).
//
// Nothing here reads a balance to decide anything: overdrafts are refused by the
// `ledger_balance_non_negative` CHECK on the balance update itself, so concurrent requests
// cannot both spend the same money.
import type { Client, InStatement, Row } from '@libsql/client/web';
import type { Asset } from '../money/assets.ts';
import { sha256Hex } from '../auth/encoding.ts';
import { newId } from '../ids.ts';
import { errorText } from '../db/errors.ts';
import { accountId, mayGoNegative, type AccountKind } from './accounts.ts';
import { canonicalSpec, type Posting, type TransactionKind, type TransactionSpec } from './rules.ts';

/** The CHECK on ledger_accounts that refuses an overdraft (migrations/0001_money.sql). */
const BALANCE_CHECK = 'ledger_balance_non_negative';

export interface LedgerEntry {
  accountId: string;
  ownerId: string;
  accountKind: AccountKind;
  asset: Asset;
  amount: bigint;
  balanceAfter: bigint;
}

export interface LedgerTransaction {
  id: string;
  kind: TransactionKind;
  reference: string | null;
  reverses: string | null;
  createdAt: number;
  entries: LedgerEntry[];
}

export type PostResult =
  | { ok: true; transaction: LedgerTransaction; replayed: boolean }
  | { ok: false; reason: 'insufficient_funds'; asset: Asset }
  | { ok: false; reason: 'idempotency_conflict' }
  | { ok: false; reason: 'already_reversed' };

export interface PostOptions {
  /**
   * Statements committed atomically with the transaction, before it: a failure here (a
   * constraint or trigger) is reported ahead of the transaction's own, e.g. insufficient funds.
   */
  first?: InStatement[];
  /** Statements committed atomically with the transaction, after its entries. */
  alongside?: InStatement[];
  now?: number;
}

/** The statements that write one transaction: its row, new accounts (unless in `created`), balances and entries. */
function transactionStatements(spec: TransactionSpec, txId: string, requestHash: string, now: number, created: Set<string>): { statements: InStatement[]; entries: number[] } {
  const statements: InStatement[] = [
    {
      sql: `INSERT INTO ledger_transactions (id, idempotency_key, request_hash, kind, reference, reverses, memo, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      args: [txId, spec.idempotencyKey, requestHash, spec.kind, spec.reference, spec.reverses ?? null, spec.memo ?? null, now],
    },
  ];
  for (const p of spec.postings) {
    const id = accountId(p.account);
    if (created.has(id)) continue;
    created.add(id);
    statements.push({
      sql: `INSERT INTO ledger_accounts (id, owner_id, asset, kind, allow_negative, balance, created_at)
            VALUES (?, ?, ?, ?, ?, 0, ?) ON CONFLICT (id) DO NOTHING`,
      args: [id, p.account.owner, p.account.asset, p.account.kind, mayGoNegative(p.account) ? 1 : 0, now],
    });
  }
  const entries: number[] = [];
  for (const p of spec.postings) {
    const id = accountId(p.account);
    statements.push({ sql: 'UPDATE ledger_accounts SET balance = balance + ? WHERE id = ?', args: [p.amount, id] });
    entries.push(statements.length);
    statements.push({
      sql: `INSERT INTO ledger_entries (transaction_id, account_id, owner_id, account_kind, asset, amount, balance_after, created_at)
            SELECT ?, id, owner_id, kind, asset, ?, balance, ? FROM ledger_accounts WHERE id = ?
            RETURNING ${ENTRY_COLUMNS}`,
      args: [txId, p.amount, now, id],
    });
  }
  return { statements, entries };
}

export async function postTransaction(client: Client, spec: TransactionSpec, opts: PostOptions = {}): Promise<PostResult> {
  const now = opts.now ?? Date.now();
  const requestHash = await sha256Hex(canonicalSpec(spec));
  const txId = newId('ltx');
  const first = opts.first ?? [];
  const own = transactionStatements(spec, txId, requestHash, now, new Set());
  const statements: InStatement[] = [...first, ...own.statements, ...(opts.alongside ?? [])];
  const entryStatements = own.entries.map((i) => i + first.length);

  let results;
  try {
    results = await client.batch(statements, 'write');
  } catch (err) {
    const message = errorText(err);
    if (message.includes('ledger_transactions.idempotency_key')) return replay(client, spec.idempotencyKey, requestHash);
    if (message.includes('ledger_transactions.reverses')) return { ok: false, reason: 'already_reversed' };
    // Only the balance CHECK means a lack of money; any other constraint (in the caller's own
    // statements, say) is a defect to surface, not a 402.
    if (message.includes(`CHECK constraint failed: ${BALANCE_CHECK}`)) return { ok: false, reason: 'insufficient_funds', asset: debitedAsset(spec.postings) };
    throw err;
  }
  return {
    ok: true,
    replayed: false,
    transaction: {
      id: txId,
      kind: spec.kind,
      reference: spec.reference,
      reverses: spec.reverses ?? null,
      createdAt: now,
      // The entries come back from the batch itself: one round trip per transaction.
      entries: entryStatements.map((i) => entryOf(results[i]!.rows[0]!)),
    },
  };
}

export interface BatchItem {
  spec: TransactionSpec;
  /** Statements committed with this transaction, given its id. */
  alongside?: (txId: string) => InStatement[];
}

export type BatchResult = { ok: true; transactionIds: string[] } | { ok: false; reason: 'replay' | 'insufficient_funds' };

/**
 * Many new transactions in one libSQL batch (one round trip, atomic), each account created once.
 * All or nothing: when any key was posted before (`replay`) or any balance would go below zero
 * (`insufficient_funds`) nothing is written, and the caller posts them one by one with
 * postTransaction, which tells a replay from a conflict and stops at the one that cannot pay.
 */
export async function postTransactions(client: Client, items: readonly BatchItem[], opts: { now?: number } = {}): Promise<BatchResult> {
  if (items.length === 0) return { ok: true, transactionIds: [] };
  const now = opts.now ?? Date.now();
  const created = new Set<string>();
  const statements: InStatement[] = [];
  const transactionIds: string[] = [];
  for (const item of items) {
    const txId = newId('ltx');
    transactionIds.push(txId);
    statements.push(...transactionStatements(item.spec, txId, await sha256Hex(canonicalSpec(item.spec)), now, created).statements);
    statements.push(...(item.alongside?.(txId) ?? []));
  }
  try {
    await client.batch(statements, 'write');
  } catch (err) {
    const message = errorText(err);
    if (message.includes('ledger_transactions.idempotency_key')) return { ok: false, reason: 'replay' };
    if (message.includes(`CHECK constraint failed: ${BALANCE_CHECK}`)) return { ok: false, reason: 'insufficient_funds' };
    throw err;
  }
  return { ok: true, transactionIds };
}

/** The asset a user is short of: the first user account the spec debits. */
function debitedAsset(postings: Posting[]): Asset {
  const debit = postings.find((p) => p.amount < 0n && !mayGoNegative(p.account)) ?? postings[0]!;
  return debit.account.asset;
}

async function replay(client: Client, key: string, requestHash: string): Promise<PostResult> {
  const found = await client.execute({
    sql: 'SELECT id, kind, reference, reverses, request_hash, created_at FROM ledger_transactions WHERE idempotency_key = ?',
    args: [key],
  });
  const row = found.rows[0];
  if (!row) throw new Error(`idempotency key ${key} collided but its transaction is missing`);
  if (row.request_hash !== requestHash) return { ok: false, reason: 'idempotency_conflict' };
  return { ok: true, replayed: true, transaction: { ...transactionOf(row), entries: await entriesOf(client, String(row.id)) } };
}

function transactionOf(row: Row): Omit<LedgerTransaction, 'entries'> {
  return {
    id: String(row.id),
    kind: row.kind as TransactionKind,
    reference: row.reference === null ? null : String(row.reference),
    reverses: row.reverses === null ? null : String(row.reverses),
    createdAt: Number(row.created_at),
  };
}

const ENTRY_COLUMNS = 'account_id, owner_id, account_kind, asset, amount, balance_after';

function entryOf(r: Row): LedgerEntry {
  return {
    accountId: String(r.account_id),
    ownerId: String(r.owner_id),
    accountKind: r.account_kind as AccountKind,
    asset: r.asset as Asset,
    amount: BigInt(r.amount as bigint),
    balanceAfter: BigInt(r.balance_after as bigint),
  };
}

async function entriesOf(client: Client, txId: string): Promise<LedgerEntry[]> {
  const rs = await client.execute({ sql: `SELECT ${ENTRY_COLUMNS} FROM ledger_entries WHERE transaction_id = ? ORDER BY id`, args: [txId] });
  return rs.rows.map(entryOf);
}

/** A posted transaction with its postings, e.g. to build its reversal. */
export async function findTransaction(client: Client, id: string): Promise<LedgerTransaction | null> {
  const rs = await client.execute({ sql: 'SELECT id, kind, reference, reverses, created_at FROM ledger_transactions WHERE id = ?', args: [id] });
  const row = rs.rows[0];
  return row ? { ...transactionOf(row), entries: await entriesOf(client, id) } : null;
}

export interface Balance {
  asset: Asset;
  available: bigint;
  held: bigint;
}

export async function balancesOf(client: Client, ownerId: string, assets: readonly Asset[]): Promise<Balance[]> {
  const rs = await client.execute({
    sql: "SELECT asset, kind, balance FROM ledger_accounts WHERE owner_id = ? AND kind IN ('available', 'held')",
    args: [ownerId],
  });
  const out = new Map<Asset, Balance>(assets.map((a) => [a, { asset: a, available: 0n, held: 0n }]));
  for (const r of rs.rows) {
    const b = out.get(r.asset as Asset);
    if (!b) continue;
    if (r.kind === 'available') b.available = BigInt(r.balance as bigint);
    else b.held = BigInt(r.balance as bigint);
  }
  return [...out.values()];
}
