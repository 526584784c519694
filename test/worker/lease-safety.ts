// Run from leases.test.ts (this region's test file). A Lease's entry points overlap in real use (an alarm settling while the renter terminates, a
// runner report during an alarm, a trade replayed late by its book): these tests make them
// overlap for real and check the money afterwards.
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { eq } from 'drizzle-orm';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { accounts, nodes } from '../../src/db/schema.ts';
import { connection } from '../../src/db/client.ts';
import type { LeaseRecord } from '../../src/durable/lease.ts';
import { regionBook } from '../../src/durable/region-book.ts';
import { hold } from '../../src/ledger/rules.ts';
import { postTransaction } from '../../src/ledger/store.ts';
import { newId } from '../../src/ids.ts';
import { accessToken, balances, call, db, idem, json } from './support.ts';
import { beat, bindings, collectorOf, expectEscrowBalanced } from './trading.ts';
import { confirmEvery10s, elapse, leased as leasedIn, ledgerOf, record, report, stub, type Setup } from './lease-support.ts';

/** Setups whose asks go when each test ends, so later tests' bids in the same books never meet them. */
const made: Setup[] = [];
const leased = async (...args: Parameters<typeof leasedIn>) => {
  const s = await leasedIn(...args);
  made.push(s);
  return s;
};
afterEach(async () => {
  for (const s of made.splice(0)) await call(`/v1/orders/${s.askId}`, { method: 'DELETE', auth: s.provider.apiKey });
});

/** Rewrites the stored record (as time or a lost answer would have left it). */
async function rewrite(id: string, change: (rec: LeaseRecord) => void): Promise<void> {
  await runInDurableObject(stub(id), async (instance: unknown, state: DurableObjectState) => {
    const rec = (await state.storage.get<LeaseRecord>('lease'))!;
    change(rec);
    await state.storage.put('lease', rec);
    await state.storage.setAlarm(Date.now());
    (instance as { core: { record: unknown } }).core.record = undefined;
  });
}

/** Runs the lease's alarm until it has nothing left to do (the final settlement's wait moved into the past). */
async function runToEnd(id: string): Promise<LeaseRecord> {
  for (let i = 0; i < 5; i++) {
    const r = await record(id);
    if (r.steps.refunded && r.steps.gpusReturned && r.steps.synced) return r;
    if (r.finalAfter !== null && r.finalAfter > Date.now()) await elapse(id, r.finalAfter - Date.now() + 1);
    await runDurableObjectAlarm(stub(id));
  }
  return record(id);
}

/** The money invariants of one ended lease, from the ledger itself. */
async function expectSettledExactly(s: Setup) {
  const r = await record(s.leaseId);
  const entries = await ledgerOf(s.leaseId);
  const fromEscrow = entries.filter((e) => e.kind === 'capture' && e.owner === s.renter.id && e.accountKind === 'held').reduce((a, e) => a - BigInt(e.amount), 0n);
  const toProvider = entries.filter((e) => e.kind === 'capture' && e.owner === s.provider.id).reduce((a, e) => a + BigInt(e.amount), 0n);
  const fees = entries.filter((e) => e.kind === 'capture' && e.accountKind === 'fees').reduce((a, e) => a + BigInt(e.amount), 0n);
  const refunded = entries.filter((e) => e.kind === 'release' && e.owner === s.renter.id && e.accountKind === 'available').reduce((a, e) => a + BigInt(e.amount), 0n);
  // Renter debit = provider credit + fee; refund = amount − billed; nothing left held.
  expect(fromEscrow).toBe(toProvider + fees);
  expect(fromEscrow).toBe(BigInt(r.billed));
  expect(refunded).toBe(BigInt(r.terms.amount) - BigInt(r.billed));
  expect(r.steps.refunded).toBe(true);
  await expectEscrowBalanced([s.renter]);
  expect((await balances(s.renter)).USD!.held).toBe('0.00');
}

/** A running lease with `ms` of confirmed time and a periodic settlement due now. */
async function runningWithSettlementDue(model: string, ms = 120_000): Promise<Setup> {
  const s = await leased(model);
  await report(s, { type: 'started' });
  await elapse(s.leaseId, ms);
  const { startedAt } = await record(s.leaseId);
  await confirmEvery10s(s, startedAt!, startedAt! + ms);
  await rewrite(s.leaseId, (rec) => (rec.nextSettleAt = Date.now() - 1));
  return s;
}

