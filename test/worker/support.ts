import { env, exports } from 'cloudflare:workers';
import { eq } from 'drizzle-orm';
import { connection } from '../../src/db/client.ts';
import { accounts } from '../../src/db/schema.ts';
import { credit } from '../../src/ledger/rules.ts';
import { postTransaction } from '../../src/ledger/store.ts';
import type { Asset } from '../../src/money/assets.ts';
import { parseAmount } from '../../src/money/amount.ts';

export const ORIGIN = 'https://api.gridlease.test';

export interface CallOptions {
  method?: string;
  body?: unknown;
  /** A bearer credential: an API key or an access token. */
  auth?: string;
  headers?: Record<string, string>;
}

/** Sends a request through the Worker's real fetch handler. */
export async function call(path: string, opts: CallOptions = {}): Promise<Response> {
  const headers = new Headers(opts.headers);
  if (opts.auth) headers.set('authorization', `Bearer ${opts.auth}`);
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
  }
  return exports.default.fetch(new Request(ORIGIN + path, { method: opts.method ?? (body ? 'POST' : 'GET'), headers, body }));
}

export async function json<T = any>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

export function uniqueEmail(tag = 'user'): string {
  return `${tag}.${crypto.randomUUID().slice(0, 12)}@example.com`;
}

export const PASSWORD = 'Nebula-Forge-7731';

export interface TestAccount {
  id: string;
  email: string;
  password: string;
  apiKey: string;
  apiKeyId: string;
}

export async function signUp(roles: string[] = ['renter'], email = uniqueEmail()): Promise<TestAccount> {
  const res = await call('/v1/accounts', { body: { email, password: PASSWORD, roles } });
  if (res.status !== 201) throw new Error(`sign-up failed: ${res.status} ${await res.text()}`);
  const body = await json(res);
  return { id: body.account.id, email, password: PASSWORD, apiKey: body.api_key.key, apiKeyId: body.api_key.id };
}

export async function accessToken(account: TestAccount): Promise<string> {
  const res = await call('/v1/auth/token', { body: { grant_type: 'password', email: account.email, password: account.password } });
  if (res.status !== 200) throw new Error(`token failed: ${res.status} ${await res.text()}`);
  return (await json(res)).access_token;
}

/** Operators are made by hand in the database; no API grants the admin role. */
export async function makeAdmin(account: TestAccount): Promise<void> {
  const [row] = await db().select({ roles: accounts.roles }).from(accounts).where(eq(accounts.id, account.id));
  await db().update(accounts).set({ roles: [...row!.roles, 'admin'] }).where(eq(accounts.id, account.id));
}

export function db() {
  return connection(env).db;
}

/** Asserts the one error shape and returns the body. */
export async function expectError(res: Response, status: number, code: string) {
  const body = await json(res);
  if (res.status !== status || body?.error?.code !== code) {
    throw new Error(`expected ${status} ${code}, got ${res.status} ${JSON.stringify(body)}`);
  }
  if (typeof body.error.message !== 'string' || !body.error.message) throw new Error('error without a message');
  if (body.error.request_id !== res.headers.get('x-request-id')) throw new Error('error request_id differs from x-request-id');
  return body.error as { code: string; message: string; request_id: string; details?: unknown };
}

/** Seeds money as a faucet credit straight into the ledger (setup, not the thing under test). */
export async function fund(account: TestAccount, asset: Asset, amount: string): Promise<void> {
  const parsed = parseAmount(amount);
  if (!parsed.ok) throw new Error(`bad amount ${amount}`);
  const rule = credit({ owner: account.id, asset, amount: parsed.value, source: 'faucet', idempotencyKey: `seed:${crypto.randomUUID()}`, reference: null });
  if (!rule.ok) throw new Error(rule.problem);
  const res = await postTransaction(connection(env).money, rule.spec);
  if (!res.ok) throw new Error(res.reason);
}

export async function balances(account: TestAccount): Promise<Record<string, { available: string; held: string }>> {
  const body = await json(await call('/v1/balances', { auth: account.apiKey }));
  return Object.fromEntries(body.data.map((b: { asset: string; available: string; held: string }) => [b.asset, { available: b.available, held: b.held }]));
}

export async function entryCount(account: TestAccount): Promise<number> {
  const body = await json(await call('/v1/ledger/entries?limit=200', { auth: account.apiKey }));
  return body.data.length;
}

export function idem(): Record<string, string> {
  return { 'idempotency-key': crypto.randomUUID() };
}

export function machine(gpus: Array<{ name: string; memory_mib?: number }> = [{ name: 'NVIDIA H100 80GB HBM3' }]) {
  return {
    hostname: `gpu-box-${crypto.randomUUID().slice(0, 6)}`,
    os: 'linux',
    arch: 'x64',
    cpu_cores: 32,
    ram_mib: 256_000,
    disk_free_gib: 900,
    runner_version: '0.1.0',
    gpus: gpus.map((g, index) => ({
      index,
      uuid: `GPU-${crypto.randomUUID()}`,
      name: g.name,
      memory_mib: g.memory_mib ?? 81_559,
      driver: '550.54.15',
      model: null,
    })),
  };
}

export async function joinToken(provider: TestAccount): Promise<string> {
  const res = await call('/v1/nodes/join-tokens', { method: 'POST', auth: provider.apiKey });
  if (res.status !== 201) throw new Error(`join token: ${res.status} ${await res.text()}`);
  return (await json(res)).join_token;
}

/** A fresh node public key as a runner sends it at join: raw Ed25519, base64url. */
export async function nodePublicKey(): Promise<string> {
  const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const raw = new Uint8Array((await crypto.subtle.exportKey('raw', pair.publicKey)) as ArrayBuffer);
  return btoa(String.fromCharCode(...raw)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

export async function registerNode(provider: TestAccount, m = machine(), region = 'us-east') {
  const res = await call('/v1/runner/register', { body: { join_token: await joinToken(provider), region, machine: m, public_key: await nodePublicKey() } });
  if (res.status !== 201) throw new Error(`register: ${res.status} ${await res.text()}`);
  const body = await json(res);
  return { nodeId: body.node_id as string, token: body.node_token as string, machine: m };
}

export function heartbeat(nodeId: string, seq: number, extra: Record<string, unknown> = {}, bootId = '2f1c7a52-8f0e-4b7e-9d0a-3c1f5e6a7b80') {
  return {
    node_id: nodeId,
    boot_id: bootId,
    seq,
    sent_at: new Date().toISOString(),
    draining: false,
    gpus: [{ index: 0, utilization_pct: 87, memory_used_mib: 40_000, temperature_c: 66, power_w: 550.5 }],
    leases: [],
    acks: [],
    ...extra,
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** The webhook sink started by test/support/worker-global-setup.ts. */
    webhookSinkUrl: string;
  }
}
