import { env } from 'cloudflare:workers';
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { joinTokens, nodeMetricsMinute, nodes, nodeUptimeDaily } from '../../src/db/schema.ts';
import { collectorName, heartbeatConfig, shardOf } from '../../src/heartbeats/config.ts';
import { signLikeQStash } from '../../src/queue/signature.ts';
import { call, db, expectError, heartbeat, joinToken, json, machine, makeAdmin, nodePublicKey, registerNode, signUp } from './support.ts';

const bindings = env as unknown as Parameters<typeof heartbeatConfig>[0] & { COLLECTOR: DurableObjectNamespace };

function collectorOf(nodeId: string, region = 'us-east') {
  const { shards } = heartbeatConfig(bindings);
  return bindings.COLLECTOR.getByName(collectorName(region, shardOf(nodeId, shards)));
}

const sendHeartbeat = (token: string, body: unknown) => call('/v1/runner/heartbeats', { auth: token, body });
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the catalog', () => {
  it('lists GPU models with the names they map from, and regions, publicly and cached', async () => {
    const res = await call('/v1/catalog/gpus', { headers: { origin: 'https://aggregator.example' } });
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('cache-control')).toContain('max-age');
    const { data } = await json(res);
    expect(data).toEqual(expect.arrayContaining([expect.objectContaining({ id: 'h100-80gb', vram_gb: 80, names: expect.arrayContaining(['NVIDIA H100 80GB HBM3']) })]));
    const regions = await json(await call('/v1/catalog/regions'));
    expect(regions.data.map((r: { id: string }) => r.id)).toContain('eu-central');
  });
});

describe('joining', () => {
  it('registers a machine with a one-time token and lists it for its owner only', async () => {
    const provider = await signUp(['provider']);
    const m = machine([{ name: 'NVIDIA H100 80GB HBM3' }, { name: 'NVIDIA GeForce GTX 1050', memory_mib: 2048 }]);
    const { nodeId, token } = await registerNode(provider, m);
    expect(nodeId).toMatch(/^node_/);
    expect(token.split('.')).toHaveLength(3);

    const { data } = await json(await call('/v1/nodes', { auth: provider.apiKey }));
    expect(data).toHaveLength(1);
    expect(data[0]).toMatchObject({ id: nodeId, region: 'us-east', hostname: m.hostname, status: 'registered', reliability: 0.9 });
    expect(data[0].gpus.map((g: { model: string | null }) => g.model)).toEqual(['h100-80gb', null]);

    const stranger = await signUp(['provider']);
    await expectError(await call(`/v1/nodes/${nodeId}`, { auth: stranger.apiKey }), 404, 'not_found');
    expect((await json(await call('/v1/nodes', { auth: stranger.apiKey }))).data).toEqual([]);
  });

  it('refuses a used, expired or unknown join token with a message saying which', async () => {
    const provider = await signUp(['provider']);
    const token = await joinToken(provider);
    expect((await call('/v1/runner/register', { body: { join_token: token, region: 'us-east', machine: machine(), public_key: await nodePublicKey() } })).status).toBe(201);
    const used = await call('/v1/runner/register', { body: { join_token: token, region: 'us-east', machine: machine(), public_key: await nodePublicKey() } });
    expect((await expectError(used, 401, 'unauthorized')).message).toContain('already used');

    const stale = await joinToken(provider);
    const rows = await db().select({ id: joinTokens.id, usedAt: joinTokens.usedAt }).from(joinTokens).where(eq(joinTokens.accountId, provider.id));
    const unused = rows.find((r) => r.usedAt === null)!;
    await db().update(joinTokens).set({ expiresAt: Date.now() - 1 }).where(eq(joinTokens.id, unused.id));
    const expired = await call('/v1/runner/register', { body: { join_token: stale, region: 'us-east', machine: machine(), public_key: await nodePublicKey() } });
    expect((await expectError(expired, 401, 'unauthorized')).message).toContain('expired');

    const unknown = await call('/v1/runner/register', { body: { join_token: 'glj_nope', region: 'us-east', machine: machine(), public_key: await nodePublicKey() } });
    expect((await expectError(unknown, 401, 'unauthorized')).message).toContain('invalid');
  });

  it('refuses an unknown region and a machine with no catalog GPU, keeping the token', async () => {
    const provider = await signUp(['provider']);
    const token = await joinToken(provider);
    const region = await call('/v1/runner/register', { body: { join_token: token, region: 'moon-1', machine: machine(), public_key: await nodePublicKey() } });
    expect((await expectError(region, 400, 'validation_failed')).message).toContain('moon-1');
    const noGpu = await call('/v1/runner/register', { body: { join_token: token, region: 'us-east', machine: machine([{ name: 'Matrox G200eW' }]), public_key: await nodePublicKey() } });
    expect((await expectError(noGpu, 400, 'validation_failed')).message).toContain('Matrox G200eW');
    expect((await call('/v1/runner/register', { body: { join_token: token, region: 'us-east', machine: machine(), public_key: await nodePublicKey() } })).status).toBe(201);
  });

  it('lets only providers create join tokens', async () => {
    const renter = await signUp(['renter']);
    await expectError(await call('/v1/nodes/join-tokens', { method: 'POST', auth: renter.apiKey }), 403, 'forbidden');
  });

  it('keeps GPUs from being listed by two accounts', async () => {
    const a = await signUp(['provider']);
    const b = await signUp(['provider']);
    const m = machine();
    await registerNode(a, m);
    const res = await call('/v1/runner/register', { body: { join_token: await joinToken(b), region: 'us-east', machine: m, public_key: await nodePublicKey() } });
    await expectError(res, 409, 'conflict');
  });
});

