// Property-based tests of the ledger store (src/ledger/store.ts) through the local libSQL
// server: random programs of money operations over a few users and two assets, some steps
// run one at a time and some as concurrent groups, with exact retries and conflicting
// reuse of idempotency keys. After each program the database is checked with SQL (double
// entry, non-negativity, stored balances vs entries, one effect per key) and against an
// in-memory model built from the operations that reported success.
//
// One database for the file (startup is slow); every run uses fresh owner ids and key
// prefixes, so runs do not see each other's user accounts. Platform accounts are shared:
// each run snapshots the ledger first and checks every entry written after it (nothing else
// writes to this database meanwhile), so per-run checks cost the run's size, not the
// table's; the whole-table checks run once at the end. A failure prints the shrunk program
// and the execution trace (each request, its logical start/end, its result).
// LEDGER_PROPERTY_RUNS overrides the number of runs.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Asset } from '../../src/money/assets.ts';
import { PLATFORM, accountId, mayGoNegative, type AccountKind, type LedgerAccountRef } from '../../src/ledger/accounts.ts';
import {
  canonicalSpec,
  capture,
  credit,
  hold,
  release,
  transfer,
  withdrawal,
  withdrawalFailed,
  withdrawalPaid,
  type CreditSource,
  type RuleResult,
  type TransactionSpec,
} from '../../src/ledger/rules.ts';
import { postTransaction, type PostResult } from '../../src/ledger/store.ts';
import { newId } from '../../src/ids.ts';
import { startTestDatabase, type TestDatabase } from '../support/libsql.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await startTestDatabase();
});
afterAll(async () => db?.close());

const NUM_RUNS = Number(process.env.LEDGER_PROPERTY_RUNS ?? 30);

// ---------------------------------------------------------------------------------------
// Programs

type Op =
  | { t: 'credit'; u: number; asset: Asset; amount: bigint; source: CreditSource }
  | { t: 'hold'; u: number; asset: Asset; amount: bigint }
  | { t: 'release'; u: number; asset: Asset; amount: bigint }
  | { t: 'capture'; payer: number; payee: number; asset: Asset; amount: bigint; feePercent: number }
  | { t: 'transfer'; from: number; to: number; asset: Asset; amount: bigint }
  | { t: 'withdraw'; u: number; asset: Asset; amount: bigint }
  /** Settles the pick-th withdrawal still in flight (if any), paid or failed. */
  | { t: 'settle'; pick: number; paid: boolean }
  /** Sends an earlier operation again, unchanged: same key, same request. */
  | { t: 'retry'; back: number }
  /** Sends an earlier operation's key with a different amount. */
  | { t: 'reuse'; back: number; extra: bigint };

type Step = { par: false; op: Op } | { par: true; ops: Op[] };

interface Program {
  users: number;
  steps: Step[];
}

/** The two users of a capture or transfer: `other` is an offset, so never the same user. */
function pair(first: number, other: number, users: number): [number, number] {
  const a = first % users;
  return [a, (a + 1 + ((other - 1) % (users - 1))) % users];
}

function showOp(op: Op, users: number): string {
  switch (op.t) {
    case 'credit':
      return `credit u${op.u % users} ${op.amount} ${op.asset} (${op.source})`;
    case 'hold':
    case 'release':
    case 'withdraw':
      return `${op.t} u${op.u % users} ${op.amount} ${op.asset}`;
    case 'capture': {
      const [a, b] = pair(op.payer, op.payee, users);
      return `capture u${a}→u${b} ${op.amount} ${op.asset} fee ${op.feePercent}%`;
    }
    case 'transfer': {
      const [a, b] = pair(op.from, op.to, users);
      return `transfer u${a}→u${b} ${op.amount} ${op.asset}`;
    }
    case 'settle':
      return `settle #${op.pick} ${op.paid ? 'paid' : 'failed'}`;
    case 'retry':
      return `retry back ${op.back}`;
    case 'reuse':
      return `reuse back ${op.back} +${op.extra}`;
  }
}

function showProgram(p: Program): string {
  const lines = p.steps.map((s, i) => `  ${String(i).padStart(2)}: ${s.par ? `par [ ${s.ops.map((o) => showOp(o, p.users)).join(' | ')} ]` : showOp(s.op, p.users)}`);
  return `program (${p.users} users):\n${lines.join('\n')}`;
}

