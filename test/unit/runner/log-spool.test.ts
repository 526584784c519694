import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LeaseSpool, compareTimestamps } from '../../../runner/src/logs/spool.ts';
import { tempDir } from './helpers.ts';

const at = '2026-12-07T06:00:00.000Z';
const line = (text: string) => ({ at, stream: 'stdout' as const, text });

describe('lease spool', () => {
  it('recovers after a crash cut its last write short: seqs go on, nothing after the cut is lost', () => {
    const dir = path.join(tempDir(), 'lse_1');
    const spool = LeaseSpool.open(dir);
    for (const text of ['a', 'b', 'c']) spool.append(line(text));
    spool.flush();
    const [segment] = fs.readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
    fs.appendFileSync(path.join(dir, segment!), '{"seq":3,"at":"2026-12-');

    const again = LeaseSpool.open(dir);
    expect(again.nextSeq).toBe(3);
    expect(again.append(line('d'))).toBe(3);
    expect(again.read(0, 100, 1_000).map((l) => [l.seq, l.text])).toEqual([[0, 'a'], [1, 'b'], [2, 'c'], [3, 'd']]);
  });

  it('remembers the next seq and docker’s cursor once everything was sent and removed', () => {
    const dir = path.join(tempDir(), 'lse_2');
    const spool = LeaseSpool.open(dir);
    spool.append(line('a'), '2026-12-07T06:00:01.5Z');
    spool.append(line('b'), '2026-12-07T06:00:02.25Z');
    spool.ack(2);
    expect(spool.empty()).toBe(true);
    spool.saveMeta();
    expect(fs.readdirSync(dir)).toEqual(['meta.json']);
    const again = LeaseSpool.open(dir);
    expect([again.nextSeq, again.acked, again.cursor]).toEqual([2, 2, '2026-12-07T06:00:02.25Z']);
  });

  it('reads in seq order within the limits, again from an earlier seq when asked', () => {
    const spool = LeaseSpool.open(path.join(tempDir(), 'lse_3'), { maxBytes: 1 << 20, segmentBytes: 200 });
    for (let i = 0; i < 50; i++) spool.append(line(`line ${i}`));
    expect(spool.read(0, 10, 1_000).map((l) => l.seq)).toEqual([...Array(10).keys()]);
    expect(spool.read(10, 1_000, 7 * 3).map((l) => l.text)).toEqual(['line 10', 'line 11', 'line 12']);
    expect(spool.read(45, 1_000, 1_000).map((l) => l.seq)).toEqual([45, 46, 47, 48, 49]);
    expect(spool.read(2, 2, 1_000).map((l) => l.seq)).toEqual([2, 3]);
  });

  it('orders docker timestamps with trimmed fractions', () => {
    expect(compareTimestamps('2026-12-07T06:00:01.5Z', '2026-12-07T06:00:01.499999999Z')).toBe(1);
    expect(compareTimestamps('2026-12-07T06:00:01Z', '2026-12-07T06:00:01.000000000Z')).toBe(0);
    expect(compareTimestamps('2026-12-07T06:00:01.000000001Z', '2026-12-07T06:00:02Z')).toBe(-1);
  });
});
