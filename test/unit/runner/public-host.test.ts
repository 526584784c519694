import { afterEach, describe, expect, it } from 'vitest';
import { Backoff } from '../../../runner/src/backoff.ts';
import { ApiClient } from '../../../runner/src/api.ts';
import { EXIT, RunnerError } from '../../../runner/src/errors.ts';
import { memoryLogger } from '../../../runner/src/log.ts';
import { parseOptions } from '../../../runner/src/options.ts';
import { localAddresses, publicHostHint, publishPublicHost } from '../../../runner/src/public-host.ts';
import { FakeApi, apiError } from './helpers.ts';

const quick = () => new Backoff({ baseMs: 10, maxMs: 20 });

describe('--public-host', () => {
  it('takes the flag over GRIDLEASE_PUBLIC_HOST, and null when neither is set', () => {
    expect(parseOptions(['start'], {}).publicHost).toBeNull();
    expect(parseOptions(['start'], { GRIDLEASE_PUBLIC_HOST: 'gpu1.example.net' }).publicHost).toBe('gpu1.example.net');
    expect(parseOptions(['start', '--public-host', '203.0.113.7'], { GRIDLEASE_PUBLIC_HOST: 'gpu1.example.net' }).publicHost).toBe('203.0.113.7');
    expect(parseOptions(['start', '--public-host', '2001:db8::7'], {}).publicHost).toBe('2001:db8::7');
  });

  it.each(['https://gpu1.example.net', 'gpu1.example.net:8080', 'a b', '-x.example', 'gpu1.example.net/path', '', 'x'.repeat(254)])('refuses %j as a usage error', (value) => {
    const parse = () => parseOptions(['start', `--public-host=${value}`], {});
    expect(parse).toThrow(RunnerError);
    expect(parse).toThrow(/must be a DNS name or an IP address, without scheme or port/);
    try {
      parse();
    } catch (err) {
      expect((err as RunnerError).exitCode).toBe(EXIT.usage);
    }
  });

  it('hints at the non-loopback addresses when unset', () => {
    const addresses = localAddresses({
      lo: [{ address: '127.0.0.1', internal: true } as never],
      eth0: [{ address: '192.168.1.20', internal: false } as never, { address: 'fe80::1', internal: false } as never],
    });
    expect(addresses).toEqual(['192.168.1.20', 'fe80::1']);
    expect(publicHostHint(addresses)).toMatch(/renters will see no endpoints .*this machine's addresses: 192\.168\.1\.20, fe80::1/);
    expect(publicHostHint([])).toContain('no non-loopback address found');
  });
});

describe('publishPublicHost', () => {
  let api: FakeApi;
  afterEach(() => api.close());
  const client = () => new ApiClient({ api: api.url, nodeToken: 'nt_1' });

  it('PUTs the host with the node token, retrying 5xx and connection failures', async () => {
    api = await new FakeApi().listen();
    let failures = 2;
    api.handler = (req) => (req.url === '/v1/runner/public-host' ? (failures-- > 0 ? { status: 503, body: apiError('unavailable', 'later') } : { status: 204 }) : undefined);
    const log = memoryLogger();
    await publishPublicHost(client(), 'gpu1.example.net', log, new AbortController().signal, quick());
    expect(api.requests.map((r) => [r.method, r.url, r.auth, r.body])).toEqual(
      Array(3).fill(['PUT', '/v1/runner/public-host', 'Bearer nt_1', { public_host: 'gpu1.example.net' }]),
    );
    expect(log.lines.filter((l) => l.includes('retrying'))).toHaveLength(1);
  });

  it('sends null when unset', async () => {
    api = await new FakeApi().listen();
    api.handler = () => ({ status: 204 });
    await publishPublicHost(client(), null, memoryLogger(), new AbortController().signal, quick());
    expect(api.requests[0]!.body).toEqual({ public_host: null });
  });

  it('ends with the usage exit code when the API refuses the host (400)', async () => {
    api = await new FakeApi().listen();
    api.handler = () => ({ status: 400, body: apiError('invalid_request', 'public_host: private addresses are not allowed') });
    const err = await publishPublicHost(client(), '10.0.0.5', memoryLogger(), new AbortController().signal, quick()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunnerError);
    expect(err).toMatchObject({ exitCode: EXIT.usage, message: 'the API refused --public-host "10.0.0.5": public_host: private addresses are not allowed' });
  });

  it('gives up with a warning when the API has no such endpoint (404)', async () => {
    api = await new FakeApi().listen();
    const log = memoryLogger();
    await publishPublicHost(client(), 'gpu1.example.net', log, new AbortController().signal, quick());
    expect(log.lines).toEqual([expect.stringMatching(/^warn the API does not take a public host \(404/)]);
  });
});
