import { createHmac, timingSafeEqual } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { newEndpointSecret, signatureHeader } from '../../src/webhooks/signature.ts';
import { checkEndpointUrl, describeUrlProblem, MAX_URL_LENGTH, type UrlProblem } from '../../src/webhooks/url.ts';

/** The verification snippet from docs/api.md ("Webhooks we send"), with types and the clock passed in. */
function verifyGridleaseSignature(header: string, rawBody: string, secret: string, nowS: number, toleranceS = 300): boolean {
  const fields = new Map(header.split(',').map((part) => part.trim().split('=', 2) as [string, string]));
  const t = Number(fields.get('t'));
  const given = Buffer.from(fields.get('v1') ?? '', 'hex');
  if (!Number.isInteger(t) || Math.abs(nowS - t) > toleranceS) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  return given.length === expected.length && timingSafeEqual(given, expected);
}

describe('webhook signatures', () => {
  const secret = 'whsec_' + 'A'.repeat(43);
  const body = '{"id":"evt_1","type":"lease.running","created_at":"2026-01-01T00:00:00.000Z","data":{}}';

  it('are t=<seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>"> keyed with the whole secret', async () => {
    const header = await signatureHeader(secret, body, 1_800_000_000);
    const expected = createHmac('sha256', secret).update(`1800000000.${body}`).digest('hex');
    expect(header).toBe(`t=1800000000,v1=${expected}`);
  });

  it('verify with the documented snippet, and only for the same body, secret and a fresh timestamp', async () => {
    const t = 1_800_000_000;
    const header = await signatureHeader(secret, body, t);
    expect(verifyGridleaseSignature(header, body, secret, t + 10)).toBe(true);
    expect(verifyGridleaseSignature(header, body.replace('evt_1', 'evt_2'), secret, t)).toBe(false);
    expect(verifyGridleaseSignature(header, body, `${secret}x`, t)).toBe(false);
    expect(verifyGridleaseSignature(header, body, secret, t + 301)).toBe(false);
    expect(verifyGridleaseSignature('v1=00', body, secret, t)).toBe(false);
  });

  it('use a fresh whsec_ secret of 32 random bytes each time', () => {
    const a = newEndpointSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(a.slice(6), 'base64url')).toHaveLength(32);
    expect(newEndpointSecret()).not.toBe(a);
  });
});

describe('endpoint URLs', () => {
  const refused = (url: string, environment: string): UrlProblem | null => {
    const r = checkEndpointUrl(url, environment);
    return r.ok ? null : r.problem;
  };

  it('accept public https URLs everywhere, normalised', () => {
    for (const env of ['production', 'staging', 'development', 'test']) {
      expect(checkEndpointUrl('https://Hooks.Example.com/gridlease?x=1', env)).toEqual({ ok: true, url: 'https://hooks.example.com/gridlease?x=1' });
    }
    expect(refused('https://203.0.113.7:8443/h', 'production')).toBeNull();
    expect(refused('https://[2001:db8::1]/h', 'production')).toBeNull();
    expect(refused('https://172.32.0.1/h', 'production')).toBeNull();
    expect(refused('https://example.localhost.com/h', 'production')).toBeNull();
  });

  it('accept http only on development and test servers', () => {
    expect(refused('http://hooks.example.com/h', 'production')).toBe('https_required');
    expect(refused('http://hooks.example.com/h', 'staging')).toBe('https_required');
    expect(refused('http://hooks.example.com/h', 'development')).toBeNull();
    expect(refused('http://hooks.example.com/h', 'test')).toBeNull();
  });

  it('refuse other schemes, relative or malformed URLs, credentials and anything over 2048 characters', () => {
    for (const env of ['production', 'test']) {
      expect(refused('ftp://example.com/h', env)).toBe('scheme');
      expect(refused('javascript:alert(1)', env)).toBe('scheme');
      expect(refused('/hooks', env)).toBe('malformed');
      expect(refused('https://', env)).toBe('malformed');
      expect(refused('https://user:pw@example.com/h', env)).toBe('credentials');
      expect(refused('https://user@example.com/h', env)).toBe('credentials');
      expect(refused(`https://example.com/${'a'.repeat(MAX_URL_LENGTH)}`, env)).toBe('too_long');
    }
    expect(refused(`https://example.com/${'a'.repeat(MAX_URL_LENGTH - 'https://example.com/'.length)}`, 'production')).toBeNull();
  });

  it.each([
    ['https://localhost/h', 'loopback'],
    ['https://LOCALHOST./h', 'loopback'],
    ['https://api.localhost/h', 'loopback'],
    ['https://127.0.0.1/h', 'loopback'],
    ['https://127.255.0.9:8443/h', 'loopback'],
    ['https://0x7f.1/h', 'loopback'],
    ['https://2130706433/h', 'loopback'],
    ['https://[::1]/h', 'loopback'],
    ['https://[0:0:0:0:0:0:0:1]/h', 'loopback'],
    ['https://[::ffff:127.0.0.1]/h', 'loopback'],
    ['https://10.0.0.1/h', 'private_address'],
    ['https://10.255.255.255/h', 'private_address'],
    ['https://172.16.0.1/h', 'private_address'],
    ['https://172.31.255.254/h', 'private_address'],
    ['https://192.168.1.10/h', 'private_address'],
    ['https://169.254.169.254/latest/meta-data', 'private_address'],
    ['https://0.0.0.0/h', 'private_address'],
    ['https://[::]/h', 'private_address'],
    ['https://[fc00::1]/h', 'private_address'],
    ['https://[fd12:3456::1]/h', 'private_address'],
    ['https://[fe80::1]/h', 'private_address'],
    ['https://[febf::1]/h', 'private_address'],
    ['https://[::ffff:10.1.2.3]/h', 'private_address'],
    ['https://[::ffff:a9fe:a9fe]/h', 'private_address'],
    ['https://[64:ff9b::192.168.0.1]/h', 'private_address'],
    ['https://printer.local/h', 'local_name'],
    ['https://db.internal/h', 'local_name'],
    ['https://metadata.google.internal./h', 'local_name'],
  ] as const)('refuse %s outside development and test (%s)', (url, problem) => {
    expect(refused(url, 'production')).toBe(problem);
    expect(refused(url, 'staging')).toBe(problem);
    expect(refused(url, 'test')).toBeNull();
    expect(refused(url, 'development')).toBeNull();
  });

  it('explain every refusal in words', () => {
    const problems: UrlProblem[] = ['too_long', 'malformed', 'scheme', 'https_required', 'credentials', 'loopback', 'private_address', 'local_name'];
    for (const p of problems) expect(describeUrlProblem(p)).toMatch(/^must /);
  });
});