const userArb = fc.nat({ max: 3 });
const assetArb = fc.constantFrom<Asset>('USD', 'GRID');
const smallAmount = fc.bigInt({ min: 1n, max: 3_000n });
/** Spending from escrow: smaller, so captures and releases often find the money held. */
const escrowAmount = fc.bigInt({ min: 1n, max: 1_200n });

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('credit' as const),
      u: userArb,
      asset: assetArb,
      amount: fc.bigInt({ min: 1n, max: 20_000n }),
      source: fc.constantFrom<CreditSource>('stripe', 'chain', 'faucet'),
    }),
  },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('hold' as const), u: userArb, asset: assetArb, amount: smallAmount }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('release' as const), u: userArb, asset: assetArb, amount: escrowAmount }) },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('capture' as const),
      payer: userArb,
      payee: fc.integer({ min: 1, max: 3 }), // an offset from the payer, so never the payer
      asset: assetArb,
      amount: escrowAmount,
      feePercent: fc.oneof(fc.constantFrom(0, 100), fc.integer({ min: 0, max: 100 })),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ t: fc.constant('transfer' as const), from: userArb, to: fc.integer({ min: 1, max: 3 }), asset: assetArb, amount: smallAmount }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('withdraw' as const), u: userArb, asset: assetArb, amount: smallAmount }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('settle' as const), pick: fc.nat({ max: 5 }), paid: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('retry' as const), back: fc.nat({ max: 8 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('reuse' as const), back: fc.nat({ max: 8 }), extra: fc.bigInt({ min: 1n, max: 500n }) }) },
);

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: opArb.map((op): Step => ({ par: false, op })) },
  { weight: 2, arbitrary: fc.array(opArb, { minLength: 2, maxLength: 6 }).map((ops): Step => ({ par: true, ops })) },
);

const programArb: fc.Arbitrary<Program> = fc
  .record({ users: fc.integer({ min: 3, max: 4 }), steps: fc.array(stepArb, { minLength: 1, maxLength: 30, size: 'medium' }) })
  .map((p) => Object.assign(p, { [fc.toStringMethod]: () => showProgram(p) }));

// ---------------------------------------------------------------------------------------
// Execution

/** What an operation asks for once resolved against a run: owners, key, amount. */
type Request =
  | { t: 'credit'; owner: string; asset: Asset; amount: bigint; source: CreditSource }
  | { t: 'hold' | 'release' | 'withdraw'; owner: string; asset: Asset; amount: bigint }
  | { t: 'capture'; payer: string; payee: string; asset: Asset; amount: bigint; fee: bigint }
  | { t: 'transfer'; from: string; to: string; asset: Asset; amount: bigint }
  | { t: 'paid'; asset: Asset; amount: bigint }
  | { t: 'failed'; owner: string; asset: Asset; amount: bigint };

function specOf(r: Request, idempotencyKey: string): TransactionSpec {
  const base = { idempotencyKey, reference: 'prop' };
  let res: RuleResult;
  switch (r.t) {
    case 'credit':
      res = credit({ ...base, owner: r.owner, asset: r.asset, amount: r.amount, source: r.source });
      break;
    case 'hold':
      res = hold({ ...base, owner: r.owner, asset: r.asset, amount: r.amount });
      break;
    case 'release':
      res = release({ ...base, owner: r.owner, asset: r.asset, amount: r.amount });
      break;
    case 'withdraw':
      res = withdrawal({ ...base, owner: r.owner, asset: r.asset, amount: r.amount });
      break;
    case 'capture':
      res = capture({ ...base, payer: r.payer, payee: r.payee, asset: r.asset, amount: r.amount, fee: r.fee });
      break;
    case 'transfer':
      res = transfer({ ...base, from: r.from, to: r.to, asset: r.asset, amount: r.amount });
      break;
    case 'paid':
      res = withdrawalPaid({ ...base, asset: r.asset, amount: r.amount });
      break;
    case 'failed':
      res = withdrawalFailed({ ...base, owner: r.owner, asset: r.asset, amount: r.amount });
      break;
  }
  if (!res.ok) throw new Error(`rule refused ${JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))}: ${res.problem}`);
  return res.spec;
}

