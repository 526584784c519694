import { describe, expect, it } from 'vitest';
import { DetectedGpuSchema, GpuMetricsSchema, MachineSchema } from '../../../src/contracts/runner.ts';
import { detectMachine } from '../../../runner/src/detect.ts';
import { RunnerError } from '../../../runner/src/errors.ts';
import { parseGpuList, parseMetrics, parseNumber, queryMetrics } from '../../../runner/src/nvidia-smi.ts';
import { FAKE_SMI, SMI_DIR, fixture } from './helpers.ts';

describe('nvidia-smi GPU list', () => {
  it('reads one H100 (noheader, nounits) and maps it to the catalog', () => {
    const { rows, skipped } = parseGpuList(fixture('h100.csv'));
    expect(skipped).toEqual([]);
    expect(rows).toEqual([
      { index: 0, uuid: 'GPU-6513270e-269e-0d37-f2a7-4de452e6b438', name: 'NVIDIA H100 80GB HBM3', memory_mib: 81559, driver: '550.54.15', model: 'h100-80gb' },
    ]);
    for (const row of rows) DetectedGpuSchema.parse(row);
  });

  it('reads eight A100-80GB with a header line and units', () => {
    const { rows, skipped } = parseGpuList(fixture('a100x8-header-units.csv'));
    expect(skipped).toEqual([]);
    expect(rows.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(new Set(rows.map((r) => r.model))).toEqual(new Set(['a100-80gb']));
    expect(rows.every((r) => r.memory_mib === 81920 && r.driver === '535.183.01')).toBe(true);
    expect(new Set(rows.map((r) => r.uuid)).size).toBe(8);
  });

  it('reads mixed cards with CRLF and extra spaces; an unknown card gets model null', () => {
    const { rows } = parseGpuList(fixture('mixed-crlf.csv'));
    expect(rows.map((r) => [r.index, r.name, r.memory_mib, r.model])).toEqual([
      [0, 'NVIDIA GeForce RTX 4090', 24564, 'rtx-4090-24gb'],
      [1, 'NVIDIA GeForce RTX 3090', 24576, 'rtx-3090-24gb'],
      [2, 'NVIDIA GeForce GTX 1050', 2048, null],
    ]);
    expect(rows[0]!.uuid).toBe('GPU-0cb1e29c-658c-da14-95e6-0af593bd04cf');
    expect(rows[2]!.driver).toBe(''); // [N/A]
  });

  it('does not take a card with less memory than its catalog model for that model', () => {
    const { rows } = parseGpuList('0, GPU-12345678-aaaa-bbbb-cccc-1234567890ab, NVIDIA H100 PCIe, 40960, 550.54.15\n');
    expect(rows[0]!.model).toBeNull();
  });

  it('skips lines it cannot read instead of failing', () => {
    const { rows, skipped } = parseGpuList(
      ['0, GPU-12345678-aaaa-bbbb-cccc-1234567890ab, NVIDIA L4, 23034, 550.54.15', 'garbage', '1, not-a-uuid, NVIDIA L4, 23034, 550', ''].join('\n'),
    );
    expect(rows.map((r) => r.model)).toEqual(['l4-24gb']);
    expect(skipped).toHaveLength(2);
  });

  it('keeps a name containing a comma whole', () => {
    const { rows } = parseGpuList('0, GPU-12345678-aaaa-bbbb-cccc-1234567890ab, Weird, Card, 1024, 550\n');
    expect(rows[0]!.name).toBe('Weird, Card');
  });
});

describe('nvidia-smi metrics', () => {
  it('parses numbers with and without units, N/A as null', () => {
    expect(parseNumber('81559 MiB')).toBe(81559);
    expect(parseNumber(' 45 %')).toBe(45);
    expect(parseNumber('250.12 W')).toBe(250.12);
    expect(parseNumber('[N/A]')).toBeNull();
    expect(parseNumber('[Not Supported]')).toBeNull();
    expect(parseNumber('')).toBeNull();
  });

  it('reads the H100 metrics', () => {
    expect(parseMetrics(fixture('metrics-h100.csv')).rows).toEqual([
      { index: 0, utilization_pct: 87, memory_used_mib: 61234, temperature_c: 64, power_w: 612.47 },
    ]);
  });

  it('reads a header line, units, [N/A] and [Not Supported]', () => {
    const { rows, skipped } = parseMetrics(fixture('metrics-a100x8-header-units.csv'));
    expect(skipped).toEqual([]);
    expect(rows).toHaveLength(8);
    expect(rows[1]).toEqual({ index: 1, utilization_pct: 10, memory_used_mib: 1003, temperature_c: 41, power_w: 61.5 });
    expect(rows[3]).toEqual({ index: 3, utilization_pct: null, memory_used_mib: null, temperature_c: 41, power_w: null });
    for (const row of rows) GpuMetricsSchema.parse(row);
  });

  it('reads CRLF and odd spacing; out-of-range values become null', () => {
    const { rows } = parseMetrics(fixture('metrics-mixed-crlf.csv'));
    expect(rows.map((r) => r.index)).toEqual([0, 1, 2]);
    expect(rows[1]).toEqual({ index: 1, utilization_pct: 0, memory_used_mib: 1, temperature_c: 35, power_w: 21.3 });
    expect(parseMetrics('0, 250, 10, 40, 99999\n').rows[0]).toMatchObject({ utilization_pct: null, power_w: null });
  });

  it('runs the metrics query through nvidia-smi', async () => {
    process.env.FAKE_SMI_METRICS = `${SMI_DIR}/metrics-a100x8-header-units.csv`;
    try {
      expect((await queryMetrics({ bin: FAKE_SMI })).rows).toHaveLength(8);
    } finally {
      delete process.env.FAKE_SMI_METRICS;
    }
  });
});

describe('machine detection', () => {
  it('reports host, GPUs with catalog ids and the runner version, as the contract wants', async () => {
    process.env.FAKE_SMI_GPUS = `${SMI_DIR}/mixed-crlf.csv`;
    try {
      const { machine, warnings } = await detectMachine({ bin: FAKE_SMI });
      MachineSchema.parse(machine);
      expect(machine.gpus.map((g) => g.model)).toEqual(['rtx-4090-24gb', 'rtx-3090-24gb', null]);
      expect(machine.cpu_cores).toBeGreaterThan(0);
      expect(machine.ram_mib).toBeGreaterThan(0);
      expect(machine.runner_version).toBe('0.1.0');
      expect(warnings).toEqual(['GPU 2 (NVIDIA GeForce GTX 1050, 2048 MiB) is not in the Gridlease catalog: reported as unknown, it cannot be listed']);
    } finally {
      delete process.env.FAKE_SMI_GPUS;
    }
  });

  it('fails with one clear line when nvidia-smi is missing, broken, or lists no GPU', async () => {
    await expect(detectMachine({ bin: '/nonexistent/nvidia-smi' })).rejects.toThrow(/^nvidia-smi not found at \/nonexistent\/nvidia-smi/);
    process.env.FAKE_SMI_FAIL = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.";
    try {
      await expect(detectMachine({ bin: FAKE_SMI })).rejects.toThrow("nvidia-smi failed: NVIDIA-SMI has failed because it couldn't communicate");
    } finally {
      delete process.env.FAKE_SMI_FAIL;
    }
    process.env.FAKE_SMI_GPUS = '/dev/null';
    try {
      const err = await detectMachine({ bin: FAKE_SMI }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RunnerError);
      expect((err as Error).message).toBe('no NVIDIA GPU found: nvidia-smi lists none');
    } finally {
      delete process.env.FAKE_SMI_GPUS;
    }
  });
});