describe('overlapping calls to one lease', () => {
  it('settles once when the renter terminates during a periodic settlement', async () => {
    for (const model of ['h100-80gb', 'a100-80gb', 'l40s-48gb']) {
      const s = await runningWithSettlementDue(model);
      const [, res] = await Promise.all([
        runDurableObjectAlarm(stub(s.leaseId)),
        call(`/v1/leases/${s.leaseId}/terminate`, { method: 'POST', auth: s.renter.apiKey }),
      ]);
      expect(res.status).toBe(200);
      await runToEnd(s.leaseId);
      await expectSettledExactly(s);
    }
  });

  it('settles once when the workload exits during an alarm', async () => {
    for (const model of ['a6000-48gb', 'rtx-4090-24gb', 'a10-24gb']) {
      const s = await runningWithSettlementDue(model);
      const [, res] = await Promise.all([runDurableObjectAlarm(stub(s.leaseId)), report(s, { type: 'exited', exit_code: 0 })]);
      expect(res.status).toBe(202);
      await runToEnd(s.leaseId);
      await expectSettledExactly(s);
    }
  });
});

describe('a trade replayed by its book after the provisioning timeout', () => {
  it('creates the lease without ending it inside the book’s call, then fails it by alarm and frees the GPU', async () => {
    const s = await leased('l4-24gb');
    const terms = (await record(s.leaseId)).terms;
    // Another fill on the same node, whose lease the book only reaches after the timeout.
    const tradeId = newId('trd');
    const late = { ...terms, tradeId, leaseId: `lse_${tradeId.slice(4)}`, gpus: 1, gpuIndices: [7], improvement: '0', amount: '1000000', createdAt: Date.now() - 200_000 };
    const rule = hold({ owner: terms.renterId, asset: 'USD', amount: 1_000_000n, idempotencyKey: `test:${late.leaseId}`, reference: late.leaseId, memo: 'late fill' });
    if (!rule.ok) throw new Error(rule.problem);
    await postTransaction(connection(bindings).money, rule.spec);
    const book = regionBook(bindings, terms.region, terms.gpuModel);
    await runInDurableObject(book, async (_instance: unknown, state: DurableObjectState) => {
      state.storage.sql.exec('INSERT INTO allocations (node_id, gpu_index, lease_id, ask_id) VALUES (?, ?, ?, ?)', late.nodeId, 7, late.leaseId, late.askId);
      state.storage.sql.exec('INSERT INTO effects (body, not_before) VALUES (?, ?)', JSON.stringify({ kind: 'lease', terms: late }), 0);
    });
    // The book's alarm drains its outbox: creating the lease must not wait on the book itself.
    const drained = await Promise.race([runDurableObjectAlarm(book).then(() => 'drained'), new Promise((r) => setTimeout(() => r('stuck'), 8_000))]);
    expect(drained).toBe('drained');
    const created = await record(late.leaseId);
    expect(created.state).toBe('provisioning');
    expect(created.steps.commanded).toBe(false);
    await runDurableObjectAlarm(stub(late.leaseId));
    const ended = await record(late.leaseId);
    expect(ended.state).toBe('failed');
    expect(ended.steps).toMatchObject({ refunded: true, gpusReturned: true });
    await runInDurableObject(book, async (_instance: unknown, state: DurableObjectState) => {
      expect(state.storage.sql.exec('SELECT count(*) AS n FROM allocations WHERE lease_id = ?', late.leaseId).one().n).toBe(0);
    });
    // Nothing asked the runner to start it, and everything held for it came back.
    const mailbox = await collectorOf(s.node.region, s.node.nodeId).pendingCommands(s.node.nodeId);
    expect(mailbox.some((c) => c.type === 'start_lease' && c.lease_id === late.leaseId)).toBe(false);
    expect((await ledgerOf(late.leaseId)).filter((e) => e.kind === 'release').reduce((a, e) => a + (e.accountKind === 'available' ? BigInt(e.amount) : 0n), 0n)).toBe(1_000_000n);
  });
});

