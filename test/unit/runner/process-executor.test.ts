import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import type { LeaseEvent, Workload } from '../../../src/contracts/runner.ts';
import { ProcessExecutor } from '../../../runner/src/executors/process.ts';
import { LeaseManager, type StartLease } from '../../../runner/src/leases.ts';
import { memoryLogger } from '../../../runner/src/log.ts';
import type { LogSink, LogStream } from '../../../runner/src/logs/shipper.ts';
import { tempDir, waitFor } from './helpers.ts';

const node = (script: string, env: Record<string, string> = {}): Workload => ({ image: 'unused', command: [process.execPath, '-e', script], env, ports: [] });
const inSeconds = (s: number) => new Date(Date.now() + s * 1000);

/** A log sink that keeps each lease's lines in memory. */
function memorySink() {
  const lines: Record<string, { stream: LogStream; text: string; partial: boolean }[]> = {};
  const ended = new Set<string>();
  const sink: LogSink = {
    open: (id) => ({ cursor: null, line: (stream, text, partial) => void (lines[id] ??= []).push({ stream, text, partial }), end: () => void ended.add(id), detach: () => {} }),
  };
  return { sink, lines, ended };
}

function setup(graceMs = 2_000, portRange = { first: 40_000, last: 40_999 }) {
  const logs = memorySink();
  const events: { leaseId: string; event: LeaseEvent }[] = [];
  const log = memoryLogger();
  const leases = new LeaseManager({
    executor: new ProcessExecutor({ logs: logs.sink, portRange, portIsFree: async () => true }),
    events: { report: (leaseId, event) => events.push({ leaseId, event }) },
    log,
    graceMs,
    gpuIndices: () => [0, 1, 2, 3],
  });
  const start = (lease_id: string, workload: Workload, gpu_indices = [1, 3], ends_at = inSeconds(60)): StartLease => ({
    id: `cmd_${lease_id}`,
    type: 'start_lease',
    lease_id,
    workload,
    gpu_indices,
    ends_at: ends_at.toISOString(),
    lease_token: 'lt',
  });
  const types = (leaseId: string) => events.filter((e) => e.leaseId === leaseId).map((e) => e.event.type);
  return { logs, events, log, leases, start, types };
}

