// npm run bench:book-start — how long a RegionBook holding many resting bids takes to start
// (rebuild its in-memory book from storage), and what that costs workerd in memory.
//
// Drives the real RegionBook class in workerd through Miniflare's API: a small bench entry
// (generated below, bundled with esbuild against a source tree) re-exports RegionBook and, on
// request, fills a book with BENCH_BIDS (100,000) resting bids (1.00–1.99 per GPU-hour, nothing
// sells, so all rest), of which BENCH_LARGE_SHARE (0.1) carry a 4–64 KiB workload (env values of
// random text, as a training job's config would) and the rest a ~200-byte one. Then, for each
// start, workerd is stopped and started again on the same storage, an empty book is woken first
// (isolate loaded, the floor), and the filled book is woken with one `snapshot` call:
//   start ms    = that call's round trip (the constructor rebuilds the book from storage);
//   next call   = the same call again: a few ms, unless workerd dropped the object (memory);
//   floor ms    = the same call to a book with nothing stored;
//   rss MiB     = workerd's resident memory after the start − before it (/proc);
//   peak MiB    = workerd's peak resident memory (VmHWM) after − before: the rebuild's spike.
//
// BENCH_BASELINE=<folder of another checkout> (e.g. `git worktree add /tmp/base <ref>`) also
// bundles that tree's RegionBook and compares in the same run, on the SAME storage: the book is
// filled by the baseline code, started by it, then started by this tree's code twice (the first
// start also migrates an older storage layout), and a book filled by this tree's code is started.
// Without it only this tree is measured.
import { build } from 'esbuild';
import { Log, LogLevel, Miniflare, convertV4MiniflareOptions, type V4MiniflareOptions } from 'miniflare';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findWorkerd } from './proc.ts';
import { num } from './support.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIDS = num('BENCH_BIDS', 100_000);
const LARGE_SHARE = num('BENCH_LARGE_SHARE', 0.1);
const FILL_CHUNK = 5_000;
const BASELINE = process.env.BENCH_BASELINE ? resolve(process.env.BENCH_BASELINE) : null;

// The entry runs inside workerd. Bids are made from their index, so every fill is the same.
const ENTRY = `
import { RegionBook } from './src/durable/region-book.ts';
export { RegionBook };
const LARGE_SHARE = ${LARGE_SHARE};
function rand(seed) { let s = seed >>> 0 || 1; return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 4294967296); }
function text(r, n) { const a = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/'; let s = ''; for (let i = 0; i < n; i++) s += a[Math.floor(r() * 64)]; return s; }
function workload(i) {
  const r = rand(i + 1);
  const env = { EPOCHS: '3', RUN: 'run-' + i };
  if (r() < LARGE_SHARE) {
    let left = 4096 + Math.floor(r() * 61440);
    for (let k = 0; left > 0; k++) { const n = Math.min(8192, left); env['CONFIG_' + k] = text(r, n); left -= n; }
  }
  return { image: 'ghcr.io/acme/train:1.4', command: ['python', 'train.py', '--config', '/etc/job.yaml'], env, ports: [8888] };
}
function bid(i, expiresAt) {
  const price = 1_000_000 + (i * 7919) % 1_000_000;
  const gpus = 1 + (i % 4);
  return { side: 'buy', id: 'ord_bench_' + i, accountId: 'acc_bench_' + (i % 500), region: 'us-east', gpuModel: 'h100-80gb', gpus, price,
    durationS: 3600, minReliability: 0, verifiedOnly: false, tif: 'gtc', expiresAt, payWith: 'USD',
    holdAmount: String(price * gpus), gridUsdRate: '250000', gridDiscountBps: '1000', workload: workload(i) };
}
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const stub = env.REGION_BOOK.getByName(url.searchParams.get('book'));
    if (url.pathname === '/fill') {
      const from = Number(url.searchParams.get('from')), to = Number(url.searchParams.get('to'));
      const expiresAt = Number(url.searchParams.get('expires'));
      let next = from;
      const worker = async () => { while (next < to) { const i = next++; const r = await stub.place(bid(i, expiresAt)); if (!r.ok || r.order.status !== 'open') throw new Error('bid ' + i + ' did not rest'); } };
      await Promise.all(Array.from({ length: 16 }, worker));
      return Response.json({ placed: to - from });
    }
    const s = await stub.snapshot(1);
    return Response.json({ resting: s.resting });
  },
};`;

async function bundle(tree: string, out: string): Promise<string> {
  const outfile = join(out, 'index.js');
  await build({
    stdin: { contents: ENTRY, resolveDir: tree, sourcefile: 'book-start-entry.ts', loader: 'ts' },
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    external: ['cloudflare:*', 'node:*'],
    nodePaths: [join(ROOT, 'node_modules')],
    outfile,
    logLevel: 'error',
  });
  return outfile;
}

