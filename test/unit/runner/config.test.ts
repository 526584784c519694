import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultConfigPath, isTooOpen, readConfig, statePathFor, writeConfig } from '../../../runner/src/config.ts';
import { EXIT, RunnerError } from '../../../runner/src/errors.ts';
import { parseOptions } from '../../../runner/src/options.ts';
import { CommandState, MAX_REMEMBERED } from '../../../runner/src/state.ts';
import { RUNNER_VERSION } from '../../../runner/src/version.ts';
import { ROOT, mode, tempDir } from './helpers.ts';

const config = { api: 'https://api.gridlease.test', node_id: 'node_1', node_token: 'nt_secret', region: 'eu-west' };

describe('config file', () => {
  it('is written 0600 in a folder created 0700, and read back', () => {
    const dir = tempDir();
    const file = path.join(dir, 'nested', 'gridlease', 'runner.json');
    writeConfig(file, config);
    expect(mode(file)).toBe(0o600);
    expect(mode(path.dirname(file))).toBe(0o700);
    expect(readConfig(file)).toEqual(config);
    expect(isTooOpen(file)).toBe(false);
    // Rewriting a file someone opened up makes it private again.
    fs.chmodSync(file, 0o644);
    expect(isTooOpen(file)).toBe(true);
    writeConfig(file, { ...config, node_id: 'node_2', node_private_key: 'MC4CAQAwBQYDK2VwBCIEIA' });
    expect(mode(file)).toBe(0o600);
    expect(readConfig(file)).toMatchObject({ node_id: 'node_2', node_private_key: 'MC4CAQAwBQYDK2VwBCIEIA' });
    expect(fs.readdirSync(path.dirname(file))).toEqual(['runner.json']); // no temp file left
  });

  it('explains a missing, broken or incomplete config in one line', () => {
    const dir = tempDir();
    const file = path.join(dir, 'runner.json');
    expect(() => readConfig(file)).toThrow(`no config at ${file}: run \`gridlease-runner join --api URL --token JOIN_TOKEN --region REGION\` first`);
    fs.writeFileSync(file, '{ nope', { mode: 0o600 });
    expect(() => readConfig(file)).toThrow(`config ${file} is not valid JSON`);
    fs.writeFileSync(file, JSON.stringify({ ...config, node_token: undefined }));
    expect(() => readConfig(file)).toThrow(/is invalid \(node_token: /);
    fs.writeFileSync(file, JSON.stringify({ ...config, api: 'not a url' }));
    expect(() => readConfig(file)).toThrow(RunnerError);
  });

  // Like ssh with a private key: the node token and key let anyone who reads them act as the node.
  it('refuses a config that group or others may read or write, saying how to fix it', () => {
    const file = path.join(tempDir(), 'runner.json');
    writeConfig(file, config);
    for (const open of [0o640, 0o604, 0o620]) {
      fs.chmodSync(file, open);
      expect(() => readConfig(file)).toThrow(`config ${file} is open to group or others (mode ${open.toString(8)}) and holds the node token and key: run \`chmod 600 ${file}\``);
    }
    fs.chmodSync(file, 0o600);
    expect(readConfig(file)).toEqual(config);
  });

  it('defaults to ~/.config/gridlease/runner.json, with the state file next to it', () => {
    expect(defaultConfigPath({ HOME: '/home/p' })).toMatch(/\.config\/gridlease\/runner\.json$/);
    expect(defaultConfigPath({ XDG_CONFIG_HOME: '/x' })).toBe('/x/gridlease/runner.json');
    expect(statePathFor('/etc/gridlease/runner.json')).toBe('/etc/gridlease/runner.state.json');
  });
});

describe('state file', () => {
  it('remembers executed ids and pending acks across restarts, per node', () => {
    const file = path.join(tempDir(), 'runner.state.json');
    const a = CommandState.load(file, 'node_1');
    a.record('c1');
    a.record('c2');
    a.acknowledged(['c1']);
    expect(mode(file)).toBe(0o600);

    const b = CommandState.load(file, 'node_1');
    expect(b.has('c1') && b.has('c2')).toBe(true);
    expect(b.pendingAcks()).toEqual(['c2']);
    expect(CommandState.load(file, 'node_other').has('c1')).toBe(false);
  });

  it('stays bounded and survives a corrupt file', () => {
    const file = path.join(tempDir(), 'runner.state.json');
    const s = CommandState.load(file, 'n');
    for (let i = 0; i < MAX_REMEMBERED + 5; i++) s.record(`c${i}`);
    const again = CommandState.load(file, 'n');
    expect(again.has('c0')).toBe(false);
    expect(again.has(`c${MAX_REMEMBERED + 4}`)).toBe(true);
    expect(again.pendingAcks(100)).toHaveLength(100);
    fs.writeFileSync(file, 'garbage');
    expect(CommandState.load(file, 'n').has('c5')).toBe(false);
  });
});

describe('options', () => {
  it('take flags over environment variables', () => {
    const env = { GRIDLEASE_API: 'https://env.test', GRIDLEASE_CONFIG: '/env/runner.json', GRIDLEASE_EXECUTOR: 'process', GRIDLEASE_NVIDIA_SMI: '/opt/smi' };
    const fromEnv = parseOptions(['start'], env);
    expect(fromEnv).toMatchObject({ command: 'start', api: 'https://env.test', configPath: '/env/runner.json', executor: 'process', nvidiaSmi: '/opt/smi' });
    const fromFlags = parseOptions(['start', '--api', 'https://flag.test', '--config', '/f.json', '--executor', 'docker', '--stop-workloads-on-exit'], env);
    expect(fromFlags).toMatchObject({ api: 'https://flag.test', configPath: '/f.json', executor: 'docker', stopWorkloadsOnExit: true, graceMs: 10_000 });
    expect(parseOptions([], {}).command).toBe('help');
    expect(parseOptions(['start'], {}).executor).toBe('docker');
  });

  it('take the host port range for workload ports from --port-range or GRIDLEASE_PORT_RANGE, 40000-40999 by default', () => {
    expect(parseOptions(['start'], {}).portRange).toEqual({ first: 40_000, last: 40_999 });
    expect(parseOptions(['start'], { GRIDLEASE_PORT_RANGE: '20000-20099' }).portRange).toEqual({ first: 20_000, last: 20_099 });
    expect(parseOptions(['start', '--port-range', '31000-31000'], { GRIDLEASE_PORT_RANGE: '20000-20099' }).portRange).toEqual({ first: 31_000, last: 31_000 });
  });

  it('refuse unknown commands, options and executors with the usage exit code', () => {
    for (const argv of [['frobnicate'], ['start', '--nope'], ['start', '--executor', 'podman'], ['start', '--grace', 'soon'], ['start', '--port-range', '9-1'], ['start', '--port-range', '0-10'], ['start', '--port-range', '40000-70000'], ['start', '--port-range', '40000']]) {
      const err = (() => {
        try {
          parseOptions(argv, {});
        } catch (e) {
          return e;
        }
      })();
      expect(err, argv.join(' ')).toBeInstanceOf(RunnerError);
      expect((err as RunnerError).exitCode).toBe(EXIT.usage);
    }
  });
});

it('the runner version matches runner/package.json', () => {
  expect(JSON.parse(fs.readFileSync(path.join(ROOT, 'runner/package.json'), 'utf8')).version).toBe(RUNNER_VERSION);
});
