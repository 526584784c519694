import { describe, expect, it } from 'vitest';
import { HeartbeatRequestSchema, type HeartbeatRequest } from '../../../src/contracts/runner.ts';
import { ApiError, NetworkError, type LooseHeartbeatResponse } from '../../../runner/src/api.ts';
import { Backoff, jitter, parseRetryAfter } from '../../../runner/src/backoff.ts';
import { EXIT, RunnerError } from '../../../runner/src/errors.ts';
import { HeartbeatLoop } from '../../../runner/src/heartbeat.ts';
import { memoryLogger } from '../../../runner/src/log.ts';
import { CommandState } from '../../../runner/src/state.ts';

describe('back-off', () => {
  it('doubles its ceiling from 1 s to 60 s, draws uniformly below it (full jitter), and resets', () => {
    const ceilings: number[] = [];
    const b = new Backoff({ random: () => 0.999999 });
    for (let i = 0; i < 10; i++) ceilings.push(Math.round(b.next() / 1000));
    expect(ceilings).toEqual([1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
    expect(b.failures).toBe(10);
    b.reset();
    expect(b.ceilingMs()).toBe(1_000);

    const low = new Backoff({ random: () => 0 });
    expect([low.next(), low.next(), low.next()]).toEqual([0, 0, 0]);
    const half = new Backoff({ random: () => 0.5, maxMs: 5_000 });
    expect([1, 2, 3, 4, 5].map(() => half.next())).toEqual([500, 1000, 2000, 2500, 2500]);
  });

  it('stays bounded after many failures', () => {
    const b = new Backoff({ maxMs: 60_000 });
    for (let i = 0; i < 10_000; i++) {
      const d = b.next();
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(60_000);
    }
  });

  it('jitters intervals by ±10 %', () => {
    expect(jitter(10_000, () => 0)).toBe(9_000);
    expect(jitter(10_000, () => 0.5)).toBe(10_000);
    expect(jitter(10_000, () => 0.999999)).toBe(11_000);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('7')).toBe(7_000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(10_000);
    expect(parseRetryAfter('soon')).toBeNull();
    expect(parseRetryAfter(null)).toBeNull();
  });
});

describe('heartbeat loop', () => {
  type Outcome = LooseHeartbeatResponse | Error;
  const ok = (next_interval_s = 10, commands: unknown[] = []): LooseHeartbeatResponse => ({ accepted: true, commands, next_interval_s });

  /** Runs the loop against scripted outcomes; records the requests and the waits between them. */
  async function run(outcomes: Outcome[], random = () => 0.5) {
    const log = memoryLogger();
    const sent: HeartbeatRequest[] = [];
    const waits: number[] = [];
    const stop = new AbortController();
    const handled: unknown[][] = [];
    const state = CommandState.load(null, 'node_1');
    state.record('cmd_old');
    const loop = new HeartbeatLoop({
      api: {
        api: 'http://api.test',
        heartbeat: async (body) => {
          sent.push(body);
          const next = outcomes.shift();
          if (outcomes.length === 0) stop.abort();
          if (!next || next instanceof Error) throw next ?? new Error('no outcome');
          return next;
        },
      },
      nodeId: 'node_1',
      bootId: '7d4f1c2e-9a3b-4c5d-8e6f-0a1b2c3d4e5f',
      metrics: async () => [{ index: 0, utilization_pct: 5, memory_used_mib: 10, temperature_c: 30, power_w: 50 }],
      leases: { snapshot: () => [], delivered: () => {} },
      state,
      commands: { handle: async (c) => void handled.push([...c]) },
      log,
      random,
      backoff: new Backoff({ random }),
      sleep: async (ms) => void waits.push(ms),
    });
    let error: unknown = null;
    await loop.run(stop.signal).catch((e: unknown) => (error = e));
    return { log: log.lines, sent, waits, error, handled, state };
  }

  const down = () => new NetworkError('cannot reach http://api.test: connect ECONNREFUSED 127.0.0.1:1');
  const http = (status: number, retryAfterMs: number | null = null) => new ApiError(status, 'x', `status ${status}`, 'req', retryAfterMs);

  it('sends valid heartbeats with increasing seq, waits next_interval_s ±10 %, acks once accepted', async () => {
    const r = await run([ok(10), ok(20, [{ id: 'c1' }]), ok(20)]);
    expect(r.sent.map((s) => s.seq)).toEqual([1, 2, 3]);
    for (const s of r.sent) HeartbeatRequestSchema.parse(s);
    expect(r.sent[0]!.acks).toEqual(['cmd_old']);
    expect(r.sent[1]!.acks).toEqual([]);
    expect(r.waits).toEqual([10_000, 20_000, 20_000]);
    expect(r.handled).toEqual([[{ id: 'c1' }]]);
    expect(r.log).toEqual(['info heartbeating to http://api.test as node node_1 every 10 s', 'info heartbeat interval is now 20 s']);
  });

  it('backs off while the API is down, logs the change once, recovers and resets', async () => {
    const r = await run([ok(), down(), down(), http(503), down(), ok(), down(), ok()], () => 0.999);
    expect(r.waits.map((w) => Math.round(w / 1000))).toEqual([11, 1, 2, 4, 8, 11, 1, 11]);
    expect(r.log).toEqual([
      'info heartbeating to http://api.test as node node_1 every 10 s',
      'warn API unreachable (cannot reach http://api.test: connect ECONNREFUSED 127.0.0.1:1); retrying with back-off (at most 60 s apart)',
      'info API answers again (after 4 failed heartbeats)',
      'warn API unreachable (cannot reach http://api.test: connect ECONNREFUSED 127.0.0.1:1); retrying with back-off (at most 60 s apart)',
      'info API answers again (after 1 failed heartbeat)',
    ]);
    // Acks stay pending until a heartbeat carrying them is accepted.
    expect(r.sent.map((s) => s.acks.length)).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('keeps acks when the API answers but does not accept', async () => {
    const r = await run([{ accepted: false, commands: [], next_interval_s: 10 }, ok()]);
    expect(r.sent.map((s) => s.acks)).toEqual([['cmd_old'], ['cmd_old']]);
    expect(r.state.pendingAcks()).toEqual([]);
  });

  it('honours Retry-After on 429', async () => {
    const r = await run([http(429, 30_000), ok()], () => 0.5);
    expect(r.waits[0]).toBe(30_000);
    expect(r.log[0]).toMatch(/^warn API rate-limits heartbeats/);
  });

  it('never retries in a tight loop (minimum wait)', async () => {
    const r = await run([down(), down(), ok()], () => 0);
    expect(r.waits.slice(0, 2)).toEqual([200, 200]);
  });

  it('stops with exit code 3 on 401', async () => {
    const r = await run([ok(), new ApiError(401, 'unauthorized', 'node token revoked', 'req', null), ok()]);
    expect(r.error).toBeInstanceOf(RunnerError);
    expect((r.error as RunnerError).exitCode).toBe(EXIT.revoked);
    expect((r.error as Error).message).toMatch(/refused this node's token \(node token revoked\)/);
    expect(r.sent).toHaveLength(2);
  });
});
