// Renters reach what they rent: workload logs (runner → Lease object → renter, paged and
// followed), endpoints from the node's public host, and the refusals around both. Imported by
// leases.test.ts: its leases use that file's region.
import { evictDurableObject, runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { Lease } from '../../src/durable/lease.ts';
import { LOG_LATE_S, LOG_MAX_BATCH_LINES } from '../../src/contracts/runner.ts';
import { publicHostProblem } from '../../src/routes/runner.ts';
import { call, expectError, json, signUp } from './support.ts';
import { leased, record, report, stub, type Setup } from './lease-support.ts';

// Each lease here at a price of its own below every other test's, so that its bid can only
// match its own ask in this shared region; and the ask is cancelled at once, so that the GPUs
// its lease frees are not offered to the other tests' bids.
let leases = 0;
async function fresh(): Promise<Setup> {
  const s = await leased('h100-80gb', { price: (1.3 - 0.01 * leases++).toFixed(2) });
  const cancelled = await call(`/v1/orders/${s.askId}`, { method: 'DELETE', auth: s.provider.apiKey });
  expect(cancelled.status).toBe(200);
  return s;
}

const line = (seq: number, text: string, stream: 'stdout' | 'stderr' = 'stdout', at = new Date().toISOString()) => ({ seq, at, stream, text });
const ship = (s: Setup, lines: unknown[], token = s.node.token, leaseId = s.leaseId) =>
  call(`/v1/runner/leases/${leaseId}/logs`, { method: 'POST', auth: token, body: { lines } });
const logs = async (s: Setup, query = '', auth = s.renter.apiKey) => call(`/v1/leases/${s.leaseId}/logs${query}`, { auth });
const publicHost = (s: Setup, host: string | null) => call('/v1/runner/public-host', { method: 'PUT', auth: s.node.token, body: { public_host: host } });

/** Reads an SSE body until `until` says stop (or the stream ends); returns the events. */
async function readEvents(res: Response, until: (events: Array<{ event: string; id?: string; data: string }>) => boolean, timeoutMs = 10_000) {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const events: Array<{ event: string; id?: string; data: string }> = [];
  let buf = '';
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !until(events)) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let at: number;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, at);
      buf = buf.slice(at + 2);
      if (block.startsWith(':')) continue;
      const ev: { event: string; id?: string; data: string } = { event: 'message', data: '' };
      for (const l of block.split('\n')) {
        if (l.startsWith('event: ')) ev.event = l.slice(7);
        else if (l.startsWith('id: ')) ev.id = l.slice(4);
        else if (l.startsWith('data: ')) ev.data += l.slice(6);
      }
      events.push(ev);
    }
  }
  await reader.cancel().catch(() => undefined);
  return events;
}

