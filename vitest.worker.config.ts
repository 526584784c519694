import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

// Supply-rewards epoch 0 starts at this run's minute, so that whatever other files do in real
// time falls in epochs 0 and 1, and test/worker/rewards.test.ts owns the hour-long epochs after.
const REWARDS_START = new Date(Math.floor(Date.now() / 60_000) * 60_000).toISOString();

// Route and Durable Object tests, run inside workerd with the Worker from wrangler.toml.
export default defineConfig({
  plugins: [
    cloudflareTest(({ inject }) => ({
      wrangler: { configPath: './wrangler.toml' },
      miniflare: {
        bindings: {
          ENVIRONMENT: 'test',
          LIBSQL_URL: inject('libsqlUrl'),
          JWT_PRIVATE_KEYS: inject('jwtPrivateKeys'),
          JWT_ISSUER: 'https://api.gridlease.test',
          LOG_REQUESTS: 'false',
          // Every test request comes from one address; the per-IP limit is tested on its own.
          AUTH_IP_RATE_LIMIT: '100000/60',
          STREAM_IP_RATE_LIMIT: '5/60',
          // Many tests trade from one account, and every search comes from one address; the
          // limits are tested against these values (test/worker/order-limits.test.ts).
          ORDER_MAX_OPEN: '1000',
          ORDER_RATE_LIMIT: '1000/60',
          WRITE_RATE_LIMIT: '100000/60',
          WRITE_IP_RATE_LIMIT: '1000000/60',
          OFFERS_IP_RATE_LIMIT: '1000/60',
          REPORTS_IP_RATE_LIMIT: '1000/60',
          CHAIN_WEBHOOK_SECRETS: 'chain-secret-current,chain-secret-previous',
          USDC_DEPOSIT_ADDRESS: '0x1111111111111111111111111111111111111111',
          GRID_DEPOSIT_ADDRESS: '0x2222222222222222222222222222222222222222',
          CHAIN_NAME: 'base',
          STRIPE_SECRET_KEY: 'sk_test_gridlease',
          STRIPE_WEBHOOK_SECRET: 'whsec_gridlease_test',
          STRIPE_API_BASE: inject('stripeApiBase'),
          APP_URL: 'https://app.gridlease.test',
          PUBLIC_URL: 'https://api.gridlease.test',
          QUEUE_TRANSPORT: 'local',
          QSTASH_CURRENT_SIGNING_KEY: 'sig_test_current_0123456789',
          QSTASH_NEXT_SIGNING_KEY: 'sig_test_next_9876543210',
          HEARTBEAT_MIN_INTERVAL_S: '0.05',
          CHAIN_CONFIRMATIONS: '12',
          // Capacity challenges small enough to solve in the test (liveness-grade), and none sent
          // at registration: other files assert exact mailboxes (challenges.test.ts turns it on).
          CAPACITY_MAX_N: '64',
          CHALLENGE_ON_JOIN: 'false',
          // Long deadlines: other files run the cron at times a minute or more ahead.
          CHALLENGE_ALLOWANCE_S: '600',
          // The challenge cron's tests were written for re-challenges a day before verification ends.
          RECHALLENGE_BEFORE_S: '86400',
          // Decoys only where a test plants them.
          INSPECTION_DECOY_PPM: '0',
          // Supply rewards (test/worker/rewards.test.ts closes epochs with closeDueEpochs at chosen
          // times): hour-long epochs from the start of the run; no owner cap, so that payments
          // are in proportion to weight; two days of vesting; small chunks.
          REWARDS_START,
          REWARDS_EPOCH_S: '3600',
          REWARDS_OWNER_CAP_PPM: '1000000',
          REWARDS_VESTING_S: '172800',
          REWARDS_CLOSE_CHUNK: '50',
        },
      },
    })),
  ],
  test: {
    include: ['test/worker/**/*.test.ts'],
    globalSetup: ['test/support/worker-global-setup.ts'],
    testTimeout: 20_000,
  },
});
