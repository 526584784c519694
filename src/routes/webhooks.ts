// Gateway callbacks. Each is authenticated by its signature over the raw body, acts at most
// once (Stripe event ids; chain transfers by chain, tx hash and log index), and credits
// through the ledger under a key derived from the external id, so a redelivery is harmless.
import { createRoute, z } from '@hono/zod-openapi';
import type Stripe from 'stripe';
import type { Context } from 'hono';
import type { InStatement } from '@libsql/client/web';
import type { AppEnv } from '../app-env.ts';
import { jsonContent, errorResponses } from '../contracts/common.ts';
import { AssetSchema, amountSchema } from '../contracts/money.ts';
import { connection } from '../db/client.ts';
import { ApiError } from '../http/errors.ts';
import { log } from '../http/log.ts';
import { parseRawJson, router } from '../http/router.ts';
import { newId } from '../ids.ts';
import { credit } from '../ledger/rules.ts';
import { postTransaction } from '../ledger/store.ts';
import { MICRO } from '../money/amount.ts';
import type { Asset } from '../money/assets.ts';
import { CHAIN_SIGNATURE_HEADER, verifyChainSignature } from '../payments/chain-signature.ts';
import { STRIPE_TOLERANCE_S, stripeClient, subtleCrypto } from '../payments/stripe.ts';

const app = router();
const Received = z.object({ received: z.literal(true), outcome: z.string() });

const recordEvent = (source: string, id: string, type: string, now: number): InStatement => ({
  sql: 'INSERT INTO webhook_events (source, event_id, type, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
  args: [source, id, type, now],
});

app.openapi(
  createRoute({
    method: 'post',
    path: '/stripe',
    tags: ['webhooks'],
    summary: 'Stripe events (signed with the endpoint secret)',
    responses: { 200: jsonContent(Received, 'Handled or ignored'), ...errorResponses(400, 503) },
  }),
  async (c) => {
    const stripe = stripeClient(c.env);
    const secret = c.env.STRIPE_WEBHOOK_SECRET;
    if (!stripe || !secret) throw new ApiError('service_unavailable', 'card payments are not configured on this server');
    const raw = await c.req.text();
    let event: Stripe.Event;
    try {
      event = await stripe.webhooks.constructEventAsync(raw, c.req.header('stripe-signature') ?? '', secret, STRIPE_TOLERANCE_S, subtleCrypto);
    } catch (err) {
      throw new ApiError('invalid_signature', `Stripe signature verification failed: ${(err as Error).message}`);
    }
    const client = connection(c.env).money;
    const seen = await client.execute({ sql: 'SELECT 1 FROM webhook_events WHERE source = ? AND event_id = ?', args: ['stripe', event.id] });
    if (seen.rows.length > 0) return c.json({ received: true as const, outcome: 'duplicate' }, 200);
    const now = Date.now();
    if (event.type !== 'checkout.session.completed') {
      await client.execute(recordEvent('stripe', event.id, event.type, now));
      return c.json({ received: true as const, outcome: 'ignored' }, 200);
    }
    const outcome = await creditCheckout(c, event.data.object, event, now);
    return c.json({ received: true as const, outcome }, 200);
  },
);

