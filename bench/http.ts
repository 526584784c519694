// npm run bench:http — latency and throughput of the local platform, all in one run:
//   the bare route (GET /livez: what workerd costs here, the floor), GET /healthz (one libSQL
//   round trip), and GET /v1/accounts/me with a JWT and with an API key.
// Starts its own platform (fresh data folder) unless BENCH_URL points at a running one.
// BENCH_SECONDS (default 10) and BENCH_CONNECTIONS (default 10) tune each run.
import autocannon from 'autocannon';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, launch, type Platform } from '../test/support/platform.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 10);

interface Row {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

async function run(name: string, url: string, headers: Record<string, string> = {}): Promise<Row> {
  // A short warm-up so the first row does not pay for isolate start and JIT.
  await autocannon({ url, headers, connections, duration: 1 });
  const r = await autocannon({ url, headers, connections, duration: seconds });
  return { name, rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.non2xx + r.errors + r.timeouts };
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
    console.log(`\n${connections} connections, ${seconds} s per route, ${base}\n`);
    console.log('| route | req/s | p50 ms | p99 ms | p50 vs floor | errors |');
    console.log('|---|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      const ratio = floor.p50 > 0 ? `${(r.p50 / floor.p50).toFixed(2)}×` : 'n/a';
      console.log(`| ${r.name} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${ratio} | ${r.errors} |`);
    }
    const goal = rows.slice(2).every((r) => r.p50 <= 2 * Math.max(floor.p50, 1));
    console.log(`\ngoal (authenticated p50 ≤ 2× floor p50): ${goal ? 'met' : 'not met'}`);
  } finally {
    if (platform) await platform.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
