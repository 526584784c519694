// Fixed settings of the local platform, shared by the launcher and the dev tools.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const HOST = '127.0.0.1';
export const LOCAL_STRIPE_KEY = 'sk_test_gridlease_local';
export const LOCAL_CHAIN = 'base';
export const LOCAL_USDC_ADDRESS = '0x5553444300000000000000000000000000000001';
export const LOCAL_GRID_ADDRESS = '0x4752494400000000000000000000000000000001';

export function dataDir(): string {
  return resolve(ROOT, process.env.GRIDLEASE_DATA_DIR ?? '.data');
}