interface Issued {
  n: number;
  label: string;
  key: string;
  request: Request;
  spec: TransactionSpec;
  canonical: string;
  /** Ran alone (nothing else in flight). */
  alone: boolean;
  /** Logical clock at dispatch and at completion: a happened before b iff a.end < b.start. */
  start: number;
  end: number;
  /** For ops run alone: what the model says must happen ('unknown' if it cannot tell). */
  predicted?: 'ok' | 'insufficient_funds' | 'replay' | 'idempotency_conflict' | 'unknown';
  result?: PostResult;
  error?: unknown;
}

interface PendingWithdrawal {
  key: string;
  owner: string;
  asset: Asset;
  amount: bigint;
}

interface Run {
  prefix: string;
  owners: string[];
  issued: Issued[];
  /** The model: account id → balance change made by this run (applied on completion). */
  model: Map<string, bigint>;
  /** key → the first request that took effect under it. */
  winners: Map<string, Issued>;
  pending: PendingWithdrawal[];
  clock: number;
}

const asString = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x));

function showResult(i: Issued): string {
  if (i.error !== undefined) return `THREW ${String(i.error)}`;
  const r = i.result;
  if (r === undefined) return 'pending';
  if (r.ok) return `ok ${r.replayed ? 'replayed ' : ''}${r.transaction.id}`;
  return r.reason;
}

function showTrace(run: Run): string {
  return run.issued
    .map((i) => `  #${i.n} [${i.start}-${i.end}]${i.alone ? '' : ' (concurrent)'} ${i.label} key=…${i.key.slice(run.prefix.length)} → ${showResult(i)}${i.predicted && i.predicted !== 'unknown' ? ` (model: ${i.predicted})` : ''}`)
    .join('\n');
}

function refOf(accountIdText: string): LedgerAccountRef {
  const [owner, asset, kind] = accountIdText.split(':') as [string, Asset, AccountKind];
  return { owner, asset, kind };
}

/** Whether the model can say the request is affordable: debits of user accounts are known
 *  exactly; the shared in-flight account holds at least what this run put there. */
function predictFunds(run: Run, spec: TransactionSpec): 'ok' | 'insufficient_funds' | 'unknown' {
  const after = new Map<string, { account: LedgerAccountRef; balance: bigint }>();
  for (const p of spec.postings) {
    const id = accountId(p.account);
    const before = after.get(id)?.balance ?? run.model.get(id) ?? 0n;
    after.set(id, { account: p.account, balance: before + p.amount });
  }
  let verdict: 'ok' | 'insufficient_funds' | 'unknown' = 'ok';
  for (const { account, balance } of after.values()) {
    if (balance >= 0n || mayGoNegative(account)) continue;
    if (account.owner !== PLATFORM) return 'insufficient_funds';
    verdict = 'unknown';
  }
  return verdict;
}

/** Resolves one op against the run so far; null when it has nothing to act on. */
function resolve(run: Run, op: Op, users: number): { label: string; key: string; request: Request } | null {
  const owner = (u: number) => run.owners[u % users]!;
  const fresh = () => `${run.prefix}k${run.issued.length}`;
  switch (op.t) {
    case 'credit':
      return { label: showOp(op, users), key: fresh(), request: { t: 'credit', owner: owner(op.u), asset: op.asset, amount: op.amount, source: op.source } };
    case 'hold':
    case 'release':
    case 'withdraw':
      return { label: showOp(op, users), key: fresh(), request: { t: op.t, owner: owner(op.u), asset: op.asset, amount: op.amount } };
    case 'capture': {
      const [payer, payee] = pair(op.payer, op.payee, users);
      const fee = (op.amount * BigInt(op.feePercent)) / 100n;
      return { label: showOp(op, users), key: fresh(), request: { t: 'capture', payer: owner(payer), payee: owner(payee), asset: op.asset, amount: op.amount, fee } };
    }
    case 'transfer': {
      const [from, to] = pair(op.from, op.to, users);
      return { label: showOp(op, users), key: fresh(), request: { t: 'transfer', from: owner(from), to: owner(to), asset: op.asset, amount: op.amount } };
    }
    case 'settle': {
      if (run.pending.length === 0) return null;
      const w = run.pending[op.pick % run.pending.length]!;
      const request: Request = op.paid ? { t: 'paid', asset: w.asset, amount: w.amount } : { t: 'failed', owner: w.owner, asset: w.asset, amount: w.amount };
      return { label: `${showOp(op, users)} (of ${w.key.slice(run.prefix.length)})`, key: `${w.key}.settle`, request };
    }
    case 'retry': {
      if (run.issued.length === 0) return null;
      const earlier = run.issued[run.issued.length - 1 - (op.back % run.issued.length)]!;
      return { label: `retry #${earlier.n} (${earlier.label})`, key: earlier.key, request: earlier.request };
    }
    case 'reuse': {
      // Settlements are left out: a different amount there would spend other money in flight.
      const candidates = run.issued.filter((i) => i.request.t !== 'paid' && i.request.t !== 'failed');
      if (candidates.length === 0) return null;
      const earlier = candidates[candidates.length - 1 - (op.back % candidates.length)]!;
      const request = { ...earlier.request, amount: earlier.request.amount + op.extra } as Request;
      return { label: `reuse key of #${earlier.n} with amount ${request.amount} (${earlier.label})`, key: earlier.key, request };
    }
  }
}

