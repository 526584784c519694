// Node identity: the key a runner registers at join, signatures checked against it, and a change
// of GPUs that puts a verified node back to unverified, in libSQL and in its books.
import { eq } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { signedMessage } from '../../src/contracts/signed-message.ts';
import { joinTokens, nodes } from '../../src/db/schema.ts';
import { regionBook } from '../../src/durable/region-book.ts';
import { nodeKeyFingerprint, verifyNodeSignature } from '../../src/nodes/identity.ts';
import { publishNodeTrust } from '../../src/nodes/trust.ts';
import { call, db, expectError, fund, joinToken, json, machine, nodePublicKey, signUp, type TestAccount } from './support.ts';
import { bindings, buy, GPU_NAMES, onlineNode, placed, sell } from './trading.ts';

const REGION = 'ap-southeast';

const b64u = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
const unb64u = (text: string) => Uint8Array.from(atob(text.replaceAll('-', '+').replaceAll('_', '/') + '='.repeat((4 - (text.length % 4)) % 4)), (c) => c.charCodeAt(0));

async function keyPair() {
  const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const publicKey = b64u(new Uint8Array((await crypto.subtle.exportKey('raw', pair.publicKey)) as ArrayBuffer));
  const sign = async (message: Uint8Array) => b64u(new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, pair.privateKey, message)));
  return { publicKey, sign };
}

function flip(text: string, at: number): string {
  const bytes = unb64u(text);
  bytes[at]! ^= 0x01;
  return b64u(bytes);
}

async function register(provider: TestAccount, m: ReturnType<typeof machine>, publicKey: unknown, region = REGION) {
  return call('/v1/runner/register', { body: { join_token: await joinToken(provider), region, machine: m, public_key: publicKey } });
}

const nodeRow = async (id: string) => (await db().select().from(nodes).where(eq(nodes.id, id)))[0]!;

describe('node signatures', () => {
  it('verify over the canonical message with the node key, and fail when one byte of message, signature or key changes', async () => {
    const key = await keyPair();
    const message = signedMessage('node.challenge.identity', { node_id: 'node_1', nonce: crypto.randomUUID() });
    const signature = await key.sign(message);
    expect(await verifyNodeSignature(key.publicKey, message, signature)).toBe(true);

    const otherMessage = message.slice();
    otherMessage[otherMessage.length - 2]! ^= 0x01;
    expect(await verifyNodeSignature(key.publicKey, otherMessage, signature)).toBe(false);
    for (const at of [0, 31, 63]) expect(await verifyNodeSignature(key.publicKey, message, flip(signature, at))).toBe(false);
    for (const at of [0, 31]) expect(await verifyNodeSignature(flip(key.publicKey, at), message, signature)).toBe(false);
    // A signature over the same fields in another domain is not this message's.
    expect(await verifyNodeSignature(key.publicKey, signedMessage('node.challenge.capacity', { node_id: 'node_1', nonce: 'x' }), signature)).toBe(false);
    expect(await verifyNodeSignature((await keyPair()).publicKey, message, signature)).toBe(false);
  });

  it('verify what the runner signs (the shared test vector, signed with node:crypto)', async () => {
    const message = signedMessage('node.test-vector', { node_id: 'node_vector', nonce: 'n0nce' });
    const publicKey = '6kpsY-KcUgq-9VB7Ey7F-ZVHdq6-vnuSQh7qaRRG0iw';
    const signature = 'jyzlyCaqy_IOAyvD3ZfualPRUZXm3fgLOYmGaPohHPMx968sQF3cn_edt3UnQMzVnd4vKmdVWdq6DSC_3pA7Dw';
    expect(await verifyNodeSignature(publicKey, message, signature)).toBe(true);
  });

  it('answer false, never throw, for hostile keys and signatures', async () => {
    const key = await keyPair();
    const message = signedMessage('node.challenge.identity', { nonce: 'n' });
    const signature = await key.sign(message);
    const keys: unknown[] = ['', 'not base64!', `${key.publicKey}=`, key.publicKey.slice(0, -1), `${key.publicKey}A`, key.publicKey.replace(/.$/, 'B'),
      b64u(new Uint8Array(31)), b64u(new Uint8Array(33)), `${key.publicKey.slice(0, 10)}+${key.publicKey.slice(11)}`, 'A'.repeat(100_000), null, 42, {}];
    const signatures: unknown[] = ['', 'x', `${signature}=`, signature.slice(0, -1), `${signature}AA`, signature.replace(/.$/, 'B'), b64u(new Uint8Array(63)),
      b64u(new Uint8Array(65)), b64u(new Uint8Array(64)), `${signature.slice(0, 5)}/${signature.slice(6)}`, null, undefined, []];
    for (const k of keys) expect(await verifyNodeSignature(k as string, message, signature), String(k).slice(0, 60)).toBe(false);
    for (const s of signatures) expect(await verifyNodeSignature(key.publicKey, message, s as string), String(s).slice(0, 60)).toBe(false);
    expect(await verifyNodeSignature(key.publicKey, 'text' as unknown as Uint8Array, signature)).toBe(false);
    expect(await verifyNodeSignature(key.publicKey, message, signature)).toBe(true);
  });
});

