export interface Region {
  id: string;
  name: string;
}

export const REGIONS: readonly Region[] = [
  { id: 'us-east', name: 'US East' },
  { id: 'us-west', name: 'US West' },
  { id: 'eu-central', name: 'EU Central' },
  { id: 'eu-west', name: 'EU West' },
  { id: 'ap-southeast', name: 'Asia Pacific Southeast' },
];

export const REGION_IDS = REGIONS.map((r) => r.id);

export function isRegion(id: string): boolean {
  return REGION_IDS.includes(id);
}