function dispatch(run: Run, op: Op, users: number, alone: boolean): Promise<void> | null {
  const resolved = resolve(run, op, users);
  if (resolved === null) return null;
  const spec = specOf(resolved.request, resolved.key);
  const issued: Issued = { n: run.issued.length, ...resolved, spec, canonical: canonicalSpec(spec), alone, start: ++run.clock, end: Infinity };
  if (alone) {
    const winner = run.winners.get(issued.key);
    issued.predicted = winner ? (winner.canonical === issued.canonical ? 'replay' : 'idempotency_conflict') : predictFunds(run, spec);
  }
  run.issued.push(issued);
  return postTransaction(db.money, spec).then(
    (result) => {
      issued.end = ++run.clock;
      issued.result = result;
      if (!result.ok || result.replayed) return;
      if (!run.winners.has(issued.key)) run.winners.set(issued.key, issued);
      for (const p of spec.postings) run.model.set(accountId(p.account), (run.model.get(accountId(p.account)) ?? 0n) + p.amount);
      const r = issued.request;
      if (r.t === 'withdraw') run.pending.push({ key: issued.key, owner: r.owner, asset: r.asset, amount: r.amount });
      if (r.t === 'paid' || r.t === 'failed') run.pending = run.pending.filter((w) => `${w.key}.settle` !== issued.key);
    },
    (error: unknown) => {
      issued.end = ++run.clock;
      issued.error = error;
    },
  );
}

async function execute(program: Program): Promise<Run> {
  const prefix = `${newId('run', 12)}.`;
  const run: Run = {
    prefix,
    owners: Array.from({ length: program.users }, (_, i) => `${prefix}u${i}`),
    issued: [],
    model: new Map(),
    winners: new Map(),
    pending: [],
    clock: 0,
  };
  for (const step of program.steps) {
    if (!step.par) await dispatch(run, step.op, program.users, true);
    else {
      const inFlight: Promise<void>[] = [];
      for (const op of step.ops) {
        const p = dispatch(run, op, program.users, false);
        if (p) inFlight.push(p);
      }
      await Promise.all(inFlight);
    }
  }
  return run;
}

// ---------------------------------------------------------------------------------------
// Checks

const big = (v: unknown) => BigInt(v as bigint);
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

class Violations {
  readonly list: string[] = [];
  check(ok: boolean, message: () => string): void {
    if (!ok) this.list.push(message());
  }
}

/** The whole ledger, every entry: run once after all programs (its cost grows with the table). */
async function checkWholeLedger(v: Violations): Promise<void> {
  const [perTx, stored, running] = await Promise.all([
    db.money.execute('SELECT transaction_id, asset, SUM(amount) AS s FROM ledger_entries GROUP BY transaction_id, asset HAVING SUM(amount) != 0 LIMIT 5'),
    db.money.execute(
      `SELECT a.id, a.balance, COALESCE(t.total, 0) AS total, t.last_after FROM ledger_accounts a LEFT JOIN (
         SELECT account_id, SUM(amount) AS total, MAX(CASE WHEN newest = 1 THEN balance_after END) AS last_after FROM (
           SELECT account_id, amount, balance_after, ROW_NUMBER() OVER (PARTITION BY account_id ORDER BY id DESC) AS newest FROM ledger_entries
         ) GROUP BY account_id
       ) t ON t.account_id = a.id`,
    ),
    db.money.execute(
      `SELECT id, account_id, balance_after, running FROM (
         SELECT id, account_id, balance_after, SUM(amount) OVER (PARTITION BY account_id ORDER BY id) AS running FROM ledger_entries
       ) WHERE running != balance_after LIMIT 5`,
    ),
  ]);
  for (const r of perTx.rows) v.check(false, () => `transaction ${r.transaction_id} entries sum to ${r.s} in ${r.asset}`);
  for (const r of stored.rows) {
    v.check(big(r.balance) === big(r.total), () => `account ${r.id} stores balance ${r.balance} but its entries sum to ${r.total}`);
    if (r.last_after !== null) v.check(big(r.last_after) === big(r.balance), () => `account ${r.id}: last balance_after ${r.last_after} ≠ balance ${r.balance}`);
  }
  for (const r of running.rows) v.check(false, () => `entry ${r.id} on ${r.account_id}: balance_after ${r.balance_after} but running sum ${r.running}`);
  await checkCheapGlobal(v);
}

