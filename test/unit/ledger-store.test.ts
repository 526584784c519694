import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capture, credit, hold, release, reversal, transfer, type RuleResult, type TransactionSpec } from '../../src/ledger/rules.ts';
import { balancesOf, findTransaction, postTransaction } from '../../src/ledger/store.ts';
import { newId } from '../../src/ids.ts';
import { startTestDatabase, type TestDatabase } from '../support/libsql.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await startTestDatabase();
});
afterAll(async () => db.close());

const key = () => newId('key');
const M = 1_000_000n;

function spec(r: RuleResult): TransactionSpec {
  if (!r.ok) throw new Error(`rule refused: ${r.problem}`);
  return r.spec;
}

async function funded(amount: bigint) {
  const owner = newId('acc');
  const res = await postTransaction(db.money, spec(credit({ owner, asset: 'USD', amount, source: 'faucet', idempotencyKey: key(), reference: null })));
  expect(res.ok).toBe(true);
  return owner;
}

async function balance(owner: string) {
  return (await balancesOf(db.money, owner, ['USD']))[0]!;
}

describe('ledger store', () => {
  it('credits, holds and releases with exact entries and running balances', async () => {
    const owner = await funded(100n * M);
    const held = await postTransaction(db.money, spec(hold({ owner, asset: 'USD', amount: 30n * M, idempotencyKey: key(), reference: 'bid_1' })));
    expect(held.ok && held.transaction.entries.map((e) => [e.accountKind, e.amount, e.balanceAfter])).toEqual([
      ['available', -30n * M, 70n * M],
      ['held', 30n * M, 30n * M],
    ]);
    await postTransaction(db.money, spec(release({ owner, asset: 'USD', amount: 10n * M, idempotencyKey: key(), reference: 'bid_1' })));
    expect(await balance(owner)).toEqual({ asset: 'USD', available: 80n * M, held: 20n * M });
  });

  it('refuses an overdraft as a result, writing nothing', async () => {
    const owner = await funded(5n * M);
    const k = key();
    const res = await postTransaction(db.money, spec(hold({ owner, asset: 'USD', amount: 5n * M + 1n, idempotencyKey: k, reference: null })));
    expect(res).toEqual({ ok: false, reason: 'insufficient_funds', asset: 'USD' });
    expect(await balance(owner)).toEqual({ asset: 'USD', available: 5n * M, held: 0n });
    // The key was not used up: the same request succeeds once the money is there.
    const smaller = await postTransaction(db.money, spec(hold({ owner, asset: 'USD', amount: 5n * M, idempotencyKey: k, reference: null })));
    expect(smaller.ok).toBe(true);
  });

  it('reports only the balance CHECK as insufficient funds; any other constraint failure is an error, writing nothing', async () => {
    await db.money.execute('CREATE TABLE IF NOT EXISTS test_payouts (id TEXT PRIMARY KEY, amount INTEGER NOT NULL CONSTRAINT test_payout_positive CHECK (amount > 0))');
    const owner = await funded(10n * M);
    const k = key();
    const bad = { sql: 'INSERT INTO test_payouts (id, amount) VALUES (?, ?)', args: [newId('pay'), -1] };
    const post = (opts: { first?: typeof bad[]; alongside?: typeof bad[] }) =>
      postTransaction(db.money, spec(hold({ owner, asset: 'USD', amount: 4n * M, idempotencyKey: k, reference: null })), opts);
    await expect(post({ alongside: [bad] })).rejects.toThrow(/test_payout_positive/);
    await expect(post({ first: [bad] })).rejects.toThrow(/test_payout_positive/);
    expect(await balance(owner)).toEqual({ asset: 'USD', available: 10n * M, held: 0n });
    // With both an overdraft and another failure, the other failure is not hidden as a lack of funds.
    const over = postTransaction(db.money, spec(hold({ owner, asset: 'USD', amount: 11n * M, idempotencyKey: key(), reference: null })), { first: [bad] });
    await expect(over).rejects.toThrow(/test_payout_positive/);
    expect(await post({})).toMatchObject({ ok: true, replayed: false });
  });

  it('returns the first result for a retried key and refuses the key for another request', async () => {
    const owner = await funded(10n * M);
    const k = key();
    const first = await postTransaction(db.money, spec(hold({ owner, asset: 'USD', amount: 4n * M, idempotencyKey: k, reference: null })));
    const again = await postTransaction(db.money, spec(hold({ owner, asset: 'USD', amount: 4n * M, idempotencyKey: k, reference: null })));
    expect(again.ok && again.replayed).toBe(true);
    expect(again.ok && first.ok && again.transaction.id === first.transaction.id).toBe(true);
    expect(await postTransaction(db.money, spec(hold({ owner, asset: 'USD', amount: 5n * M, idempotencyKey: k, reference: null })))).toEqual({
      ok: false,
      reason: 'idempotency_conflict',
    });
    expect(await balance(owner)).toEqual({ asset: 'USD', available: 6n * M, held: 4n * M });
  });

  it('lets only one of two concurrent spends of the same money through', async () => {
    const owner = await funded(100n * M);
    const results = await Promise.all(
      [1, 2, 3].map(() => postTransaction(db.money, spec(hold({ owner, asset: 'USD', amount: 60n * M, idempotencyKey: key(), reference: null })))),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(await balance(owner)).toEqual({ asset: 'USD', available: 40n * M, held: 60n * M });
  });

  it('captures from escrow to the payee with the fee split off', async () => {
    const renter = await funded(50n * M);
    const provider = newId('acc');
    await postTransaction(db.money, spec(hold({ owner: renter, asset: 'USD', amount: 50n * M, idempotencyKey: key(), reference: null })));
    const res = await postTransaction(
      db.money,
      spec(capture({ payer: renter, payee: provider, asset: 'USD', amount: 20n * M, fee: M, idempotencyKey: key(), reference: 'lease_1' })),
    );
    expect(res.ok && res.transaction.entries).toHaveLength(4);
    expect(await balance(renter)).toEqual({ asset: 'USD', available: 0n, held: 30n * M });
    expect(await balance(provider)).toEqual({ asset: 'USD', available: 19n * M, held: 0n });
  });

  it('reverses a transaction once, and only while the money is still there', async () => {
    const a = await funded(10n * M);
    const b = newId('acc');
    const sent = await postTransaction(db.money, spec(transfer({ from: a, to: b, asset: 'USD', amount: 3n * M, idempotencyKey: key(), reference: null })));
    if (!sent.ok) throw new Error('transfer failed');
    const original = (await findTransaction(db.money, sent.transaction.id))!;
    const postings = original.entries.map((e) => ({ account: { owner: e.ownerId, asset: e.asset, kind: e.accountKind }, amount: e.amount }));
    const back = await postTransaction(db.money, spec(reversal({ original: { id: original.id, postings }, idempotencyKey: key(), reference: null })));
    expect(back.ok).toBe(true);
    expect(await balance(a)).toEqual({ asset: 'USD', available: 10n * M, held: 0n });
    const twice = await postTransaction(db.money, spec(reversal({ original: { id: original.id, postings }, idempotencyKey: key(), reference: null })));
    expect(twice).toEqual({ ok: false, reason: 'already_reversed' });
  });
});
