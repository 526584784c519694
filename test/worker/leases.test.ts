import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { eq } from 'drizzle-orm';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nodes } from '../../src/db/schema.ts';
import type { LeaseRecord } from '../../src/durable/lease.ts';
import { balances, call, db, expectError, idem, json } from './support.ts';
import { beat, expectEscrowBalanced, onlineNode } from './trading.ts';
// Overlapping calls, late trades, the last seconds, extension holds, webhooks and the penalty:
// in this file because its Collectors are this region's (one test file per region).
import './lease-safety.ts';
// Logs and endpoints of this region's leases.
import './lease-logs.ts';
import { confirmEvery10s, elapse, HOUR_MS, leased, ledgerOf, record, REGION, report, stub, type Setup } from './lease-support.ts';

const MODELS = ['h200-141gb', 'l40-48gb', 'rtx-4080-16gb', 'rtx-3080-10gb', 'v100-16gb', 'rtx-6000-ada-48gb'];
let runs = 0;

const usd = (micro: bigint | number) => (Number(micro) / 1e6).toFixed(2);

describe('a lease that runs to its end', () => {
  it('bills every confirmed second, pays the provider less the fee, and frees the GPUs', async () => {
    const s = await leased('h100-80gb');
    expect((await record(s.leaseId)).state).toBe('provisioning');
    const started = await report(s, { type: 'started', ports: { '8888': 30_001 } });
    expect(started.status).toBe(202);
    // Repeated report (a runner retry): nothing changes.
    expect((await report(s, { type: 'started' })).status).toBe(202);
    const r = await record(s.leaseId);
    expect(r.state).toBe('running');
    expect(r.endsAt! - r.startedAt!).toBe(HOUR_MS);

    // An hour passes with a heartbeat every 10 s, the last one just past the end.
    await elapse(s.leaseId, HOUR_MS + 10_000);
    const { startedAt } = await record(s.leaseId);
    await confirmEvery10s(s, startedAt!, startedAt! + HOUR_MS + 10_000);
    await runDurableObjectAlarm(stub(s.leaseId));

    const done = await record(s.leaseId);
    expect(done.state).toBe('completed');
    expect(done.billed).toBe('4000000');
    expect(done.steps).toMatchObject({ refunded: true, stopped: true, gpusReturned: true, synced: true });
    expect(await balances(s.renter)).toMatchObject({ USD: { available: '46.00', held: '0.00' } });
    expect(await balances(s.provider)).toMatchObject({ USD: { available: '3.80', held: '0.00' } });
    const entries = await ledgerOf(s.leaseId);
    const fees = entries.filter((e) => e.accountKind === 'fees').reduce((a, e) => a + BigInt(e.amount), 0n);
    expect(usd(fees)).toBe('0.20');
    expect(entries.reduce((a, e) => a + BigInt(e.amount), 0n)).toBe(0n);

    const view = await json(await call(`/v1/leases/${s.leaseId}`, { auth: s.renter.apiKey }));
    expect(view.lease).toMatchObject({ state: 'completed', billed: '4.00', ports: { '8888': 30_001 } });
    expect(view.lease.history.map((h: { state: string }) => h.state)).toEqual(['provisioning', 'running', 'completed']);
    expect((await json(await call('/v1/leases?state=completed', { auth: s.provider.apiKey }))).data.map((l: { id: string }) => l.id)).toEqual([s.leaseId]);

    // The node is told to stop, and its GPUs are on offer again.
    const reply = await beat(s.node, 2);
    expect(reply.commands.map((c: { type: string }) => c.type)).toContain('stop_lease');
    expect((await json(await call(`/v1/orders/${s.askId}`, { auth: s.provider.apiKey }))).order).toMatchObject({ status: 'open', remaining_gpus: 2 });

    // Alarms again change nothing.
    await runDurableObjectAlarm(stub(s.leaseId));
    expect(await balances(s.provider)).toMatchObject({ USD: { available: '3.80' } });
  });

  it('settles periodically while running, once per period, and survives eviction mid-lease', async () => {
    const s = await leased('a100-80gb', { asset: 'GRID', funds: '100.00' });
    await report(s, { type: 'started' });
    await elapse(s.leaseId, 120_000);
    const { startedAt } = await record(s.leaseId);
    await confirmEvery10s(s, startedAt!, startedAt! + 120_000);
    await evictDurableObject(stub(s.leaseId));
    await runDurableObjectAlarm(stub(s.leaseId));
    const r = await record(s.leaseId);
    expect(r.state).toBe('running');
    expect(r.settlements).toBe(1);
    // 120 s of 2 GPUs at $2/h = $0.1333…; less 10% = $0.12; at $0.25 per GRID = 0.48 GRID.
    expect(r.billed).toBe('480000');
    // Less the 5% fee: 0.456 GRID to the provider.
    expect((await balances(s.provider)).GRID).toMatchObject({ available: '0.456' });
    await expectEscrowBalanced([s.renter]);
    await runDurableObjectAlarm(stub(s.leaseId));
    expect((await record(s.leaseId)).settlements).toBe(1);
    const seen = await json(await call(`/v1/leases/${s.leaseId}`, { auth: s.provider.apiKey }));
    expect(seen.lease.settlements).toMatchObject([{ n: 1, amount: '0.48', fee: '0.024' }]);
    expect(Date.parse(seen.lease.settlements[0].posted_at)).toBeGreaterThanOrEqual(Date.parse(seen.lease.settlements[0].due_at));
    await evictDurableObject(stub(s.leaseId));
    expect((await record(s.leaseId)).billed).toBe('480000');
  });
});

