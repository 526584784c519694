// The accounts, credentials and resources the authorisation matrix calls with, made once per
// file: every case reads them, none changes them (a case that destroys something makes its own).
import { bindings as env } from './trading.ts';
import { SignJWT, generateKeyPair } from 'jose';
import { SCOPES, type Scope } from '../../src/auth/principal.ts';
import { RUNNER_AUDIENCE } from '../../src/contracts/runner.ts';
import { ACCESS_AUDIENCE, keyRing, signAccessToken, signLeaseToken } from '../../src/auth/tokens.ts';
import { leased } from './lease-support.ts';
import { eq } from 'drizzle-orm';
import { accounts, apiKeys } from '../../src/db/schema.ts';
import { accessToken, call, db, fund, json, machine, makeAdmin, nodePublicKey, joinToken, registerNode, signUp, type TestAccount } from './support.ts';

export interface World {
  /** An operator with every role a sign-up can get, plus admin. */
  admin: TestAccount;
  adminToken: string;
  /** Owns the lease, its bid, a webhook endpoint, a spare API key, a deposit and a withdrawal. */
  renter: TestAccount;
  renterToken: string;
  /** Owns the leased node and its ask. */
  provider: TestAccount;
  providerToken: string;
  /** Renter and provider, every scope, owns nothing of the above. */
  other: TestAccount;
  otherToken: string;
  /** Renter and provider without admin, every scope (for the admin routes). */
  noAdminKey: string;
  /** A renter without the provider role, every scope. */
  renterOnlyKey: string;
  /** Keys of the admin holding every scope but one, and access tokens exchanged for them. */
  narrowKeys: Record<Scope, string>;
  narrowTokens: Record<Scope, string>;
  revokedKey: string;
  expiredKey: string;
  /** An operator (renter, provider, admin) suspended after its access token was issued. */
  suspended: TestAccount;
  suspendedToken: string;
  /** An access token issued while its account was an operator; the admin role is gone since. */
  demotedToken: string;
  expiredToken: string;
  foreignToken: string;
  /** The same claims with `alg: none` and no signature. */
  unsignedToken: string;
  unsignedNodeToken: string;
  ids: { lease: string; order: string; node: string; webhook: string; apiKey: string; deposit: string; withdrawal: string; challenge: string };
  /** The idempotency keys the renter's deposit and withdrawal were made with. */
  idempotencyKeys: { deposit: string; withdrawal: string };
  node: { nodeId: string; token: string };
  otherNode: { nodeId: string; token: string };
  /** A node registered twice: `token` is its first, superseded token. */
  oldNode: { nodeId: string; token: string };
  /** The same node with its current token: another node of the lease's provider. */
  siblingNode: { nodeId: string; token: string };
  /** An Ed25519 key no one else registers, for the operator's inspector key. */
  inspectorKey: string;
  foreignNodeToken: string;
  /** A node its provider revoked, with its last token. */
  revokedNode: { nodeId: string; token: string };
  /** A workload's lease token for the lease, signed by the platform: neither a node's nor a user's. */
  leaseToken: string;
}

async function created(res: Response, what: string) {
  if (res.status !== 201 && res.status !== 200) throw new Error(`${what}: ${res.status} ${await res.text()}`);
  return json(res);
}

/** An access token for `account` that expired a minute ago, signed with the platform's own key. */
async function expiredAccessToken(account: TestAccount): Promise<string> {
  const ring = await keyRing(env.JWT_PRIVATE_KEYS);
  const now = Date.now() - 3_600_000;
  return signAccessToken(ring, { accountId: account.id, roles: ['renter', 'provider', 'admin'], scopes: SCOPES, apiKeyId: null }, { issuer: env.JWT_ISSUER, ttlSeconds: 60, now });
}