describe('the last seconds are paid on every way a lease ends', () => {
  // 2 GPUs at $2/h: one micro-dollar per 0.9 ms.
  const bill = (ms: number) => (4_000_000n * BigInt(ms)) / 3_600_000n;

  it('waits for the last heartbeat flush after the workload exits', async () => {
    const s = await leased('v100-32gb');
    await report(s, { type: 'started' });
    await elapse(s.leaseId, 60_000);
    const { startedAt } = await record(s.leaseId);
    await confirmEvery10s(s, startedAt!, startedAt! + 50_000);
    await report(s, { type: 'exited', exit_code: 0 });
    const { stoppedAt } = await record(s.leaseId);
    // The heartbeat sent just before the exit arrives with the next flush.
    await stub(s.leaseId).confirm(s.node.nodeId, [stoppedAt! - 1_000]);
    const r = await runToEnd(s.leaseId);
    expect(r.state).toBe('completed');
    expect(r.billed).toBe(bill(stoppedAt! - 1_000 - startedAt!).toString());
    await expectSettledExactly(s);
  });

  it('waits for the last heartbeat flush after the renter terminates', async () => {
    const s = await leased('t4-16gb');
    await report(s, { type: 'started' });
    await elapse(s.leaseId, 40_000);
    const { startedAt } = await record(s.leaseId);
    await confirmEvery10s(s, startedAt!, startedAt! + 30_000);
    await call(`/v1/leases/${s.leaseId}/terminate`, { method: 'POST', auth: s.renter.apiKey });
    const { stoppedAt } = await record(s.leaseId);
    // A heartbeat taken as the renter terminated: the workload was still running.
    await stub(s.leaseId).confirm(s.node.nodeId, [stoppedAt!]);
    const r = await runToEnd(s.leaseId);
    expect(r.billed).toBe(bill(stoppedAt! - startedAt!).toString());
    await expectSettledExactly(s);
  });

  it('waits for the last heartbeat flush after the runner reports a failure', async () => {
    const s = await leased('a100-40gb');
    await report(s, { type: 'started' });
    await elapse(s.leaseId, 40_000);
    const { startedAt } = await record(s.leaseId);
    await confirmEvery10s(s, startedAt!, startedAt! + 30_000);
    await report(s, { type: 'failed', reason: 'CUDA error: an illegal memory access' });
    const { stoppedAt } = await record(s.leaseId);
    await stub(s.leaseId).confirm(s.node.nodeId, [stoppedAt! - 500]);
    const r = await runToEnd(s.leaseId);
    expect(r.state).toBe('failed');
    expect(r.billed).toBe(bill(stoppedAt! - 500 - startedAt!).toString());
    await expectSettledExactly(s);
  });
});

describe('extension holds', () => {
  it('releases an extension hold the lease never applied when the lease ends', async () => {
    const s = await leased('rtx-3090-24gb', { maxDurationS: 7200 });
    await report(s, { type: 'started' });
    // The renter's extension was held, and the call that would apply it never reached the lease.
    const key = `lease:${s.leaseId}:extend:${'ab'.repeat(32)}`;
    const rule = hold({ owner: s.renter.id, asset: 'USD', amount: 2_000_000n, idempotencyKey: key, reference: s.leaseId, memo: 'extend lease by 1800 s' });
    if (!rule.ok) throw new Error(rule.problem);
    expect((await postTransaction(connection(bindings).money, rule.spec)).ok).toBe(true);
    await call(`/v1/leases/${s.leaseId}/terminate`, { method: 'POST', auth: s.renter.apiKey });
    await runToEnd(s.leaseId);
    expect((await balances(s.renter)).USD!.held).toBe('0.00');
    expect((await balances(s.renter)).USD!.available).toBe('50.00');
  });
});