describe('lease logs', () => {
  it('stores batches in seq order, skips a retried batch, counts a gap as lost, and shows them to the renter only', async () => {
    const s = await fresh();
    await report(s, { type: 'started' });
    const first = await ship(s, [line(0, 'hello'), line(1, 'oops', 'stderr'), line(2, '')]);
    expect(first.status).toBe(200);
    expect(await json(first)).toEqual({ next_seq: 3 });
    // The same batch again (a retry whose answer was lost), and one overlapping it.
    expect(await json(await ship(s, [line(0, 'hello'), line(1, 'oops', 'stderr'), line(2, '')]))).toEqual({ next_seq: 3 });
    expect(await json(await ship(s, [line(2, ''), line(3, 'three')]))).toEqual({ next_seq: 4 });
    // Seqs 4 and 5 never came (the runner's spool dropped them).
    expect(await json(await ship(s, [line(6, 'six')]))).toEqual({ next_seq: 7 });

    const page = await json(await logs(s));
    expect(page.data.map((l: any) => [l.seq, l.stream, l.text])).toEqual([
      [0, 'stdout', 'hello'],
      [1, 'stderr', 'oops'],
      [2, 'stdout', ''],
      [3, 'stdout', 'three'],
      [6, 'stdout', 'six'],
    ]);
    expect(page).toMatchObject({ next_seq: 7, ended: false, exit_code: null, lost: 2, dropped: 0 });
    expect((await json(await logs(s, '?since=3&limit=1'))).data.map((l: any) => l.seq)).toEqual([3]);
    expect((await json(await logs(s, '?since=3&limit=1'))).next_seq).toBe(4);
    expect((await json(await logs(s, '?tail=2'))).data.map((l: any) => l.seq)).toEqual([3, 6]);
    expect((await json(await logs(s, '?since=7'))).data).toEqual([]);

    // Nobody else reads them: another renter, the provider, nobody signed in.
    const other = await signUp();
    await expectError(await logs(s, '', other.apiKey), 404, 'not_found');
    await expectError(await logs(s, '', s.provider.apiKey), 404, 'not_found');
    await expectError(await call(`/v1/leases/${s.leaseId}/logs`), 401, 'unauthorized');
    await expectError(await call(`/v1/leases/${s.leaseId}/logs/stream`, { auth: other.apiKey }), 404, 'not_found');
    for (const bad of ['?since=-1', '?since=1e2', '?since=0x10', '?limit=0', '?limit=5001', '?tail=abc', '?extra=1']) await expectError(await logs(s, bad), 400, 'validation_failed');
  });

  it('keeps control characters and unicode exactly, and refuses bad batches whole', async () => {
    const s = await fresh();
    await report(s, { type: 'started' });
    const nasty = '\u001b]0;pwned\u0007\u001b[2J red \u001b[31mX\u001b[0m \u0000 \ufffd 漢字 🚀';
    expect((await ship(s, [line(0, nasty)])).status).toBe(200);
    expect((await json(await logs(s))).data[0].text).toBe(nasty);

    const before = await json(await logs(s));
    // Out of order, a line over the limit, too many lines, bad fields, another node's lease, no token.
    await expectError(await ship(s, [line(2, 'b'), line(1, 'a')]), 400, 'validation_failed');
    await expectError(await ship(s, [line(1, 'x'.repeat(8193))]), 400, 'validation_failed');
    await expectError(await ship(s, Array.from({ length: LOG_MAX_BATCH_LINES + 1 }, (_, i) => line(i + 1, 'x'))), 400, 'validation_failed');
    await expectError(await ship(s, [{ ...line(1, 'x'), stream: 'stdin' }]), 400, 'validation_failed');
    await expectError(await ship(s, [{ ...line(1, 'x'), seq: -1 }]), 400, 'validation_failed');
    await expectError(await ship(s, [{ ...line(1, 'x'), extra: true }]), 400, 'validation_failed');
    await expectError(await ship(s, []), 400, 'validation_failed');
    const elsewhere = await fresh();
    await expectError(await ship(s, [line(1, 'x')], elsewhere.node.token), 404, 'not_found');
    await expectError(await ship(s, [line(1, 'x')], s.node.token, 'lse_doesnotexist'), 404, 'not_found');
    await expectError(await ship(s, [line(1, 'x')], s.renter.apiKey), 401, 'unauthorized');
    // Over a megabyte of text in one batch.
    const big = Array.from({ length: 130 }, (_, i) => line(i + 1, 'y'.repeat(8192)));
    const tooBig = await ship(s, big);
    expect([413]).toContain(tooBig.status);
    expect(await json(await logs(s))).toEqual(before);
  });

  it('throttles a flood with 429 and Retry-After, keeping what it stored; evicted and rebuilt, it goes on where it was', async () => {
    const s = await fresh();
    await report(s, { type: 'started' });
    const chunk = (from: number) => Array.from({ length: 120 }, (_, i) => line(from + i, 'z'.repeat(8000)));
    let seq = 0;
    let limited: Response | null = null;
    for (let i = 0; i < 20; i++) {
      const res = await ship(s, chunk(seq));
      if (res.status === 429) {
        limited = res;
        break;
      }
      expect(res.status).toBe(200);
      seq += 120;
    }
    expect(limited).not.toBeNull();
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await json(limited!)).error.code).toBe('rate_limited');
    // At most the kept size (8 MiB of text) is stored; older lines were dropped, counted.
    const page = await json(await logs(s, '?tail=5000&limit=5000'));
    expect(page.next_seq).toBe(seq);
    expect(page.dropped + page.data.length).toBe(seq);
    expect(page.data.reduce((n: number, l: any) => n + l.text.length + 64, 0)).toBeLessThanOrEqual(8 * 1024 * 1024);

    await evictDurableObject(stub(s.leaseId));
    const again = await json(await logs(s, '?tail=1'));
    expect(again.data.map((l: any) => l.seq)).toEqual([seq - 1]);
  });

  it('follows live: backlog, then new lines, then `end` with the exit code; resumes from Last-Event-ID', async () => {
    const s = await fresh();
    await report(s, { type: 'started' });
    await ship(s, [line(0, 'a'), line(1, 'b')]);
    const res = await call(`/v1/leases/${s.leaseId}/logs/stream`, { auth: s.renter.apiKey });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reading = readEvents(res, (ev) => ev.some((e) => e.event === 'end'));
    await new Promise((r) => setTimeout(r, 200));
    await ship(s, [line(2, 'c'), line(3, 'd', 'stderr')]);
    await report(s, { type: 'exited', exit_code: 3 });
    const events = await reading;
    expect(events.filter((e) => e.event === 'log').map((e) => [e.id, JSON.parse(e.data).text])).toEqual([
      ['0', 'a'],
      ['1', 'b'],
      ['2', 'c'],
      ['3', 'd'],
    ]);
    expect(events.at(-1)).toMatchObject({ event: 'end', data: JSON.stringify({ exit_code: 3 }) });

    // Reconnecting after id 1 sends the rest, then `end` at once (the lease is over and quiet).
    const resumed = await call(`/v1/leases/${s.leaseId}/logs/stream`, { auth: s.renter.apiKey, headers: { 'last-event-id': '1' } });
    const rest = await readEvents(resumed, (ev) => ev.some((e) => e.event === 'end'));
    expect(rest.filter((e) => e.event === 'log').map((e) => e.id)).toEqual(['2', '3']);
    await expectError(await call(`/v1/leases/${s.leaseId}/logs/stream`, { auth: s.renter.apiKey, headers: { 'last-event-id': 'x' } }), 400, 'validation_failed');

    // The ended lease shows its exit code and last lines.
    const view = (await json(await call(`/v1/leases/${s.leaseId}`, { auth: s.renter.apiKey }))).lease;
    expect(view.exit_code).toBe(3);
    expect(view.last_lines.map((l: any) => l.text)).toEqual(['a', 'b', 'c', 'd']);
    expect((await json(await call(`/v1/leases/${s.leaseId}`, { auth: s.provider.apiKey }))).lease.last_lines).toBeNull();
    expect((await json(await logs(s))).ended).toBe(true);
  });

  it('closes a follower that stops reading instead of buffering without end', async () => {
    const s = await fresh();
    await report(s, { type: 'started' });
    const res = await call(`/v1/leases/${s.leaseId}/logs/stream`, { auth: s.renter.apiKey });
    expect(res.status).toBe(200);
    // Never read; ship well over the follower's 1 MiB queue.
    for (let i = 0; i < 6; i++) expect((await ship(s, Array.from({ length: 40 }, (_, j) => line(i * 40 + j, 'q'.repeat(8000))))).status).toBe(200);
    const followers = await runInDurableObject(stub(s.leaseId), (o: Lease) => (o as unknown as { log: { followerCount(): number } }).log.followerCount());
    expect(followers).toBe(0);
    await res.body?.cancel().catch(() => undefined);
  });

  it('takes lines for LOG_LATE_S after the end, then 409 lease_ended; the logs go once the retention is over', async () => {
    const s = await fresh();
    await report(s, { type: 'started' });
    await ship(s, [line(0, 'last words')]);
    expect((await call(`/v1/leases/${s.leaseId}/terminate`, { method: 'POST', auth: s.renter.apiKey, headers: { 'idempotency-key': crypto.randomUUID() } })).status).toBe(200);
    const ended = (await record(s.leaseId)).history.at(-1)!.at;
    expect((await ship(s, [line(1, 'in flight')])).status).toBe(200);
    await runInDurableObject(stub(s.leaseId), async (o: Lease) => {
      const late = await o.appendLogs(s.node.nodeId, [line(2, 'too late')], ended + LOG_LATE_S * 1000 + 1);
      expect(late).toEqual({ ok: false, reason: 'lease_ended' });
    });
    expect((await json(await logs(s))).data.map((l: any) => l.text)).toEqual(['last words', 'in flight']);
    // An alarm is set (the lifecycle's next step, at the latest the retention's end, 7 days), and
    // the log goes only from then.
    await runInDurableObject(stub(s.leaseId), async (o: Lease, state: DurableObjectState) => {
      const alarm = await state.storage.getAlarm();
      expect(alarm).not.toBeNull();
      expect(alarm!).toBeLessThanOrEqual(ended + 7 * 86_400_000);
      expect(await o.purgeLogsIfDue(ended + 7 * 86_400_000 - 1)).toBe(false);
      expect(await o.purgeLogsIfDue(ended + 7 * 86_400_000)).toBe(true);
    });
    expect((await json(await logs(s))).data).toEqual([]);
  });
});

