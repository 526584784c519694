import type { Bindings } from './env';
import type { Principal } from './auth/principal';
import type { Database } from './db/client';

/** Hono's environment for every sub-app: bindings plus per-request variables. */
export interface AppEnv {
  Bindings: Bindings;
  Variables: {
    requestId: string;
    principal: Principal;
    db: Database;
  };
}
