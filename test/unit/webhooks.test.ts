import { createHmac, timingSafeEqual } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { newEndpointSecret, signatureHeader } from '../../src/webhooks/signature.ts';
import { checkEndpointUrl, describeUrlProblem, hostProblem, MAX_URL_LENGTH, type UrlProblem } from '../../src/webhooks/url.ts';

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
    expect(refused('https://8.8.8.8:8443/h', 'production')).toBeNull();
    expect(refused('https://[2606:4700:4700::1111]/h', 'production')).toBeNull();
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

  // The IANA special-purpose registries, written out here independently of the module.
  it.each([
    // IPv4: shared (carrier-grade NAT), "this network", benchmarking, reserved, multicast, protocol assignments, documentation
    ['https://100.64.0.1/h', 'private_address'],
    ['https://100.127.255.255/h', 'private_address'],
    ['https://0.1.2.3/h', 'private_address'],
    ['https://198.18.0.1/h', 'reserved_address'],
    ['https://198.19.255.255/h', 'reserved_address'],
    ['https://240.0.0.1/h', 'reserved_address'],
    ['https://255.255.255.255/h', 'reserved_address'],
    ['https://224.0.0.1/h', 'reserved_address'],
    ['https://239.255.255.250/h', 'reserved_address'],
    ['https://192.0.0.8/h', 'reserved_address'],
    ['https://192.0.2.1/h', 'reserved_address'],
    ['https://198.51.100.20/h', 'reserved_address'],
    ['https://203.0.113.7/h', 'reserved_address'],
    ['https://192.88.99.1/h', 'reserved_address'],
    // Other spellings of IPv4 addresses: decimal, octal, hex, short forms
    ['https://0177.0.0.1/h', 'loopback'],
    ['https://0x7f000001/h', 'loopback'],
    ['https://017700000001/h', 'loopback'],
    ['https://127.1/h', 'loopback'],
    ['https://0xa.0.0.1/h', 'private_address'],
    ['https://167772161/h', 'private_address'],
    ['https://0300.0250.1.1/h', 'private_address'],
    ['https://0x64.0x40.0.1/h', 'private_address'],
    ['https://0xA9FEA9FE/latest/meta-data', 'private_address'],
    // IPv6 forms carrying an IPv4 address: IPv4-compatible, -mapped, -translated, NAT64, 6to4
    ['https://[::127.0.0.1]/h', 'loopback'],
    ['https://[::10.0.0.1]/h', 'private_address'],
    ['https://[::8.8.8.8]/h', 'reserved_address'],
    ['https://[::ffff:8.8.8.8]/h', 'reserved_address'],
    ['https://[::ffff:0:127.0.0.1]/h', 'loopback'],
    ['https://[::ffff:0:100.64.0.1]/h', 'private_address'],
    ['https://[::ffff:100.64.0.1]/h', 'private_address'],
    ['https://[64:ff9b::8.8.8.8]/h', 'reserved_address'],
    ['https://[64:ff9b::7f00:1]/h', 'loopback'],
    ['https://[64:ff9b:1::1]/h', 'reserved_address'],
    ['https://[2002:c0a8:101::1]/h', 'private_address'],
    ['https://[2002:7f00:1::]/h', 'loopback'],
    ['https://[2002:808:808::1]/h', 'reserved_address'],
    // IPv6: Teredo and the rest of 2001::/23, documentation, multicast, discard, site-local, unassigned space
    ['https://[2001::1]/h', 'reserved_address'],
    ['https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/h', 'reserved_address'],
    ['https://[2001:2::1]/h', 'reserved_address'],
    ['https://[2001:db8::1]/h', 'reserved_address'],
    ['https://[3fff::1]/h', 'reserved_address'],
    ['https://[ff02::1]/h', 'reserved_address'],
    ['https://[ff0e::101]/h', 'reserved_address'],
    ['https://[100::1]/h', 'reserved_address'],
    ['https://[fec0::1]/h', 'private_address'],
    ['https://[5f00::1]/h', 'reserved_address'],
    ['https://[4000::1]/h', 'reserved_address'],
    ['https://[::2]/h', 'private_address'],
  ] as const)('refuse the special-purpose address %s outside development and test (%s)', (url, problem) => {
    expect(refused(url, 'production')).toBe(problem);
    expect(refused(url, 'test')).toBeNull();
  });

  it('accept the public addresses just outside each special range', () => {
    for (const url of [
      'https://100.63.255.255/h',
      'https://100.128.0.0/h',
      'https://1.0.0.1/h',
      'https://198.17.255.255/h',
      'https://198.20.0.0/h',
      'https://223.255.255.255/h',
      'https://192.0.1.255/h',
      'https://192.0.3.0/h',
      'https://172.15.255.255/h',
      'https://11.0.0.0/h',
      'https://[2001:200::1]/h',
      'https://[2001:db9::1]/h',
      'https://[2003::1]/h',
      'https://[2a00:1450:4001::200e]/h',
      'https://[3ffe:ffff::1]/h',
    ]) {
      expect([url, refused(url, 'production')]).toEqual([url, null]);
    }
  });

  it('read any spelling of an IPv4 host the way the URL standard does', () => {
    expect(hostProblem('0x7f.1')).toBe('loopback');
    expect(hostProblem('2130706433')).toBe('loopback');
    expect(hostProblem('0177.0.0.1.')).toBe('loopback');
    expect(hostProblem('0XA.0.0.1')).toBe('private_address');
    expect(hostProblem('1.2.3.4.5')).toBe('malformed');
    expect(hostProblem('4294967296')).toBe('malformed');
    expect(hostProblem('1.2.3.08')).toBe('malformed');
    expect(hostProblem('8.8.8.8')).toBeNull();
    expect(hostProblem('hooks.example.com')).toBeNull();
    expect(hostProblem('1.2.3.example')).toBeNull();
  });

  it('explain every refusal in words', () => {
    const problems: UrlProblem[] = ['too_long', 'malformed', 'scheme', 'https_required', 'credentials', 'loopback', 'private_address', 'reserved_address', 'local_name'];
    for (const p of problems) expect(describeUrlProblem(p)).toMatch(/^must /);
  });
});