describe('heartbeats', () => {
  it('are taken with the node token and answered with the next interval', async () => {
    const provider = await signUp(['provider']);
    const { nodeId, token } = await registerNode(provider);
    const res = await sendHeartbeat(token, heartbeat(nodeId, 1));
    expect(res.status).toBe(202);
    expect(await json(res)).toEqual({ accepted: true, commands: [], next_interval_s: 10 });
  });

  it('refuse a missing, foreign or forged token and a body for another node', async () => {
    const provider = await signUp(['provider']);
    const a = await registerNode(provider);
    const b = await registerNode(provider);
    await expectError(await call('/v1/runner/heartbeats', { body: heartbeat(a.nodeId, 1) }), 401, 'unauthorized');
    await expectError(await sendHeartbeat(provider.apiKey, heartbeat(a.nodeId, 1)), 401, 'unauthorized');
    await expectError(await sendHeartbeat(`${a.token.slice(0, -4)}AAAA`, heartbeat(a.nodeId, 1)), 401, 'unauthorized');
    await expectError(await sendHeartbeat(b.token, heartbeat(a.nodeId, 1)), 403, 'forbidden');
  });

  it('stop working with the old token once the machine registers again, or the node is revoked', async () => {
    const provider = await signUp(['provider']);
    const first = await registerNode(provider);
    expect((await sendHeartbeat(first.token, heartbeat(first.nodeId, 1))).status).toBe(202);
    const again = await registerNode(provider, first.machine);
    expect(again.nodeId).toBe(first.nodeId);
    await pause(60);
    await expectError(await sendHeartbeat(first.token, heartbeat(first.nodeId, 2)), 401, 'unauthorized');
    await pause(60);
    expect((await sendHeartbeat(again.token, heartbeat(again.nodeId, 1, {}, crypto.randomUUID()))).status).toBe(202);

    const revoked = await call(`/v1/nodes/${again.nodeId}/revoke`, { method: 'POST', auth: provider.apiKey });
    expect((await json(revoked)).node.status).toBe('revoked');
    await pause(60);
    await expectError(await sendHeartbeat(again.token, heartbeat(again.nodeId, 5, {}, crypto.randomUUID())), 401, 'unauthorized');
  });

  it('refuse an old token for lease events, and for heartbeats in the region the node left, once it registers again', async () => {
    const provider = await signUp(['provider']);
    const event = { type: 'exited', at: new Date().toISOString(), exit_code: 0 };
    const sendEvent = (token: string) => call('/v1/runner/leases/lse_unknown/events', { auth: token, body: event });
    const first = await registerNode(provider, machine(), 'us-east');
    expect((await sendHeartbeat(first.token, heartbeat(first.nodeId, 1))).status).toBe(202);
    // A current token is let in: the lease is simply not this node's.
    await expectError(await sendEvent(first.token), 404, 'not_found');

    // Rotated in place: the old token is refused for events at once.
    const rotated = await registerNode(provider, first.machine, 'us-east');
    expect(rotated.nodeId).toBe(first.nodeId);
    await expectError(await sendEvent(first.token), 401, 'unauthorized');
    await expectError(await sendEvent(rotated.token), 404, 'not_found');

    // Moved to another region: the old region's Collector, which had accepted this node, refuses its old token.
    const moved = await registerNode(provider, first.machine, 'eu-west');
    expect(moved.nodeId).toBe(first.nodeId);
    await pause(60);
    for (const old of [first.token, rotated.token]) {
      const res = await sendHeartbeat(old, heartbeat(first.nodeId, 2, {}, crypto.randomUUID()));
      await expectError(res, 401, 'unauthorized');
      expect(res.headers.get('www-authenticate')).toContain('Bearer');
      await expectError(await sendEvent(old), 401, 'unauthorized');
    }
    expect((await sendHeartbeat(moved.token, heartbeat(moved.nodeId, 1, {}, crypto.randomUUID()))).status).toBe(202);
    await expectError(await sendEvent(moved.token), 404, 'not_found');

    // Revoked: no token of the node works for events any more.
    expect((await call(`/v1/nodes/${moved.nodeId}/revoke`, { method: 'POST', auth: provider.apiKey })).status).toBe(200);
    await expectError(await sendEvent(moved.token), 401, 'unauthorized');
  });

  it('ignore a replayed or out-of-order sequence number and refuse a flood with 429', async () => {
    const provider = await signUp(['provider']);
    const { nodeId, token } = await registerNode(provider);
    expect((await json(await sendHeartbeat(token, heartbeat(nodeId, 5)))).accepted).toBe(true);
    await pause(60);
    expect((await json(await sendHeartbeat(token, heartbeat(nodeId, 5)))).accepted).toBe(false);
    expect((await json(await sendHeartbeat(token, heartbeat(nodeId, 3)))).accepted).toBe(false);
    expect((await json(await sendHeartbeat(token, heartbeat(nodeId, 6, { sent_at: new Date(Date.now() - 3_600_000).toISOString() })))).accepted).toBe(false);

    const burst = await Promise.all([7, 8, 9].map((seq) => sendHeartbeat(token, heartbeat(nodeId, seq))));
    const statuses = burst.map((r) => r.status).sort();
    expect(statuses).toEqual([202, 429, 429]);
    const limited = burst.find((r) => r.status === 429)!;
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });

  it('ignore a late heartbeat of a boot the runner has left, also after the Collector restarts', async () => {
    const provider = await signUp(['provider']);
    const { nodeId, token } = await registerNode(provider);
    const [before, after] = ['7d0c6c2e-1b1a-4c59-9a51-0f3e2d4c5b6a', '0b6f3c1d-2e4a-4f7b-8c9d-1a2b3c4d5e6f'];
    expect((await json(await sendHeartbeat(token, heartbeat(nodeId, 41, {}, before)))).accepted).toBe(true);
    await pause(60);
    // The runner restarts; then a heartbeat it sent before, retried, arrives.
    expect((await json(await sendHeartbeat(token, heartbeat(nodeId, 0, {}, after)))).accepted).toBe(true);
    await pause(60);
    expect((await json(await sendHeartbeat(token, heartbeat(nodeId, 42, {}, before)))).accepted).toBe(false);
    // What the Collector knows of the node's boots is stored at its flush and survives a restart.
    await runDurableObjectAlarm(collectorOf(nodeId));
    await evictDurableObject(collectorOf(nodeId));
    await pause(60);
    expect((await json(await sendHeartbeat(token, heartbeat(nodeId, 43, {}, before)))).accepted).toBe(false);
    expect((await json(await sendHeartbeat(token, heartbeat(nodeId, 1, {}, after)))).accepted).toBe(true);
  });

  it('refuse malformed and oversized bodies with 400 and 413', async () => {
    const provider = await signUp(['provider']);
    const { nodeId, token } = await registerNode(provider);
    await expectError(await sendHeartbeat(token, { ...heartbeat(nodeId, 1), seq: -1 }), 400, 'validation_failed');
    await expectError(await sendHeartbeat(token, { ...heartbeat(nodeId, 1), extra: true }), 400, 'validation_failed');
    await expectError(await sendHeartbeat(token, { ...heartbeat(nodeId, 1), gpus: [{ index: 0, utilization_pct: 140, memory_used_mib: 1, temperature_c: 1, power_w: 1 }] }), 400, 'validation_failed');
    await expectError(await sendHeartbeat(token, { ...heartbeat(nodeId, 1), acks: Array.from({ length: 5000 }, (_, i) => `cmd_${i}_${'x'.repeat(10)}`) }), 413, 'payload_too_large');
  });

  it('deliver mailbox commands until they are acknowledged', async () => {
    const admin = await signUp(['provider']);
    await makeAdmin(admin);
    const { nodeId, token } = await registerNode(admin);
    const command = { id: 'cmd_test_1', type: 'challenge', challenge: { kind: 'identity', challenge_id: 'chl_1', nonce: 'ab'.repeat(32), deadline: new Date(Date.now() + 60_000).toISOString() } };
    expect((await call(`/v1/admin/nodes/${nodeId}/commands`, { auth: admin.apiKey, body: command })).status).toBe(202);
    expect((await json(await sendHeartbeat(token, heartbeat(nodeId, 1)))).commands).toEqual([command]);
    await pause(60);
    expect((await json(await sendHeartbeat(token, heartbeat(nodeId, 2)))).commands).toEqual([command]);
    await pause(60);
    expect((await json(await sendHeartbeat(token, heartbeat(nodeId, 3, { acks: ['cmd_test_1'] })))).commands).toEqual([]);
  });
});

