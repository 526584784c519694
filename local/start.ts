// `npm start`: the whole platform on this machine, with no account anywhere.
//   1. migrations applied to an embedded libSQL file under the data folder;
//   2. a local libSQL server speaking Hrana over HTTP, as Turso/sqld do, on its own thread;
//   3. a local MOCK of the Stripe API (card deposits; Stripe itself is not reachable here);
//   4. the Worker and its Durable Objects in workerd, state persisted under the data folder.
// Ctrl-C (SIGINT) or SIGTERM stops everything; starting again keeps the data.
import { createClient } from '@libsql/client/node';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { LibsqlServer } from './libsql-server.ts';
import { startLibsqlServerThread } from './libsql-server/thread.ts';
import { startMockStripe, type MockStripe } from './mock-stripe.ts';
import { applyMigrations } from './migrate.ts';
import { assertPortFree, portFromEnv } from './ports.ts';
import { loadOrCreateSecrets } from './secrets.ts';
import { HOST, LOCAL_CHAIN, LOCAL_GRID_ADDRESS, LOCAL_STRIPE_KEY, LOCAL_USDC_ADDRESS, ROOT, dataDir as localDataDir } from './dev-config.ts';
import { bundleWorker, startWorker } from './worker.ts';
import { rewardsConfig } from '../src/rewards/config.ts';



/** Supply-rewards settings passed through from the environment (docs/rewards.md), e.g. REWARDS_EPOCH_S=120 for short epochs. */
const REWARDS_VARS = [
  'REWARDS_EPOCH_S',
  'REWARDS_CLOSE_BUDGET_S',
  'REWARDS_CLOSE_MAX_STEPS',
  'REWARDS_INITIAL_PER_EPOCH',
  'REWARDS_DECAY_PER_YEAR',
  'REWARDS_ALLOCATION_PPM',
  'REWARDS_MIN_UPTIME_PPM',
  'REWARDS_LEASE_BONUS_PPM',
  'REWARDS_STAKE_BONUS_PPM',
  'REWARDS_STAKE_PER_GPU',
  'REWARDS_TAPER_FLOOR_PPM',
  'REWARDS_TAPER_FULL_UTIL_PPM',
  'REWARDS_OWNER_CAP_PPM',
  'REWARDS_IMMEDIATE_PPM',
  'REWARDS_VESTING_S',
  'REWARDS_CLOSE_CHUNK',
];

/**
 * REWARDS_START for this launch: as set in the environment, or else chosen so that the next epoch
 * to close (one after the newest in the database, 0 on a fresh one) begins this minute. wrangler.toml's
 * start (2026-12-01) would make a fresh local platform close every epoch since then, one per cron
 * minute, before any of its own; and epoch numbers continue across restarts (and a changed
 * REWARDS_EPOCH_S), so the emission schedule goes on where it was and no closed epoch is redone.
 * The time the platform was stopped belongs to no epoch; closed epochs' reports show bounds
 * computed from this start.
 */
async function localRewardsStart(dbUrl: string): Promise<string> {
  const set = process.env.REWARDS_START?.trim();
  if (set) return set;
  const client = createClient({ url: dbUrl });
  try {
    const rs = await client.execute('SELECT epoch, status FROM reward_epochs ORDER BY epoch DESC LIMIT 1');
    const last = rs.rows[0];
    // An epoch still closing keeps its number: its inputs are (partly) gathered already.
    const next = last === undefined ? 0 : Number(last.epoch) + (last.status === 'closed' ? 1 : 0);
    const { epochMs } = rewardsConfig({ REWARDS_EPOCH_S: process.env.REWARDS_EPOCH_S });
    return new Date(Math.floor(Date.now() / 60_000) * 60_000 - next * epochMs).toISOString();
  } finally {
    client.close();
  }
}

function passThrough(names: string[]): Record<string, string> {
  return Object.fromEntries(names.filter((n) => process.env[n]).map((n) => [n, process.env[n]!]));
}

