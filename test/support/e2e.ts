// What end-to-end tests against the local platform share: calling its API, signing up accounts,
// making a local operator, and running the bundled gridlease-runner as a machine would.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'vitest';
import { ROOT } from './platform.ts';

export const RUNNER = join(ROOT, 'runner', 'dist', 'gridlease-runner.js');
export const FAKE_SMI = join(ROOT, 'test', 'fixtures', 'nvidia-smi', 'fake-nvidia-smi');
export const smiFixture = (name: string) => join(ROOT, 'test', 'fixtures', 'nvidia-smi', name);

export interface ApiCall {
  method?: string;
  body?: unknown;
  auth?: string;
  /** Sends a fresh Idempotency-Key. */
  key?: boolean;
}

/** A JSON client of the platform at `url()` (read at each call: the platform starts inside the test). */
export function apiClient(url: () => string) {
  return async (path: string, init: ApiCall = {}) => {
    const res = await fetch(`${url()}${path}`, {
      method: init.method ?? (init.body ? 'POST' : 'GET'),
      headers: {
        'content-type': 'application/json',
        ...(init.auth ? { authorization: `Bearer ${init.auth}` } : {}),
        ...(init.key ? { 'idempotency-key': crypto.randomUUID() } : {}),
      },
      body: init.body ? JSON.stringify(init.body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as any };
  };
}

export type Api = ReturnType<typeof apiClient>;

/** Signs up an account; its id and the API key shown once. */
export async function signUp(api: Api, label: string, roles = ['provider']) {
  const res = await api('/v1/accounts', { body: { email: `${label}.${crypto.randomUUID().slice(0, 8)}@example.com`, password: 'Harbor-Lantern-6613', roles } });
  expect(res.status).toBe(201);
  return { id: res.body.account.id as string, key: res.body.api_key.key as string };
}

/** Gives an account the admin role in the local libSQL server, as only a local platform allows. */
export async function makeOperator(libsqlPort: number, accountId: string): Promise<void> {
  const { createClient } = await import('@libsql/client/node');
  const db = createClient({ url: `http://127.0.0.1:${libsqlPort}` });
  try {
    await db.execute({ sql: `UPDATE accounts SET roles = json_insert(roles, '$[#]', 'admin') WHERE id = ?`, args: [accountId] });
  } finally {
    db.close();
  }
}

/** Runs the bundled runner to completion. */
export function runRunner(args: string[], env: NodeJS.ProcessEnv) {
  return spawnSync(process.execPath, [RUNNER, ...args], { env, encoding: 'utf8', timeout: 60_000 });
}

/** Long-running runner commands, each keeping its output; `killAll` ends them (afterAll). */
export function runnerProcesses() {
  const children: ChildProcess[] = [];
  return {
    start(args: string[], env: NodeJS.ProcessEnv) {
      const child = spawn(process.execPath, [RUNNER, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      const out = { log: '' };
      child.stdout!.on('data', (d) => (out.log += d));
      child.stderr!.on('data', (d) => (out.log += d));
      return { child, out };
    },
    killAll() {
      for (const child of children) child.kill('SIGKILL');
    },
  };
}
