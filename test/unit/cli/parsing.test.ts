// The CLI's command line and the text it prints: pure functions, plain inputs.
import { describe, expect, it } from 'vitest';
import { intFlag, parseAmount, parseArgs, parseDuration } from '../../../cli/src/args.ts';
import { EXIT, CliError } from '../../../cli/src/exit.ts';
import { escapeControls, fields, table } from '../../../cli/src/output.ts';
import { buildBuyOrder, parseCommand } from '../../../cli/src/commands/market.ts';
import { accruedUsd, fromMicro, toMicro } from '../../../cli/src/commands/leases.ts';

function usage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).exitCode).toBe(EXIT.usage);
    return (err as Error).message;
  }
  throw new Error('expected a usage error');
}

describe('parseArgs', () => {
  it('reads a command, its positionals and flags in any order', () => {
    expect(parseArgs(['logs', 'lse_1', '-f', '--tail', '20', '--json'])).toEqual({ command: 'logs', args: ['lse_1'], flags: { follow: true, tail: '20', json: true } });
    expect(parseArgs(['--api', 'http://x', 'extend', 'lse_1', '2h'])).toEqual({ command: 'extend', args: ['lse_1', '2h'], flags: { api: 'http://x' } });
    expect(parseArgs(['buy', '--env', 'A=1', '--env', 'B=2', '--port', '8080', '--no-wait']).flags).toEqual({ env: ['A=1', 'B=2'], port: ['8080'], 'no-wait': true });
  });

  it('takes a value that starts with a dash, unless it is a flag', () => {
    expect(parseArgs(['offers', '--order', '-reliability']).flags).toEqual({ order: '-reliability' });
    expect(usage(() => parseArgs(['offers', '--order', '--json']))).toMatch(/order/);
  });

  it('shows help with no command, for --help and for a command’s --help', () => {
    expect(parseArgs([]).command).toBe('help');
    expect(parseArgs(['--help']).command).toBe('help');
    expect(parseArgs(['logs', '--help'])).toMatchObject({ command: 'help', args: ['logs'] });
    expect(parseArgs(['--version']).command).toBe('version');
  });

  it('refuses unknown commands, unknown flags, flags of other commands and wrong arities', () => {
    expect(usage(() => parseArgs(['bogus']))).toMatch(/unknown command "bogus"/);
    expect(usage(() => parseArgs(['balance', '--nope']))).toMatch(/nope/);
    expect(usage(() => parseArgs(['balance', '--tail', '3']))).toMatch(/balance takes no --tail/);
    expect(usage(() => parseArgs(['lease']))).toMatch(/lease needs <id>/);
    expect(usage(() => parseArgs(['extend', 'lse_1']))).toMatch(/extend needs <duration>/);
    expect(usage(() => parseArgs(['lease', 'a', 'b']))).toMatch(/unexpected argument "b"/);
    expect(usage(() => parseArgs(['logs', 'x', '--tail']))).toMatch(/tail/);
  });

  it('takes an optional query for offers, quoted or as words', () => {
    expect(parseArgs(['offers']).args).toEqual([]);
    expect(parseArgs(['offers', 'gpus>=2 region in [us-east]']).args).toEqual(['gpus>=2 region in [us-east]']);
    expect(parseArgs(['offers', 'gpu_model=h100-80gb', 'verified=true']).args).toEqual(['gpu_model=h100-80gb', 'verified=true']);
  });
});

