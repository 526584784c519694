// The CLI as a subprocess against a fake API. It runs the esbuild bundle (what ships, and much
// quicker to start than the TypeScript source under type stripping), built once here.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { HeartbeatRequestSchema, LeaseEventSchema, LogBatchRequestSchema, MachineSchema, RegisterRequestSchema, type HeartbeatRequest, type LogLine } from '../../../src/contracts/runner.ts';
import { readConfig, writeConfig } from '../../../runner/src/config.ts';
import { generateNodeKey, keyFingerprint, publicKeyOf } from '../../../runner/src/identity.ts';
import { IDENTITY_DOMAIN, SignedCommitmentSchema, SignedIdentityAnswerSchema, identityFields } from '../../../src/contracts/inspections.ts';
import { signedMessage } from '../../../src/contracts/signed-message.ts';
import { checkCapacityAnswer } from '../../../src/inspections/capacity-wire.ts';
import { CLI, DOCKER_DIR, FAKE_SMI, FakeApi, ROOT, SMI_DIR, apiError, freePort, mode, tempDir, waitFor } from './helpers.ts';

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

/** Registers clean-up for the current test (tests here run concurrently). */
type Defer = (fn: () => void | Promise<void>) => void;

function baseEnv(dir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('GRIDLEASE_') || key.startsWith('FAKE_')) delete env[key];
  return { ...env, GRIDLEASE_CONFIG: path.join(dir, 'gridlease', 'runner.json'), GRIDLEASE_NVIDIA_SMI: FAKE_SMI, GRIDLEASE_EXECUTOR: 'process', ...extra };
}

let BUNDLE = '';
let buildOutput = '';
beforeAll(async () => {
  BUNDLE = path.join(tempDir(), 'gridlease-runner.js');
  const build = await runCli(['--outfile', BUNDLE], process.env, path.join(ROOT, 'runner/build.ts'));
  if (build.code !== 0) throw new Error(`build failed: ${build.stderr}`);
  buildOutput = build.stdout;
}, 30_000);