describe('renter webhooks never gate the lease’s own steps', () => {
  it('applies and sends a paid extension while the renter’s webhooks are failing', async () => {
    const s = await leased('l40-48gb', { maxDurationS: 7200 });
    // An endpoint whose events cannot be read makes every emit to this renter fail.
    await connection(bindings).client.execute({
      sql: "INSERT INTO webhook_endpoints (id, account_id, url, events, secret, created_at) VALUES (?, ?, 'https://hooks.example.com/x', 'not json', 'whsec_x', ?)",
      args: [newId('whe'), s.renter.id, Date.now()],
    });
    await report(s, { type: 'started' });
    const res = await call(`/v1/leases/${s.leaseId}/extend`, { auth: s.renter.apiKey, body: { duration_s: 1800 }, headers: idem() });
    expect(res.status).toBe(200);
    const r = await record(s.leaseId);
    expect(r.terms.durationS).toBe(5400);
    expect(r.steps.synced).toBe(true);
    const mailbox = await collectorOf(s.node.region, s.node.nodeId).pendingCommands(s.node.nodeId);
    expect(mailbox).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'extend_lease', lease_id: s.leaseId, ends_at: new Date(r.endsAt!).toISOString() })]));
    expect((await json(await call(`/v1/leases/${s.leaseId}`, { auth: s.renter.apiKey }))).lease.duration_s).toBe(5400);
    expect(r.emitted).not.toContain('lease.running');
    // Once the endpoint is fixed, the webhook goes out on the alarm's next try.
    await connection(bindings).client.execute({ sql: "UPDATE webhook_endpoints SET events = '[]' WHERE account_id = ?", args: [s.renter.id] });
    await runDurableObjectAlarm(stub(s.leaseId));
    expect((await record(s.leaseId)).emitted).toContain('lease.running');
  });
});

describe('the reliability penalty', () => {
  it('is applied once even when the step is carried out again after a lost answer', async () => {
    const s = await leased('h200-141gb');
    const reliability = async () => (await db().select().from(nodes).where(eq(nodes.id, s.node.nodeId)))[0]!.reliabilityPpm;
    const before = await reliability();
    await report(s, { type: 'failed', reason: 'image not found' });
    await runToEnd(s.leaseId);
    expect(await reliability()).toBe(before - 50_000);
    // As if the penalty was written but its answer lost: the step runs again.
    await rewrite(s.leaseId, (rec) => (rec.steps.reliability = false));
    await runDurableObjectAlarm(stub(s.leaseId));
    expect((await record(s.leaseId)).steps.reliability).toBe(true);
    expect(await reliability()).toBe(before - 50_000);
  });
});

describe('confirming leases from a heartbeat batch', () => {
  it('confirms the node’s own leases even when one of them fails, and acknowledges the batch', async () => {
    const s = await leased('rtx-6000-ada-48gb');
    const broken = await leased('v100-16gb');
    await report(s, { type: 'started' });
    // A lease of this node whose object cannot load its record.
    await connection(bindings).client.execute({ sql: 'UPDATE leases SET node_id = ? WHERE id = ?', args: [s.node.nodeId, broken.leaseId] });
    await runInDurableObject(stub(broken.leaseId), async (instance: unknown, state: DurableObjectState) => {
      await state.storage.deleteAlarm();
      await state.storage.put('lease', { terms: null });
      (instance as { core: { record: unknown } }).core.record = undefined;
    });
    const before = (await record(s.leaseId)).spans;
    await beat(s.node, 2, { leases: [{ lease_id: broken.leaseId, state: 'running' }, { lease_id: s.leaseId, state: 'running' }] });
    expect((await record(s.leaseId)).spans).not.toEqual(before);
    // The batch was accepted: nothing is left in the Collector's outbox to be sent again.
    await runInDurableObject(collectorOf(s.node.region, s.node.nodeId), async (_instance: unknown, state: DurableObjectState) => {
      expect(state.storage.sql.exec('SELECT count(*) AS n FROM outbox').one().n).toBe(0);
    });
    await runInDurableObject(stub(broken.leaseId), async (instance: unknown, state: DurableObjectState) => {
      await state.storage.delete('lease');
      (instance as { core: { record: unknown } }).core.record = undefined;
    });
  });

  it('does not wake leases the reporting node does not hold', async () => {
    const s = await leased('a100-80gb');
    const other = await leased('h100-80gb');
    await report(s, { type: 'started' });
    await report(other, { type: 'started' });
    const theirs = (await record(other.leaseId)).spans;
    const fake = `lse_${'z'.repeat(20)}`;
    await beat(s.node, 2, { leases: [{ lease_id: other.leaseId, state: 'running' }, { lease_id: fake, state: 'running' }, { lease_id: s.leaseId, state: 'running' }] });
    expect((await record(other.leaseId)).spans).toEqual(theirs);
    // An id the platform never issued leaves no lease behind.
    await runInDurableObject(stub(fake), async (_instance: unknown, state: DurableObjectState) => {
      expect(await state.storage.get('lease')).toBeUndefined();
    });
  });
});

