import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LOG_LATE_S, LOG_MAX_BATCH_CHARS, LOG_MAX_BATCH_LINES, LOG_MAX_LINE_CHARS, LogBatchRequestSchema, type LogLine } from '../../../src/contracts/runner.ts';
import { ApiClient } from '../../../runner/src/api.ts';
import { Backoff } from '../../../runner/src/backoff.ts';
import { memoryLogger } from '../../../runner/src/log.ts';
import { LogShipper } from '../../../runner/src/logs/shipper.ts';
import { apiError, tempDir, waitFor } from './helpers.ts';

type Answer = { status: number; body?: unknown; headers?: Record<string, string> } | 'hang-up';

/**
 * The platform's side of POST /v1/runner/leases/{id}/logs, as the contract says: lines below
 * next_seq are dropped as already stored, the rest kept. `answer` may say otherwise first.
 */
class FakeLogApi {
  readonly batches: { lease: string; at: number; lines: LogLine[] }[] = [];
  readonly stored = new Map<string, LogLine[]>();
  readonly next = new Map<string, number>();
  answer: (lease: string, lines: LogLine[]) => Answer | undefined = () => undefined;
  private server: http.Server | null = null;
  port = 0;

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async listen(port = 0): Promise<this> {
    this.server = http.createServer((req, res) => {
      let data = '';
      req.on('data', (c: Buffer) => (data += c.toString()));
      req.on('end', () => {
        const lease = /^\/v1\/runner\/leases\/([^/]+)\/logs$/.exec(req.url ?? '')?.[1];
        const parsed = LogBatchRequestSchema.safeParse(JSON.parse(data || 'null'));
        if (!lease || req.method !== 'POST' || req.headers.authorization !== 'Bearer nt_1' || !parsed.success) {
          res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify(apiError('invalid_request', 'bad batch')));
          return;
        }
        const lines = parsed.data.lines;
        this.batches.push({ lease, at: Date.now(), lines });
        const special = this.answer(lease, lines);
        if (special === 'hang-up') return void req.socket.destroy();
        if (special) return void res.writeHead(special.status, { 'content-type': 'application/json', ...special.headers }).end(special.body === undefined ? '' : JSON.stringify(special.body));
        const kept = this.stored.get(lease) ?? [];
        let next = this.next.get(lease) ?? 0;
        for (const line of lines) {
          if (line.seq < next) continue;
          kept.push(line);
          next = line.seq + 1;
        }
        this.stored.set(lease, kept);
        this.next.set(lease, next);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ next_seq: next }));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server!.address() as AddressInfo).port;
    return this;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  texts(lease: string): string[] {
    return (this.stored.get(lease) ?? []).map((l) => l.text);
  }
  seqs(lease: string): number[] {
    return (this.stored.get(lease) ?? []).map((l) => l.seq);
  }
}

const apis: FakeLogApi[] = [];
const shippers: LogShipper[] = [];
afterEach(async () => {
  await Promise.all(shippers.splice(0).map((s) => s.close(0)));
  await Promise.all(apis.splice(0).map((a) => a.close()));
});

async function fakeApi(port?: number) {
  const api = await new FakeLogApi().listen(port);
  apis.push(api);
  return api;
}

function shipper(url: string, dir: string, limits?: { maxBytes: number; segmentBytes: number }, now?: () => number) {
  const log = memoryLogger();
  const s = new LogShipper({ api: new ApiClient({ api: url, nodeToken: 'nt_1', timeoutMs: 2_000 }), dir, log, limits, now, flushMs: 20, backoff: () => new Backoff({ baseMs: 20, maxMs: 40 }) });
  shippers.push(s);
  return { shipper: s, log };
}

