// The CLI's commands against a fake API, in-process: what they print, as tables or --json, and
// the exit code of each kind of failure.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../../cli/src/run.ts';
import { EXIT } from '../../../cli/src/exit.ts';
import { sendError, sendJson, startFakeApi, type FakeApi } from '../../support/cli-fake-api.ts';
import { captureIo } from '../../support/cli-io.ts';

let api: FakeApi;
let dir: string;
beforeEach(async () => {
  api = await startFakeApi();
  dir = mkdtempSync(join(tmpdir(), 'gridlease-cli-'));
});
afterEach(async () => {
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the CLI with a token in the environment and a config file in the test's folder. */
async function cli(argv: string[], opts: { env?: NodeJS.ProcessEnv; stdin?: string } = {}) {
  const io = captureIo({ GRIDLEASE_API: api.url, GRIDLEASE_TOKEN: 'glk_env', GRIDLEASE_CLI_CONFIG: join(dir, 'cli.json'), ...opts.env }, { stdin: opts.stdin });
  const code = await run(argv, io);
  return { code, stdout: io.stdout(), stderr: io.stderr() };
}

const LEASE = {
  id: 'lse_1',
  state: 'running',
  role: 'renter',
  region: 'us-east',
  gpu_model: 'h100-80gb',
  gpus: 2,
  gpu_indices: [0, 1],
  node_id: 'nod_1',
  price: '3.60',
  duration_s: 3600,
  asset: 'USD',
  amount: '7.20',
  bid_id: 'ord_1',
  ask_id: null,
  workload: { image: 'ghcr.io/acme/serve:1', command: [], env: {}, ports: [8080] },
  ports: { '8080': 40001 },
  endpoints: [{ port: 8080, host: 'gpu1.example.net', host_port: 40001, url: 'http://gpu1.example.net:40001' }],
  endpoints_state: 'ready',
  last_lines: null,
  started_at: '2026-12-07T07:00:00.000Z',
  ends_at: '2026-12-07T08:00:00.000Z',
  stopped_at: null,
  exit_code: null,
  billed: '0.50',
  settlements: [],
  created_at: '2026-12-07T06:59:00.000Z',
  history: [{ state: 'running', at: '2026-12-07T07:00:00.000Z' }],
};

describe('exit codes', () => {
  it('exits 0 with a table, or the API’s JSON with --json', async () => {
    api.on('GET /v1/balances', (_req, res) => sendJson(res, 200, { data: [{ asset: 'USD', available: '10.00', held: '2.50' }] }));
    const human = await cli(['balance']);
    expect(human.code).toBe(EXIT.ok);
    expect(human.stdout).toBe('ASSET  AVAILABLE  HELD\nUSD        10.00  2.50\n');
    const scripted = await cli(['balance', '--json']);
    expect(JSON.parse(scripted.stdout)).toEqual({ data: [{ asset: 'USD', available: '10.00', held: '2.50' }] });
    expect(api.received[0]!.headers.authorization).toBe('Bearer glk_env');
  });

  it('exits 2 on usage errors without calling the API', async () => {
    expect((await cli(['deposit', 'ten'])).code).toBe(EXIT.usage);
    expect((await cli(['logs'])).code).toBe(EXIT.usage);
    expect((await cli(['leases', '--state', 'sleeping'])).code).toBe(EXIT.usage);
    expect(api.received).toHaveLength(0);
  });

  it('exits 3 without credentials, or when the API refuses them, printing the message and request_id', async () => {
    const none = await cli(['balance'], { env: { GRIDLEASE_TOKEN: '' } });
    expect(none.code).toBe(EXIT.auth);
    expect(none.stderr).toMatch(/not logged in/);
    api.on('GET /v1/balances', (_req, res) => sendError(res, 401, 'unauthorized', 'API key is invalid, revoked or expired', 'req_auth0001'));
    const refused = await cli(['balance']);
    expect(refused.code).toBe(EXIT.auth);
    expect(refused.stderr).toBe('gridlease: API key is invalid, revoked or expired (request_id req_auth0001)\n');
  });

  it('exits 4 for an unknown lease and prints the error as JSON on stderr with --json', async () => {
    api.on('GET /v1/leases/lse_x', (_req, res) => sendError(res, 404, 'not_found', 'no lease lse_x', 'req_nf000001'));
    const r = await cli(['lease', 'lse_x', '--json']);
    expect(r.code).toBe(EXIT.notFound);
    expect(r.stdout).toBe('');
    expect(JSON.parse(r.stderr)).toEqual({ error: { code: 'not_found', message: 'no lease lse_x', request_id: 'req_nf000001', status: 404 } });
  });

  it('exits 5 when funds are short, 1 for other API errors, 6 when the API cannot be reached', async () => {
    api.on('POST /v1/leases/lse_1/extend', (_req, res) => sendError(res, 402, 'insufficient_funds', 'not enough USD available to extend by 3600 s'));
    expect((await cli(['extend', 'lse_1', '1h'])).code).toBe(EXIT.funds);
    api.on('POST /v1/leases/lse_1/extend', (_req, res) => sendError(res, 409, 'conflict', 'lease lse_1 is over'));
    const over = await cli(['extend', 'lse_1', '1h']);
    expect(over.code).toBe(EXIT.api);
    expect(over.stderr).toMatch(/lease lse_1 is over/);
    expect(api.received.at(-1)!.body).toEqual({ duration_s: 3600 });
    const down = await cli(['balance'], { env: { GRIDLEASE_API: 'http://127.0.0.1:1' } });
    expect(down.code).toBe(EXIT.network);
    expect(down.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:1/);
  });
});

describe('help', () => {
  it('lists every command and the exit codes, and prints the version', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(EXIT.ok);
    for (const command of ['login', 'balance', 'deposit', 'offers', 'buy', 'leases', 'lease', 'logs', 'metrics', 'terminate', 'extend']) {
      expect(help.stdout).toContain(`gridlease ${command}`);
    }
    expect(help.stdout).toMatch(/Exit codes: 0 ok, 1 API error, 2 usage, 3 auth, 4 not found/);
    expect((await cli(['logs', '--help'])).stdout).toMatch(/^Usage:\n  gridlease logs ID/);
    expect((await cli(['--version'])).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});

describe('login', () => {
  it('exchanges email and password for an API key and saves it readable by the owner only', async () => {
    api.on('POST /v1/auth/token', (req, res) => {
      expect(req.body).toEqual({ grant_type: 'password', email: 'ada@example.com', password: 'Harbor-Lantern-6613' });
      sendJson(res, 200, { access_token: 'jwt.access', token_type: 'Bearer', expires_in: 900, scope: '' });
    });
    api.on('POST /v1/api-keys', (req, res) => {
      expect(req.headers.authorization).toBe('Bearer jwt.access');
      sendJson(res, 201, { api_key: { id: 'key_1', key: 'glk_saved', name: (req.body as { name: string }).name } });
    });
    api.on('GET /v1/accounts/me', (req, res) => {
      expect(req.headers.authorization).toBe('Bearer glk_saved');
      sendJson(res, 200, { account: { id: 'acc_1', email: 'ada@example.com', roles: ['renter'], status: 'active', created_at: '' } });
    });
    const config = join(dir, 'nested', 'cli.json');
    const r = await cli(['login', '--api', api.url, '--email', 'ada@example.com', '--password-stdin'], { stdin: 'Harbor-Lantern-6613\n', env: { GRIDLEASE_API: '', GRIDLEASE_TOKEN: '', GRIDLEASE_CLI_CONFIG: config } });
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(statSync(config).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'nested')).mode & 0o777).toBe(0o700);
    const saved = JSON.parse(readFileSync(config, 'utf8'));
    expect(saved).toMatchObject({ api: api.url, token: 'glk_saved', account_id: 'acc_1', api_key_id: 'key_1' });
    expect(JSON.stringify(saved)).not.toContain('Harbor');

    // The saved login is used; GRIDLEASE_TOKEN wins over it.
    api.on('GET /v1/balances', (_req, res) => sendJson(res, 200, { data: [] }));
    expect((await cli(['balance'], { env: { GRIDLEASE_API: '', GRIDLEASE_TOKEN: '', GRIDLEASE_CLI_CONFIG: config } })).code).toBe(EXIT.ok);
    expect(api.received.at(-1)!.headers.authorization).toBe('Bearer glk_saved');
    await cli(['balance'], { env: { GRIDLEASE_API: '', GRIDLEASE_TOKEN: 'glk_override', GRIDLEASE_CLI_CONFIG: config } });
    expect(api.received.at(-1)!.headers.authorization).toBe('Bearer glk_override');
  });

  it('logs out: revokes the key login made and deletes the file', async () => {
    const config = join(dir, 'cli.json');
    writeFileSync(config, JSON.stringify({ api: api.url, token: 'glk_saved', api_key_id: 'key_1' }), { mode: 0o600 });
    api.on('DELETE /v1/api-keys/key_1', (req, res) => {
      expect(req.headers.authorization).toBe('Bearer glk_saved');
      sendJson(res, 200, { api_key: { id: 'key_1' } });
    });
    const r = await cli(['logout']);
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/API key is revoked/);
    expect(() => statSync(config)).toThrow();
  });

  it('exits 3 on a wrong password and saves nothing', async () => {
    api.on('POST /v1/auth/token', (_req, res) => sendError(res, 401, 'unauthorized', 'email or password is incorrect'));
    const r = await cli(['login', '--email', 'ada@example.com', '--password-stdin'], { stdin: 'wrong' });
    expect(r.code).toBe(EXIT.auth);
    expect(() => statSync(join(dir, 'cli.json'))).toThrow();
  });

  it('refuses a saved login that group or others can read', async () => {
    const config = join(dir, 'open.json');
    writeFileSync(config, JSON.stringify({ api: api.url, token: 'glk_x' }), { mode: 0o644 });
    const r = await cli(['balance'], { env: { GRIDLEASE_TOKEN: '', GRIDLEASE_CLI_CONFIG: config } });
    expect(r.code).toBe(EXIT.auth);
    expect(r.stderr).toMatch(/chmod 600/);
  });
});

describe('deposit', () => {
  it('credits test money through the faucet with an Idempotency-Key', async () => {
    api.on('POST /v1/dev/faucet', (_req, res) => sendJson(res, 201, { transaction_id: 'txn_1', asset: 'USDC', available: '50.00', held: '0.00' }));
    const r = await cli(['deposit', '50', '--asset', 'usdc']);
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/Credited 50 USDC/);
    expect(api.received[0]!.body).toEqual({ asset: 'USDC', amount: '50' });
    expect(api.received[0]!.headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('says plainly that a server without the faucet is not a development server', async () => {
    const r = await cli(['deposit', '50']);
    expect(r.code).toBe(EXIT.notFound);
    expect(r.stderr).toMatch(/not a development server/);
  });
});

describe('leases', () => {
  it('shows a lease with its endpoints and cost so far', async () => {
    api.on('GET /v1/leases/lse_1', (_req, res) => sendJson(res, 200, { lease: LEASE }));
    const r = await cli(['lease', 'lse_1']);
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/^state\s+running$/m);
    expect(r.stdout).toMatch(/^billed\s+0\.50 USD$/m);
    expect(r.stdout).toMatch(/^accrued \(est\.\)\s+\d+\.\d\d USD$/m);
    expect(r.stdout).toMatch(/8080\s+gpu1\.example\.net\s+40001\s+http:\/\/gpu1\.example\.net:40001/);
  });

  it('says why a lease has no endpoints', async () => {
    api.on('GET /v1/leases/lse_1', (_req, res) => sendJson(res, 200, { lease: { ...LEASE, endpoints: [], endpoints_state: 'no_public_host' } }));
    expect((await cli(['lease', 'lse_1'])).stdout).toMatch(/endpoints: the provider gave no public host/);
  });

  it('lists leases as a table, passing the filters', async () => {
    api.on('GET /v1/leases', (_req, res) => sendJson(res, 200, { data: [LEASE], next_cursor: null }));
    const r = await cli(['leases', '--state', 'running', '--role', 'renter']);
    expect(r.stdout.split('\n')[0]).toMatch(/^LEASE\s+STATE\s+ROLE\s+REGION\s+GPUS/);
    expect(r.stdout).toMatch(/lse_1\s+running\s+renter\s+us-east\s+2 × h100-80gb/);
    expect(Object.fromEntries(api.received[0]!.query)).toEqual({ state: 'running', role: 'renter' });
    api.on('GET /v1/leases', (_req, res) => sendJson(res, 200, { data: [], next_cursor: null }));
    expect((await cli(['leases'])).stdout).toBe('No leases.\n');
  });
});

describe('offers', () => {
  it('passes the query and order to the search and prints the offers as a table', async () => {
    const offer = { id: 'ord_ask1', region: 'eu-central', gpu_model: 'h100-80gb', gpus: 4, price: '2.35', min_duration_s: 3600, max_duration_s: 86_400, expires_at: '', reliability: 0.9912, verified: true, verified_at: null, vram_gb: 80, cpu_cores: 64, ram_gb: 512, disk_gb: 900 };
    api.on('GET /v1/offers', (_req, res) => sendJson(res, 200, { data: [offer], count: 1 }));
    const r = await cli(['offers', 'gpu_model=h100-80gb', 'gpus>=2', '--order', '-reliability', '--limit', '10'], { env: { GRIDLEASE_TOKEN: '' } });
    expect(r.code, r.stderr).toBe(EXIT.ok);
    expect(Object.fromEntries(api.received[0]!.query)).toEqual({ q: 'gpu_model=h100-80gb gpus>=2', order: '-reliability', limit: '10' });
    expect(api.received[0]!.headers.authorization).toBeUndefined();
    expect(r.stdout).toMatch(/^ASK\s+REGION\s+GPU\s+GPUS\s+USD\/GPU-H\s+DURATION\s+RELIABILITY/);
    expect(r.stdout).toMatch(/ord_ask1\s+eu-central\s+h100-80gb\s+4\s+2\.35\s+1h–1d\s+0\.991\s+yes\s+80\s+64\s+512/);
  });

  it('exits 1 with the API’s message for a query it cannot parse', async () => {
    api.on('GET /v1/offers', (_req, res) => sendError(res, 400, 'validation_failed', 'invalid query: q: unknown field "gpux"', 'req_q0000001'));
    const r = await cli(['offers', 'gpux=2']);
    expect(r.code).toBe(EXIT.api);
    expect(r.stderr).toBe('gridlease: invalid query: q: unknown field "gpux" (request_id req_q0000001)\n');
  });
});

describe('buy', () => {
  const placed = { order: { id: 'ord_1', status: 'filled', gpus: 2, gpu_model: 'h100-80gb', region: 'us-east', price: '3.60', hold_amount: '7.20', pay_with: 'USD' }, leases: [{ id: 'lse_1', state: 'provisioning', price: '3.60', gpus: 2, duration_s: 3600, created_at: '' }] };

  it('places the bid from a workload file and flags, then waits until the lease runs', async () => {
    const file = join(dir, 'workload.json');
    writeFileSync(file, JSON.stringify({ image: 'ghcr.io/acme/serve:1', command: ['serve'], env: { MODE: 'fast' }, ports: [8080] }));
    api.on('POST /v1/orders', (_req, res) => sendJson(res, 201, placed));
    let polls = 0;
    api.on('GET /v1/leases/lse_1', (_req, res) => sendJson(res, 200, { lease: ++polls < 3 ? { ...LEASE, state: 'provisioning', endpoints: [], endpoints_state: 'not_running' } : LEASE }));
    const r = await cli(['buy', '--file', file, '--region', 'us-east', '--gpu', 'h100-80gb', '--gpus', '2', '--price', '3.60', '--duration', '1h']);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    const sent = api.received[0]!;
    expect(sent.body).toEqual({ side: 'buy', region: 'us-east', gpu_model: 'h100-80gb', gpus: 2, price: '3.60', duration_s: 3600, pay_with: 'USD', workload: { image: 'ghcr.io/acme/serve:1', command: ['serve'], env: { MODE: 'fast' }, ports: [8080] } });
    expect(sent.headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.stderr).toMatch(/lease lse_1 is provisioning/);
    expect(r.stdout).toMatch(/Lease lse_1 is running/);
    expect(r.stdout).toMatch(/http:\/\/gpu1\.example\.net:40001/);
  });

  it('exits 7 when the lease fails before running', async () => {
    api.on('POST /v1/orders', (_req, res) => sendJson(res, 201, placed));
    api.on('GET /v1/leases/lse_1', (_req, res) => sendJson(res, 200, { lease: { ...LEASE, state: 'failed', history: [{ state: 'failed', at: '', reason: 'image pull failed' }] } }));
    const r = await cli(['buy', '--region', 'us-east', '--gpu', 'h100-80gb', '--price', '3.60', '--duration', '1h', '--image', 'x']);
    expect(r.code).toBe(EXIT.notRunning);
    expect(r.stderr).toMatch(/lease lse_1 is failed: image pull failed/);
  });

  it('exits 130 on Ctrl-C while waiting, saying the lease goes on', async () => {
    const io = captureIo({ GRIDLEASE_API: api.url, GRIDLEASE_TOKEN: 'glk_env', GRIDLEASE_CLI_CONFIG: join(dir, 'cli.json') });
    api.on('POST /v1/orders', (_req, res) => sendJson(res, 201, placed));
    api.on('GET /v1/leases/lse_1', (_req, res) => {
      io.abort();
      sendJson(res, 200, { lease: { ...LEASE, state: 'provisioning' } });
    });
    const code = await run(['buy', '--region', 'us-east', '--gpu', 'h100-80gb', '--price', '3.60', '--duration', '1h', '--image', 'x'], io);
    expect(code).toBe(EXIT.interrupted);
    expect(io.stderr()).toMatch(/stopped waiting; the lease goes on/);
  });

  it('returns at once with --no-wait, printing the order as JSON', async () => {
    api.on('POST /v1/orders', (_req, res) => sendJson(res, 201, placed));
    const r = await cli(['buy', '--region', 'us-east', '--gpu', 'h100-80gb', '--price', '3.60', '--duration', '1h', '--image', 'x', '--no-wait', '--json']);
    expect(r.code).toBe(EXIT.ok);
    expect(JSON.parse(r.stdout)).toEqual(placed);
    expect(api.received).toHaveLength(1);
  });
});

describe('logs and metrics', () => {
  const line = (seq: number, text: string, extra: object = {}) => ({ seq, at: '2026-12-07T07:00:00.000Z', stream: 'stdout', text, ...extra });

  it('escapes control characters in log text unless --raw, joins partial lines and sends stderr lines to stderr', async () => {
    const page = { data: [line(0, 'hello \x1b[2J\x1b]0;owned\x07'), line(1, 'split ', { partial: true }), line(2, 'line'), line(3, 'oops', { stream: 'stderr' })], next_seq: 4, ended: true, exit_code: 0, lost: 0, dropped: 0 };
    api.on('GET /v1/leases/lse_1/logs', (req, res) => sendJson(res, 200, req.query.get('since') === '4' ? { ...page, data: [] } : page));
    const escaped = await cli(['logs', 'lse_1']);
    expect(escaped.code).toBe(EXIT.ok);
    expect(escaped.stdout).toBe('hello \\x1b[2J\\x1b]0;owned\\x07\nsplit line\n');
    expect(escaped.stderr).toMatch(/^oops$/m);
    expect(escaped.stderr).toMatch(/exited with code 0/);
    const raw = await cli(['logs', 'lse_1', '--raw']);
    expect(raw.stdout).toBe('hello \x1b[2J\x1b]0;owned\x07\nsplit line\n');
  });

  it('passes --tail and --since to the API and prints the page as JSON', async () => {
    const page = { data: [line(7, 'x')], next_seq: 8, ended: false, exit_code: null, lost: 2, dropped: 0 };
    api.on('GET /v1/leases/lse_1/logs', (_req, res) => sendJson(res, 200, page));
    const r = await cli(['logs', 'lse_1', '--tail', '1', '--since', '5', '--json']);
    expect(JSON.parse(r.stdout)).toEqual(page);
    expect(Object.fromEntries(api.received[0]!.query)).toEqual({ since: '5', tail: '1' });
  });

  it('follows with -f from after the last line shown, until the end event', async () => {
    api.on('GET /v1/leases/lse_1/logs', (req, res) =>
      sendJson(res, 200, { data: req.query.get('since') === '1' ? [] : [line(0, 'a')], next_seq: 1, ended: false, exit_code: null, lost: 0, dropped: 0 }),
    );
    api.on('GET /v1/leases/lse_1/logs/stream', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`id: 1\nevent: log\ndata: ${JSON.stringify(line(1, 'b\x1b[31m'))}\n\nevent: end\ndata: {"exit_code":2}\n\n`);
    });
    const r = await cli(['logs', 'lse_1', '-f']);
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toBe('a\nb\\x1b[31m\n');
    expect(r.stderr).toMatch(/exited with code 2/);
    expect(api.received.at(-1)!.path).toBe('/v1/leases/lse_1/logs/stream');
    expect(api.received.at(-1)!.query.get('since')).toBe('1');
  });

  it('prints metrics per minute and GPU', async () => {
    api.on('GET /v1/leases/lse_1/metrics', (_req, res) =>
      sendJson(res, 200, { lease_id: 'lse_1', gpu_indices: [0], data: [{ minute: '2026-12-07T07:01:00.000Z', gpus: [{ index: 0, utilization_pct: 97, memory_used_mib: 70000, temperature_c: 71, power_w: 650 }] }] }),
    );
    const r = await cli(['metrics', 'lse_1', '--minutes', '5']);
    expect(r.stdout).toMatch(/MINUTE\s+GPU\s+UTIL %\s+MEM MIB\s+TEMP C\s+POWER W/);
    expect(r.stdout).toMatch(/2026-12-07T07:01:00.000Z\s+0\s+97\s+70000\s+71\s+650/);
    expect(api.received[0]!.query.get('minutes')).toBe('5');
  });
});
