import { heartbeatConfig, positive } from '../heartbeats/config.ts';

export interface LeaseConfig {
  /** A lease the runner has not reported started by then fails, with nothing billed. */
  provisionTimeoutMs: number;
  /** Running without a confirming heartbeat for longer than this fails the lease. */
  graceMs: number;
  /** How often a running lease settles what has been confirmed so far. */
  settleEveryMs: number;
  /** The platform's fee on every settlement, in basis points. */
  feeBps: bigint;
}

export function leaseConfig(env: Parameters<typeof heartbeatConfig>[0] & {
  LEASE_PROVISION_TIMEOUT_S?: string;
  LEASE_SETTLE_S?: string;
  PLATFORM_FEE_BPS?: string;
}): LeaseConfig {
  const fee = env.PLATFORM_FEE_BPS ?? '500';
  if (!/^[0-9]{1,4}$/.test(fee) || Number(fee) >= 10_000) throw new Error(`PLATFORM_FEE_BPS must be 0–9999, got "${fee}"`);
  return {
    provisionTimeoutMs: positive(env.LEASE_PROVISION_TIMEOUT_S, 120) * 1000,
    graceMs: heartbeatConfig(env).graceMs,
    settleEveryMs: positive(env.LEASE_SETTLE_S, 60) * 1000,
    feeBps: BigInt(fee),
  };
}
