export const ASSETS = ['USD', 'USDC', 'GRID'] as const;
export type Asset = (typeof ASSETS)[number];

export function isAsset(value: string): value is Asset {
  return (ASSETS as readonly string[]).includes(value);
}