/** Tokens shaped exactly like the platform's (its kid too) but signed by a key it never had, or not at all. */
async function foreignTokens(account: TestAccount, nodeId: string) {
  const ring = await keyRing(env.JWT_PRIVATE_KEYS);
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const iat = Math.floor(Date.now() / 1000);
  const sign = (typ: string, audience: string, subject: string, claims: Record<string, unknown>) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: ring.signing.kid, typ })
      .setIssuer(env.JWT_ISSUER)
      .setAudience(audience)
      .setSubject(subject)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + 600)
      .setJti(crypto.randomUUID())
      .sign(privateKey);
  const unsigned = (typ: string, audience: string, subject: string, claims: Record<string, unknown>) => {
    const part = (o: unknown) => btoa(JSON.stringify(o)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
    const payload = { ...claims, iss: env.JWT_ISSUER, aud: audience, sub: subject, iat, nbf: iat, exp: iat + 600, jti: crypto.randomUUID() };
    return `${part({ alg: 'none', kid: ring.signing.kid, typ })}.${part(payload)}.`;
  };
  return {
    unsignedAccess: unsigned('at+jwt', ACCESS_AUDIENCE, account.id, { roles: ['renter', 'provider', 'admin'], scope: SCOPES.join(' ') }),
    unsignedNode: unsigned('node+jwt', RUNNER_AUDIENCE, nodeId, { region: 'eu-central', ver: 1 }),
    access: await sign('at+jwt', ACCESS_AUDIENCE, account.id, { roles: ['renter', 'provider', 'admin'], scope: SCOPES.join(' ') }),
    node: await sign('node+jwt', RUNNER_AUDIENCE, nodeId, { region: 'eu-central', ver: 1 }),
  };
}

/** A node registered twice from the same machine, with the token of its first registration. */
async function reRegisteredNode(provider: TestAccount) {
  const m = machine();
  const first = await registerNode(provider, m, 'us-east');
  const res = await call('/v1/runner/register', { body: { join_token: await joinToken(provider), region: 'us-east', machine: m, public_key: await nodePublicKey() } });
  const second = await created(res, 're-register');
  if (second.node_id !== first.nodeId) throw new Error('re-registration made a new node');
  return { old: { nodeId: first.nodeId, token: first.token }, current: { nodeId: first.nodeId, token: second.node_token as string } };
}

async function key(account: TestAccount, scopes: readonly Scope[]): Promise<{ id: string; key: string }> {
  const body = await created(await call('/v1/api-keys', { auth: account.apiKey, body: { name: 'matrix', scopes } }), 'api key');
  return { id: body.api_key.id, key: body.api_key.key };
}