async function creditCheckout(c: Context<AppEnv>, session: Stripe.Checkout.Session, event: Stripe.Event, now: number): Promise<string> {
  const client = connection(c.env).money;
  const depositId = session.metadata?.deposit_id ?? session.client_reference_id ?? '';
  const rs = await client.execute({
    sql: "SELECT id, account_id, amount, status, external_ref FROM deposits WHERE id = ? AND method = 'card'",
    args: [depositId],
  });
  const deposit = rs.rows[0];
  const fields = { request_id: c.get('requestId'), event_id: event.id, deposit_id: depositId, session_id: session.id };
  if (!deposit || deposit.external_ref !== session.id) {
    log('error', 'stripe checkout for an unknown deposit', fields);
    await client.execute(recordEvent('stripe', event.id, event.type, now));
    return 'unknown_deposit';
  }
  if (session.payment_status !== 'paid') {
    await client.execute(recordEvent('stripe', event.id, event.type, now));
    return 'not_paid';
  }
  const expected = BigInt(deposit.amount as bigint);
  const paid = BigInt(session.amount_total ?? -1) * (MICRO / 100n);
  if (session.currency !== 'usd' || paid !== expected) {
    log('error', 'stripe checkout amount differs from the deposit; not credited', { ...fields, expected: String(expected), paid: String(paid) });
    await client.batch(
      [{ sql: "UPDATE deposits SET status = 'failed' WHERE id = ? AND status = 'pending'", args: [depositId] }, recordEvent('stripe', event.id, event.type, now)],
      'write',
    );
    return 'amount_mismatch';
  }
  const rule = credit({
    owner: String(deposit.account_id),
    asset: 'USD',
    amount: expected,
    source: 'stripe',
    idempotencyKey: `deposit:${depositId}`,
    reference: depositId,
  });
  if (!rule.ok) throw new Error(`credit rule refused a stored deposit: ${rule.problem}`);
  const result = await postTransaction(client, rule.spec, {
    now,
    alongside: [
      {
        sql: `UPDATE deposits SET status = 'credited', credited_amount = amount, credited_at = ?,
              transaction_id = (SELECT id FROM ledger_transactions WHERE idempotency_key = ?) WHERE id = ? AND status = 'pending'`,
        args: [now, `deposit:${depositId}`, depositId],
      },
      recordEvent('stripe', event.id, event.type, now),
    ],
  });
  if (!result.ok) throw new Error(`crediting deposit ${depositId} failed: ${result.reason}`);
  // A second event for the same session (Stripe may send one) finds the credit already made.
  if (result.replayed) await client.execute(recordEvent('stripe', event.id, event.type, now));
  return result.replayed ? 'already_credited' : 'credited';
}

const ChainTransfer = z
  .object({
    chain: z.string().min(1).max(32),
    tx_hash: z.string().regex(/^0x[0-9a-fA-F]{64}$/, 'tx_hash must be 0x and 64 hex digits'),
    log_index: z.number().int().min(0).max(1_000_000),
    asset: AssetSchema.refine((a) => a !== 'USD', 'USD does not arrive on chain'),
    amount: amountSchema(),
    to_address: z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'to_address must be an address'),
    memo: z.string().min(1).max(64),
    confirmations: z.number().int().min(0).max(1_000_000),
  })
  .strict()
  .openapi('ChainTransfer');