async function startWorkerd(script: string, persist: string): Promise<Miniflare> {
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      name: 'book-start',
      modules: true,
      rootPath: dirname(script),
      scriptPath: script,
      compatibilityDate: '2026-11-01',
      compatibilityFlags: ['nodejs_compat'],
      durableObjects: { REGION_BOOK: { className: 'RegionBook', useSQLite: true } },
      resourcePersistencePath: persist,
      port: 0,
      cf: { colo: 'LCL', country: 'ZZ', city: 'Localhost' },
      telemetry: { enabled: false },
      log: new Log(process.env.BENCH_VERBOSE ? LogLevel.DEBUG : LogLevel.WARN),
    } as V4MiniflareOptions),
  );
  await mf.ready;
  return mf;
}

/** VmRSS and VmHWM of a process in MiB. */
function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

async function get(mf: Miniflare, path: string): Promise<{ ms: number; body: any }> {
  const t = performance.now();
  const res = await mf.dispatchFetch(`http://bench${path}`);
  const body = await res.json();
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`);
  return { ms: performance.now() - t, body };
}

async function fill(script: string, persist: string, book: string): Promise<number> {
  const mf = await startWorkerd(script, persist);
  const t = performance.now();
  const expires = Date.now() + 29 * 86_400_000;
  for (let from = 0; from < BIDS; from += FILL_CHUNK) await get(mf, `/fill?book=${book}&from=${from}&to=${Math.min(BIDS, from + FILL_CHUNK)}&expires=${expires}`);
  const s = (performance.now() - t) / 1000;
  await mf.dispose();
  return s;
}

interface Start {
  code: string;
  storage: string;
  resting: number;
  floorMs: number;
  firstMs: number;
  nextMs: number;
  rssMiB: number;
  peakMiB: number;
}

/** Starts workerd afresh on `persist` and wakes `book`: what its rebuild costs. */
async function start(code: string, storage: string, script: string, persist: string, book: string): Promise<Start> {
  const mf = await startWorkerd(script, persist);
  try {
    await get(mf, `/start?book=empty:${crypto.randomUUID()}`);
    // The floor: waking a book with nothing stored, in the now-loaded isolate.
    const floor = await get(mf, `/start?book=empty:${crypto.randomUUID()}`);
    const pid = findWorkerd(process.pid);
    const before = memory(pid);
    const first = await get(mf, `/start?book=${book}`);
    const after = memory(pid);
    const next = await get(mf, `/start?book=${book}`);
    return { code, storage, resting: first.body.resting, floorMs: floor.ms, firstMs: first.ms, nextMs: next.ms, rssMiB: after.rss - before.rss, peakMiB: after.peak - before.peak };
  } finally {
    await mf.dispose();
  }
}

const work = mkdtempSync(join(tmpdir(), 'book-start-'));
try {
  const current = await bundle(ROOT, mkdtempSync(join(work, 'current-')));
  const baseline = BASELINE ? await bundle(BASELINE, mkdtempSync(join(work, 'baseline-'))) : null;
  const rows: Start[] = [];
  const fills: string[] = [];
  if (baseline) {
    const persist = join(work, 'filled-by-baseline');
    fills.push(`baseline code filled ${BIDS} bids in ${(await fill(baseline, persist, 'old')).toFixed(1)} s`);
    rows.push(await start('baseline', 'baseline layout', baseline, persist, 'old'));
    rows.push(await start('this tree', 'baseline layout (first start migrates)', current, persist, 'old'));
    rows.push(await start('this tree', 'baseline layout, migrated', current, persist, 'old'));
  }
  const persist = join(work, 'filled-by-current');
  fills.push(`this tree filled ${BIDS} bids in ${(await fill(current, persist, 'new')).toFixed(1)} s`);
  rows.push(await start('this tree', 'this tree layout', current, persist, 'new'));
  rows.push(await start('this tree', 'this tree layout (again)', current, persist, 'new'));

  console.log(`RegionBook start with ${BIDS} resting bids (${Math.round(LARGE_SHARE * 100)}% with 4–64 KiB workloads)`);
  for (const f of fills) console.log(`  ${f}`);
  console.log('');
  console.log('| code | storage | resting | start ms | next call ms | floor ms | rss +MiB | peak +MiB |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.code} | ${r.storage} | ${r.resting} | ${r.firstMs.toFixed(0)} | ${r.nextMs.toFixed(1)} | ${r.floorMs.toFixed(1)} | ${r.rssMiB.toFixed(0)} | ${r.peakMiB.toFixed(0)} |`);
  }
  console.log('');
  console.log('start: the first call to the filled book after workerd restarted (its constructor rebuilds the book); floor: the same');
  console.log('call to a book with nothing stored. A next call nearly as slow as the start means workerd dropped the object after');
  console.log('its start (over the memory limit) and started it again.');
} finally {
  rmSync(work, { recursive: true, force: true });
}