export async function buildWorld(): Promise<World> {
  const [setup, admin, other, noAdmin, suspended, revoking, demoted] = await Promise.all([
    leased('rtx-3080-10gb', { price: '1.17' }),
    signUp(['renter', 'provider']),
    signUp(['renter', 'provider']),
    signUp(['renter', 'provider']),
    signUp(['renter', 'provider']),
    signUp(['renter']),
    signUp(['renter', 'provider']),
  ]);
  await Promise.all([makeAdmin(admin), makeAdmin(suspended), makeAdmin(demoted)]);
  const { renter, provider } = setup;

  const narrow = await Promise.all(SCOPES.map((scope) => key(admin, SCOPES.filter((s) => s !== scope))));
  const narrowKeys = Object.fromEntries(SCOPES.map((scope, i) => [scope, narrow[i]!.key])) as Record<Scope, string>;
  const exchanged = await Promise.all(
    narrow.map(async (k) => (await created(await call('/v1/auth/token', { body: { grant_type: 'api_key', api_key: k.key } }), 'token for key')).access_token as string),
  );
  const narrowTokens = Object.fromEntries(SCOPES.map((scope, i) => [scope, exchanged[i]!])) as Record<Scope, string>;

  const revoked = await key(revoking, ['account:read']);
  await created(await call(`/v1/api-keys/${revoked.id}`, { method: 'DELETE', auth: revoking.apiKey }), 'revoke key');
  // No route makes a key that is already expired; its expiry is moved into the past instead.
  const expired = await key(revoking, ['account:read']);
  await db().update(apiKeys).set({ expiresAt: Date.now() - 1000 }).where(eq(apiKeys.id, expired.id));

  await Promise.all([fund(renter, 'USDC', '20.00'), fund(other, 'USDC', '20.00')]);
  const idempotencyKeys = { deposit: crypto.randomUUID(), withdrawal: crypto.randomUUID() };
  const [webhook, spareKey, deposit, withdrawal, otherNode, reRegistered, revokedNode] = await Promise.all([
    created(await call('/v1/webhook-endpoints', { auth: renter.apiKey, body: { url: 'https://hooks.example.com/matrix', events: ['lease.running'] } }), 'webhook'),
    key(renter, ['account:read']),
    created(
      await call('/v1/deposits', { auth: renter.apiKey, headers: { 'idempotency-key': idempotencyKeys.deposit }, body: { asset: 'USDC', amount: '1.00', method: 'usdc' } }),
      'deposit',
    ),
    created(
      await call('/v1/withdrawals', {
        auth: renter.apiKey,
        headers: { 'idempotency-key': idempotencyKeys.withdrawal },
        body: { asset: 'USDC', amount: '1.00', destination: '0x' + 'ab'.repeat(20) },
      }),
      'withdrawal',
    ),
    registerNode(other, machine(), 'eu-central'),
    reRegisteredNode(provider),
    registerNode(provider, machine(), 'us-east'),
  ]);
  await created(await call(`/v1/nodes/${revokedNode.nodeId}/revoke`, { method: 'POST', auth: provider.apiKey }), 'revoke node');

  const [adminToken, renterToken, providerToken, otherToken, expiredToken, foreign, suspendedToken, demotedToken] = await Promise.all([
    accessToken(admin),
    accessToken(renter),
    accessToken(provider),
    accessToken(other),
    expiredAccessToken(admin),
    foreignTokens(admin, setup.node.nodeId),
    accessToken(suspended),
    accessToken(demoted),
  ]);
  // Operators are unmade the way they are made: by hand in the database.
  await db().update(accounts).set({ roles: ['renter', 'provider'] }).where(eq(accounts.id, demoted.id));

  // An identity challenge to the leased node, for the runner's challenge routes.
  const challenge = await created(await call(`/v1/admin/nodes/${setup.node.nodeId}/challenges`, { auth: admin.apiKey, body: { kind: 'identity' } }), 'challenge');

  await created(await call(`/v1/admin/accounts/${suspended.id}/status`, { auth: admin.apiKey, body: { status: 'suspended', reason: 'authorisation matrix' } }), 'suspend');

  return {
    admin,
    adminToken,
    renter,
    renterToken,
    provider,
    providerToken,
    other,
    otherToken,
    noAdminKey: noAdmin.apiKey,
    renterOnlyKey: revoking.apiKey,
    narrowKeys,
    narrowTokens,
    revokedKey: revoked.key,
    expiredKey: expired.key,
    suspended,
    suspendedToken,
    demotedToken,
    expiredToken,
    foreignToken: foreign.access,
    unsignedToken: foreign.unsignedAccess,
    unsignedNodeToken: foreign.unsignedNode,
    ids: {
      lease: setup.leaseId,
      order: setup.askId,
      node: setup.node.nodeId,
      webhook: webhook.endpoint?.id ?? webhook.id,
      apiKey: spareKey.id,
      deposit: deposit.deposit?.id ?? deposit.id,
      withdrawal: withdrawal.withdrawal?.id ?? withdrawal.id,
      challenge: challenge.challenge.id,
    },
    idempotencyKeys,
    node: setup.node,
    otherNode: otherNode,
    oldNode: reRegistered.old,
    siblingNode: reRegistered.current,
    inspectorKey: await nodePublicKey(),
    foreignNodeToken: foreign.node,
    revokedNode: { nodeId: revokedNode.nodeId, token: revokedNode.token },
    leaseToken: await signLeaseToken(await keyRing(env.JWT_PRIVATE_KEYS), { leaseId: setup.leaseId, nodeId: setup.node.nodeId }, {
      issuer: env.JWT_ISSUER,
      expiresAt: Date.now() + 3_600_000,
      now: Date.now(),
    }),
  };
}
