import { describe, expect, it } from 'vitest';
import { signChainPayload } from '../../src/payments/chain-signature.ts';
import { balances, call, expectError, idem, json, signUp, type TestAccount } from './support.ts';

const USDC_ADDRESS = '0x1111111111111111111111111111111111111111';
const now = () => Math.floor(Date.now() / 1000);

function transfer(account: TestAccount, overrides: Record<string, unknown> = {}) {
  const hash = Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, '0')).join('');
  return { chain: 'base', tx_hash: `0x${hash}`, log_index: 3, asset: 'USDC', amount: '25.50', to_address: USDC_ADDRESS, memo: account.id, confirmations: 12, ...overrides };
}

async function notify(body: unknown, opts: { secret?: string; at?: number; raw?: string; tamper?: boolean } = {}) {
  const raw = opts.raw ?? JSON.stringify(body);
  const signature = await signChainPayload(opts.secret ?? 'chain-secret-current', raw, opts.at ?? now());
  let sent = raw;
  if (opts.tamper) sent = raw.replace('25.50', '25.51');
  return call('/v1/webhooks/chain', { body: sent, headers: { 'x-gridlease-signature': signature } });
}

describe('chain deposits', () => {
  it('tell the renter where to send tokens, and credit once confirmations are enough', async () => {
    const account = await signUp();
    const started = await call('/v1/deposits', { auth: account.apiKey, headers: idem(), body: { asset: 'USDC', amount: '25.50', method: 'usdc' } });
    expect(started.status).toBe(201);
    const { deposit } = await json(started);
    expect(deposit).toMatchObject({ status: 'pending', chain: 'base', address: USDC_ADDRESS, memo: account.id, confirmations_required: 12, checkout_url: null });

    const t = transfer(account, { confirmations: 3 });
    expect(await json(await notify(t))).toEqual({ received: true, outcome: 'awaiting_confirmations' });
    expect((await balances(account)).USDC!.available).toBe('0.00');

    expect(await json(await notify({ ...t, confirmations: 12 }))).toEqual({ received: true, outcome: 'credited' });
    expect((await balances(account)).USDC!.available).toBe('25.50');
    // Redelivered, or reported again with more confirmations: nothing more.
    expect((await json(await notify({ ...t, confirmations: 40 }))).outcome).toBe('credited');
    expect((await balances(account)).USDC!.available).toBe('25.50');

    const after = await json(await call(`/v1/deposits/${deposit.id}`, { auth: account.apiKey }));
    expect(after.deposit).toMatchObject({ status: 'credited', credited_amount: '25.50' });
  });

  it('record a transfer nobody asked for as a new credited deposit', async () => {
    const account = await signUp();
    await notify(transfer(account, { amount: '3.00', log_index: 0 }));
    const list = await json(await call('/v1/deposits', { auth: account.apiKey }));
    expect(list.data).toHaveLength(1);
    expect(list.data[0]).toMatchObject({ method: 'usdc', status: 'credited', credited_amount: '3.00' });
  });

  it('refuse a flipped byte, a stale timestamp and another secret, moving nothing', async () => {
    const account = await signUp();
    const t = transfer(account);
    await expectError(await notify(t, { tamper: true }), 400, 'invalid_signature');
    await expectError(await notify(t, { at: now() - 301 }), 400, 'invalid_signature');
    await expectError(await notify(t, { at: now() + 301 }), 400, 'invalid_signature');
    await expectError(await notify(t, { secret: 'not-our-secret' }), 400, 'invalid_signature');
    await expectError(await call('/v1/webhooks/chain', { body: t }), 400, 'invalid_signature');
    await expectError(await call('/v1/webhooks/chain', { body: t, headers: { 'x-gridlease-signature': 'v1=abc' } }), 400, 'invalid_signature');
    expect((await balances(account)).USDC!.available).toBe('0.00');
  });

  it('accept the previous secret during a rotation', async () => {
    const account = await signUp();
    expect((await json(await notify(transfer(account), { secret: 'chain-secret-previous' }))).outcome).toBe('credited');
    expect((await balances(account)).USDC!.available).toBe('25.50');
  });

  it('credit a replayed notification once, even with a fresh signature', async () => {
    const account = await signUp();
    const t = transfer(account);
    await Promise.all([notify(t), notify(t), notify(t)]);
    await notify(t);
    expect((await balances(account)).USDC!.available).toBe('25.50');
  });

  it('refuse the same transfer reported with another amount', async () => {
    const account = await signUp();
    const t = transfer(account, { confirmations: 1 });
    await notify(t);
    await expectError(await notify({ ...t, amount: '2500.00', confirmations: 12 }), 409, 'conflict');
    expect((await balances(account)).USDC!.available).toBe('0.00');
  });

  it('keep but never credit a transfer whose memo matches no account', async () => {
    const account = await signUp();
    const res = await notify(transfer(account, { memo: 'acc_nobody' }));
    expect(await json(res)).toEqual({ received: true, outcome: 'unmatched' });
  });

  it('refuse transfers to another address or chain, and malformed ones', async () => {
    const account = await signUp();
    await expectError(await notify(transfer(account, { to_address: '0x' + '9'.repeat(40) })), 400, 'validation_failed');
    await expectError(await notify(transfer(account, { chain: 'ethereum' })), 400, 'validation_failed');
    await expectError(await notify(transfer(account, { amount: 25.5 })), 400, 'validation_failed');
    await expectError(await notify(transfer(account, { tx_hash: '0x12' })), 400, 'validation_failed');
    await expectError(await notify(transfer(account, { asset: 'USD' })), 400, 'validation_failed');
    await expectError(await notify(transfer(account, { extra: 1 })), 400, 'validation_failed');
    expect((await balances(account)).USDC!.available).toBe('0.00');
  });

  it('credit GRID to its own address', async () => {
    const account = await signUp();
    await notify(transfer(account, { asset: 'GRID', to_address: '0x2222222222222222222222222222222222222222', amount: '1000.000001' }));
    expect((await balances(account)).GRID!.available).toBe('1000.000001');
  });
});