describe('a suspended renter', () => {
  it('may still terminate a running lease and stop spending', async () => {
    const s = await leased('l40s-48gb');
    await report(s, { type: 'started' });
    const token = await accessToken(s.renter);
    await db().update(accounts).set({ status: 'suspended' }).where(eq(accounts.id, s.renter.id));
    const res = await call(`/v1/leases/${s.leaseId}/terminate`, { method: 'POST', auth: token });
    expect(res.status).toBe(200);
    expect((await json(res)).lease.state).toBe('completed');
    // Other money-moving calls stay refused.
    expect((await call(`/v1/leases/${s.leaseId}/extend`, { auth: token, body: { duration_s: 600 }, headers: idem() })).status).toBe(403);
    expect((await call(`/v1/leases/${s.leaseId}/extend`, { auth: s.renter.apiKey, body: { duration_s: 600 }, headers: idem() })).status).toBe(401);
    await db().update(accounts).set({ status: 'active' }).where(eq(accounts.id, s.renter.id));
  });

  it('may terminate with an API key, which opens nothing else', async () => {
    const s = await leased('v100-32gb');
    await report(s, { type: 'started' });
    await db().update(accounts).set({ status: 'suspended' }).where(eq(accounts.id, s.renter.id));
    const res = await call(`/v1/leases/${s.leaseId}/terminate`, { method: 'POST', auth: s.renter.apiKey });
    expect(res.status).toBe(200);
    expect((await json(res)).lease.state).toBe('completed');
    expect((await call('/v1/balances', { auth: s.renter.apiKey })).status).toBe(401);
    expect((await call(`/v1/leases/${s.leaseId}`, { auth: s.renter.apiKey })).status).toBe(401);
    await db().update(accounts).set({ status: 'active' }).where(eq(accounts.id, s.renter.id));
  });
});

describe('what a runner reports reaches the renter only if it is well formed', () => {
  it('refuses a started event whose ports are not ports', async () => {
    const s = await leased('rtx-3080-10gb');
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [String(8000 + i), 40_000 + i]));
    for (const ports of [{ '8888': 70_000 }, { 'http://evil': 40_000 }, { '0': 40_000 }, { '8888': -1 }, many]) {
      const res = await report(s, { type: 'started', ports });
      expect(res.status).toBe(400);
      expect((await json(res)).error.code).toBe('validation_failed');
    }
    expect((await record(s.leaseId)).state).toBe('provisioning');
    expect((await report(s, { type: 'started', ports: { '8888': 40_001 } })).status).toBe(202);
    expect((await record(s.leaseId)).ports).toEqual({ '8888': 40_001 });
  });
});