describe('registering the node key', () => {
  const malformed: [string, unknown][] = [
    ['missing', undefined],
    ['empty', ''],
    ['too short', b64u(new Uint8Array(31))],
    ['too long', b64u(new Uint8Array(33))],
    ['padded', `${b64u(new Uint8Array(32).fill(9))}=`],
    ['standard base64', '+'.repeat(42) + 'A'],
    ['with stray low bits', `${'A'.repeat(42)}B`],
    ['a number', 42],
  ];
  it.for(malformed)('refuses a public key that is %s with a 400 naming public_key, creating nothing', async ([, publicKey]) => {
    const provider = await signUp(['provider']);
    const token = await joinToken(provider);
    const res = await call('/v1/runner/register', { body: { join_token: token, region: REGION, machine: machine(), ...(publicKey === undefined ? {} : { public_key: publicKey }) } });
    expect((await expectError(res, 400, 'validation_failed')).message).toContain('public_key');
    expect(await db().select().from(nodes).where(eq(nodes.accountId, provider.id))).toEqual([]);
    expect((await db().select().from(joinTokens).where(eq(joinTokens.accountId, provider.id)))[0]!.usedAt).toBeNull();
  });

  it('shows the node its key and fingerprint to its owner, and replaces the key at every registration', async () => {
    const provider = await signUp(['provider']);
    const m = machine();
    const first = await keyPair();
    const res = await register(provider, m, first.publicKey);
    expect(res.status).toBe(201);
    const { node_id: nodeId } = await json(res);
    const fingerprint = async (k: string) => [...new Uint8Array(await crypto.subtle.digest('SHA-256', unb64u(k)))].map((b) => b.toString(16).padStart(2, '0')).join('').slice(0, 16);

    const shown = (await json(await call(`/v1/nodes/${nodeId}`, { auth: provider.apiKey }))).node;
    expect(shown).toMatchObject({ public_key: first.publicKey, key_fingerprint: await fingerprint(first.publicKey) });
    expect(await nodeKeyFingerprint(first.publicKey)).toBe(await fingerprint(first.publicKey));

    const second = await keyPair();
    expect((await register(provider, m, second.publicKey)).status).toBe(201);
    const { data } = await json(await call('/v1/nodes', { auth: provider.apiKey }));
    expect(data).toEqual([expect.objectContaining({ id: nodeId, public_key: second.publicKey, key_fingerprint: await fingerprint(second.publicKey) })]);
  });

  it('shows no key for a node registered before node keys', async () => {
    const provider = await signUp(['provider']);
    const { node_id: nodeId } = await json(await register(provider, machine(), await nodePublicKey()));
    await db().update(nodes).set({ publicKey: null }).where(eq(nodes.id, nodeId));
    expect((await json(await call(`/v1/nodes/${nodeId}`, { auth: provider.apiKey }))).node).toMatchObject({ public_key: null, key_fingerprint: null });
  });
});

