// The rules' parameters as published: by GET /v1/rewards/schedule (today's), and with every closed
// epoch (the ones its split used, kept in reward_epochs.params), so an epoch recomputes under its
// own parameters even after the configuration changes. Pure: `gridlease-runner verify-epoch`
// reads the same shape back.
import { formatAmount } from '../money/amount.ts';
import type { RewardsConfig } from './config.ts';

export interface RewardsParams {
  start: string;
  epoch_s: number;
  initial_per_epoch: string;
  retention: string;
  allocation: string;
  min_uptime_ppm: number;
  lease_bonus_ppm: number;
  stake_bonus_ppm: number;
  stake_per_gpu: string;
  taper_floor_ppm: number;
  taper_full_util_ppm: number;
  owner_cap_ppm: number;
  immediate_ppm: number;
  vesting_s: number;
}

export function rewardsParams(config: RewardsConfig): RewardsParams {
  return {
    start: new Date(config.startMs).toISOString(),
    epoch_s: config.epochMs / 1000,
    initial_per_epoch: formatAmount(config.initialPerEpoch),
    retention: config.retention.toString(),
    allocation: formatAmount(config.allocation),
    min_uptime_ppm: config.minUptimePpm,
    lease_bonus_ppm: config.leaseBonusPpm,
    stake_bonus_ppm: config.stakeBonusPpm,
    stake_per_gpu: formatAmount(config.stakePerGpu),
    taper_floor_ppm: config.taperFloorPpm,
    taper_full_util_ppm: config.taperFullUtilPpm,
    owner_cap_ppm: config.ownerCapPpm,
    immediate_ppm: config.immediatePpm,
    vesting_s: config.vestingMs / 1000,
  };
}