describe('the heartbeat pipeline', () => {
  it('flushes batches through the signed queue into node status, roll-ups and uptime; silence makes a node offline', async () => {
    const provider = await signUp(['provider']);
    const { nodeId, token } = await registerNode(provider);
    const collector = collectorOf(nodeId);
    await sendHeartbeat(token, heartbeat(nodeId, 1));
    await pause(60);
    await sendHeartbeat(token, heartbeat(nodeId, 2));
    expect(await runDurableObjectAlarm(collector)).toBe(true);

    const node = await json(await call(`/v1/nodes/${nodeId}`, { auth: provider.apiKey }));
    expect(node.node.status).toBe('online');
    expect(node.node.last_heartbeat_at).not.toBeNull();
    expect(node.metrics).toHaveLength(1);
    expect(node.metrics[0]).toMatchObject({ heartbeats: 2, gpu_utilization_pct: 87, gpu_temperature_max_c: 66, gpu_power_avg_w: 550.5 });
    const [uptime] = await db().select().from(nodeUptimeDaily).where(eq(nodeUptimeDaily.nodeId, nodeId));
    expect(uptime!.heartbeats).toBe(2);

    // Silence past the grace period: the Collector's alarm reports the node offline.
    const longAgo = Date.now() - 60_000;
    await runInDurableObject(collector, (instance: unknown) => {
      (instance as { nodes: Map<string, { lastSeenMs: number }> }).nodes.get(nodeId)!.lastSeenMs = longAgo;
    });
    await db().update(nodes).set({ lastHeartbeatAt: longAgo }).where(eq(nodes.id, nodeId));
    expect(await runDurableObjectAlarm(collector)).toBe(true);
    expect((await json(await call(`/v1/nodes/${nodeId}`, { auth: provider.apiKey }))).node.status).toBe('offline');

    // A heartbeat brings it back.
    await pause(60);
    await sendHeartbeat(token, heartbeat(nodeId, 3));
    await runDurableObjectAlarm(collector);
    expect((await json(await call(`/v1/nodes/${nodeId}`, { auth: provider.apiKey }))).node.status).toBe('online');
  });
});

