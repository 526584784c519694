// Tells the API how renters reach this machine's workloads (PUT /v1/runner/public-host), once per
// start. Without a public host the API shows renters no endpoints, so `start` says which
// addresses this machine has when none is set.
import os from 'node:os';
import { ApiError, type ApiClient } from './api.ts';
import { Backoff } from './backoff.ts';
import { EXIT, RunnerError, describeError } from './errors.ts';
import type { Logger } from './log.ts';
import { sleep } from './time.ts';

/** This machine's non-loopback addresses, for the hint printed when --public-host is unset. */
export function localAddresses(interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces()): string[] {
  const found: string[] = [];
  for (const list of Object.values(interfaces)) {
    for (const info of list ?? []) if (!info.internal && !found.includes(info.address)) found.push(info.address);
  }
  return found;
}

export function publicHostHint(addresses: readonly string[]): string {
  const seen = addresses.length > 0 ? `this machine's addresses: ${addresses.join(', ')}` : 'no non-loopback address found';
  return `no --public-host (GRIDLEASE_PUBLIC_HOST) set: renters will see no endpoints for this node's workloads until it is (${seen}; behind NAT use the router's public address)`;
}

/**
 * Sends the public host (null: none) until the API takes it. Network errors, 429 and 5xx are
 * retried with back-off; 400 is a usage error (exit 2) and 401 a refused token (exit 3), both
 * thrown; a 404 (an API without endpoints) is logged and given up.
 */
export async function publishPublicHost(
  api: Pick<ApiClient, 'publicHost'>,
  publicHost: string | null,
  log: Logger,
  signal: AbortSignal,
  backoff: Backoff = new Backoff({ baseMs: 1_000, maxMs: 60_000 }),
): Promise<void> {
  let warned = false;
  while (!signal.aborted) {
    try {
      await api.publicHost({ public_host: publicHost }, signal);
      if (publicHost !== null) log.info(`public host ${publicHost} registered: renters reach this node's workload ports there`);
      return;
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof ApiError && err.status === 400) throw new RunnerError(`the API refused --public-host ${JSON.stringify(publicHost)}: ${err.message}`, EXIT.usage);
      if (err instanceof ApiError && err.status === 401) throw new RunnerError(`the API refused this node's token (${err.message}): run \`gridlease-runner join\` to register it again`, EXIT.revoked);
      if (err instanceof ApiError && err.status === 404) {
        log.warn(`the API does not take a public host (404: ${err.message}); renters will see no endpoints`);
        return;
      }
      const retryable = !(err instanceof ApiError) || err.status === 429 || err.status >= 500;
      if (!retryable) {
        log.error(`the API refused the public host (${describeError(err)}); renters will see no endpoints`);
        return;
      }
      if (!warned) log.warn(`public host not sent yet (${describeError(err)}); retrying with back-off`);
      warned = true;
      const retryAfter = err instanceof ApiError ? (err.retryAfterMs ?? 0) : 0;
      await sleep(Math.max(retryAfter, backoff.next()), signal);
    }
  }
}