describe('values', () => {
  it('reads durations in seconds, minutes, hours and days', () => {
    expect(parseDuration('90')).toBe(90);
    expect(parseDuration('90s')).toBe(90);
    expect(parseDuration('30m')).toBe(1800);
    expect(parseDuration('1h30m')).toBe(5400);
    expect(parseDuration('2d')).toBe(172_800);
    for (const bad of ['', '1.5h', 'h', '1h 30m', '-5', '1x', '0x10']) expect(usage(() => parseDuration(bad))).toMatch(/duration/);
  });

  it('reads money as decimal strings with at most 6 decimals, never through a float', () => {
    expect(parseAmount('25')).toBe('25');
    expect(parseAmount('2.350001')).toBe('2.350001');
    for (const bad of ['1e3', '-1', '2.3500001', '0x10', ' 5', '1,5']) usage(() => parseAmount(bad));
  });

  it('reads whole numbers in range only, digits only', () => {
    expect(intFlag('tail', '20', 1, 5000)).toBe(20);
    expect(intFlag('tail', undefined, 1, 5000)).toBeUndefined();
    for (const bad of ['0', '5001', '1e2', '0x10', '2.5', '']) expect(usage(() => intFlag('tail', bad, 1, 5000))).toMatch(/--tail must be a whole number from 1 to 5000/);
  });

  it('reads --command as a JSON array or as words', () => {
    expect(parseCommand('["python","-c","print(1)"]')).toEqual(['python', '-c', 'print(1)']);
    expect(parseCommand('python  train.py --epochs 3')).toEqual(['python', 'train.py', '--epochs', '3']);
    usage(() => parseCommand('[1, 2]'));
  });

  it('builds a buy order from flags, defaulting gpus and pay_with, and names what is missing', () => {
    const order = buildBuyOrder({ region: 'us-east', gpu: 'h100-80gb', price: '2.35', duration: '1h', image: 'ghcr.io/acme/train:1', command: 'python train.py', env: ['A=1=2'], port: ['8080'] });
    expect(order).toEqual({
      side: 'buy',
      region: 'us-east',
      gpu_model: 'h100-80gb',
      gpus: 1,
      price: '2.35',
      duration_s: 3600,
      pay_with: 'USD',
      workload: { image: 'ghcr.io/acme/train:1', command: ['python', 'train.py'], env: { A: '1=2' }, ports: [8080] },
    });
    expect(usage(() => buildBuyOrder({ image: 'x', region: 'us-east' }))).toMatch(/--gpu, --price, --duration/);
    expect(usage(() => buildBuyOrder({ region: 'us-east' }))).toMatch(/--image/);
    expect(usage(() => buildBuyOrder({ image: 'x', env: ['NOEQUALS'] }))).toMatch(/NAME=VALUE/);
  });
});

describe('money display', () => {
  it('converts decimal strings to micro-units and back exactly', () => {
    expect(toMicro('2.35')).toBe(2_350_000n);
    expect(toMicro('0.000001')).toBe(1n);
    expect(fromMicro(2_355_000n)).toBe('2.36');
    expect(fromMicro(2_354_999n)).toBe('2.35');
    expect(fromMicro(999_999_999n)).toBe('1000.00');
    expect(fromMicro(1n, 6)).toBe('0.000001');
  });

  it('estimates the running cost as price × GPUs × seconds, capped at the duration', () => {
    const lease = { price: '3.60', gpus: 2, duration_s: 60, started_at: '2026-12-07T07:00:00.000Z', stopped_at: null };
    expect(accruedUsd(lease, Date.parse('2026-12-07T07:00:30.000Z'))).toBe('0.06');
    expect(accruedUsd(lease, Date.parse('2026-12-07T09:00:00.000Z'))).toBe('0.12');
    expect(accruedUsd({ ...lease, started_at: null }, Date.now())).toBeNull();
  });
});

describe('output', () => {
  it('escapes control characters so a log line cannot drive the terminal', () => {
    expect(escapeControls('\x1b[2J\x1b]0;pwned\x07ok')).toBe('\\x1b[2J\\x1b]0;pwned\\x07ok');
    expect(escapeControls('a\rb\nc\td')).toBe('a\\rb\\nc\td');
    expect(escapeControls('\x9b31m \x7f')).toBe('\\x9b31m \\x7f');
    expect(escapeControls('abc\u202Egnp.exe')).toBe('abc\\u202egnp.exe');
    expect(escapeControls('héllo 日本 🎉')).toBe('héllo 日本 🎉');
  });

  it('aligns table columns, right-aligns numbers, shows null as - and escapes cells', () => {
    const text = table(['asset', 'available'], [['USD', '100.00'], ['GRID', '5.5'], ['\x1b[31mX', null]]);
    expect(text.split('\n')).toEqual(['ASSET      AVAILABLE', 'USD           100.00', 'GRID             5.5', '\\x1b[31mX          -']);
  });

  it('prints key/value fields padded', () => {
    expect(fields([['state', 'running'], ['exit code', null]])).toBe('state      running\nexit code  -');
  });
});