function spawnCli(args: string[], env: NodeJS.ProcessEnv, defer: Defer, script = BUNDLE): Run {
  const child = spawn(process.execPath, [script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  defer(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function runCli(args: string[], env: NodeJS.ProcessEnv, script = BUNDLE) {
  const run = spawnCli(args, env, () => {}, script);
  const code = await run.exit;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

async function fakeApi(defer: Defer): Promise<FakeApi> {
  const api = await new FakeApi().listen();
  defer(() => api.close());
  return api;
}

const registered = { node_id: 'node_7', node_token: 'nt_secret_7', heartbeat_interval_s: 1 };

function joinedConfig(dir: string, api: string, nodePrivateKey?: string): string {
  const file = path.join(dir, 'gridlease', 'runner.json');
  writeConfig(file, { api, node_id: 'node_7', node_token: 'nt_secret_7', region: 'eu-west', heartbeat_interval_s: 1, node_private_key: nodePrivateKey });
  return file;
}

describe.concurrent('gridlease-runner CLI', () => {
  it('prints help, from the bundle and from the TypeScript source', async () => {
    for (const script of [BUNDLE, CLI]) {
      const r = await runCli(['--help'], baseEnv(tempDir()), script);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^gridlease-runner — /);
      expect(r.stdout).toContain('join --api URL --token JOIN_TOKEN --region REGION');
    }
  });

  it('detect prints the machine as JSON, unknown cards with model null', async () => {
    const r = await runCli(['detect'], baseEnv(tempDir(), { FAKE_SMI_GPUS: path.join(SMI_DIR, 'mixed-crlf.csv') }));
    expect(r.code).toBe(0);
    const machine = MachineSchema.parse(JSON.parse(r.stdout));
    expect(machine.gpus.map((g) => g.model)).toEqual(['rtx-4090-24gb', 'rtx-3090-24gb', null]);
    expect(r.stderr).toContain('GPU 2 (NVIDIA GeForce GTX 1050, 2048 MiB) is not in the Gridlease catalog: reported as unknown, it cannot be listed');
  });

  it('detect without nvidia-smi fails with one clear line', async () => {
    const env = baseEnv(tempDir(), { PATH: path.dirname(process.execPath) });
    delete env.GRIDLEASE_NVIDIA_SMI;
    const r = await runCli(['detect'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('gridlease-runner: nvidia-smi not found on PATH: install the NVIDIA driver, or set GRIDLEASE_NVIDIA_SMI to its path\n');
  });

  it('join registers with a valid RegisterRequest and saves the config 0600 in a 0700 folder', async ({ onTestFinished }) => {
    const api = await fakeApi(onTestFinished);
    api.handler = (req) => (req.url === '/v1/runner/register' ? { status: 201, body: registered } : undefined);
    const dir = tempDir();
    const env = baseEnv(dir, { FAKE_SMI_GPUS: path.join(SMI_DIR, 'a100x8-header-units.csv'), GRIDLEASE_JOIN_TOKEN: 'jt_one_time' });
    const r = await runCli(['join', '--api', `${api.url}/`, '--region', 'eu-west'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`joined ${api.url} as node node_7 in eu-west with 8 listable GPUs`);

    const body = RegisterRequestSchema.parse(api.requests[0]!.body);
    expect(body.join_token).toBe('jt_one_time');
    expect(body.machine.gpus).toHaveLength(8);
    expect(api.requests[0]!.auth).toBeUndefined();

    const file = env.GRIDLEASE_CONFIG!;
    expect(mode(file)).toBe(0o600);
    expect(mode(path.dirname(file))).toBe(0o700);
    const saved = readConfig(file);
    expect(saved).toMatchObject({ api: api.url, node_id: 'node_7', node_token: 'nt_secret_7', region: 'eu-west' });
    // The key kept with the credentials is the one whose public half was registered.
    expect(publicKeyOf(saved.node_private_key!)).toBe(body.public_key);

    const status = await runCli(['status'], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('node_id: node_7');
    expect(status.stdout).toContain(`node_key: ed25519, fingerprint ${keyFingerprint(body.public_key)}`);
    expect(status.stdout).toContain('api_status: answers (GET /healthz → 404)');
    expect(status.stdout).toContain('solver: cpu (reference solver in TypeScript: capacity challenges up to n = 1024)');
    expect(status.stdout).not.toContain('nt_secret_7');
    expect(status.stdout).not.toContain(saved.node_private_key);
  });

  it('join again makes a new node key and registers it', async ({ onTestFinished }) => {
    const api = await fakeApi(onTestFinished);
    api.handler = (req) => (req.url === '/v1/runner/register' ? { status: 201, body: registered } : undefined);
    const env = baseEnv(tempDir());
    const keys: string[] = [];
    for (let i = 0; i < 2; i++) {
      expect((await runCli(['join', '--api', api.url, '--token', `jt_${i}`, '--region', 'eu-west'], env)).code).toBe(0);
      const sent = RegisterRequestSchema.parse(api.requests[i]!.body).public_key;
      expect(publicKeyOf(readConfig(env.GRIDLEASE_CONFIG!).node_private_key!)).toBe(sent);
      keys.push(sent);
    }
    expect(keys[0]).not.toBe(keys[1]);
    expect(mode(env.GRIDLEASE_CONFIG!)).toBe(0o600);
  });

  it('status and start refuse a config that others can read', async () => {
    const dir = tempDir();
    const file = joinedConfig(dir, 'http://127.0.0.1:9');
    fs.chmodSync(file, 0o644);
    for (const command of ['status', 'start']) {
      const r = await runCli([command], baseEnv(dir));
      expect(r).toMatchObject({ code: 1, stdout: '' });
      expect(r.stderr).toBe(`gridlease-runner: config ${file} is open to group or others (mode 644) and holds the node token and key: run \`chmod 600 ${file}\`\n`);
    }
  });

  it('status says when the config predates node keys', async () => {
    const dir = tempDir();
    joinedConfig(dir, 'http://127.0.0.1:9');
    const r = await runCli(['status'], baseEnv(dir));
    expect(r.stdout).toContain('node_key: none (joined before node keys; run `gridlease-runner join` again)');
  });

  const refusals: [string, { status: number; body: unknown }, string, string][] = [
    ['an expired join token', { status: 401, body: apiError('unauthorized', 'join token expired') }, 'eu-west', 'join token refused: join token expired'],
    ['a used join token', { status: 401, body: apiError('unauthorized', 'join token already used') }, 'eu-west', 'join token refused: join token already used'],
    [
      'an unknown region',
      { status: 400, body: apiError('validation_failed', 'unknown region "mars-1"') },
      'mars-1',
      'registration refused: unknown region "mars-1" (regions known to this runner: us-east, us-west, eu-central, eu-west, ap-southeast)',
    ],
  ];
  it.for(refusals)('join explains %s in one line', async ([, reply, region, message], { onTestFinished }) => {
    const api = await fakeApi(onTestFinished);
    api.handler = () => reply;
    const env = baseEnv(tempDir());
    const r = await runCli(['join', '--api', api.url, '--token', 'jt', '--region', region], env);
    expect(r).toMatchObject({ code: 1, stdout: '', stderr: `gridlease-runner: ${message}\n` });
    expect(fs.existsSync(env.GRIDLEASE_CONFIG!)).toBe(false);
  });

  it('join refuses a machine without a listable GPU before calling the API', async ({ onTestFinished }) => {
    const api = await fakeApi(onTestFinished);
    const env = baseEnv(tempDir(), { FAKE_SMI_GPUS: path.join(SMI_DIR, 'unknown-only.csv') });
    const r = await runCli(['join', '--api', api.url, '--token', 'jt', '--region', 'eu-west'], env);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/warn GPU 0 \(NVIDIA GeForce GTX 1050, 2048 MiB\) is not in the Gridlease catalog: reported as unknown, it cannot be listed$/),
      'gridlease-runner: no listable GPU: NVIDIA GeForce GTX 1050 is not in the Gridlease catalog',
    ]);
    expect(api.requests).toHaveLength(0);
  });

  it('join says when the API is unreachable, and what is missing', async () => {
    const env = baseEnv(tempDir());
    const down = await runCli(['join', '--api', `http://127.0.0.1:${await freePort()}`, '--token', 'jt', '--region', 'eu-west'], env);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^gridlease-runner: API unreachable: cannot reach http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED.*\n$/);
    expect(await runCli(['join', '--api', 'http://x.test'], env)).toMatchObject({ code: 2, stderr: 'gridlease-runner: join needs --token, --region (see gridlease-runner --help)\n' });
  });

  it('start heartbeats, runs a start_lease on the leased GPUs, acks it, and drains on SIGTERM', async ({ onTestFinished }) => {
    const api = await fakeApi(onTestFinished);
    const dir = tempDir();
    const out = path.join(dir, 'workload.json');
    const script = `require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify({ cuda: process.env.CUDA_VISIBLE_DEVICES, msg: process.env.MSG })); setInterval(() => {}, 1000)`;
    const command = {
      id: 'cmd_start_1',
      type: 'start_lease',
      lease_id: 'lse_1',
      workload: { image: 'unused', command: [process.execPath, '-e', script], env: { MSG: 'hi' }, ports: [] },
      gpu_indices: [0],
      ends_at: new Date(Date.now() + 3_600_000).toISOString(),
      lease_token: 'lt_1',
    };
    const events: unknown[] = [];
    api.handler = (req) => {
      if (req.url === '/v1/runner/leases/lse_1/events') {
        events.push(LeaseEventSchema.parse(req.body));
        return { status: 202, body: {} };
      }
      if (req.url !== '/v1/runner/heartbeats') return undefined;
      // The command comes in the reply to the second heartbeat, and (ack lost?) again in the third.
      const n = api.heartbeats().length;
      return { status: 202, body: { accepted: true, commands: n === 2 || n === 3 ? [command] : [], next_interval_s: 1 } };
    };
    joinedConfig(dir, api.url);
    const run = spawnCli(['start', '--grace', '1'], baseEnv(dir), onTestFinished);

    const heartbeats = () => api.heartbeats().map((r) => HeartbeatRequestSchema.parse(r.body) as HeartbeatRequest);
    await waitFor(() => heartbeats().find((h) => h.acks.includes('cmd_start_1') && h.leases.some((l) => l.state === 'running')), 8_000, 'a heartbeat acking the command');
    expect(JSON.parse(fs.readFileSync(out, 'utf8'))).toEqual({ cuda: '0', msg: 'hi' });
    expect(api.heartbeats().every((r) => r.auth === 'Bearer nt_secret_7')).toBe(true);

    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
    const all = heartbeats();
    expect(all.map((h) => h.seq)).toEqual(all.map((_, i) => i + 1));
    expect(new Set(all.map((h) => h.boot_id)).size).toBe(1);
    expect(all[0]!.gpus).toEqual([{ index: 0, utilization_pct: 87, memory_used_mib: 61234, temperature_c: 64, power_w: 612.47 }]);
    expect(all.filter((h) => h.draining)).toHaveLength(1);
    const last = all[all.length - 1]!;
    expect(last.draining).toBe(true);
    expect(last.leases).toEqual([{ lease_id: 'lse_1', state: 'stopped' }]);
    expect(events).toMatchObject([{ type: 'started' }, { type: 'exited' }]);
    expect(run.stderr()).toContain('lease lse_1: stopping (runner shutdown)');
    expect(run.stderr().match(/lease lse_1: starting/g)).toHaveLength(1); // the resent command ran once
  });

  it('start ships a process workload’s stdout and stderr lines to the API, in seq order', async ({ onTestFinished }) => {
    const api = await fakeApi(onTestFinished);
    const dir = tempDir();
    const script = `console.log('to stdout'); console.error('to stderr'); process.stdout.write('a\\r\\nb\\n')`;
    const command = {
      id: 'cmd_logs',
      type: 'start_lease',
      lease_id: 'lse_logs',
      workload: { image: 'unused', command: [process.execPath, '-e', script], env: {}, ports: [] },
      gpu_indices: [0],
      ends_at: new Date(Date.now() + 3_600_000).toISOString(),
      lease_token: 'lt',
    };
    const lines: LogLine[] = [];
    api.handler = (req) => {
      if (req.url === '/v1/runner/leases/lse_logs/logs') {
        const batch = LogBatchRequestSchema.parse(req.body);
        lines.push(...batch.lines);
        return { status: 200, body: { next_seq: batch.lines.at(-1)!.seq + 1 } };
      }
      if (req.url === '/v1/runner/leases/lse_logs/events') return { status: 202, body: {} };
      if (req.url !== '/v1/runner/heartbeats') return undefined;
      return { status: 202, body: { accepted: true, commands: api.heartbeats().length === 1 ? [command] : [], next_interval_s: 1 } };
    };
    joinedConfig(dir, api.url);
    const run = spawnCli(['start'], baseEnv(dir), onTestFinished);
    await waitFor(() => lines.length === 4, 8_000, 'four log lines');
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
    expect(lines.map((l) => l.seq)).toEqual([0, 1, 2, 3]);
    expect(lines.filter((l) => l.stream === 'stdout').map((l) => l.text)).toEqual(['to stdout', 'a', 'b']);
    expect(lines.filter((l) => l.stream === 'stderr').map((l) => l.text)).toEqual(['to stderr']);
    expect(api.requests.filter((r) => r.url.endsWith('/logs')).every((r) => r.auth === 'Bearer nt_secret_7')).toBe(true);
    // Everything was delivered: nothing waits in the spool.
    expect(fs.readdirSync(path.join(dir, 'gridlease', 'log-spool'))).toEqual([]);
  });

  it('start --executor docker leaves containers running on SIGTERM and reports them running; 404 on events is logged once', async ({ onTestFinished }) => {
    const api = await fakeApi(onTestFinished);
    const dir = tempDir();
    const command = (n: number) => ({
      id: `cmd_${n}`,
      type: 'start_lease',
      lease_id: `lse_${n}`,
      workload: { image: 'ghcr.io/acme/serve:1', command: [], env: {}, ports: [8000 + n] },
      gpu_indices: [n],
      ends_at: new Date(Date.now() + 3_600_000).toISOString(),
      lease_token: 'lt',
    });
    api.handler = (req) => {
      if (req.url !== '/v1/runner/heartbeats') return undefined; // events: 404
      const first = api.heartbeats().length === 1;
      return { status: 202, body: { accepted: true, commands: first ? [command(0), command(1)] : [], next_interval_s: 1 } };
    };
    joinedConfig(dir, api.url);
    const env = baseEnv(dir, {
      GRIDLEASE_EXECUTOR: 'docker',
      FAKE_SMI_METRICS: path.join(SMI_DIR, 'metrics-mixed-crlf.csv'),
      PATH: `${DOCKER_DIR}${path.delimiter}${process.env.PATH}`,
      FAKE_DOCKER_LOG: path.join(dir, 'docker.log'),
      FAKE_DOCKER_STATE: dir,
      FAKE_DOCKER_NODE: process.execPath,
    });
    const run = spawnCli(['start'], env, onTestFinished);
    const docker = () => (fs.existsSync(env.FAKE_DOCKER_LOG!) ? fs.readFileSync(env.FAKE_DOCKER_LOG!, 'utf8').trim().split('\n').map((l) => JSON.parse(l).argv as string[]) : []);
    await waitFor(() => api.heartbeats().some((r) => (r.body as HeartbeatRequest).leases.filter((l) => l.state === 'running').length === 2), 8_000, 'two running leases');
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
    const verbs = docker().map((a) => a[0]);
    expect(verbs.filter((v) => v === 'run')).toHaveLength(2);
    expect(verbs).not.toContain('stop');
    expect(verbs).not.toContain('rm');
    const published = (lease: string) => docker().find((a) => a[0] === 'run' && a.includes(lease))!.filter((_, i, a) => a[i - 1] === '-p' || a[i - 1] === '--gpus');
    expect([published('gridlease-lse_0'), published('gridlease-lse_1')]).toEqual([
      ['"device=0"', expect.stringMatching(/^4\d\d\d\d:8000$/)],
      ['"device=1"', expect.stringMatching(/^4\d\d\d\d:8001$/)],
    ]);
    const last = api.heartbeats().at(-1)!.body as HeartbeatRequest;
    expect(last.draining).toBe(true);
    expect(last.leases).toEqual([
      { lease_id: 'lse_0', state: 'running' },
      { lease_id: 'lse_1', state: 'running' },
    ]);
    // This fake API knows no leases: each started event is dropped with a word why.
    expect(run.stderr().match(/the API does not know this lease on this node \(404\); started event dropped/g)).toHaveLength(2);
    expect(run.stderr()).toContain('lease lse_0: left running (the next runner start picks it up)');
    expect(run.stderr()).not.toContain('process executor');
  });

  it('start --executor docker publishes two leases’ port 8888 on different host ports of GRIDLEASE_PORT_RANGE and posts each mapping in started', async ({ onTestFinished }) => {
    const api = await fakeApi(onTestFinished);
    const dir = tempDir();
    const first = await freePort();
    const command = (n: number) => ({
      id: `cmd_${n}`,
      type: 'start_lease',
      lease_id: `lse_${n}`,
      workload: { image: 'jupyter/base-notebook:2024-05-01', command: [], env: {}, ports: [8888] },
      gpu_indices: [n],
      ends_at: new Date(Date.now() + 3_600_000).toISOString(),
      lease_token: 'lt',
    });
    const started: Record<string, unknown> = {};
    api.handler = (req) => {
      const lease = /^\/v1\/runner\/leases\/(lse_\d)\/events$/.exec(req.url)?.[1];
      if (lease) {
        const event = LeaseEventSchema.parse(req.body);
        if (event.type === 'started') started[lease] = event.ports;
        return { status: 202, body: {} };
      }
      if (req.url !== '/v1/runner/heartbeats') return undefined;
      const firstBeat = api.heartbeats().length === 1;
      return { status: 202, body: { accepted: true, commands: firstBeat ? [command(0), command(1)] : [], next_interval_s: 1 } };
    };
    joinedConfig(dir, api.url);
    const env = baseEnv(dir, {
      GRIDLEASE_EXECUTOR: 'docker',
      GRIDLEASE_PORT_RANGE: `${first}-${first + 50}`,
      FAKE_SMI_METRICS: path.join(SMI_DIR, 'metrics-mixed-crlf.csv'),
      PATH: `${DOCKER_DIR}${path.delimiter}${process.env.PATH}`,
      FAKE_DOCKER_LOG: path.join(dir, 'docker.log'),
      FAKE_DOCKER_STATE: dir,
      FAKE_DOCKER_NODE: process.execPath,
    });
    const run = spawnCli(['start', '--stop-workloads-on-exit'], env, onTestFinished);
    await waitFor(() => Object.keys(started).length === 2, 8_000, 'two started events');
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
    const [a, b] = [(started.lse_0 as Record<string, number>)['8888']!, (started.lse_1 as Record<string, number>)['8888']!];
    expect(started).toEqual({ lse_0: { '8888': a }, lse_1: { '8888': b } });
    expect(a).not.toBe(b);
    expect([a, b].every((p) => p >= first && p <= first + 50)).toBe(true);
    const runs = fs.readFileSync(env.FAKE_DOCKER_LOG!, 'utf8').trim().split('\n').map((l) => JSON.parse(l).argv as string[]).filter((argv) => argv[0] === 'run');
    expect(runs.map((argv) => argv.slice(argv.indexOf('-p'), argv.indexOf('-p') + 2)).sort()).toEqual([['-p', `${a}:8888`], ['-p', `${b}:8888`]].sort());
  });

  it('start warns that the process executor is for trusted workloads and development only', async ({ onTestFinished }) => {
    const api = await fakeApi(onTestFinished);
    api.handler = (req) => (req.url === '/v1/runner/heartbeats' ? { status: 202, body: { accepted: true, commands: [], next_interval_s: 1 } } : undefined);
    const dir = tempDir();
    joinedConfig(dir, api.url);
    const run = spawnCli(['start'], baseEnv(dir), onTestFinished);
    await waitFor(() => api.heartbeats().length > 0, 8_000, 'a heartbeat');
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
    expect(run.stderr()).toMatch(/ warn the process executor runs workloads as this user with no isolation \(they can read the node token\): for trusted workloads and development only\n/);
  });

  it('start sends --public-host once the token works, hints at addresses without one, and exits 2 when the API refuses it', async ({ onTestFinished }) => {
    const api = await fakeApi(onTestFinished);
    let refuse = false;
    api.handler = (req) => {
      if (req.url === '/v1/runner/public-host') return refuse ? { status: 400, body: apiError('invalid_request', 'public_host: loopback addresses are not allowed') } : { status: 204 };
      return req.url === '/v1/runner/heartbeats' ? { status: 202, body: { accepted: true, commands: [], next_interval_s: 1 } } : undefined;
    };
    const dir = tempDir();
    joinedConfig(dir, api.url);
    const run = spawnCli(['start', '--public-host', 'gpu1.example.net'], baseEnv(dir, { GRIDLEASE_PUBLIC_HOST: 'ignored.example.net' }), onTestFinished);
    await waitFor(() => api.requests.some((r) => r.url === '/v1/runner/public-host'), 8_000, 'the public host');
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
    const puts = api.requests.filter((r) => r.url === '/v1/runner/public-host');
    expect(puts).toEqual([{ method: 'PUT', url: '/v1/runner/public-host', auth: 'Bearer nt_secret_7', body: { public_host: 'gpu1.example.net' } }]);
    expect(api.requests.findIndex((r) => r.url === '/v1/runner/heartbeats')).toBeLessThan(api.requests.indexOf(puts[0]!));
    expect(run.stderr()).not.toContain('no --public-host');

    refuse = true;
    const refused = await runCli(['start'], baseEnv(dir, { GRIDLEASE_PUBLIC_HOST: '127.0.0.1' }));
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim().split('\n').pop()).toBe('gridlease-runner: the API refused --public-host "127.0.0.1": public_host: loopback addresses are not allowed');

    expect(await runCli(['start', '--public-host', 'http://x'], baseEnv(dir))).toMatchObject({ code: 2, stderr: expect.stringContaining('must be a DNS name or an IP address') });
    refuse = false;
    const before = api.requests.length;
    const unset = spawnCli(['start'], baseEnv(dir), onTestFinished);
    await waitFor(() => api.requests.slice(before).find((r) => r.url === '/v1/runner/public-host'), 8_000, 'the null public host');
    unset.child.kill('SIGTERM');
    expect(await unset.exit).toBe(0);
    expect(api.requests.slice(before).filter((r) => r.url === '/v1/runner/public-host').map((r) => r.body)).toEqual([{ public_host: null }]);
    expect(unset.stderr()).toMatch(/ warn no --public-host \(GRIDLEASE_PUBLIC_HOST\) set: renters will see no endpoints for this node's workloads until it is \(/);
  });

  it('start rides out an API outage with back-off and logs it once', async ({ onTestFinished }) => {
    const port = await freePort();
    const dir = tempDir();
    joinedConfig(dir, `http://127.0.0.1:${port}`);
    const run = spawnCli(['start'], baseEnv(dir, { GRIDLEASE_BACKOFF_MAX_S: '1' }), onTestFinished);
    await waitFor(() => run.stderr().includes('API unreachable'), 8_000, 'the outage to be noticed');
    await new Promise((r) => setTimeout(r, 1_500)); // several failed tries

    const api = new FakeApi();
    let unavailable = 2;
    api.handler = (req) => {
      if (req.url !== '/v1/runner/heartbeats') return undefined;
      if (unavailable-- > 0) return { status: 503, body: apiError('service_unavailable', 'try later') };
      return { status: 202, body: { accepted: true, commands: [], next_interval_s: 1 } };
    };
    await api.listen(port);
    onTestFinished(() => api.close());
    await waitFor(() => run.stderr().includes('API answers again'), 8_000, 'recovery');
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
    expect(run.stderr().match(/API unreachable/g)).toHaveLength(1);
    expect(run.stderr()).toMatch(/API answers again \(after \d+ failed heartbeats\)/);
    expect(api.heartbeats().map((r) => (r.body as HeartbeatRequest).seq)).toEqual(api.heartbeats().map((_, i, a) => (a[0]!.body as HeartbeatRequest).seq + i));
  });

  it('start stops with exit code 3 when the API refuses the node token', async ({ onTestFinished }) => {
    const api = await fakeApi(onTestFinished);
    api.handler = (req) => (req.url === '/v1/runner/heartbeats' ? { status: 401, body: apiError('unauthorized', 'node token revoked: the node joined again elsewhere') } : undefined);
    const dir = tempDir();
    joinedConfig(dir, api.url);
    const r = await runCli(['start'], baseEnv(dir));
    expect(r.code).toBe(3);
    expect(r.stderr.trim().split('\n').pop()).toBe(
      "gridlease-runner: the API refused this node's token (node token revoked: the node joined again elsewhere): the node was revoked or joined again elsewhere; run `gridlease-runner join` to register it again",
    );
    expect(api.heartbeats()).toHaveLength(1);
  });

  it('start answers challenges from a heartbeat reply at once, signed with the node key', async ({ onTestFinished }) => {
    const api = await fakeApi(onTestFinished);
    const key = generateNodeKey();
    const deadline = new Date(Date.now() + 60_000).toISOString();
    const commands = [
      { id: 'cmd_id', type: 'challenge', challenge: { kind: 'identity', challenge_id: 'chl_1', nonce: 'ab'.repeat(32), deadline } },
      { id: 'cmd_cap', type: 'challenge', challenge: { kind: 'capacity', challenge_id: 'chl_2', seed: 'cd'.repeat(32), n: 32, gpu_count: 1, leaf_size: 16, deadline } },
    ];
    api.handler = (req) => {
      const id = /^\/v1\/runner\/challenges\/(chl_\d)\//.exec(req.url)?.[1];
      if (req.url.endsWith('/commitment')) return { status: 200, body: { challenge_id: id, open_seed: 'ef'.repeat(32), count: 4, deadline } };
      if (id) return { status: 200, body: { challenge_id: id, outcome: 'passed', reasons: [] } };
      if (req.url !== '/v1/runner/heartbeats') return undefined;
      return { status: 202, body: { accepted: true, commands: api.heartbeats().length === 1 ? commands : [], next_interval_s: 1 } };
    };
    const dir = tempDir();
    joinedConfig(dir, api.url, key.privateKey);
    const run = spawnCli(['start'], baseEnv(dir), onTestFinished);
    await waitFor(() => run.stderr().includes('challenge chl_2 capacity: passed'), 8_000, 'the capacity outcome');
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
    expect(run.stderr()).toContain('info challenge chl_1 identity: passed');
    expect(run.stderr()).toContain('cpu challenge solver');
    const urls = api.requests.map((r) => r.url).filter((u) => u.startsWith('/v1/runner/challenges/'));
    expect(urls.sort()).toEqual(['/v1/runner/challenges/chl_1/identity', '/v1/runner/challenges/chl_2/commitment', '/v1/runner/challenges/chl_2/openings']);
    const { answer, signature } = SignedIdentityAnswerSchema.parse(api.requests.find((r) => r.url.endsWith('/identity'))!.body);
    expect(answer.gpu_uuids).toEqual(['GPU-6513270e-269e-0d37-f2a7-4de452e6b438']);
    const publicKey = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key.publicKey }, format: 'jwk' });
    expect(crypto.verify(null, signedMessage(IDENTITY_DOMAIN, identityFields('node_7', answer)), publicKey, Buffer.from(signature, 'base64url'))).toBe(true);
    expect(SignedCommitmentSchema.parse(api.requests.find((r) => r.url.endsWith('/commitment'))!.body).commitment.roots).toHaveLength(1);
  });

  it('status names the GPU solver and the command it runs; an unknown solver is a usage error', async () => {
    const dir = tempDir();
    joinedConfig(dir, 'http://127.0.0.1:9');
    const gpu = await runCli(['status', '--solver', 'gpu'], baseEnv(dir, { GRIDLEASE_GPU_SOLVER_IMAGE: 'registry.example/capacity:1' }));
    expect(gpu.stdout).toContain(
      'solver: gpu (CUDA solver, capacity challenges up to n = 133120: docker run --rm -i --init --gpus all --network none --read-only registry.example/capacity:1 /capacity)',
    );
    const custom = await runCli(['status'], baseEnv(dir, { GRIDLEASE_SOLVER: 'gpu', GRIDLEASE_GPU_SOLVER_CMD: ' /opt/capacity  --flag ' }));
    expect(custom.stdout).toContain('solver: gpu (CUDA solver, capacity challenges up to n = 133120: /opt/capacity --flag)');
    const unknown = await runCli(['status'], baseEnv(dir, { GRIDLEASE_SOLVER: 'quantum' }));
    expect(unknown).toMatchObject({ code: 2, stderr: 'gridlease-runner: unknown solver "quantum": use cpu or gpu (see gridlease-runner --help)\n' });
  });

  it('start --solver gpu answers a capacity challenge through the GPU solver process (its g++ host build here)', async ({ onTestFinished }) => {
    const dir = tempDir();
    const solver = path.join(dir, 'capacity');
    await promisify(execFile)('g++', ['-x', 'c++', '-std=c++17', '-O2', '-DGRIDLEASE_HOST_ONLY', '-o', solver, path.join(ROOT, 'runner/gpu/capacity.cu')]);
    const api = await fakeApi(onTestFinished);
    const key = generateNodeKey();
    const deadline = new Date(Date.now() + 60_000).toISOString();
    const challenge = { kind: 'capacity' as const, challenge_id: 'chl_3', seed: '5a'.repeat(32), n: 48, gpu_count: 1, leaf_size: 16, deadline };
    const request = { challenge_id: 'chl_3', open_seed: 'a5'.repeat(32), count: 8, deadline };
    api.handler = (req) => {
      if (req.url.endsWith('/commitment')) return { status: 200, body: request };
      if (req.url.endsWith('/openings')) return { status: 200, body: { challenge_id: 'chl_3', outcome: 'passed', reasons: [] } };
      if (req.url !== '/v1/runner/heartbeats') return undefined;
      const commands = api.heartbeats().length === 1 ? [{ id: 'cmd_cap', type: 'challenge', challenge }] : [];
      return { status: 202, body: { accepted: true, commands, next_interval_s: 1 } };
    };
    joinedConfig(dir, api.url, key.privateKey);
    const run = spawnCli(['start', '--solver', 'gpu'], baseEnv(dir, { GRIDLEASE_GPU_SOLVER_CMD: solver }), onTestFinished);
    await waitFor(() => run.stderr().includes('challenge chl_3 capacity: passed'), 8_000, 'the capacity outcome');
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
    expect(run.stderr()).toContain('gpu challenge solver');
    const { commitment } = SignedCommitmentSchema.parse(api.requests.find((r) => r.url.endsWith('/commitment'))!.body);
    const openings = api.requests.find((r) => r.url.endsWith('/openings'))!.body;
    expect(await checkCapacityAnswer(challenge, request, commitment, openings)).toEqual({ ok: true, failures: [] });
  });

  it('start without a config says to join first', async () => {
    const r = await runCli(['start'], baseEnv(tempDir()));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^gridlease-runner: no config at .*: run `gridlease-runner join --api URL --token JOIN_TOKEN --region REGION` first\n$/);
  });

  it('inspect: login saves inspector.json 0600 next to runner.json, once polls with its token, run stops on SIGTERM', async ({ onTestFinished }) => {
    const dir = tempDir();
    const api = await fakeApi(onTestFinished);
    let key = '';
    api.handler = (req) => {
      if (req.auth !== 'Bearer glk_inspector') return { status: 401, body: apiError('unauthorized', 'bad token') };
      if (req.url === '/v1/accounts/me') return { status: 200, body: { account: { id: 'acc_insp', email: 'i@example.com', roles: ['inspector'], status: 'active', created_at: '2026-01-01T00:00:00.000Z' } } };
      if (req.method === 'PUT' && req.url === '/v1/inspectors/key') return (key = (req.body as { public_key: string }).public_key), { status: 200, body: { public_key: key, updated_at: '2026-01-01T00:00:00.000Z' } };
      if (req.url.startsWith('/v1/inspectors/assignments')) return { status: 200, body: { data: [] } };
      return undefined;
    };
    const env = baseEnv(dir);
    const missing = await runCli(['inspect', 'once'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no inspector config at .*inspector\.json: run `gridlease-runner inspect login --api URL --token TOKEN` first/);
    const login = await runCli(['inspect', 'login', '--api', api.url], { ...env, GRIDLEASE_INSPECTOR_TOKEN: 'glk_inspector' });
    expect(login.code, login.stderr).toBe(0);
    const file = path.join(dir, 'gridlease', 'inspector.json');
    expect(login.stdout).toContain(`inspector acc_insp: key ${key} registered with ${api.url}; config saved to ${file}`);
    expect(mode(file)).toBe(0o600);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({ api: api.url, token: 'glk_inspector', inspector_id: 'acc_insp', public_key: key });
    expect((await runCli(['inspect', 'once'], env)).code).toBe(0);
    const run = spawnCli(['inspect', '--interval', '0.1'], env, onTestFinished);
    await waitFor(() => api.requests.filter((r) => r.url.startsWith('/v1/inspectors/assignments')).length >= 3, 10_000, 'polls');
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
    expect(run.stderr()).toContain('info inspector stopped');
    fs.chmodSync(file, 0o644);
    const open = await runCli(['inspect', 'once'], env);
    expect(open.code).toBe(1);
    expect(open.stderr).toContain(`inspector config ${file} is open to group or others (mode 644)`);
  });

  it('the esbuild bundle is one self-contained executable file', () => {
    expect(buildOutput.trim().split('\n')).toEqual([expect.stringMatching(/^gridlease-runner 0\.1\.0: built .* \(\d+ KiB, \d+ ms\)$/)]);
    const text = fs.readFileSync(BUNDLE, 'utf8');
    expect(text.startsWith('#!/usr/bin/env node\n// gridlease-runner 0.1.0')).toBe(true);
    expect(mode(BUNDLE)).toBe(0o755);
    // Only Node built-ins are imported: zod and the contracts are inside.
    const imports = [...text.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]!);
    expect(imports.length).toBeGreaterThan(0);
    expect(imports.every((m) => m.startsWith('node:'))).toBe(true);
    expect(text).not.toMatch(/\brequire\(/);
  });
});