/** Ledger-wide checks cheap enough to run after every program. */
async function checkCheapGlobal(v: Violations): Promise<void> {
  const [perAsset, negative] = await Promise.all([
    db.money.execute('SELECT asset, SUM(amount) AS s FROM ledger_entries GROUP BY asset'),
    db.money.execute(`SELECT id, balance FROM ledger_accounts WHERE balance < 0 AND (allow_negative = 0 OR owner_id != '${PLATFORM}')`),
  ]);
  for (const r of perAsset.rows) v.check(big(r.s) === 0n, () => `all entries in ${r.asset} sum to ${r.s}, not 0`);
  for (const r of negative.rows) v.check(false, () => `account ${r.id} is negative: ${r.balance}`);
}

/** The ledger just before a run: its last entry id and every account's balance. */
interface Snapshot {
  lastEntryId: bigint;
  balances: Map<string, bigint>;
}

async function snapshot(): Promise<Snapshot> {
  const [last, accounts] = await Promise.all([
    db.money.execute('SELECT COALESCE(MAX(id), 0) AS id FROM ledger_entries'),
    // Only platform accounts exist before a run among those it touches (its users are new).
    db.money.execute({ sql: 'SELECT id, balance FROM ledger_accounts WHERE owner_id = ?', args: [PLATFORM] }),
  ]);
  return { lastEntryId: big(last.rows[0]!.id), balances: new Map(accounts.rows.map((r) => [String(r.id), big(r.balance)])) };
}

/** Everything the run wrote, entry by entry, continuing from the snapshot: nothing else
 *  writes to this database while a run executes, so these are exactly the run's entries. */
async function checkRunEntries(run: Run, before: Snapshot, v: Violations): Promise<Map<string, bigint>> {
  const [entries, accounts] = await Promise.all([
    db.money.execute({
      sql: `SELECT e.id, e.transaction_id, e.account_id, e.owner_id, e.account_kind, e.asset, e.amount, e.balance_after, t.idempotency_key
            FROM ledger_entries e LEFT JOIN ledger_transactions t ON t.id = e.transaction_id WHERE e.id > ? ORDER BY e.id`,
      args: [before.lastEntryId],
    }),
    db.money.execute({
      sql: 'SELECT id, owner_id, kind, asset, allow_negative, balance FROM ledger_accounts WHERE owner_id = ? OR (owner_id > ? AND owner_id < ?)',
      args: [PLATFORM, ...prefixRange(run.prefix)],
    }),
  ]);
  const running = new Map<string, bigint>();
  const deltas = new Map<string, bigint>();
  const perTx = new Map<string, bigint>();
  for (const e of entries.rows) {
    const id = String(e.account_id);
    v.check(String(e.idempotency_key ?? '').startsWith(run.prefix), () => `entry ${e.id} belongs to transaction ${e.transaction_id}, not one of this run's`);
    v.check(id === accountId({ owner: String(e.owner_id), asset: e.asset as Asset, kind: e.account_kind as AccountKind }), () => `entry ${e.id}: account ${id} ≠ its owner/asset/kind columns`);
    const after = (running.get(id) ?? before.balances.get(id) ?? 0n) + big(e.amount);
    running.set(id, after);
    deltas.set(id, (deltas.get(id) ?? 0n) + big(e.amount));
    v.check(big(e.balance_after) === after, () => `entry ${e.id} on ${id}: balance_after ${e.balance_after}, but the previous balance plus ${e.amount} is ${after}`);
    v.check(after >= 0n || mayGoNegative(refOf(id)), () => `entry ${e.id} left ${id} at ${after}, which may not go negative`);
    const txAsset = `${e.transaction_id} ${e.asset}`;
    perTx.set(txAsset, (perTx.get(txAsset) ?? 0n) + big(e.amount));
  }
  for (const [txAsset, sum] of perTx) v.check(sum === 0n, () => `transaction ${txAsset}: entries sum to ${sum}`);
  for (const a of accounts.rows) {
    const id = String(a.id);
    const ref = refOf(id);
    v.check(big(a.allow_negative) === (mayGoNegative(ref) ? 1n : 0n), () => `account ${id} has allow_negative=${a.allow_negative}`);
    const expected = running.get(id) ?? before.balances.get(id) ?? 0n;
    v.check(big(a.balance) === expected, () => `account ${id} stores ${a.balance}, but its balance before the run plus the run's entries is ${expected}`);
    v.check(big(a.balance) >= 0n || mayGoNegative(ref), () => `account ${id} is negative: ${a.balance}`);
  }
  return deltas;
}

