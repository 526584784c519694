import { env } from 'cloudflare:workers';
import Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { balances, call, expectError, idem, json, signUp, type TestAccount } from './support.ts';

const SECRET = 'whsec_gridlease_test';
const base = new URL((env as unknown as { STRIPE_API_BASE: string }).STRIPE_API_BASE);
const stripe = new Stripe('sk_test_gridlease', {
  httpClient: Stripe.createFetchHttpClient(),
  host: base.hostname,
  port: base.port,
  protocol: 'http',
});
const cryptoProvider = Stripe.createSubtleCryptoProvider();

async function startCardDeposit(account: TestAccount, amount = '25.00', headers = idem()) {
  const res = await call('/v1/deposits', { auth: account.apiKey, headers, body: { asset: 'USD', amount, method: 'card' } });
  return { res, body: await json(res.clone()) };
}

/** Pays on the mock checkout page, then returns the paid session as Stripe would send it. */
async function pay(checkoutUrl: string): Promise<Stripe.Checkout.Session> {
  const paid = await fetch(`${checkoutUrl}/pay`, { method: 'POST', redirect: 'manual' });
  expect(paid.status).toBe(303);
  const id = new URL(checkoutUrl).pathname.split('/').pop()!;
  return stripe.checkout.sessions.retrieve(id);
}

function eventFor(session: Stripe.Checkout.Session, type = 'checkout.session.completed') {
  return JSON.stringify({ id: `evt_${crypto.randomUUID().replaceAll('-', '')}`, object: 'event', type, api_version: '2026-10-28', created: Math.floor(Date.now() / 1000), data: { object: session }, livemode: false });
}

async function deliver(payload: string, opts: { secret?: string; timestamp?: number; body?: string } = {}) {
  const header = await stripe.webhooks.generateTestHeaderStringAsync({ payload, secret: opts.secret ?? SECRET, timestamp: opts.timestamp, cryptoProvider });
  return call('/v1/webhooks/stripe', { body: opts.body ?? payload, headers: { 'stripe-signature': header } });
}

describe('card deposits', () => {
  it('open a Stripe Checkout Session and credit only when its signed webhook arrives', async () => {
    const account = await signUp();
    const { res, body } = await startCardDeposit(account, '25.00');
    expect(res.status).toBe(201);
    expect(body.deposit).toMatchObject({ asset: 'USD', method: 'card', amount: '25.00', status: 'pending' });
    expect(body.deposit.checkout_url).toMatch(/\/checkout\/cs_test_/);
    expect((await balances(account)).USD!.available).toBe('0.00');

    const session = await pay(body.deposit.checkout_url);
    expect(session).toMatchObject({ payment_status: 'paid', amount_total: 2500, metadata: { deposit_id: body.deposit.id } });
    const payload = eventFor(session);
    expect(await json(await deliver(payload))).toEqual({ received: true, outcome: 'credited' });
    expect((await balances(account)).USD!.available).toBe('25.00');
    expect((await json(await call(`/v1/deposits/${body.deposit.id}`, { auth: account.apiKey }))).deposit.status).toBe('credited');

    // The same event again, or another event for the same session: no second credit.
    expect((await json(await deliver(payload))).outcome).toBe('duplicate');
    expect((await json(await deliver(eventFor(session)))).outcome).toBe('already_credited');
    expect((await balances(account)).USD!.available).toBe('25.00');
  });

  it('return the first deposit for a retried key and refuse the key for another amount', async () => {
    const account = await signUp();
    const headers = idem();
    const first = await startCardDeposit(account, '10.00', headers);
    const again = await startCardDeposit(account, '10.00', headers);
    expect(again.res.status).toBe(200);
    expect(again.body.deposit.id).toBe(first.body.deposit.id);
    expect(again.body.deposit.checkout_url).toBe(first.body.deposit.checkout_url);
    await expectError((await startCardDeposit(account, '11.00', headers)).res, 409, 'idempotency_conflict');
  });

  it('refuse amounts a card cannot pay and assets a card does not buy', async () => {
    const account = await signUp();
    await expectError((await startCardDeposit(account, '10.005')).res, 400, 'validation_failed');
    await expectError((await startCardDeposit(account, '0.99')).res, 400, 'validation_failed');
    await expectError((await startCardDeposit(account, '10000.01')).res, 400, 'validation_failed');
    const usdc = await call('/v1/deposits', { auth: account.apiKey, headers: idem(), body: { asset: 'USDC', amount: '5.00', method: 'card' } });
    await expectError(usdc, 400, 'validation_failed');
    await expectError(await call('/v1/deposits', { auth: account.apiKey, headers: idem(), body: { asset: 'USD', amount: '5.00', method: 'paypal' } }), 400, 'validation_failed');
  });

  it('refuse a flipped byte, a stale timestamp and another secret, crediting nothing', async () => {
    const account = await signUp();
    const { body } = await startCardDeposit(account, '30.00');
    const payload = eventFor(await pay(body.deposit.checkout_url));
    await expectError(await deliver(payload, { body: payload.replace('"amount_total":3000', '"amount_total":3001') }), 400, 'invalid_signature');
    await expectError(await deliver(payload, { timestamp: Math.floor(Date.now() / 1000) - 301 }), 400, 'invalid_signature');
    await expectError(await deliver(payload, { secret: 'whsec_someone_else' }), 400, 'invalid_signature');
    await expectError(await call('/v1/webhooks/stripe', { body: payload }), 400, 'invalid_signature');
    expect((await balances(account)).USD!.available).toBe('0.00');
    // The genuine delivery still works afterwards.
    expect((await json(await deliver(payload))).outcome).toBe('credited');
  });

  it('credit nothing for an unpaid session or a different amount, and ignore other events', async () => {
    const account = await signUp();
    const { body } = await startCardDeposit(account, '40.00');
    const id = new URL(body.deposit.checkout_url).pathname.split('/').pop()!;
    const open = await stripe.checkout.sessions.retrieve(id);
    expect((await json(await deliver(eventFor(open)))).outcome).toBe('not_paid');
    expect((await json(await deliver(eventFor(open, 'checkout.session.expired')))).outcome).toBe('ignored');
    const paid = await pay(body.deposit.checkout_url);
    expect((await json(await deliver(eventFor({ ...paid, amount_total: 4001 })))).outcome).toBe('amount_mismatch');
    expect((await balances(account)).USD!.available).toBe('0.00');
    expect((await json(await call(`/v1/deposits/${body.deposit.id}`, { auth: account.apiKey }))).deposit.status).toBe('failed');
  });

  it("are 404 to other accounts", async () => {
    const account = await signUp();
    const other = await signUp();
    const { body } = await startCardDeposit(account);
    await expectError(await call(`/v1/deposits/${body.deposit.id}`, { auth: other.apiKey }), 404, 'not_found');
    expect((await json(await call('/v1/deposits', { auth: other.apiKey }))).data).toEqual([]);
  });
});