describe('random overlapping calls to one lease', () => {
  type Act = 'alarm' | 'terminate' | 'exited' | 'failed' | 'confirm' | 'extend1' | 'extend2';
  const act = async (s: Setup, a: Act): Promise<number> => {
    switch (a) {
      case 'alarm':
        await runDurableObjectAlarm(stub(s.leaseId));
        return 200;
      case 'terminate':
        return (await call(`/v1/leases/${s.leaseId}/terminate`, { method: 'POST', auth: s.renter.apiKey })).status;
      case 'exited':
        return (await report(s, { type: 'exited', exit_code: 3 })).status;
      case 'failed':
        return (await report(s, { type: 'failed', reason: 'out of memory' })).status;
      case 'confirm':
        await stub(s.leaseId).confirm(s.node.nodeId, [Date.now() - 500]);
        return 200;
      case 'extend1':
      case 'extend2':
        return (await call(`/v1/leases/${s.leaseId}/extend`, { auth: s.renter.apiKey, body: { duration_s: 900 }, headers: { 'idempotency-key': `${s.leaseId}-${a}` } })).status;
    }
  };

  it('ends with renter debit = provider credit + fee, the rest back to the renter, and nothing held', async () => {
    const acts: Act[] = ['alarm', 'terminate', 'exited', 'failed', 'confirm', 'extend1', 'extend2'];
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ wait: fc.integer({ min: 0, max: 70_000 }), calls: fc.array(fc.constantFrom(...acts), { minLength: 2, maxLength: 4 }) }), { minLength: 1, maxLength: 4 }),
        async (rounds) => {
          const s = await leased('rtx-4080-16gb', { maxDurationS: 7200 });
          try {
            await report(s, { type: 'started' });
            for (const round of rounds) {
              if (round.wait > 0) {
                await elapse(s.leaseId, round.wait);
                const { startedAt } = await record(s.leaseId);
                // Heartbeats every 10 s until now, except over a silence of more than the grace.
                if (round.wait <= 45_000) await confirmEvery10s(s, startedAt!, Date.now());
              }
              // A periodic settlement falls due as the calls arrive: the window where they used to collide.
              await rewrite(s.leaseId, (rec) => {
                if (rec.nextSettleAt !== null) rec.nextSettleAt = Date.now() - 1;
              });
              const statuses = await Promise.all(round.calls.map((a) => act(s, a)));
              for (const status of statuses) expect(status).toBeLessThan(500);
            }
            await act(s, 'terminate');
            const r = await runToEnd(s.leaseId);
            const billed = BigInt(r.billed);
            const entries = await ledgerOf(s.leaseId);
            const fees = entries.filter((e) => e.kind === 'capture' && e.accountKind === 'fees').reduce((a, e) => a + BigInt(e.amount), 0n);
            const usd = (v: string) => BigInt(Math.round(Number(v) * 1e6));
            const renter = (await balances(s.renter)).USD!;
            const provider = (await balances(s.provider)).USD!;
            expect(usd(renter.held)).toBe(0n);
            expect(usd(renter.available)).toBe(50_000_000n - billed);
            expect(usd(provider.available) + fees).toBe(billed);
            expect(billed).toBeLessThanOrEqual(BigInt(r.terms.amount));
          } finally {
            // Its ask goes, so the next run's bid meets only its own.
            await call(`/v1/orders/${s.askId}`, { method: 'DELETE', auth: s.provider.apiKey });
          }
          made.splice(0);
        },
      ),
      { numRuns: 12, seed: 7_2026 },
    );
  }, 180_000);
});

describe("a node's order-processing check", () => {
  it('passes leases served and billed by the rules, and names a record that was not', async () => {
    const s = await leased('a10-24gb');
    await report(s, { type: 'started' });
    await elapse(s.leaseId, 60_000);
    const { startedAt } = await record(s.leaseId);
    await confirmEvery10s(s, startedAt!, startedAt! + 60_000);
    await call(`/v1/leases/${s.leaseId}/terminate`, { method: 'POST', auth: s.renter.apiKey });
    await runToEnd(s.leaseId);
    const check = async (auth: string) => call(`/v1/nodes/${s.node.nodeId}/order-processing`, { auth });
    const res = await check(s.provider.apiKey);
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toMatchObject({ node_id: s.node.nodeId, leases: 1, passed: 1 });
    expect(body.audits[0]).toMatchObject({ lease_id: s.leaseId, state: 'completed', findings: [], billed_micro: (await record(s.leaseId)).billed });
    expect(body.audits[0].start_latency_ms).toBeGreaterThanOrEqual(0);

    // A record claiming more than its confirmed time is named; the renter and strangers see nothing.
    await rewrite(s.leaseId, (rec) => (rec.billed = String(BigInt(rec.billed) + 50_000n)));
    const tampered = await json(await check(s.provider.apiKey));
    expect(tampered.passed).toBe(0);
    expect(tampered.audits[0].findings.join('\n')).toMatch(/confirmed time is worth/);
    expect((await check(s.renter.apiKey)).status).toBe(404);
    expect((await call(`/v1/nodes/${s.node.nodeId}/order-processing?limit=0`, { auth: s.provider.apiKey })).status).toBe(400);
    await rewrite(s.leaseId, (rec) => (rec.billed = String(BigInt(rec.billed) - 50_000n)));
  });
});
