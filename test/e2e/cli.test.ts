// The bundled gridlease CLI against the local platform: a renter signs up, logs in with email and
// password, takes test money, finds a provider's ask among the offers, buys it without waiting,
// sees the lease in `leases` and `lease`, reads its logs (escaped, raw, followed live to the end)
// and metrics, and terminates it; then buys again and waits for the lease to run, reaches the
// workload's HTTP port through the lease's endpoint, and sees the exit code and last lines kept
// after the workload exits; with the exit codes and --json output scripts rely on.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FAKE_SMI, apiClient, runRunner, runnerProcesses, signUp, smiFixture } from '../support/e2e.ts';
import { freePort, launch, type Platform } from '../support/platform.ts';
import { runCli } from '../support/cli-run.ts';

const work = mkdtempSync(join(tmpdir(), 'gridlease-cli-e2e-'));
let platform: Platform | undefined;
const runners = runnerProcesses();
afterAll(async () => {
  runners.killAll();
  await platform?.stop();
  rmSync(work, { recursive: true, force: true });
});
const api = apiClient(() => platform!.url);

// A workload that runs until it is stopped (or its runner is gone).
const WORKLOAD = { image: 'local/process', command: [process.execPath, '-e', 'const p = process.ppid; console.log("ready"); console.log("\\x1b[31mred\\x1b]0;title\\x07"); setInterval(() => { if (process.ppid !== p) process.exit(0); }, 250)'], env: {}, ports: [] };

// A workload that answers HTTP on the port it is given, and exits with code 3 when asked to.
const SERVER = {
  image: 'local/process',
  command: [
    process.execPath,
    '-e',
    'const p = process.ppid; require("node:http").createServer((q, r) => { if (q.url === "/exit") { r.end("bye"); console.log("exiting with 3"); setTimeout(() => process.exit(3), 100); } else r.end("hello from the lease"); }).listen(Number(process.env.PORT), () => console.log("listening")); setInterval(() => { if (process.ppid !== p) process.exit(0); }, 250)',
  ],
};

