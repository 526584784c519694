// npm run bench:http — latency and throughput of the local platform, all in one run:
//   the bare route (GET /livez: what workerd costs here, the floor), GET /healthz (one libSQL
//   round trip), and GET /v1/accounts/me with a JWT and with an API key.
// Two views of each route:
//   - under load: autocannon, BENCH_CONNECTIONS (default 10) for BENCH_SECONDS (default 10);
//     at saturation p50 mostly measures throughput, and autocannon rounds to whole ms;
//   - one at a time: BENCH_SEQUENTIAL (default 2000) sequential keep-alive requests timed with
//     performance.now(), the latency a single client sees, to 0.01 ms.
// Starts its own platform (fresh data folder) unless BENCH_URL points at a running one.
import autocannon from 'autocannon';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, launch, type Platform } from '../test/support/platform.ts';
import { percentile } from './support.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 10);
const sequential = Number(process.env.BENCH_SEQUENTIAL ?? 2000);

interface Row {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** One request at a time. */
  seqP50: number;
  seqP99: number;
}

async function oneAtATime(url: string, headers: Record<string, string>): Promise<{ p50: number; p99: number; errors: number }> {
  const times: number[] = [];
  let errors = 0;
  for (let i = 0; i < sequential; i++) {
    const started = performance.now();
    const res = await fetch(url, { headers });
    await res.arrayBuffer();
    times.push(performance.now() - started);
    if (!res.ok) errors++;
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99), errors };
}

async function run(name: string, url: string, headers: Record<string, string> = {}): Promise<Row> {
  // A short warm-up so the first row does not pay for isolate start and JIT.
  await autocannon({ url, headers, connections, duration: 1 });
  const r = await autocannon({ url, headers, connections, duration: seconds });
  const seq = await oneAtATime(url, headers);
  return {
    name,
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.non2xx + r.errors + r.timeouts + seq.errors,
    seqP50: seq.p50,
    seqP99: seq.p99,
  };
}

async function json(res: Response): Promise<any> {
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
  return res.json();
}

async function main() {
  let platform: Platform | undefined;
  let dataDir: string | undefined;
  let base = process.env.BENCH_URL;
  if (!base) {
    dataDir = mkdtempSync(join(tmpdir(), 'gridlease-bench-'));
    platform = await launch({ dataDir, port: await freePort(), libsqlPort: await freePort() });
    base = platform.url;
  }
  try {
    const email = `bench.${Date.now()}@example.com`;
    const password = 'Benchmark-Quartz-9042';
    const account = await json(
      await fetch(`${base}/v1/accounts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password, roles: ['renter'] }),
      }),
    );
    const token = (
      await json(
        await fetch(`${base}/v1/auth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ grant_type: 'password', email, password }),
        }),
      )
    ).access_token as string;

    const rows = [
      await run('GET /livez (floor)', `${base}/livez`),
      await run('GET /healthz', `${base}/healthz`),
      await run('GET /v1/accounts/me (JWT)', `${base}/v1/accounts/me`, { authorization: `Bearer ${token}` }),
      await run('GET /v1/accounts/me (API key)', `${base}/v1/accounts/me`, { authorization: `Bearer ${account.api_key.key}` }),
    ];
    const floor = rows[0]!;
    const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a');
    console.log(`\n${base}: under load = ${connections} connections × ${seconds} s; one at a time = ${sequential} sequential requests\n`);
    console.log('| route | req/s (load) | p50 ms (load) | p99 ms (load) | p50 vs floor (load) | p50 ms (1 at a time) | p99 ms (1 at a time) | p50 vs floor (1 at a time) | errors |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      console.log(
        `| ${r.name} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${ratio(r.p50, floor.p50)} | ${r.seqP50.toFixed(2)} | ${r.seqP99.toFixed(2)} | ${ratio(r.seqP50, floor.seqP50)} | ${r.errors} |`,
      );
    }
    const authenticated = rows.slice(2);
    const underLoad = authenticated.every((r) => r.p50 <= 2 * floor.p50);
    const single = authenticated.every((r) => r.seqP50 <= 2 * floor.seqP50);
    console.log(`\ngoal, authenticated p50 ≤ 2× floor p50: under load ${underLoad ? 'met' : 'not met'}; one at a time ${single ? 'met' : 'not met'}`);
  } finally {
    if (platform) await platform.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