app.openapi(
  createRoute({
    method: 'post',
    path: '/chain',
    tags: ['webhooks'],
    summary: 'Chain-watcher notification of a token transfer to a deposit address (HMAC-signed)',
    description: `Header ${CHAIN_SIGNATURE_HEADER}: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>. Send again as confirmations grow; credited once, when they reach the configured count.`,
    responses: { 200: jsonContent(Received, 'Recorded'), ...errorResponses(400, 409, 503) },
  }),
  async (c) => {
    const secrets = (c.env.CHAIN_WEBHOOK_SECRETS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    if (secrets.length === 0) throw new ApiError('service_unavailable', 'chain deposits are not configured on this server');
    const raw = await c.req.text();
    const verdict = await verifyChainSignature(c.req.header(CHAIN_SIGNATURE_HEADER), raw, secrets, Math.floor(Date.now() / 1000));
    if (!verdict.ok) {
      const why = { missing: 'missing signature header', malformed: 'malformed signature header', stale: 'signature timestamp outside the 300 s tolerance', mismatch: 'signature does not match' };
      throw new ApiError('invalid_signature', why[verdict.problem]);
    }
    const t = parseRawJson(raw, ChainTransfer);
    const asset = t.asset as Exclude<Asset, 'USD'>;
    const expectedAddress = asset === 'GRID' ? c.env.GRID_DEPOSIT_ADDRESS : c.env.USDC_DEPOSIT_ADDRESS;
    if (t.chain !== c.env.CHAIN_NAME || t.to_address.toLowerCase() !== expectedAddress.toLowerCase()) {
      throw new ApiError('validation_failed', `not a transfer to our ${asset} deposit address on ${c.env.CHAIN_NAME}`);
    }
    return c.json({ received: true as const, outcome: await recordChainTransfer(c, t, asset) }, 200);
  },
);

async function recordChainTransfer(c: Context<AppEnv>, t: z.infer<typeof ChainTransfer>, asset: Exclude<Asset, 'USD'>): Promise<string> {
  const client = connection(c.env).money;
  const now = Date.now();
  const txHash = t.tx_hash.toLowerCase();
  const owner = await client.execute({ sql: "SELECT id FROM accounts WHERE id = ? AND status = 'active'", args: [t.memo] });
  const accountId = owner.rows[0] ? String(owner.rows[0].id) : null;
  const required = Number(c.env.CHAIN_CONFIRMATIONS) || 12;
  const transferId = newId('ctr');
  // The first report fixes the transfer's facts; later reports may only raise confirmations.
  await client.execute({
    sql: `INSERT INTO chain_transfers (id, chain, tx_hash, log_index, asset, amount, to_address, memo, account_id, confirmations, status, created_at, updated_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
          ON CONFLICT (chain, tx_hash, log_index) DO UPDATE SET confirmations = max(confirmations, excluded.confirmations), updated_at = excluded.updated_at`,
    args: [transferId, t.chain, txHash, t.log_index, asset, t.amount, t.to_address.toLowerCase(), t.memo, accountId, t.confirmations, accountId ? 'pending' : 'unmatched', now, now],
  });
  const rs = await client.execute({
    sql: 'SELECT id, asset, amount, memo, account_id, confirmations, status FROM chain_transfers WHERE chain = ? AND tx_hash = ? AND log_index = ?',
    args: [t.chain, txHash, t.log_index],
  });
  const row = rs.rows[0]!;
  if (row.asset !== asset || BigInt(row.amount as bigint) !== t.amount || row.memo !== t.memo) {
    log('error', 'chain transfer reported with different facts', { request_id: c.get('requestId'), tx_hash: txHash, log_index: t.log_index });
    throw new ApiError('conflict', 'this transfer was reported before with a different asset, amount or memo');
  }
  if (row.status !== 'pending') return String(row.status);
  if (Number(row.confirmations) < required) return 'awaiting_confirmations';

  const externalRef = `${t.chain}:${txHash}:${t.log_index}`;
  const key = `chain:${externalRef}`;
  const ownerId = String(row.account_id);
  const method = asset === 'GRID' ? 'grid' : 'usdc';
  const rule = credit({ owner: ownerId, asset, amount: t.amount, source: 'chain', idempotencyKey: key, reference: externalRef });
  if (!rule.ok) throw new ApiError('validation_failed', `transfer cannot be credited: ${rule.problem}`);
  const txOf = '(SELECT id FROM ledger_transactions WHERE idempotency_key = ?)';
  const result = await postTransaction(client, rule.spec, {
    now,
    alongside: [
      // Settles the oldest open deposit request of this asset, or records a new deposit.
      {
        sql: `UPDATE deposits SET status = 'credited', credited_amount = ?, external_ref = ?, credited_at = ?, transaction_id = ${txOf}
              WHERE id = (SELECT id FROM deposits WHERE account_id = ? AND method = ? AND status = 'pending' ORDER BY created_at, id LIMIT 1)`,
        args: [t.amount, externalRef, now, key, ownerId, method],
      },
      {
        sql: `INSERT INTO deposits (id, account_id, idempotency_key, request_hash, asset, method, amount, credited_amount, status, external_ref, transaction_id, created_at, credited_at)
              SELECT ?, ?, ?, '', ?, ?, ?, ?, 'credited', ?, ${txOf}, ?, ? WHERE changes() = 0`,
        args: [newId('dep'), ownerId, key, asset, method, t.amount, t.amount, externalRef, key, now, now],
      },
      {
        sql: `UPDATE chain_transfers SET status = 'credited', updated_at = ?, deposit_id = (SELECT id FROM deposits WHERE external_ref = ?)
              WHERE chain = ? AND tx_hash = ? AND log_index = ?`,
        args: [now, externalRef, t.chain, txHash, t.log_index],
      },
    ],
  });
  if (!result.ok) throw new Error(`crediting chain transfer ${externalRef} failed: ${result.reason}`);
  return 'credited';
}

export default app;