describe('a Collector that lost its storage', () => {
  it('sends batches under new ids, so none is dropped as a duplicate of one it sent before', async () => {
    const provider = await signUp(['provider']);
    const { nodeId, token } = await registerNode(provider, machine(), 'us-east');
    const status = async () => (await db().select({ status: nodes.status }).from(nodes).where(eq(nodes.id, nodeId)))[0]!.status;
    expect((await sendHeartbeat(token, heartbeat(nodeId, 1))).status).toBe(202);
    await runDurableObjectAlarm(collectorOf(nodeId));
    expect(await status()).toBe('online');

    // Its storage gone (a reset, a restore), the Collector starts counting flushes again.
    await runInDurableObject(collectorOf(nodeId), async (_collector, state) => {
      await state.storage.deleteAlarm();
      await state.storage.deleteAll();
    });
    await evictDurableObject(collectorOf(nodeId));
    await db().update(nodes).set({ status: 'offline' }).where(eq(nodes.id, nodeId));
    expect((await sendHeartbeat(token, heartbeat(nodeId, 2, {}, crypto.randomUUID()))).status).toBe(202);
    await runDurableObjectAlarm(collectorOf(nodeId));
    expect(await status()).toBe('online');
  });
});

describe('the queue callback', () => {
  const URL_ = 'https://api.gridlease.test/internal/queue/heartbeats';
  const batchFor = (nodeId: string, id = `test:${crypto.randomUUID()}`) =>
    JSON.stringify({
      batch_id: id,
      region: 'us-east',
      shard: 0,
      flushed_at: Date.now(),
      nodes: [{ node_id: nodeId, last_seen: Date.now(), heartbeats: 3, uptime: {}, draining: false, minutes: [{ minute: 100, heartbeats: 3, util_sum: 30, util_samples: 3, mem_used_max_mib: 1, temp_max_c: 50, power_sum_w: 3, power_samples: 3 }] }],
      offline: [],
    });
  const deliver = async (body: string, opts: { key?: string; url?: string; sentBody?: string } = {}) =>
    call('/internal/queue/heartbeats', {
      body: opts.sentBody ?? body,
      headers: { 'upstash-signature': await signLikeQStash(opts.key ?? 'sig_test_current_0123456789', opts.url ?? URL_, body, Math.floor(Date.now() / 1000)) },
    });

  it('applies a signed batch once, however often it is delivered', async () => {
    const provider = await signUp(['provider']);
    const { nodeId } = await registerNode(provider);
    const body = batchFor(nodeId);
    expect(await json(await deliver(body))).toEqual({ outcome: 'applied' });
    expect(await json(await deliver(body))).toEqual({ outcome: 'duplicate' });
    expect(await json(await deliver(body, { key: 'sig_test_next_9876543210' }))).toEqual({ outcome: 'duplicate' });
    const rows = await db().select().from(nodeMetricsMinute).where(eq(nodeMetricsMinute.nodeId, nodeId));
    expect(rows.map((r) => r.heartbeats)).toEqual([3]);
  });

  it('merges two batches of one minute keeping an unreported temperature and memory unknown (null), not -1000 °C or 0', async () => {
    const provider = await signUp(['provider']);
    const { nodeId } = await registerNode(provider);
    const unreported = (id: string) => batchFor(nodeId, id).replace('"mem_used_max_mib":1,"temp_max_c":50', '"mem_used_max_mib":null,"temp_max_c":null');
    expect(await json(await deliver(unreported('test:a')))).toEqual({ outcome: 'applied' });
    expect(await json(await deliver(unreported('test:b')))).toEqual({ outcome: 'applied' });
    const [row] = await db().select().from(nodeMetricsMinute).where(eq(nodeMetricsMinute.nodeId, nodeId));
    expect(row).toMatchObject({ heartbeats: 6, memUsedMaxMib: null, tempMaxC: null });
    // A later report in the same minute is the maximum, whatever came before.
    expect(await json(await deliver(batchFor(nodeId, 'test:c')))).toEqual({ outcome: 'applied' });
    const [after] = await db().select().from(nodeMetricsMinute).where(eq(nodeMetricsMinute.nodeId, nodeId));
    expect(after).toMatchObject({ heartbeats: 9, memUsedMaxMib: 1, tempMaxC: 50 });
  });

  it('refuses an unsigned, wrongly signed, re-addressed or altered delivery with 401, changing nothing', async () => {
    const provider = await signUp(['provider']);
    const { nodeId } = await registerNode(provider);
    const body = batchFor(nodeId);
    await expectError(await call('/internal/queue/heartbeats', { body }), 401, 'unauthorized');
    await expectError(await deliver(body, { key: 'sig_someone_else' }), 401, 'unauthorized');
    await expectError(await deliver(body, { url: 'https://api.gridlease.test/internal/queue/other' }), 401, 'unauthorized');
    await expectError(await deliver(body, { sentBody: body.replace('"heartbeats":3', '"heartbeats":300') }), 401, 'unauthorized');
    expect(await db().select().from(nodeMetricsMinute).where(eq(nodeMetricsMinute.nodeId, nodeId))).toEqual([]);
  });
});