/** Bounds for `x > lo AND x < hi`: every text starting with the prefix (which ends in '.'). */
function prefixRange(prefix: string): [string, string] {
  return [prefix, `${prefix.slice(0, -1)}/`];
}

function sameEntries(spec: TransactionSpec, result: PostResult & { ok: true }): boolean {
  const got = result.transaction.entries.map((e) => `${e.accountId}=${e.amount}`);
  const want = spec.postings.map((p) => `${accountId(p.account)}=${p.amount}`);
  return asString(got) === asString(want);
}

async function checkRun(run: Run, deltas: Map<string, bigint>, v: Violations): Promise<void> {
  for (const i of run.issued) v.check(i.error === undefined, () => `#${i.n} threw: ${String(i.error)}`);

  // Idempotency: one row per key, one effect per key, retries replay it, reuse conflicts.
  const rows = await db.money.execute({
    sql: 'SELECT idempotency_key, id, request_hash FROM ledger_transactions WHERE idempotency_key > ? AND idempotency_key < ?',
    args: prefixRange(run.prefix),
  });
  const rowsByKey = new Map<string, { id: string; hash: string }[]>();
  for (const r of rows.rows) {
    const k = String(r.idempotency_key);
    rowsByKey.set(k, [...(rowsByKey.get(k) ?? []), { id: String(r.id), hash: String(r.request_hash) }]);
  }
  const byKey = new Map<string, Issued[]>();
  for (const i of run.issued) byKey.set(i.key, [...(byKey.get(i.key) ?? []), i]);
  for (const k of rowsByKey.keys()) v.check(byKey.has(k), () => `transaction row for key ${k} that no request used`);
  for (const [key, uses] of byKey) {
    const found = rowsByKey.get(key) ?? [];
    const fresh = uses.filter((i) => i.result?.ok && !i.result.replayed);
    const label = () => uses.map((i) => `#${i.n}`).join(',');
    v.check(found.length <= 1, () => `key ${key} has ${found.length} transaction rows`);
    const row = found[0];
    if (row === undefined) {
      v.check(uses.every((i) => !i.result?.ok), () => `key ${key} (${label()}) reported ok but has no transaction row`);
      v.check(uses.every((i) => i.result?.ok !== false || i.result.reason !== 'idempotency_conflict'), () => `key ${key} (${label()}) reported a conflict but has no transaction row`);
      continue;
    }
    v.check(fresh.length === 1, () => `key ${key} (${label()}) took effect ${fresh.length} times (non-replayed ok results), expected 1`);
    const winner = fresh[0];
    if (winner === undefined) continue;
    v.check(winner.result?.ok === true && winner.result.transaction.id === row.id, () => `key ${key}: #${winner.n} reported ${showResult(winner)} but the row is ${row.id}`);
    v.check(row.hash === sha256(winner.canonical), () => `key ${key}: stored request hash is not #${winner.n}'s`);
    if (winner.result?.ok) v.check(sameEntries(winner.spec, winner.result), () => `#${winner.n}: entries ${asString(winner.result)} do not match its postings`);
    for (const i of uses) {
      if (i === winner || i.result === undefined) continue;
      const r = i.result;
      if (r.ok) {
        v.check(r.replayed, () => `#${i.n} took effect again under key ${key}`);
        v.check(r.transaction.id === row.id, () => `#${i.n} replayed ${r.transaction.id}, not the first transaction ${row.id}`);
        v.check(i.canonical === winner.canonical, () => `#${i.n} replayed although its request differs from #${winner.n}'s`);
        v.check(sameEntries(winner.spec, r), () => `#${i.n} replay returned entries that differ from the original's`);
      } else if (r.reason === 'idempotency_conflict') {
        v.check(i.canonical !== winner.canonical, () => `#${i.n} got idempotency_conflict for the same request as #${winner.n}`);
      }
      if (i.start > winner.end) {
        const expected = i.canonical === winner.canonical ? 'ok replayed' : 'idempotency_conflict';
        const got = r.ok ? (r.replayed ? 'ok replayed' : 'ok') : r.reason;
        v.check(got === expected, () => `#${i.n} after #${winner.n} under key ${key}: got ${got}, expected ${expected}`);
      }
    }
  }

  // Requests run alone: the model says exactly what must happen.
  for (const i of run.issued) {
    if (!i.alone || i.predicted === undefined || i.predicted === 'unknown' || i.result === undefined) continue;
    const r = i.result;
    const got = r.ok ? (r.replayed ? 'replay' : 'ok') : r.reason;
    v.check(got === i.predicted, () => `#${i.n} ${i.label}: got ${got}, the model says ${i.predicted}`);
  }

  // The model (postings of exactly the requests that took effect) vs the database.
  const users = await db.money.execute({ sql: 'SELECT id, balance FROM ledger_accounts WHERE owner_id > ? AND owner_id < ?', args: prefixRange(run.prefix) });
  const compare = (what: string, actual: Map<string, bigint>, filter: (id: string) => boolean) => {
    const ids = new Set([...actual.keys(), ...[...run.model.keys()].filter(filter)]);
    for (const id of ids) {
      const want = run.model.get(id) ?? 0n;
      const got = actual.get(id) ?? 0n;
      v.check(want === got, () => `${what} of ${id}: database ${got}, model ${want}`);
    }
  };
  compare('change by this run', deltas, () => true);
  compare('balance', new Map(users.rows.map((r) => [String(r.id), big(r.balance)])), (id) => id.startsWith(run.prefix));
}

