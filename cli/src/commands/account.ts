// login, logout, whoami, balance, deposit.
import os from 'node:os';
import fs from 'node:fs';
import { createGridlease } from '../../../sdk/src/index.ts';
import { GridleaseError } from '../../../sdk/src/errors.ts';
import { parseAmount } from '../args.ts';
import { DEFAULT_API, normalizeApi, readSaved, writeSaved } from '../config.ts';
import type { Context } from '../context.ts';
import { CliError, EXIT, fromApiError, usageError } from '../exit.ts';
import { fields, json, table } from '../output.ts';

const ASSETS = ['USD', 'USDC', 'GRID'] as const;
type Asset = (typeof ASSETS)[number];

function asset(text: string | undefined): Asset {
  const a = (text ?? 'USD').toUpperCase();
  if (!(ASSETS as readonly string[]).includes(a)) throw usageError(`--asset must be one of ${ASSETS.join(', ')}`);
  return a as Asset;
}

/**
 * Saves an API key, never the password: with email and password it signs in and makes a key named
 * after this machine (access tokens last minutes; a key lasts until revoked with `logout`).
 */
export async function login(ctx: Context): Promise<number> {
  const { flags, io } = ctx;
  // Not from the saved file when it is unreadable: login is how a broken file is replaced.
  let saved = null;
  try {
    saved = readSaved(ctx.configPath);
  } catch {
    saved = null;
  }
  const api = normalizeApi(flags.api ?? (io.env.GRIDLEASE_API || undefined) ?? saved?.api ?? DEFAULT_API);
  const fetchImpl = io.fetch ? { fetch: io.fetch } : {};
  let token: string;
  let keyId: string | undefined;
  if (flags['api-key'] !== undefined) {
    if (flags.email !== undefined || flags['password-stdin']) throw usageError('give --api-key or --email, not both');
    token = flags['api-key'];
  } else {
    const email = flags.email;
    if (!email) throw usageError('login needs --email EMAIL (then a password) or --api-key KEY');
    let password: string;
    if (flags['password-stdin']) password = (await io.readStdin()).replace(/\r?\n$/, '');
    else if (io.env.GRIDLEASE_PASSWORD) password = io.env.GRIDLEASE_PASSWORD;
    else if (io.promptHidden) password = await io.promptHidden('Password: ');
    else throw usageError('no terminal to ask for the password: use --password-stdin or GRIDLEASE_PASSWORD');
    const anonymous = createGridlease({ baseUrl: api, ...fetchImpl });
    const { data: access } = await anonymous.POST('/v1/auth/token', { body: { grant_type: 'password', email, password } });
    const signedIn = createGridlease({ baseUrl: api, token: access!.access_token, ...fetchImpl });
    const { data: made } = await signedIn.POST('/v1/api-keys', { body: { name: `gridlease CLI on ${os.hostname()}`.slice(0, 100) } });
    token = made!.api_key.key;
    keyId = made!.api_key.id;
  }
  const { data: me } = await createGridlease({ baseUrl: api, token, ...fetchImpl }).GET('/v1/accounts/me');
  const account = me!.account;
  writeSaved(ctx.configPath, { api, token, account_id: account.id, email: account.email, ...(keyId ? { api_key_id: keyId } : {}), saved_at: new Date().toISOString() });
  if (ctx.json) io.out(json({ api, account_id: account.id, email: account.email, config: ctx.configPath }));
  else io.out(`Logged in to ${api} as ${account.email} (${account.id}); credentials saved to ${ctx.configPath}`);
  return EXIT.ok;
}

/** Forgets the saved login; revokes the key when login made it. */
export async function logout(ctx: Context): Promise<number> {
  const saved = readSaved(ctx.configPath);
  if (!saved) {
    ctx.io.out('Not logged in');
    return EXIT.ok;
  }
  let revoked = false;
  if (saved.api_key_id) {
    try {
      await createGridlease({ baseUrl: saved.api, token: saved.token, ...(ctx.io.fetch ? { fetch: ctx.io.fetch } : {}) }).DELETE('/v1/api-keys/{id}', { params: { path: { id: saved.api_key_id } } });
      revoked = true;
    } catch (err) {
      ctx.io.err(`gridlease: could not revoke the API key: ${(err as Error).message}`);
    }
  }
  fs.rmSync(ctx.configPath, { force: true });
  ctx.io.out(revoked ? 'Logged out; the API key is revoked' : 'Logged out');
  return EXIT.ok;
}

export async function whoami(ctx: Context): Promise<number> {
  const { data } = await ctx.client().GET('/v1/accounts/me');
  const a = data!.account;
  if (ctx.json) ctx.io.out(json(a));
  else ctx.io.out(fields([['account', a.id], ['email', a.email], ['roles', a.roles.join(', ')], ['status', a.status], ['api', ctx.credentials().api]]));
  return EXIT.ok;
}

export async function balance(ctx: Context): Promise<number> {
  const { data } = await ctx.client().GET('/v1/balances');
  if (ctx.json) ctx.io.out(json(data));
  else ctx.io.out(table(['asset', 'available', 'held'], data!.data.map((b) => [b.asset, b.available, b.held])));
  return EXIT.ok;
}

/** Test money from the development faucet; production servers have no such route (404). */
export async function deposit(ctx: Context): Promise<number> {
  const amount = parseAmount(ctx.args[0]!);
  const which = asset(ctx.flags.asset);
  let data;
  try {
    ({ data } = await ctx.client().POST('/v1/dev/faucet', { body: { asset: which, amount } }));
  } catch (err) {
    if (err instanceof GridleaseError && err.status === 404) {
      throw new CliError(
        `${ctx.credentials().api} is not a development server, so it has no test-money faucet: deposit real funds by card or chain (POST /v1/deposits) instead`,
        EXIT.notFound,
        { requestId: err.request_id, code: err.code, status: err.status },
      );
    }
    if (err instanceof GridleaseError) throw fromApiError(err);
    throw err;
  }
  if (ctx.json) ctx.io.out(json(data));
  else ctx.io.out(`Credited ${amount} ${which} (test money); available ${data!.available}, held ${data!.held}`);
  return EXIT.ok;
}