describe('a change of GPUs', () => {
  // Tests here trade in this file's region, each in a book of its own (a model of its own).
  const model = 'l40s-48gb';
  const gpu = { name: GPU_NAMES[model]!, memory_mib: 46_068 };

  async function verifiedNode(provider: TestAccount, model = 'l40-48gb') {
    const node = await onlineNode(REGION, provider, model, 2);
    await db().update(nodes).set({ verified: true }).where(eq(nodes.id, node.nodeId));
    await publishNodeTrust(bindings, node.nodeId);
    return node;
  }

  it('puts a verified node back to unverified, and its book stops matching it to verified_only bids', async () => {
    const [renter, provider] = await Promise.all([signUp(), signUp(['provider'])]);
    await fund(renter, 'USD', '50.00');
    const node = await verifiedNode(provider, model);
    await placed(provider, sell(REGION, model, node.nodeId, { gpus: 1 }));
    const book = regionBook(bindings, REGION, model);
    expect((await book.openAsks()).filter((a) => a.nodeId === node.nodeId).map((a) => a.verified)).toEqual([true]);

    // A third card appears: the same node (its first two cards), but not what was verified.
    const grown = { ...node.machine, gpus: [...node.machine.gpus, { ...machine([gpu]).gpus[0]!, index: 2 }] };
    const res = await register(provider, grown, await nodePublicKey());
    expect(res.status).toBe(201);
    expect((await json(res)).node_id).toBe(node.nodeId);

    expect((await nodeRow(node.nodeId)).verified).toBe(false);
    expect((await json(await call(`/v1/nodes/${node.nodeId}`, { auth: provider.apiKey }))).node.verified).toBe(false);
    expect((await book.openAsks()).filter((a) => a.nodeId === node.nodeId).map((a) => a.verified)).toEqual([false]);
    const picky = await placed(renter, buy(REGION, model, { gpus: 1, verified_only: true }));
    expect(picky.leases).toEqual([]);
  });

  const changes: [string, (m: ReturnType<typeof machine>) => ReturnType<typeof machine>][] = [
    ['one card fewer', (m) => ({ ...m, gpus: m.gpus.slice(0, 1) })],
    ['one card swapped for another', (m) => ({ ...m, gpus: [m.gpus[0]!, { ...m.gpus[1]!, uuid: `GPU-${crypto.randomUUID()}` }] })],
    ['a card now reporting another model', (m) => ({ ...m, gpus: [m.gpus[0]!, { ...m.gpus[1]!, name: 'NVIDIA H100 80GB HBM3', memory_mib: 81_559 }] })],
  ];
  it.for(changes)('clears verified when the machine registers with %s', async ([, change]) => {
    const provider = await signUp(['provider']);
    const node = await verifiedNode(provider);
    const res = await register(provider, change(node.machine), await nodePublicKey());
    expect((await json(res)).node_id).toBe(node.nodeId);
    expect((await nodeRow(node.nodeId)).verified).toBe(false);
  });

  it('keeps verified when the same cards register again, in another order, with a new key', async () => {
    const other = 'a6000-48gb';
    const [renter, provider] = await Promise.all([signUp(), signUp(['provider'])]);
    await fund(renter, 'USD', '50.00');
    const node = await verifiedNode(provider, other);
    await placed(provider, sell(REGION, other, node.nodeId, { gpus: 1 }));
    const reordered = { ...node.machine, gpus: [...node.machine.gpus].reverse().map((g, index) => ({ ...g, index })) };
    const key = await nodePublicKey();
    expect((await register(provider, reordered, key)).status).toBe(201);
    expect(await nodeRow(node.nodeId)).toMatchObject({ verified: true, publicKey: key });
    const picky = await placed(renter, buy(REGION, other, { gpus: 1, verified_only: true }));
    expect(picky.leases).toHaveLength(1);
  });
});