const numbered = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `line ${from + i}`);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('log shipper', () => {
  it('ships a lease’s lines in seq order, in batches within the line and character limits', async () => {
    const api = await fakeApi();
    const { shipper: s } = shipper(api.url, tempDir());
    const log = s.open('lse_1');
    for (const text of numbered(2_500)) log.line('stdout', text, false);
    const long = 'z'.repeat(LOG_MAX_LINE_CHARS);
    for (let i = 0; i < 300; i++) log.line('stderr', long, i % 2 === 0);
    log.end();
    await waitFor(() => s.pending().length === 0, 10_000, 'everything shipped');
    expect(api.seqs('lse_1')).toEqual(range(0, 2_800));
    expect(api.texts('lse_1').slice(0, 2_500)).toEqual(numbered(2_500));
    expect(api.stored.get('lse_1')![2_500]).toMatchObject({ stream: 'stderr', partial: true, text: long });
    expect(api.stored.get('lse_1')![2_501]).not.toHaveProperty('partial');
    for (const b of api.batches) {
      expect(b.lines.length).toBeLessThanOrEqual(LOG_MAX_BATCH_LINES);
      expect(b.lines.reduce((n, l) => n + l.text.length, 0)).toBeLessThanOrEqual(LOG_MAX_BATCH_CHARS);
    }
    expect(api.batches.flatMap((b) => b.lines.map((l) => l.seq))).toEqual(range(0, 2_800)); // each line sent once
    expect(api.batches.some((b) => b.lines.length === LOG_MAX_BATCH_LINES)).toBe(true);
  });

  it('keeps one request in flight per lease, and sends a trickle within a flush period', async () => {
    const api = await fakeApi();
    let inFlight = 0;
    let most = 0;
    const { shipper: s } = shipper(api.url, tempDir());
    api.answer = () => {
      most = Math.max(most, ++inFlight);
      setTimeout(() => inFlight--, 0);
      return undefined;
    };
    const log = s.open('lse_2');
    for (let i = 0; i < 5; i++) {
      log.line('stdout', `tick ${i}`, false);
      await waitFor(() => api.texts('lse_2').includes(`tick ${i}`), 2_000, `tick ${i}`);
    }
    log.end();
    expect(most).toBe(1);
    expect(api.seqs('lse_2')).toEqual(range(0, 5));
  });

  it('waits Retry-After on 429, then sends the same lines', async () => {
    const api = await fakeApi();
    let throttled = 1;
    api.answer = () => (throttled-- > 0 ? { status: 429, body: apiError('rate_limited', 'slow down'), headers: { 'retry-after': '1' } } : undefined);
    const { shipper: s } = shipper(api.url, tempDir());
    const log = s.open('lse_3');
    for (const text of numbered(3)) log.line('stdout', text, false);
    log.end();
    await waitFor(() => s.pending().length === 0, 5_000, 'everything shipped');
    expect(api.batches).toHaveLength(2);
    expect(api.batches[1]!.at - api.batches[0]!.at).toBeGreaterThanOrEqual(950);
    expect(api.batches[1]!.lines).toEqual(api.batches[0]!.lines);
    expect(api.texts('lse_3')).toEqual(numbered(3));
  });

  it('retries after a 5xx, a dropped connection and an API that is down, without losing or repeating a line', async () => {
    const dir = tempDir();
    const api = await fakeApi();
    const port = api.port;
    const answers: Answer[] = [{ status: 503, body: apiError('unavailable', 'later') }, 'hang-up'];
    api.answer = () => answers.shift();
    const { shipper: s, log: logger } = shipper(api.url, dir);
    const log = s.open('lse_4');
    for (const text of numbered(10)) log.line('stdout', text, false);
    await waitFor(() => api.seqs('lse_4').length === 10, 5_000, 'the first lines');
    await api.close();
    for (const text of numbered(10, 10)) log.line('stdout', text, false);
    const failures = () => logger.lines.filter((l) => l.includes('logs not delivered'));
    await waitFor(() => failures().length === 2, 5_000, 'a failure while the API is down');
    expect(failures()[1]).toMatch(/^warn lease lse_4: logs not delivered \(cannot reach http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED.*\); they wait on disk, retrying with back-off$/);
    const back = await fakeApi(port);
    back.next.set('lse_4', 10);
    for (const text of numbered(10, 20)) log.line('stdout', text, false);
    log.end();
    await waitFor(() => s.pending().length === 0, 5_000, 'everything shipped');
    expect(api.seqs('lse_4')).toEqual(range(0, 10));
    expect(back.seqs('lse_4')).toEqual(range(10, 30));
    expect(back.batches.flatMap((b) => b.lines.map((l) => l.seq))).toEqual(range(10, 30)); // nothing the API had, nothing twice
    expect(back.texts('lse_4')).toEqual(numbered(20, 10));
    expect(failures()).toHaveLength(2); // once per spell: 503 and the hang-up were one
    expect(logger.lines.filter((l) => l === 'info lease lse_4: logs are delivered again')).toHaveLength(2);
  });

  it('sends again from next_seq when the API answers one below what was sent', async () => {
    const api = await fakeApi();
    const { shipper: s } = shipper(api.url, tempDir());
    let forget = true;
    api.answer = (lease, lines) => {
      if (!forget || lines.at(-1)!.seq < 5) return undefined;
      // The platform lost seqs 3 and up: it asks for them again.
      forget = false;
      api.stored.set(lease, api.stored.get(lease)!.filter((l) => l.seq < 3));
      api.next.set(lease, 3);
      return { status: 200, body: { next_seq: 3 } };
    };
    const log = s.open('lse_5');
    for (const text of numbered(3)) log.line('stdout', text, false);
    await waitFor(() => api.seqs('lse_5').length === 3, 5_000, 'the first lines');
    for (const text of numbered(5, 3)) log.line('stdout', text, false);
    log.end();
    await waitFor(() => s.pending().length === 0, 5_000, 'everything shipped');
    expect(api.seqs('lse_5')).toEqual(range(0, 8));
    expect(api.batches.map((b) => b.lines.map((l) => l.seq))).toEqual([[0, 1, 2], [3, 4, 5, 6, 7], [3, 4, 5, 6, 7]]);
  });

  it('drops a lease’s spool on 404 and on 409 lease_ended, and only the batch on 400', async () => {
    const dir = tempDir();
    const api = await fakeApi();
    api.answer = (lease, lines) => {
      if (lease === 'lse_unknown') return { status: 404, body: apiError('not_found', 'no such lease') };
      if (lease === 'lse_over') return { status: 409, body: apiError('lease_ended', 'the lease ended') };
      if (lease === 'lse_bad' && lines[0]!.seq === 0) return { status: 400, body: apiError('invalid_request', 'lines.0.at: bad') };
      return undefined;
    };
    const { shipper: s, log: logger } = shipper(api.url, dir);
    const logs = Object.fromEntries(['lse_unknown', 'lse_over', 'lse_bad'].map((id) => [id, s.open(id)]));
    for (const log of Object.values(logs)) log.line('stdout', 'first', false);
    await waitFor(() => !fs.existsSync(path.join(dir, 'lse_unknown')) && !fs.existsSync(path.join(dir, 'lse_over')), 5_000, 'the spools dropped');
    await waitFor(() => api.batches.some((b) => b.lease === 'lse_bad'), 5_000, 'the bad batch');
    for (const log of Object.values(logs)) log.line('stdout', 'second', false);
    for (const log of Object.values(logs)) log.end();
    await waitFor(() => s.pending().length === 0, 5_000, 'everything settled');
    expect(api.batches.filter((b) => b.lease !== 'lse_bad').map((b) => [b.lease, b.lines.length])).toEqual([['lse_unknown', 1], ['lse_over', 1]]);
    expect(api.texts('lse_bad')).toEqual(['second']);
    expect(api.seqs('lse_bad')).toEqual([1]);
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(logger.lines).toEqual(
      expect.arrayContaining([
        'warn lease lse_unknown: the API knows no such lease of this node (404); its logs are dropped',
        'info lease lse_over: the API takes no more of its logs (the lease ended); the rest is dropped',
        'error lease lse_bad: the API refused log lines 0-0 (HTTP 400: lines.0.at: bad); they are dropped',
      ]),
    );
  });

  it('keeps lines on disk while the API is down, drops the oldest past the bound, and ships the rest after a restart', async () => {
    const dir = tempDir();
    const api = await fakeApi();
    api.answer = () => ({ status: 503, body: apiError('unavailable', 'down') });
    const first = shipper(api.url, dir, { maxBytes: 8_192, segmentBytes: 1_024 });
    const log = first.shipper.open('lse_6');
    for (const text of numbered(400)) log.line('stdout', text, false);
    await waitFor(() => first.log.lines.some((l) => /log lines dropped, the oldest first/.test(l)), 5_000, 'lines dropped');
    log.detach(); // the runner stops; the workload (a container) goes on
    await first.shipper.close(100);
    const onDisk = fs.readdirSync(path.join(dir, 'lse_6'));
    const bytes = onDisk.reduce((n, f) => n + fs.statSync(path.join(dir, 'lse_6', f)).size, 0);
    expect(bytes).toBeLessThanOrEqual(8_192 + 1_024);
    expect(onDisk).toContain('meta.json');

    api.answer = () => undefined;
    const second = shipper(api.url, dir, { maxBytes: 8_192, segmentBytes: 1_024 });
    const again = second.shipper.open('lse_6'); // adopted: its seqs go on
    for (const text of numbered(2, 400)) again.line('stdout', text, false);
    again.end();
    second.shipper.resume();
    await waitFor(() => second.shipper.pending().length === 0, 5_000, 'everything shipped');
    const seqs = api.seqs('lse_6');
    // The newest lines, each once and in order, up to the last; the oldest went to the bound.
    expect(seqs.at(-1)).toBe(401);
    expect(seqs[0]).toBeGreaterThan(0);
    expect(seqs).toEqual(range(seqs[0]!, 402));
    expect(api.texts('lse_6')).toEqual(numbered(402 - seqs[0]!, seqs[0]!));
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('after a restart, ships what a lease that ended left behind, then forgets it', async () => {
    const dir = tempDir();
    const down = await fakeApi();
    down.answer = () => ({ status: 503, body: apiError('unavailable', 'down') });
    const first = shipper(down.url, dir);
    const log = first.shipper.open('lse_7');
    for (const text of numbered(5)) log.line('stderr', text, false);
    log.end();
    await first.shipper.close(50);
    expect(fs.existsSync(path.join(dir, 'lse_7'))).toBe(true);

    const api = await fakeApi();
    const second = shipper(api.url, dir);
    second.shipper.resume();
    await waitFor(() => second.shipper.pending().length === 0, 5_000, 'everything shipped');
    expect(api.texts('lse_7')).toEqual(numbered(5));
    expect(api.stored.get('lse_7')!.every((l) => l.stream === 'stderr')).toBe(true);
    expect(second.log.lines).toContain('info lease lse_7: sending the log lines an earlier run left unsent');
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('gives up on a lease’s lines LOG_LATE_S after its end', async () => {
    const dir = tempDir();
    const api = await fakeApi();
    api.answer = () => ({ status: 503, body: apiError('unavailable', 'down') });
    let clock = Date.now();
    const { shipper: s, log: logger } = shipper(api.url, dir, undefined, () => clock);
    const log = s.open('lse_8');
    log.line('stdout', 'too late', false);
    log.end();
    await waitFor(() => logger.lines.some((l) => l.includes('logs not delivered')), 5_000, 'a failed try'); // the clock stands still: no retry until it moves
    expect(s.pending()).toEqual(['lse_8']);
    clock += (LOG_LATE_S + 1) * 1000;
    await waitFor(() => s.pending().length === 0, 5_000, 'the lease forgotten');
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(logger.lines).toContain(`warn lease lse_8: log lines not delivered within ${LOG_LATE_S} s of its end dropped`);
  });

  it('keeps no spool for a lease id that cannot name a folder', async () => {
    const dir = tempDir();
    const { shipper: s, log } = shipper('http://127.0.0.1:1', dir);
    const l = s.open('../../etc');
    l.line('stdout', 'x', false);
    l.end();
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(log.lines).toEqual(['warn lease "../../etc": its id cannot name a spool folder; its logs are not kept']);
  });
});
