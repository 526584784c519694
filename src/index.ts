// First: the libraries below take queueMicrotask when they load.
import './microtasks.ts';
import { cors } from 'hono/cors';
import type { AppEnv } from './app-env.ts';
import { connection, lazyDatabase } from './db/client.ts';
import { isWrite, limitIpWrites } from './auth/rate-limit.ts';
import { jsonBody } from './http/body.ts';
import { notFound, onError } from './http/error-handler.ts';
import { accessLog } from './http/access-log.ts';
import { requestId } from './http/request-id.ts';
import { router } from './http/router.ts';
import accounts from './routes/accounts.ts';
import admin from './routes/admin.ts';
import adminMoney from './routes/admin-money.ts';
import adminNodes from './routes/admin-nodes.ts';
import apiKeys from './routes/api-keys.ts';
import auth from './routes/auth.ts';
import balances from './routes/balances.ts';
import catalog from './routes/catalog.ts';
import deposits from './routes/deposits.ts';
import dev from './routes/dev.ts';
import { mountDocs } from './routes/docs.ts';
import health from './routes/health.ts';
import inspectors from './routes/inspectors.ts';
import home from './routes/home.ts';
import internal from './routes/internal.ts';
import market, { marketMemoryCache } from './routes/market.ts';
import marketStream from './routes/market-stream.ts';
import nodesRoutes from './routes/nodes.ts';
import nodeStakes from './routes/node-stakes.ts';
import offers from './routes/offers.ts';
import orders from './routes/orders.ts';
import leases from './routes/leases.ts';
import pages from './routes/pages.ts';
import quote from './routes/quote.ts';
import runner from './routes/runner.ts';
import runnerChallenges from './routes/runner-challenges.ts';
import webhookEndpoints from './routes/webhook-endpoints.ts';
import webhooks from './routes/webhooks.ts';
import withdrawals from './routes/withdrawals.ts';
import wellKnown from './routes/well-known.ts';
import widget from './routes/widget.ts';
import challengeReports from './routes/challenge-reports.ts';
import inspectionRoutes from './routes/inspections.ts';
import rewardsRoutes from './routes/rewards.ts';
import leaseLogs from './routes/lease-logs.ts';
import leaseMetrics from './routes/lease-metrics.ts';
import type { MiddlewareHandler } from 'hono';
import type { Bindings } from './env.ts';
import { sweepUnplacedOrders } from './market/sweep.ts';
import { runChallengeCron } from './inspections/cron.ts';
import { releaseMaturedUnbondings } from './inspections/bonds.ts';
import { releaseMaturedUnstakes } from './rewards/stakes.ts';
import { runInspectionCron } from './inspections/inspections.ts';
import { closeDueEpochs } from './rewards/close.ts';

export { Collector } from './durable/collector.ts';
export { Lease } from './durable/lease.ts';
export { RateLimiter } from './durable/rate-limiter.ts';
export { RegionBook } from './durable/region-book.ts';

const app = router();

const ipLimitExempt = (path: string) =>
  path.startsWith('/internal/') || path.startsWith('/v1/webhooks/') || (path.startsWith('/v1/runner/') && path !== '/v1/runner/register');

// Public, read-only routes may be called from any web page; private ones send no CORS headers.
const publicCors = cors({ origin: '*', allowMethods: ['GET', 'HEAD', 'OPTIONS'], maxAge: 86_400 });
for (const path of ['/healthz', '/livez', '/openapi.json', '/.well-known/*', '/v1/quote', '/v1/catalog/*', '/v1/market/*', '/v1/offers', '/widget.js', '/widget/*', '/embed/*']) app.use(path, publicCors);

const database: MiddlewareHandler<AppEnv> = async function database(c, next) {
  c.set('db', lazyDatabase(c.env));
  await next();
};

app.use(requestId(), accessLog());
// Every write counts against its client IP before anything else is done for it, except those
// whose senders we know by signature (queue callbacks, payment notifications) and a node's
// own routes, which are limited per node (a provider's whole fleet may share one address).
app.use(async function limitWritesPerIp(c, next) {
  if (isWrite(c.req.method) && !ipLimitExempt(c.req.path)) await limitIpWrites(c);
  await next();
});
// A market read this isolate answered less than max-age ago needs neither a body nor a database.
app.use('/v1/market/*', marketMemoryCache());
app.use(jsonBody(), database);

app.route('/', home);
app.route('/', health);
app.route('/.well-known', wellKnown);
app.route('/v1/accounts', accounts);
app.route('/v1/auth', auth);
app.route('/v1/api-keys', apiKeys);
app.route('/v1/admin', admin);
app.route('/v1', balances);
app.route('/v1/deposits', deposits);
app.route('/v1/withdrawals', withdrawals);
app.route('/v1/quote', quote);
app.route('/v1/webhooks', webhooks);
app.route('/v1/webhook-endpoints', webhookEndpoints);
app.route('/v1/admin', adminMoney);
app.route('/v1/admin', adminNodes);
app.route('/v1/catalog', catalog);
app.route('/v1/nodes', nodesRoutes);
app.route('/v1/nodes', nodeStakes);
app.route('/v1/inspectors', inspectors);
app.route('/v1', challengeReports);
app.route('/v1', inspectionRoutes);
app.route('/v1', rewardsRoutes);
app.route('/v1/runner/challenges', runnerChallenges);
app.route('/v1/runner', runner);
app.route('/v1/orders', orders);
app.route('/v1/leases', leaseLogs);
app.route('/v1/leases', leaseMetrics);
app.route('/v1/leases', leases);
app.route('/v1/offers', offers);
// Before the market sub-app, whose edge cache must not see WebSocket upgrades.
app.route('/v1/market/stream', marketStream);
app.route('/v1/market', market);
app.route('/internal', internal);
// Test money exists only on a development server; elsewhere the route is simply absent (404).
app.use('/v1/dev/*', async (c, next) => {
  if (c.env.ENVIRONMENT !== 'development') return notFound(c);
  await next();
});
app.route('/v1/dev', dev);
app.route('/', pages);
app.route('/', widget);
mountDocs(app);

app.notFound(notFound);
app.onError(onError);

/** Each minute (wrangler.toml `[triggers]`; `npm start` runs it itself): orders stranded half-way. */
async function scheduled(controller: ScheduledController, env: Bindings): Promise<void> {
  await sweepUnplacedOrders(env, controller.scheduledTime);
  await runChallengeCron(env, controller.scheduledTime);
  await releaseMaturedUnbondings(connection(env).money, controller.scheduledTime);
  await releaseMaturedUnstakes(connection(env).money, controller.scheduledTime);
  await runInspectionCron(env, controller.scheduledTime);
  await closeDueEpochs(env, controller.scheduledTime);
}

export default { fetch: app.fetch, scheduled } satisfies ExportedHandler<Bindings>;