describe('lease endpoints', () => {
  it("shows each workload port at the node's public host to the renter once running; a clear state without a host", async () => {
    const s = await fresh();
    const view = async (auth = s.renter.apiKey) => (await json(await call(`/v1/leases/${s.leaseId}`, { auth }))).lease;
    expect(await view()).toMatchObject({ endpoints: [], endpoints_state: 'not_running' });
    await report(s, { type: 'started', ports: { '8080': 40_001, '22': 40_002 } });
    expect(await view()).toMatchObject({ endpoints: [], endpoints_state: 'no_public_host' });
    expect((await publicHost(s, 'gpu-7.example.com')).status).toBe(200);
    expect(await view()).toMatchObject({
      endpoints_state: 'ready',
      endpoints: [
        { port: 22, host: 'gpu-7.example.com', host_port: 40_002, url: 'http://gpu-7.example.com:40002' },
        { port: 8080, host: 'gpu-7.example.com', host_port: 40_001, url: 'http://gpu-7.example.com:40001' },
      ],
    });
    const listed = (await json(await call('/v1/leases?role=renter', { auth: s.renter.apiKey }))).data.find((l: any) => l.id === s.leaseId);
    expect(listed.endpoints_state).toBe('ready');
    // The provider and other accounts never see them.
    expect(await view(s.provider.apiKey)).toMatchObject({ endpoints: [], endpoints_state: null, ports: null });
    await expectError(await call(`/v1/leases/${s.leaseId}`, { auth: (await signUp()).apiKey }), 404, 'not_found');
    expect((await publicHost(s, '2001:db8::7')).status).toBe(200);
    expect((await view()).endpoints[0].url).toBe('http://[2001:db8::7]:40002');
  });

  it('refuses a malformed public host (400, nothing stored); production refuses private and loopback addresses', async () => {
    const s = await fresh();
    await report(s, { type: 'started', ports: { '8080': 40_003 } });
    expect((await publicHost(s, 'ok.example.net')).status).toBe(200);
    for (const bad of ['http://x.example.com', 'x.example.com:8080', 'a b', '', 'x'.repeat(254), '-lead.example.com', 'exa_mple.com']) {
      await expectError(await publicHost(s, bad), 400, 'validation_failed');
    }
    await expectError(await call('/v1/runner/public-host', { method: 'PUT', auth: s.renter.apiKey, body: { public_host: 'x.example.com' } }), 401, 'unauthorized');
    expect((await json(await call(`/v1/leases/${s.leaseId}`, { auth: s.renter.apiKey }))).lease.endpoints[0].host).toBe('ok.example.net');
    // The production rule (the test server, like development, takes local addresses).
    for (const host of ['127.0.0.1', '10.1.2.3', '192.168.0.7', '169.254.1.1', '::1', 'fd00::1', 'localhost', 'box.local', '0.0.0.0']) {
      expect(publicHostProblem(host, 'production'), host).not.toBeNull();
    }
    for (const host of ['8.8.4.4', 'gpu.example.com', '2606:4700::1111']) {
      expect(publicHostProblem(host, 'production'), host).toBeNull();
    }
    expect(publicHostProblem('127.0.0.1', 'development')).toBeNull();
  });
});