function outcomeOf(value: PostResult): string {
  return value.ok ? `ok${value.replayed ? ' replayed' : ''}` : value.reason;
}

// ---------------------------------------------------------------------------------------

const M = 1_000_000n;
const spec = (r: RuleResult): TransactionSpec => {
  if (!r.ok) throw new Error(`rule refused: ${r.problem}`);
  return r.spec;
};

async function balance(owner: string, asset: Asset, kind: 'available' | 'held'): Promise<bigint> {
  const rs = await db.money.execute({ sql: 'SELECT balance FROM ledger_accounts WHERE id = ?', args: [accountId({ owner, asset, kind })] });
  return rs.rows[0] ? big(rs.rows[0].balance) : 0n;
}

describe('ledger properties', () => {
  it('random programs keep the ledger balanced, non-negative, consistent with a model, one effect per key', async () => {
    let runs = 0;
    let requests = 0;
    let concurrent = 0;
    const outcomes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(programArb, async (program) => {
        const before = await snapshot();
        const run = await execute(program);
        runs++;
        requests += run.issued.length;
        concurrent += run.issued.filter((i) => !i.alone).length;
        for (const i of run.issued) if (i.result) outcomes.set(outcomeOf(i.result), (outcomes.get(outcomeOf(i.result)) ?? 0) + 1);
        const v = new Violations();
        await checkRun(run, await checkRunEntries(run, before, v), v);
        await checkCheapGlobal(v);
        if (v.list.length > 0) {
          throw new Error(`${v.list.length} violation(s):\n  ${v.list.slice(0, 20).join('\n  ')}\nexecution (run ${run.prefix}):\n${showTrace(run)}`);
        }
      }),
      { numRuns: NUM_RUNS, endOnFailure: false, interruptAfterTimeLimit: 60_000 },
    );
    const whole = new Violations();
    await checkWholeLedger(whole);
    expect(whole.list).toEqual([]);
    // The programs exercised what they are meant to (a weak check on the generator).
    expect(runs).toBeGreaterThanOrEqual(Math.min(NUM_RUNS, 10));
    expect(concurrent).toBeGreaterThan(0);
    for (const outcome of ['ok', 'ok replayed', 'insufficient_funds', 'idempotency_conflict']) expect(outcomes.get(outcome) ?? 0, outcome).toBeGreaterThan(0);
    console.log(`ledger properties: ${runs} runs, ${requests} requests (${concurrent} concurrent); outcomes ${asString(Object.fromEntries(outcomes))}`);
  }, 120_000);

  it('many concurrent holds on one balance never overdraw it', async () => {
    const owner = newId('acc');
    await postTransaction(db.money, spec(credit({ owner, asset: 'USD', amount: 100n * M, source: 'faucet', idempotencyKey: newId('key'), reference: null })));
    const results = await Promise.all(
      Array.from({ length: 40 }, () => postTransaction(db.money, spec(hold({ owner, asset: 'USD', amount: 7n * M, idempotencyKey: newId('key'), reference: null })))),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(14);
    expect(results.filter((r) => !r.ok).every((r) => !r.ok && r.reason === 'insufficient_funds')).toBe(true);
    expect(await balance(owner, 'USD', 'available')).toBe(2n * M);
    expect(await balance(owner, 'USD', 'held')).toBe(98n * M);
  });

  it('concurrent retries and conflicting reuses of one capture key have exactly one effect', async () => {
    const payer = newId('acc');
    const payee = newId('acc');
    await postTransaction(db.money, spec(credit({ owner: payer, asset: 'GRID', amount: 50n * M, source: 'chain', idempotencyKey: newId('key'), reference: null })));
    await postTransaction(db.money, spec(hold({ owner: payer, asset: 'GRID', amount: 50n * M, idempotencyKey: newId('key'), reference: null })));
    const key = newId('key');
    const attempt = (amount: bigint) => spec(capture({ payer, payee, asset: 'GRID', amount, fee: M, idempotencyKey: key, reference: 'lease' }));
    const amounts = [10n, 10n, 12n, 10n, 12n, 10n, 12n, 10n].map((a) => a * M);
    const results = await Promise.all(amounts.map((a) => postTransaction(db.money, attempt(a))));
    const fresh = results.flatMap((r, i) => (r.ok && !r.replayed ? [{ r, amount: amounts[i]! }] : []));
    expect(fresh).toHaveLength(1);
    const winner = fresh[0]!;
    results.forEach((r, i) => {
      if (amounts[i] === winner.amount) expect(r.ok && r.transaction.id === winner.r.transaction.id).toBe(true);
      else expect(r).toEqual({ ok: false, reason: 'idempotency_conflict' });
    });
    expect(await balance(payer, 'GRID', 'held')).toBe(50n * M - winner.amount);
    expect(await balance(payee, 'GRID', 'available')).toBe(winner.amount - M);
    const rows = await db.money.execute({ sql: 'SELECT COUNT(*) AS n FROM ledger_transactions WHERE idempotency_key = ?', args: [key] });
    expect(big(rows.rows[0]!.n)).toBe(1n);
  });

  it('concurrent captures and releases of one escrow never spend it twice', async () => {
    const renter = newId('acc');
    const provider = newId('acc');
    await postTransaction(db.money, spec(credit({ owner: renter, asset: 'USD', amount: 100n * M, source: 'stripe', idempotencyKey: newId('key'), reference: null })));
    await postTransaction(db.money, spec(hold({ owner: renter, asset: 'USD', amount: 100n * M, idempotencyKey: newId('key'), reference: null })));
    const ops = Array.from({ length: 20 }, (_, i) =>
      i % 2 === 0
        ? spec(capture({ payer: renter, payee: provider, asset: 'USD', amount: 15n * M, fee: 2n * M, idempotencyKey: newId('key'), reference: null }))
        : spec(release({ owner: renter, asset: 'USD', amount: 15n * M, idempotencyKey: newId('key'), reference: null })),
    );
    const results = await Promise.all(ops.map((s) => postTransaction(db.money, s)));
    const captured = results.filter((r, i) => r.ok && i % 2 === 0).length;
    const released = results.filter((r, i) => r.ok && i % 2 === 1).length;
    expect(captured + released).toBe(6); // 6 × 15 ≤ 100 < 7 × 15
    expect(await balance(renter, 'USD', 'held')).toBe(10n * M);
    expect(await balance(renter, 'USD', 'available')).toBe(BigInt(released) * 15n * M);
    expect(await balance(provider, 'USD', 'available')).toBe(BigInt(captured) * 13n * M);
    const v = new Violations();
    await checkWholeLedger(v);
    expect(v.list).toEqual([]);
  });
});
