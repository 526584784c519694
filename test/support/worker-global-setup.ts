// Starts what the Worker under test talks to, outside workerd: a local libSQL server
// over a fresh, migrated database file (its URL reaches the Worker as LIBSQL_URL), the mock
// Stripe API, and a sink that plays renters' webhook endpoints.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startLibsqlServer } from '../../local/libsql-server.ts';
import { applyMigrations } from '../../local/migrate.ts';
import { generateSigningJwk } from '../../local/secrets.ts';
import { startMockStripe } from '../../local/mock-stripe.ts';
import { startWebhookSink } from './webhook-sink.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    libsqlUrl: string;
    jwtPrivateKeys: string;
    stripeApiBase: string;
    webhookSinkUrl: string;
  }
}

export const STRIPE_TEST_KEY = 'sk_test_gridlease';
export const STRIPE_TEST_WEBHOOK_SECRET = 'whsec_gridlease_test';

export default async function setup(project: TestProject) {
  const dir = mkdtempSync(join(tmpdir(), 'gridlease-test-'));
  const file = join(dir, 'test.db');
  await applyMigrations(`file:${file}`);
  const server = await startLibsqlServer({ file, port: 0 });
  // Two keys: the first signs, the second is a rotated-out key whose tokens must still verify.
  const keys = [await generateSigningJwk('test-current'), await generateSigningJwk('test-previous')];
  // The Worker under test has no network address here, so the mock's webhooks are not
  // delivered; tests sign events themselves with the Stripe SDK's test-header generator.
  const stripe = await startMockStripe({ port: 0, apiKey: STRIPE_TEST_KEY, webhookSecret: STRIPE_TEST_WEBHOOK_SECRET });
  project.provide('stripeApiBase', stripe.url);
  const sink = await startWebhookSink();
  project.provide('webhookSinkUrl', sink.url);
  project.provide('libsqlUrl', server.url);
  project.provide('jwtPrivateKeys', JSON.stringify(keys));
  return async () => {
    await sink.close();
    await stripe.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  };
}