describe('process executor', () => {
  it('runs argv without a shell, with the workload env and only the leased GPUs visible; reports the exit code', async () => {
    const { leases, start, events, logs, types } = setup();
    const out = path.join(tempDir(), 'env.json');
    const script = `require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify({ argv: process.argv.slice(1), cuda: process.env.CUDA_VISIBLE_DEVICES, nvidia: process.env.NVIDIA_VISIBLE_DEVICES, mine: process.env.MY_VAR, lease: process.env.GRIDLEASE_LEASE_ID, path: !!process.env.PATH })); console.log('hello from the workload'); process.exit(7)`;
    await leases.start(start('lse_env', { ...node(script, { MY_VAR: 'a value; $(not a shell)' }), command: [process.execPath, '-e', script, 'arg with spaces', '*'] }));
    expect(leases.snapshot()).toEqual([{ lease_id: 'lse_env', state: 'running' }]);
    await leases.exited('lse_env');
    expect(JSON.parse(fs.readFileSync(out, 'utf8'))).toEqual({ argv: ['arg with spaces', '*'], cuda: '1,3', nvidia: '1,3', mine: 'a value; $(not a shell)', lease: 'lse_env', path: true });
    expect(types('lse_env')).toEqual(['started', 'exited']);
    expect(events[1]!.event).toMatchObject({ type: 'exited', exit_code: 7 });
    expect(leases.snapshot()).toEqual([{ lease_id: 'lse_env', state: 'exited' }]);
    await waitFor(() => logs.ended.has('lse_env'), 5_000, 'the end of its output');
    expect(logs.lines.lse_env).toEqual([{ stream: 'stdout', text: 'hello from the workload', partial: false }]);
    // Once a heartbeat carried the final state, the lease is forgotten.
    leases.delivered(leases.snapshot());
    expect(leases.snapshot()).toEqual([]);
  });

  it('captures stdout and stderr line by line, split and cut as the workload writes them', async () => {
    const { leases, start, logs } = setup();
    const script = `process.stdout.write('one\\ntw'); setTimeout(() => { process.stdout.write('o\\r\\n' + 'x'.repeat(8200) + '\\n'); process.stderr.write('bad \\xff byte\\n', 'latin1'); process.stdout.write('no newline at the end') }, 50)`;
    await leases.start(start('lse_out', node(script)));
    await leases.exited('lse_out');
    await waitFor(() => logs.ended.has('lse_out'), 5_000, 'the end of its output');
    const out = logs.lines.lse_out!;
    expect(out.filter((l) => l.stream === 'stdout')).toEqual([
      { stream: 'stdout', text: 'one', partial: false },
      { stream: 'stdout', text: 'two', partial: false },
      { stream: 'stdout', text: 'x'.repeat(8192), partial: true },
      { stream: 'stdout', text: 'x'.repeat(8), partial: false },
      { stream: 'stdout', text: 'no newline at the end', partial: false },
    ]);
    expect(out.filter((l) => l.stream === 'stderr')).toEqual([{ stream: 'stderr', text: 'bad \ufffd byte', partial: false }]);
  });

  it('gives the workload a minimal environment of its own and a private home, never the runner’s environment', async () => {
    vi.stubEnv('GRIDLEASE_NODE_TOKEN', 'nt_secret_7');
    vi.stubEnv('PROVIDER_API_TOKEN', 'tok_provider');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'aws_secret');
    try {
      const { leases, start } = setup();
      const out = path.join(tempDir(), 'env.json');
      const script = `require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify({ env: process.env, cwd: process.cwd(), home: require('fs').statSync(process.env.HOME).mode & 0o777 }))`;
      await leases.start(start('lse_secret', node(script, { MY_VAR: 'mine' }), [2]));
      await leases.exited('lse_secret');
      const seen = JSON.parse(fs.readFileSync(out, 'utf8'));
      expect(seen.env).toEqual({
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        HOME: expect.stringMatching(new RegExp(`^${os.tmpdir()}/gridlease-lease-lse_secret-`)),
        TMPDIR: seen.env.HOME,
        LANG: 'C.UTF-8',
        MY_VAR: 'mine',
        CUDA_VISIBLE_DEVICES: '2',
        NVIDIA_VISIBLE_DEVICES: '2',
        GRIDLEASE_LEASE_ID: 'lse_secret',
        GRIDLEASE_LEASE_ENDS_AT: expect.any(String),
      });
      expect(seen.cwd).toBe(seen.env.HOME);
      expect(seen.home).toBe(0o700);
      expect(fs.existsSync(seen.env.HOME)).toBe(false); // removed once the workload exited
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('refuses a workload env that would override the pinned GPU or lease variables', async () => {
    const { leases, start, events } = setup();
    await leases.start(start('lse_widen', node('', { CUDA_VISIBLE_DEVICES: '0,1,2,3' })));
    expect(events).toEqual([{ leaseId: 'lse_widen', event: { type: 'failed', at: expect.any(String), reason: expect.stringMatching(/^the workload was refused: workload\.env\.CUDA_VISIBLE_DEVICES: /) } }]);
  });

  it('reports failed when the command cannot start', async () => {
    const { leases, start, events } = setup();
    await leases.start(start('lse_missing', { image: 'x', command: ['/definitely/not/here'], env: {}, ports: [8080] }, [0]));
    expect(events.find((e) => e.leaseId === 'lse_missing')!.event).toMatchObject({ type: 'failed', reason: 'command not found: /definitely/not/here' });
  });

  it('gives each lease’s ports distinct free host ports of the range, tells the process through GRIDLEASE_PORT_<port> and PORT, and frees them at exit', async () => {
    const { leases, start, events } = setup(300, { first: 40_100, last: 40_102 });
    const dir = tempDir();
    // Writes what it was told, then waits for a file that lets it exit.
    const script = (name: string) =>
      `const fs = require('fs'); fs.writeFileSync(${JSON.stringify(dir)} + '/${name}.json', JSON.stringify(Object.fromEntries(Object.entries(process.env).filter(([k]) => k === 'PORT' || k.startsWith('GRIDLEASE_PORT_'))))); setInterval(() => { if (fs.existsSync(${JSON.stringify(dir)} + '/${name}.go')) process.exit(0); }, 20)`;
    await leases.start(start('lse_one', { ...node(script('one')), ports: [8888] }, [0]));
    await leases.start(start('lse_two', { ...node(script('two'), { PORT: '1' }), ports: [8888, 22] }, [1]));
    const started = Object.fromEntries(events.filter((e) => e.event.type === 'started').map((e) => [e.leaseId, (e.event as { ports?: Record<string, number> }).ports]));
    expect(started).toEqual({ lse_one: { '8888': 40_100 }, lse_two: { '8888': 40_101, '22': 40_102 } });
    const seen = (name: string) => waitFor(() => fs.existsSync(path.join(dir, `${name}.json`)) && JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), 'utf8')), 5_000, name);
    expect(await seen('one')).toEqual({ GRIDLEASE_PORT_8888: '40100', PORT: '40100' });
    // Two ports: no PORT from the runner; the workload's own is left as it set it.
    expect(await seen('two')).toEqual({ GRIDLEASE_PORT_8888: '40101', GRIDLEASE_PORT_22: '40102', PORT: '1' });

    // The range is full: a third lease with a port fails; once lse_one exits its port is free again.
    await leases.start(start('lse_three', { ...node(''), ports: [80] }, [2]));
    expect(events.find((e) => e.leaseId === 'lse_three')!.event).toMatchObject({ type: 'failed', reason: 'no free host port in 40100-40102 for 1 workload port' });
    fs.writeFileSync(path.join(dir, 'one.go'), '');
    await leases.exited('lse_one');
    await leases.start(start('lse_four', { ...node('setTimeout(() => {}, 50)'), ports: [80] }, [2]));
    expect(events.find((e) => e.leaseId === 'lse_four' && e.event.type === 'started')!.event).toMatchObject({ ports: { '80': 40_100 } });
    fs.writeFileSync(path.join(dir, 'two.go'), '');
    await Promise.all([leases.exited('lse_two'), leases.exited('lse_four')]);
  });

  it('refuses GPUs the machine lacks or another lease holds, and leases already over', async () => {
    const { leases, start, events } = setup();
    await leases.start(start('lse_a', node('setTimeout(() => {}, 5000)'), [1]));
    await leases.start(start('lse_b', node(''), [1, 2]));
    await leases.start(start('lse_c', node(''), [7]));
    await leases.start(start('lse_d', node(''), [2], new Date(Date.now() - 1000)));
    const failed = Object.fromEntries(events.filter((e) => e.event.type === 'failed').map((e) => [e.leaseId, (e.event as { reason: string }).reason]));
    expect(failed).toEqual({ lse_b: 'GPU 1 is in use by lease lse_a', lse_c: 'GPU 7 is not on this machine', lse_d: expect.stringMatching(/^the lease already ended at /) });
    await leases.stop('lse_a', 'test');
  });

  it('stops with SIGTERM, then SIGKILL after the grace', async () => {
    const { leases, start, events, log } = setup(300);
    await leases.start(start('lse_polite', node('process.on("SIGTERM", () => process.exit(0)); setInterval(() => {}, 1000)')));
    await leases.start(start('lse_stubborn', node('process.on("SIGTERM", () => {}); setInterval(() => {}, 1000); console.log("ready")'), [0]));
    await new Promise((r) => setTimeout(r, 300)); // let the children install their handlers
    const t0 = Date.now();
    await Promise.all([leases.stop('lse_polite', 'renter asked'), leases.stop('lse_stubborn', 'renter asked')]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    const exits = Object.fromEntries(events.filter((e) => e.event.type === 'exited').map((e) => [e.leaseId, (e.event as { exit_code: number }).exit_code]));
    expect(exits).toEqual({ lse_polite: 0, lse_stubborn: 137 });
    expect(leases.snapshot().map((l) => l.state)).toEqual(['stopped', 'stopped']);
    expect(log.lines).toContain('info lease lse_polite: stopping (renter asked)');
  });

  it('enforces ends_at locally', async () => {
    const { leases, start, events, log } = setup(300);
    const t0 = Date.now();
    await leases.start(start('lse_short', node('setInterval(() => {}, 1000)'), [2], new Date(Date.now() + 400)));
    await waitFor(() => events.find((e) => e.event.type === 'exited'), 5_000, 'the exit');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(380);
    expect(leases.snapshot()).toEqual([{ lease_id: 'lse_short', state: 'stopped' }]);
    expect(log.lines).toContain('info lease lse_short: stopping (the lease ended (ends_at))');
  });

  it('stops process workloads on shutdown (they cannot outlive the runner)', async () => {
    const { leases, start, types } = setup(300);
    await leases.start(start('lse_shutdown', node('setInterval(() => {}, 1000)')));
    await leases.shutdown(false);
    expect(types('lse_shutdown')).toEqual(['started', 'exited']);
    expect(leases.snapshot()).toEqual([{ lease_id: 'lse_shutdown', state: 'stopped' }]);
  });
});