describe('gridlease CLI on the local platform', () => {
  it('logs in, deposits, finds an offer, buys it, reads its logs and metrics, terminates it; buys again waiting for running, reaches its endpoint, and keeps its exit code and last lines', { timeout: 90_000 }, async () => {
    platform = await launch({
      dataDir: join(work, 'data'),
      port: await freePort(),
      libsqlPort: await freePort(),
      env: { HEARTBEAT_INTERVAL_S: '1', HEARTBEAT_MIN_INTERVAL_S: '0.5', HEARTBEAT_FLUSH_S: '1', NODE_GRACE_S: '4' },
    });
    const config = join(work, 'home', 'gridlease', 'cli.json');
    // No GRIDLEASE_API or GRIDLEASE_TOKEN from the environment running the tests: the saved login is used.
    const { GRIDLEASE_API: _a, GRIDLEASE_TOKEN: _t, ...base } = process.env;
    const env = { ...base, GRIDLEASE_CLI_CONFIG: config };
    const cli = (args: string[], opts?: { stdin?: string; env?: NodeJS.ProcessEnv }) => runCli(args, { ...env, ...opts?.env }, { stdin: opts?.stdin });

    // A provider's eight-A100 machine with an ask for two GPUs on the book.
    const provider = await signUp(api, 'cli-provider');
    const { join_token } = (await api('/v1/nodes/join-tokens', { method: 'POST', auth: provider.key })).body;
    const runnerEnv = { ...process.env, GRIDLEASE_CONFIG: join(work, 'runner', 'runner.json'), GRIDLEASE_NVIDIA_SMI: FAKE_SMI, FAKE_SMI_GPUS: smiFixture('a100x8-header-units.csv'), FAKE_SMI_METRICS: smiFixture('metrics-a100x8-header-units.csv') };
    const joined = runRunner(['join', '--api', platform.url, '--token', join_token, '--region', 'us-west'], runnerEnv);
    expect(joined.status, joined.stderr).toBe(0);
    const nodeId = JSON.parse(readFileSync(runnerEnv.GRIDLEASE_CONFIG, 'utf8')).node_id as string;
    runners.start(['start', '--executor', 'process', '--public-host', '127.0.0.1'], runnerEnv);
    await expect.poll(async () => (await api(`/v1/nodes/${nodeId}`, { auth: provider.key })).body.node?.status, { timeout: 20_000, interval: 250 }).toBe('online');
    const ask = await api('/v1/orders', { auth: provider.key, key: true, body: { side: 'sell', region: 'us-west', gpu_model: 'a100-80gb', gpus: 2, price: '3.60', node_id: nodeId } });
    expect(ask.status, JSON.stringify(ask.body)).toBe(201);
    const askId = ask.body.order.id as string;

    // Sign up, then log in with email and password read from stdin.
    const email = `cli-renter.${crypto.randomUUID().slice(0, 8)}@example.com`;
    expect((await api('/v1/accounts', { body: { email, password: 'Harbor-Lantern-6613', roles: ['renter'] } })).status).toBe(201);
    const wrong = await cli(['login', '--api', platform.url, '--email', email, '--password-stdin'], { stdin: 'not-the-password\n' });
    expect(wrong.code, wrong.stderr).toBe(3);
    expect(wrong.stderr).toMatch(/email or password is incorrect \(request_id req_/);
    const login = await cli(['login', '--api', platform.url, '--email', email, '--password-stdin', '--json'], { stdin: 'Harbor-Lantern-6613\n' });
    expect(login.code, login.stderr).toBe(0);
    expect(login.json()).toMatchObject({ api: platform.url, email });
    expect(statSync(config).mode & 0o777).toBe(0o600);
    expect(readFileSync(config, 'utf8')).not.toContain('Harbor-Lantern');

    const deposit = await cli(['deposit', '100']);
    expect(deposit.code, deposit.stderr).toBe(0);
    expect(deposit.stdout).toMatch(/Credited 100 USD/);
    const balance = await cli(['balance', '--json']);
    expect(balance.code).toBe(0);
    expect(balance.json().data).toContainEqual({ asset: 'USD', available: '100.00', held: '0.00' });
    expect((await cli(['balance'])).stdout).toMatch(/^USD\s+100\.00\s+0\.00$/m);

    // The ask is among the offers the query finds, and not among those it excludes.
    const offers = await cli(['offers', 'gpu_model=a100-80gb region=us-west', '--json']);
    expect(offers.code, offers.stderr).toBe(0);
    expect(offers.json().data.map((o: { id: string }) => o.id)).toContain(askId);
    expect((await cli(['offers', 'gpu_model=h100-80gb', '--json'])).json().data.map((o: { id: string }) => o.id)).not.toContain(askId);
    const badQuery = await cli(['offers', 'gpus>>2']);
    expect(badQuery.code).toBe(1);
    expect(badQuery.stderr).toMatch(/request_id req_/);

    // Buy one of its GPUs without waiting: the bid fills at once against the ask.
    const bought = await cli(['buy', '--region', 'us-west', '--gpu', 'a100-80gb', '--price', '3.60', '--duration', '10m', '--image', WORKLOAD.image, '--command', JSON.stringify(WORKLOAD.command), '--no-wait', '--json']);
    expect(bought.code, bought.stderr).toBe(0);
    const { order, leases } = bought.json();
    expect(order).toMatchObject({ side: 'buy', status: 'filled', gpu_model: 'a100-80gb', hold_amount: '0.60' });
    expect(leases).toHaveLength(1);
    const leaseId = leases[0].id as string;

    const list = await cli(['leases', '--json']);
    expect(list.code).toBe(0);
    expect(list.json().data.map((l: { id: string }) => l.id)).toEqual([leaseId]);
    expect((await cli(['leases'])).stdout).toMatch(new RegExp(`^${leaseId}\\s+(provisioning|running)\\s+renter\\s+us-west\\s+1 × a100-80gb`, 'm'));

    // The runner starts it.
    await expect.poll(async () => (await cli(['lease', leaseId, '--json'])).json().state, { timeout: 20_000, interval: 500 }).toBe('running');
    const shown = await cli(['lease', leaseId]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^state\s+running$/m);
    expect(shown.stdout).toMatch(/^escrow\s+0\.60 USD$/m);

    // What the workload printed, through the runner's log shipping.
    await expect.poll(async () => (await cli(['logs', leaseId, '--json'])).json().data.map((l: { text: string }) => l.text), { timeout: 20_000, interval: 500 }).toContain('ready');
    const logs = await cli(['logs', leaseId, '--tail', '5']);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(/^ready$/m);
    // The workload's escape sequences arrive escaped, unless --raw.
    expect(logs.stdout).toContain('\\x1b[31mred\\x1b]0;title\\x07\n');
    expect(logs.stdout).not.toContain('\x1b');
    expect((await cli(['logs', leaseId, '--raw'])).stdout).toContain('\x1b[31mred\x1b]0;title\x07\n');
    const metrics = await cli(['metrics', leaseId, '--minutes', '5', '--json']);
    expect(metrics.code, metrics.stderr).toBe(0);
    expect(metrics.json()).toMatchObject({ lease_id: leaseId });
    expect(metrics.json().gpu_indices).toHaveLength(1);

    // A follower started while it runs sees the end when the lease is terminated.
    const following = cli(['logs', leaseId, '-f', '--json']);
    await new Promise((r) => setTimeout(r, 1000));
    const ended = await cli(['terminate', leaseId, '--json']);
    expect(ended.code, ended.stderr).toBe(0);
    expect(['completed', 'cancelled']).toContain(ended.json().state);
    await expect.poll(async () => (await cli(['balance', '--json'])).json().data.find((b: { asset: string }) => b.asset === 'USD').held, { timeout: 15_000, interval: 500 }).toBe('0.00');

    const followed = await following;
    expect(followed.code, followed.stderr).toBe(0);
    const events = followed.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(events.map((e: { text?: string }) => e.text)).toContain('ready');
    expect(events.at(-1)).toMatchObject({ event: 'end' });
    expect(events.filter((e: { seq?: number }) => e.seq === 0)).toHaveLength(1);

    // Without --no-wait, buy returns once the lease runs: the ask's other GPU, with a workload
    // that listens on port 8080, reached through the endpoint the lease shows its renter.
    const waited = await cli(['buy', '--region', 'us-west', '--gpu', 'a100-80gb', '--price', '3.60', '--duration', '10m', '--image', SERVER.image, '--command', JSON.stringify(SERVER.command), '--port', '8080', '--json']);
    expect(waited.code, waited.stderr).toBe(0);
    const running = waited.json().lease;
    expect(running).toMatchObject({ state: 'running', gpu_model: 'a100-80gb' });
    await expect.poll(async () => (await cli(['lease', running.id, '--json'])).json().endpoints_state, { timeout: 20_000, interval: 500 }).toBe('ready');
    const [endpoint] = (await cli(['lease', running.id, '--json'])).json().endpoints;
    expect(endpoint).toMatchObject({ port: 8080, host: '127.0.0.1' });
    expect(endpoint.url).toBe(`http://127.0.0.1:${endpoint.host_port}`);
    expect((await cli(['lease', running.id])).stdout).toContain(endpoint.url);
    await expect.poll(async () => (await cli(['logs', running.id, '--json'])).json().data.map((l: { text: string }) => l.text), { timeout: 20_000, interval: 500 }).toContain('listening');
    const answer = await fetch(endpoint.url);
    expect(answer.status).toBe(200);
    expect(await answer.text()).toBe('hello from the lease');
    // The workload exits by itself: the lease ends with its exit code and its last lines kept.
    expect(await (await fetch(`${endpoint.url}/exit`)).text()).toBe('bye');
    await expect.poll(async () => (await cli(['lease', running.id, '--json'])).json().state, { timeout: 20_000, interval: 500 }).toBe('completed');
    const finished = (await cli(['lease', running.id, '--json'])).json();
    expect(finished.exit_code).toBe(3);
    expect(finished.endpoints).toEqual([]);
    await expect.poll(async () => (await cli(['lease', running.id, '--json'])).json().last_lines.map((l: { text: string }) => l.text), { timeout: 20_000, interval: 500 }).toContain('exiting with 3');
    const kept = await cli(['logs', running.id, '--json']);
    expect(kept.json().data.map((l: { text: string }) => l.text)).toEqual(['listening', 'exiting with 3']);
    // Terminating a lease that has ended changes nothing and says how it ended.
    expect((await cli(['terminate', running.id])).stdout).toMatch(new RegExp(`^Lease ${running.id} is completed; billed`));
    expect((await cli(['lease', running.id, '--json'])).json()).toMatchObject({ state: 'completed', exit_code: 3 });

    // Failures, with their exit codes.
    const missing = await cli(['lease', 'lse_00000000000000000000000000', '--json']);
    expect(missing.code).toBe(4);
    expect(JSON.parse(missing.stderr).error).toMatchObject({ code: 'not_found', status: 404 });
    expect((await cli(['balance'], { env: { GRIDLEASE_TOKEN: 'glk_not_a_real_key' } })).code).toBe(3);
    expect((await cli(['extend', leaseId])).code).toBe(2);
    expect((await cli(['extend', leaseId, '1h'])).code).toBe(1);
  });
});