describe('failures refund automatically', () => {
  it('fails a lease whose heartbeats stop, bills only the confirmed seconds and lowers the node’s reliability', async () => {
    const s = await leased('l40s-48gb');
    await report(s, { type: 'started' });
    await elapse(s.leaseId, 100_000);
    const { startedAt } = await record(s.leaseId);
    await confirmEvery10s(s, startedAt!, startedAt! + 100_000);
    // Silence: 50 s since the last confirmation, past the 45 s grace.
    await elapse(s.leaseId, 50_000);
    await runDurableObjectAlarm(stub(s.leaseId));
    const r = await record(s.leaseId);
    expect(r.state).toBe('failed');
    expect(r.history.at(-1)!.reason).toMatch(/no heartbeat/);
    // 100 s × 2 GPUs × $2/h = $0.111111.
    expect(r.billed).toBe('111111');
    expect(await balances(s.renter)).toMatchObject({ USD: { available: '49.888889', held: '0.00' } });
    const [node] = await db().select().from(nodes).where(eq(nodes.id, s.node.nodeId));
    expect(node!.reliabilityPpm).toBe(850_000);
  });

  it('fails a lease the runner never starts within the provisioning timeout, at no cost', async () => {
    const s = await leased('a6000-48gb');
    await elapse(s.leaseId, 121_000);
    await runDurableObjectAlarm(stub(s.leaseId));
    const r = await record(s.leaseId);
    expect(r.state).toBe('failed');
    expect(r.billed).toBe('0');
    expect(await balances(s.renter)).toMatchObject({ USD: { available: '50.00', held: '0.00' } });
    expect((await balances(s.provider)).USD?.available ?? '0.00').toBe('0.00');
  });

  it('takes the runner’s failure report and refunds everything when nothing ran', async () => {
    const s = await leased('rtx-4090-24gb');
    expect((await report(s, { type: 'failed', reason: 'image not found' })).status).toBe(202);
    const r = await record(s.leaseId);
    expect(r.state).toBe('failed');
    expect(r.history.at(-1)!.reason).toContain('image not found');
    expect(await balances(s.renter)).toMatchObject({ USD: { available: '50.00', held: '0.00' } });
  });
});

