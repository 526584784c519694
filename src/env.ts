/**
 * Secrets are not in wrangler.toml, so `wrangler types` cannot see them.
 * Set them with `wrangler secret put NAME`; `npm start` generates local ones.
 */
export interface Secrets {
  /** JSON array of private JWKs (ES256, each with a `kid`); the first one signs. */
  JWT_PRIVATE_KEYS: string;
  LIBSQL_AUTH_TOKEN?: string;
}

export type Bindings = Env & Secrets;