async function main(): Promise<void> {
  const dataDir = localDataDir();
  const port = portFromEnv('PORT', 8787);
  const libsqlPort = portFromEnv('LIBSQL_PORT', 8081);
  const stripePort = portFromEnv('MOCK_STRIPE_PORT', 12111);
  mkdirSync(dataDir, { recursive: true });

  // Check both ports before starting anything, so a clash leaves nothing half-started.
  await assertPortFree(HOST, port, 'PORT');
  await assertPortFree(HOST, libsqlPort, 'LIBSQL_PORT');
  await assertPortFree(HOST, stripePort, 'MOCK_STRIPE_PORT');

  const dbFile = join(dataDir, 'gridlease.db');
  await applyMigrations(`file:${dbFile}`);
  const secrets = await loadOrCreateSecrets(dataDir);
  const rewardsStart = await localRewardsStart(`file:${dbFile}`);
  const libsqlToken = process.env.LIBSQL_AUTH_TOKEN || undefined;

  let libsql: LibsqlServer | undefined;
  let stripe: MockStripe | undefined;
  let stopWorker: (() => Promise<void>) | undefined;
  let stopping = false;
  const stop = async (signal: string, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping…`);
    await stopWorker?.().catch((err: unknown) => console.error(`worker: ${String(err)}`));
    await stripe?.close().catch((err: unknown) => console.error(`mock stripe: ${String(err)}`));
    await libsql?.close().catch((err: unknown) => console.error(`libsql: ${String(err)}`));
    console.log('stopped');
    process.exit(exitCode);
  };
  const onSignal = (signal: NodeJS.Signals) => void stop(signal);
  const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const signal of SIGNALS) process.on(signal, onSignal);

  // On its own thread: see libsql-server/thread.ts.
  libsql = await startLibsqlServerThread({
    file: dbFile,
    host: HOST,
    port: libsqlPort,
    authToken: libsqlToken,
    log: (line) => console.error(JSON.stringify({ component: 'libsql', ...line })),
    // Without its database the platform cannot serve: stop everything and say why.
    onStopped: (reason) => {
      console.error(JSON.stringify({ component: 'launcher', level: 'error', msg: reason }));
      void stop('the libSQL server stopped', 1);
    },
  });

  const origin = `http://${HOST}:${port}`;
  stripe = await startMockStripe({
    host: HOST,
    port: stripePort,
    apiKey: LOCAL_STRIPE_KEY,
    webhookSecret: secrets.STRIPE_WEBHOOK_SECRET,
    webhookUrl: `${origin}/v1/webhooks/stripe`,
    log: (line) => console.log(JSON.stringify({ component: 'mock-stripe', ...line })),
  });

  const script = bundleWorker(join(ROOT, '.wrangler', 'local-build'));
  const { mf, url } = await startWorker({
    script,
    host: HOST,
    port,
    persistDir: dataDir,
    verbose: process.env.GRIDLEASE_VERBOSE === '1',
    ...(process.env.GRIDLEASE_INSPECTOR_PORT ? { inspectorPort: Number(process.env.GRIDLEASE_INSPECTOR_PORT) } : {}),
    libsqlAddress: new URL(libsql.url).host,
    bindings: {
      ENVIRONMENT: 'development',
      LIBSQL_URL: libsql.url,
      ...(libsqlToken ? { LIBSQL_AUTH_TOKEN: libsqlToken } : {}),
      JWT_ISSUER: origin,
      JWT_PRIVATE_KEYS: secrets.JWT_PRIVATE_KEYS,
      APP_URL: origin,
      STRIPE_SECRET_KEY: LOCAL_STRIPE_KEY,
      STRIPE_WEBHOOK_SECRET: secrets.STRIPE_WEBHOOK_SECRET,
      STRIPE_API_BASE: stripe.url,
      CHAIN_WEBHOOK_SECRETS: secrets.CHAIN_WEBHOOK_SECRETS,
      PUBLIC_URL: origin,
      QUEUE_TRANSPORT: 'local',
      QSTASH_CURRENT_SIGNING_KEY: secrets.QSTASH_CURRENT_SIGNING_KEY,
      QSTASH_NEXT_SIGNING_KEY: secrets.QSTASH_NEXT_SIGNING_KEY,
      CHAIN_NAME: LOCAL_CHAIN,
      USDC_DEPOSIT_ADDRESS: LOCAL_USDC_ADDRESS,
      GRID_DEPOSIT_ADDRESS: LOCAL_GRID_ADDRESS,
      // Small enough for the runner's CPU solver (n ≤ 1024), so machines without a GPU can answer:
      // challenges here are liveness-grade only (docs/inspections.md, "Platform challenges").
      CAPACITY_MAX_N: '256',
      // Inspectors decide within a minute or two here, rather than the production ten minutes each.
      INSPECTION_COMMIT_S: '60',
      INSPECTION_REVEAL_S: '60',
      // Tuning knobs passed through from the environment (tests, benchmarks, demos).
      ...passThrough(['LOG_REQUESTS', 'COLLECTOR_SHARDS', 'HEARTBEAT_INTERVAL_S', 'HEARTBEAT_MIN_INTERVAL_S', 'HEARTBEAT_FLUSH_S', 'NODE_GRACE_S', 'AUTH_RATE_LIMIT', 'AUTH_IP_RATE_LIMIT', 'LEASE_PROVISION_TIMEOUT_S', 'LEASE_SETTLE_S', 'PLATFORM_FEE_BPS', 'STREAM_IP_RATE_LIMIT', 'ORDER_MIN_VALUE', 'ORDER_MAX_OPEN', 'ORDER_RATE_LIMIT', 'WRITE_RATE_LIMIT', 'WRITE_IP_RATE_LIMIT', 'OFFERS_IP_RATE_LIMIT', 'REPORTS_IP_RATE_LIMIT', 'CAPACITY_MAX_N', 'CHALLENGE_ALLOWANCE_S', 'VERIFIED_TTL_S', 'VERIFY_WINDOW_S', 'RECHALLENGE_BEFORE_S', 'RECHALLENGE_PER_RUN', 'CHALLENGE_ON_JOIN', 'INSPECTOR_MIN_BOND', 'INSPECTOR_UNBOND_COOLDOWN_S', 'INSPECTION_N', 'INSPECTION_WEIGHT_CAP', 'INSPECTION_COMMIT_S', 'INSPECTION_REVEAL_S', 'INSPECTION_REWARD', 'INSPECTION_WRONG_SLASH', 'INSPECTION_MISS_SLASH', 'INSPECTION_DECOY_PPM', 'GRID_TOTAL_SUPPLY', ...REWARDS_VARS]),
      // Epochs numbered on from this platform's last one, the next starting this minute (or REWARDS_START as set).
      REWARDS_START: rewardsStart,
    },
  });
  // Cron triggers (wrangler.toml) are the platform's to fire; locally the launcher fires them,
  // each minute as deployed, or every GRIDLEASE_CRON_S seconds (tests that wait on the cron).
  const cronSeconds = Number(process.env.GRIDLEASE_CRON_S) > 0 ? Number(process.env.GRIDLEASE_CRON_S) : 60;
  const worker = await mf.getWorker('gridlease');
  const cron = setInterval(() => {
    worker.scheduled({ scheduledTime: new Date(), cron: '* * * * *' }).catch((err: unknown) => {
      if (!stopping) console.error(JSON.stringify({ component: 'launcher', level: 'error', msg: 'scheduled run failed', error: String(err) }));
    });
  }, cronSeconds * 1000);
  cron.unref();
  stopWorker = () => {
    clearInterval(cron);
    return mf.dispose();
  };
  // Miniflare installs signal handlers that kill workerd and exit at once (status 143);
  // ours stop workerd and the libSQL server in order and exit 0. Its exit hook stays as a
  // last resort that still kills workerd if this process dies some other way.
  for (const signal of SIGNALS) {
    for (const listener of process.listeners(signal)) if (listener !== onSignal) process.removeListener(signal, listener);
  }
  if (stopping) return;

  const api = url.origin;
  console.log(
    [
      '',
      'Gridlease is running',
      `  API        ${api}`,
      `  API docs   ${api}/docs`,
      `  health     ${api}/healthz`,
      `  libSQL     ${libsql.url}  (file ${dbFile})`,
      `  Stripe     ${stripe.url}  (a local MOCK of Stripe's API; card checkouts are paid on its page)`,
      `  data       ${dataDir}`,
      `  rewards    epochs of ${rewardsConfig({ REWARDS_EPOCH_S: process.env.REWARDS_EPOCH_S }).epochMs / 1000} s from ${rewardsStart} (GET /v1/rewards/schedule)`,
      '',
      'Press Ctrl-C to stop.',
    ].join('\n'),
  );
}

main().catch((err: unknown) => {
  console.error(`gridlease: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