describe('the renter ends a lease', () => {
  it('cancels a provisioning lease for free', async () => {
    const s = await leased('l4-24gb');
    const res = await call(`/v1/leases/${s.leaseId}/terminate`, { method: 'POST', auth: s.renter.apiKey });
    expect(res.status).toBe(200);
    expect((await json(res)).lease).toMatchObject({ state: 'cancelled', billed: '0.00' });
    expect(await balances(s.renter)).toMatchObject({ USD: { available: '50.00', held: '0.00' } });
    await expectError(await call(`/v1/leases/${s.leaseId}/terminate`, { method: 'POST', auth: s.provider.apiKey }), 404, 'not_found');
  });

  it('terminates a running lease, billed to now', async () => {
    const s = await leased('t4-16gb');
    await report(s, { type: 'started' });
    await elapse(s.leaseId, 30_000);
    const { startedAt } = await record(s.leaseId);
    await confirmEvery10s(s, startedAt!, startedAt! + 30_000);
    const res = await call(`/v1/leases/${s.leaseId}/terminate`, { method: 'POST', auth: s.renter.apiKey });
    expect((await json(res)).lease.state).toBe('completed');
    // The final settlement waits for the heartbeats of the last seconds (one grace period at most).
    expect((await record(s.leaseId)).steps.refunded).toBe(false);
    await elapse(s.leaseId, 46_000);
    await runDurableObjectAlarm(stub(s.leaseId));
    // 30 s × 2 GPUs × $2/h = $0.033333.
    expect((await record(s.leaseId)).billed).toBe('33333');
    expect(await balances(s.renter)).toMatchObject({ USD: { available: '49.966667', held: '0.00' } });
  });
});

describe('extending a lease', () => {
  const extend = (s: Setup, seconds: number, headers: Record<string, string> = idem()) =>
    call(`/v1/leases/${s.leaseId}/extend`, { auth: s.renter.apiKey, body: { duration_s: seconds }, headers });

  it('holds the extra time first, applies it once per key, and tells the runner', async () => {
    const s = await leased('a100-40gb', { funds: '7.00', maxDurationS: 7200 });
    await report(s, { type: 'started' });
    const before = await record(s.leaseId);
    const key = idem();
    const res = await extend(s, 1800, key);
    expect(res.status).toBe(200);
    expect((await json(res)).lease).toMatchObject({ duration_s: 5400, amount: '6.00' });
    expect((await extend(s, 1800, key)).status).toBe(200);
    const after = await record(s.leaseId);
    expect(after.endsAt! - before.endsAt!).toBe(1_800_000);
    expect(await balances(s.renter)).toMatchObject({ USD: { available: '1.00', held: '6.00' } });
    await expectEscrowBalanced([s.renter]);
    const reply = await beat(s.node, 2);
    expect(reply.commands).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'extend_lease', lease_id: s.leaseId, ends_at: new Date(after.endsAt!).toISOString() })]));

    // Past the ask's longest duration: 409; short of money: 402; neither holds anything.
    await expectError(await extend(s, 3600), 409, 'conflict');
    await expectError(await extend(s, 1200), 402, 'insufficient_funds');
    await expectError(await extend(s, 10), 400, 'validation_failed');
    await expectError(await call(`/v1/leases/${s.leaseId}/extend`, { auth: s.provider.apiKey, body: { duration_s: 600 }, headers: idem() }), 404, 'not_found');
    expect(await balances(s.renter)).toMatchObject({ USD: { available: '1.00', held: '6.00' } });
  });

  it('refuses to extend a lease that is over, and holds nothing', async () => {
    const s = await leased('rtx-3090-24gb');
    await call(`/v1/leases/${s.leaseId}/terminate`, { method: 'POST', auth: s.renter.apiKey });
    await expectError(await extend(s, 600), 409, 'conflict');
    expect(await balances(s.renter)).toMatchObject({ USD: { available: '50.00', held: '0.00' } });
  });
});

