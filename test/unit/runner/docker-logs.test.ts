// Container output through the fake docker's `logs`: lines with docker's timestamps, read on
// from the spool's cursor after a runner restart.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { LeaseLog, LogSink, LogStream } from '../../../runner/src/logs/shipper.ts';
import { dockerRunner, startLease } from './docker-fixture.ts';
import { tempDir, waitFor } from './helpers.ts';

const PORTS = { portRange: { first: 40_000, last: 40_099 }, portIsFree: async () => true };

/** Keeps lines in memory; `cursor` is what a spool would say after a restart. */
function memorySink(cursor: string | null = null) {
  const lines: { stream: LogStream; text: string; partial: boolean; at: string | undefined }[] = [];
  const closed: string[] = [];
  const sink: LogSink = {
    open: (): LeaseLog => ({
      get cursor() {
        return cursor;
      },
      line: (stream, text, partial, at) => {
        lines.push({ stream, text, partial, at });
        cursor = at ?? cursor;
      },
      end: () => void closed.push('end'),
      detach: () => void closed.push('detach'),
    }),
  };
  return { sink, lines, closed };
}

const T = (s: number) => `2026-12-07T06:00:0${s}.00000000${s}Z`;

describe('docker executor logs', () => {
  it('follows a container’s stdout and stderr with docker’s timestamps, to the end, before removing it', async () => {
    const logs = memorySink();
    const { leases, calls, dir, exitContainer } = dockerRunner({}, { ...PORTS, logs: logs.sink });
    await leases.start(startLease());
    const out = path.join(dir, 'gridlease-lse_42.stdout');
    fs.writeFileSync(out, `${T(1)} hello\r\n${T(2)} ${'x'.repeat(8200)}\n`);
    fs.writeFileSync(path.join(dir, 'gridlease-lse_42.stderr'), Buffer.concat([Buffer.from(`${T(3)} bad `), Buffer.of(0xff), Buffer.from(' byte\n')]));
    await waitFor(() => logs.lines.length >= 4, 5_000, 'the first lines');
    fs.appendFileSync(out, `${T(4)} last words\n`);
    exitContainer('gridlease-lse_42', 0);
    await leases.exited('lse_42');
    await waitFor(() => calls().some((c) => c[0] === 'rm'), 5_000, 'docker rm');
    expect(calls().find((c) => c[0] === 'logs')).toEqual(['logs', '--follow', '--timestamps', 'gridlease-lse_42']);
    expect(logs.closed).toEqual(['end']);
    const first = 8192 - `${T(2)} `.length;
    expect(logs.lines).toEqual([
      { stream: 'stdout', text: 'hello', partial: false, at: T(1) },
      { stream: 'stdout', text: 'x'.repeat(first), partial: true, at: T(2) },
      { stream: 'stdout', text: 'x'.repeat(8200 - first), partial: false, at: T(2) },
      { stream: 'stderr', text: 'bad \ufffd byte', partial: false, at: T(3) },
      { stream: 'stdout', text: 'last words', partial: false, at: T(4) },
    ]);
  });

  it('reads on after the spool’s cursor when it adopts a container, and detaches on shutdown', async () => {
    const logs = memorySink(T(2));
    const { leases, calls, dir } = dockerRunner({ FAKE_DOCKER_PS: `gridlease-lse_42\tlse_42\t2099-01-01T00:00:00.000Z` }, { ...PORTS, logs: logs.sink });
    fs.writeFileSync(path.join(dir, 'gridlease-lse_42.running'), '');
    fs.writeFileSync(path.join(dir, 'gridlease-lse_42.stdout'), `${T(1)} seen\n${T(2)} seen too\n${T(3)} new\n`);
    await leases.adopt();
    await waitFor(() => logs.lines.length >= 1, 5_000, 'the new line');
    expect(calls().find((c) => c[0] === 'logs')).toEqual(['logs', '--follow', '--timestamps', '--since', T(2), 'gridlease-lse_42']);
    await leases.shutdown(false);
    expect(logs.lines).toEqual([{ stream: 'stdout', text: 'new', partial: false, at: T(3) }]);
    await waitFor(() => logs.closed.length > 0, 5_000, 'the detach');
    expect(logs.closed).toEqual(['detach']);
  });

  it('runs docker logs again from the last line taken when it breaks while the container runs', async () => {
    const logs = memorySink();
    const brk = path.join(tempDir(), 'break');
    fs.writeFileSync(brk, '');
    const { leases, calls, dir, exitContainer } = dockerRunner({ FAKE_DOCKER_LOGS_BREAK: brk }, { ...PORTS, logs: logs.sink });
    fs.writeFileSync(path.join(dir, 'gridlease-lse_42.stdout'), `${T(1)} one\n${T(2)} two\n`);
    await leases.start(startLease());
    await waitFor(() => calls().filter((c) => c[0] === 'logs').length === 2, 5_000, 'a second docker logs');
    fs.appendFileSync(path.join(dir, 'gridlease-lse_42.stdout'), `${T(3)} three\n`);
    exitContainer('gridlease-lse_42', 0);
    await leases.exited('lse_42');
    expect(calls().filter((c) => c[0] === 'logs')).toEqual([
      ['logs', '--follow', '--timestamps', 'gridlease-lse_42'],
      ['logs', '--follow', '--timestamps', '--since', T(2), 'gridlease-lse_42'],
    ]);
    expect(logs.lines.map((l) => l.text)).toEqual(['one', 'two', 'three']);
    expect(logs.closed).toEqual(['end']);
  });
});
