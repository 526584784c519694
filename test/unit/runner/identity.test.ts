import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { NODE_PUBLIC_KEY_PATTERN, NODE_SIGNATURE_PATTERN, signedMessage, signedMessageProblem } from '../../../src/contracts/signed-message.ts';
import { generateNodeKey, keyFingerprint, publicKeyOf, signNodeMessage } from '../../../runner/src/identity.ts';
import { RunnerError } from '../../../runner/src/errors.ts';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe('signed messages', () => {
  it('are a version line, the domain, then the fields sorted by name', () => {
    const bytes = signedMessage('node.challenge.identity', { nonce: 'n-1', node_id: 'node_7', at: '2026-12-07T02:00:00Z' });
    expect(text(bytes)).toBe('gridlease-signed-v1\nnode.challenge.identity\nat=2026-12-07T02:00:00Z\nnode_id=node_7\nnonce=n-1\n');
    // Field order in the object does not matter; UTF-8 is kept as it is.
    expect(signedMessage('node.challenge.identity', { nonce: 'n-1', at: '2026-12-07T02:00:00Z', node_id: 'node_7' })).toEqual(bytes);
    expect(text(signedMessage('d', { gpu: 'Ünïcode ✓' }))).toBe('gridlease-signed-v1\nd\ngpu=Ünïcode ✓\n');
  });

  // A left inverse exists (the bytes split back into exactly the domain and fields), so no two
  // different messages share bytes.
  it('split back into exactly the domain and fields that were signed', () => {
    const parse = (bytes: Uint8Array) => {
      const [version, domain, ...lines] = text(bytes).split('\n');
      expect(version).toBe('gridlease-signed-v1');
      expect(lines.pop()).toBe('');
      return { domain, fields: Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])) };
    };
    const cases: [string, Record<string, string>][] = [
      ['a', {}],
      ['a', { x: '' }],
      ['a', { x: '1=y', x_1: 'y' }],
      ['node.challenge.identity', { nonce: '==', node_id: 'node_1', gpu_uuids: 'GPU-1,GPU-2', driver: '550.54.15 ✓' }],
      ['a-b_c.d', Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, 'v'.repeat(i)]))],
    ];
    for (const [domain, fields] of cases) expect(parse(signedMessage(domain, fields))).toEqual({ domain, fields });
  });

  it('refuse a value with a line break or control character, a lone surrogate, or a bad name', () => {
    expect(() => signedMessage('a', { x: '1\ny=2' })).toThrow(TypeError);
    expect(signedMessageProblem('a', { x: 'a\rb' })).toContain('line breaks');
    expect(signedMessageProblem('a', { x: 'a\u0000' })).toContain('control characters');
    expect(signedMessageProblem('a', { x: '\uD800' })).toContain('control characters');
    expect(signedMessageProblem('a', { 'x=y': '1' })).toContain('field name');
    expect(signedMessageProblem('a', { X: '1' })).toContain('field name');
    expect(signedMessageProblem('bad\ndomain', {})).toContain('domain');
    expect(signedMessageProblem('', {})).toContain('domain');
    expect(signedMessageProblem('a', { x: 1 as unknown as string })).toContain('must be a string');
    expect(signedMessageProblem('a', { x: 'y'.repeat(4097) })).toContain('longer');
  });
});

describe('the node key', () => {
  it('is a fresh Ed25519 key each time, its public half raw 32 bytes in base64url', () => {
    const a = generateNodeKey();
    const b = generateNodeKey();
    expect(a.publicKey).not.toBe(b.publicKey);
    expect(a.publicKey).toMatch(NODE_PUBLIC_KEY_PATTERN);
    expect(Buffer.from(a.publicKey, 'base64url')).toHaveLength(32);
    expect(publicKeyOf(a.privateKey)).toBe(a.publicKey);
  });

  it('signs messages that node:crypto verifies with the registered public key, and nothing else', () => {
    const key = generateNodeKey();
    const message = signedMessage('node.challenge.identity', { nonce: 'abc', node_id: 'node_1' });
    const signature = signNodeMessage(key.privateKey, message);
    expect(signature).toMatch(NODE_SIGNATURE_PATTERN);
    const publicKey = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key.publicKey }, format: 'jwk' });
    expect(crypto.verify(null, message, publicKey, Buffer.from(signature, 'base64url'))).toBe(true);
    const other = signedMessage('node.challenge.identity', { nonce: 'abd', node_id: 'node_1' });
    expect(crypto.verify(null, other, publicKey, Buffer.from(signature, 'base64url'))).toBe(false);
  });

  // The same vector is verified by the Worker in test/worker/node-identity.test.ts.
  it('signs a canonical message deterministically, as the shared test vector says', () => {
    const privateKey = 'MC4CAQAwBQYDK2VwBCIEIAcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH';
    expect(publicKeyOf(privateKey)).toBe('6kpsY-KcUgq-9VB7Ey7F-ZVHdq6-vnuSQh7qaRRG0iw');
    expect(signNodeMessage(privateKey, signedMessage('node.test-vector', { nonce: 'n0nce', node_id: 'node_vector' }))).toBe(
      'jyzlyCaqy_IOAyvD3ZfualPRUZXm3fgLOYmGaPohHPMx968sQF3cn_edt3UnQMzVnd4vKmdVWdq6DSC_3pA7Dw',
    );
  });

  it('has a fingerprint: the first 16 hex of SHA-256 over the raw public key', () => {
    const key = generateNodeKey();
    const expected = crypto.createHash('sha256').update(Buffer.from(key.publicKey, 'base64url')).digest('hex').slice(0, 16);
    expect(keyFingerprint(key.publicKey)).toBe(expected);
    expect(() => keyFingerprint('short')).toThrow(RunnerError);
  });

  it('refuses a stored key that is not an Ed25519 private key, in one line', () => {
    const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64url');
    expect(() => signNodeMessage(rsa, new Uint8Array(1))).toThrow('not an Ed25519 key');
    expect(() => publicKeyOf('garbage')).toThrow('unreadable');
  });
});