describe('metering against a reference, with the ledger balanced after every settlement', () => {
  it('bills exactly the reference’s confirmed time for random heartbeat timelines', async () => {
    const grace = 45_000;
    // Confirmed ms of sorted points: every gap of at most the grace counts, up to `to`.
    const reference = (points: number[], to: number) => {
      let ms = 0;
      for (let i = 1; i < points.length; i++) if (points[i]! - points[i - 1]! <= grace && points[i]! <= to) ms += points[i]! - points[i - 1]!;
      return ms;
    };
    const bill = (price: number, ms: number) => (BigInt(price) * 2n * BigInt(ms)) / 3_600_000n;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1_000, max: 70_000 }), { minLength: 3, maxLength: 25 }), fc.array(fc.integer({ min: 20_000, max: 200_000 }), { minLength: 2, maxLength: 5 }), async (gaps, steps) => {
        // Each run a lower price than any before it, so its bid can only meet its own ask.
        runs += 1;
        const price = 9_000_000 - runs * 10_000;
        const s = await leased(MODELS[runs % MODELS.length]!, { price: (price / 1e6).toFixed(2) });
        const cap = (BigInt(price) * 2n * 3600n) / 3600n;
        await report(s, { type: 'started' });
        const offsets = gaps.reduce<number[]>((acc, g) => [...acc, acc.at(-1)! + g], [0]);
        let clock = 0;
        for (const step of steps) {
          clock += step;
          await elapse(s.leaseId, step);
          const r0 = await record(s.leaseId);
          const seen = offsets.filter((o) => o > 0 && o <= clock);
          await stub(s.leaseId).confirm(s.node.nodeId, seen.map((o) => r0.startedAt! + o));
          await runInDurableObject(stub(s.leaseId), async (instance: unknown, state: DurableObjectState) => {
            const rec = (await state.storage.get<LeaseRecord>('lease'))!;
            if (rec.nextSettleAt !== null) rec.nextSettleAt = Math.min(rec.nextSettleAt, Date.now());
            await state.storage.put('lease', rec);
            (instance as { core: { record: LeaseRecord } }).core.record = rec;
          });
          await runDurableObjectAlarm(stub(s.leaseId));
          const r = await record(s.leaseId);
          const confirmed = [0, ...seen];
          // Failed by silence: billed up to its last confirmation; otherwise up to now.
          const expected = bill(price, reference(confirmed, r.state === 'failed' ? r.stoppedAt! - r.startedAt! : clock));
          expect(BigInt(r.billed)).toBe(expected < cap ? expected : cap);
          const entries = await ledgerOf(s.leaseId);
          expect(entries.reduce((a, e) => a + BigInt(e.amount), 0n)).toBe(0n);
          await expectEscrowBalanced([s.renter]);
          if (r.state !== 'running') break;
        }
      }),
      { numRuns: 6 },
    );
  }, 120_000);
});

describe('runner events and heartbeats', () => {
  it('refuses events for another node’s lease or an unknown one, and bad events', async () => {
    const s = await leased('v100-32gb');
    const other = await onlineNode(REGION, s.provider, 'v100-32gb', 1);
    await expectError(await call(`/v1/runner/leases/${s.leaseId}/events`, { auth: other.token, body: { type: 'started', at: new Date().toISOString() } }), 404, 'not_found');
    await expectError(await call('/v1/runner/leases/lse_nope/events', { auth: s.node.token, body: { type: 'started', at: new Date().toISOString() } }), 404, 'not_found');
    await expectError(await call(`/v1/runner/leases/${s.leaseId}/events`, { auth: s.node.token, body: { type: 'paused', at: new Date().toISOString() } }), 400, 'validation_failed');
    expect((await record(s.leaseId)).state).toBe('provisioning');
  });

  it('confirms a lease from real heartbeats through the queue, once however often a batch is delivered', async () => {
    const s = await leased('a10-24gb');
    await report(s, { type: 'started' });
    await beat(s.node, 2, { leases: [{ lease_id: s.leaseId, state: 'running' }] });
    const spans = (await record(s.leaseId)).spans;
    expect(spans).toHaveLength(1);
    expect(spans[0]![1]).toBeGreaterThan(spans[0]![0]);
    const last = spans[0]![1];
    // The same points again (a redelivered batch) change nothing.
    await stub(s.leaseId).confirm(s.node.nodeId, [last]);
    expect((await record(s.leaseId)).spans).toEqual(spans);
    // Another node cannot confirm this lease.
    await stub(s.leaseId).confirm('node_other', [Date.now()]);
    expect((await record(s.leaseId)).spans).toEqual(spans);
  });
});
