// Shared bits of the runner tests: fixture paths, temp folders, a fake Gridlease API.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const SMI_DIR = path.join(ROOT, 'test/fixtures/nvidia-smi');
export const FAKE_SMI = path.join(SMI_DIR, 'fake-nvidia-smi');
export const DOCKER_DIR = path.join(ROOT, 'test/fixtures/docker');
export const CLI = path.join(ROOT, 'runner/src/cli.ts');

export const fixture = (name: string) => fs.readFileSync(path.join(SMI_DIR, name), 'utf8');

const made: string[] = [];
// Each test file gets its own copy of this module: its folders go when the file is done.
afterAll(() => {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

export function tempDir(prefix = 'gridlease-runner-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export const mode = (file: string) => fs.statSync(file).mode & 0o777;

export async function waitFor<T>(check: () => T | undefined | null | false, timeoutMs = 5_000, what = 'condition'): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface Recorded {
  method: string;
  url: string;
  auth: string | undefined;
  body: unknown;
}

export type Handler = (req: Recorded) => { status: number; body?: unknown; headers?: Record<string, string> } | undefined;

/** A tiny fake API: records every request; `handler` answers (undefined → 404 in the API's error shape). */
export class FakeApi {
  readonly requests: Recorded[] = [];
  handler: Handler = () => undefined;
  private server: http.Server | null = null;
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async listen(port = 0): Promise<this> {
    const server = http.createServer((req, res) => {
      let data = '';
      req.on('data', (c: Buffer) => (data += c.toString()));
      req.on('end', () => {
        let body: unknown = undefined;
        try {
          body = data ? JSON.parse(data) : undefined;
        } catch {
          body = data;
        }
        const rec: Recorded = { method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization, body };
        this.requests.push(rec);
        const reply = this.handler(rec) ?? { status: 404, body: apiError('not_found', 'no such route') };
        res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
        res.end(reply.body === undefined ? '' : JSON.stringify(reply.body));
      });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  heartbeats(): Recorded[] {
    return this.requests.filter((r) => r.url === '/v1/runner/heartbeats');
  }
}

export const apiError = (code: string, message: string) => ({ error: { code, message, request_id: 'req_test' } });

export { freePort } from '../../support/platform.ts';
