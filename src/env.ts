/**
 * Secrets are not in wrangler.toml, so `wrangler types` cannot see them.
 * Set them with `wrangler secret put NAME`; `npm start` generates local ones.
 */
export interface Secrets {
  /** JSON array of private JWKs (ES256, each with a `kid`); the first one signs. */
  JWT_PRIVATE_KEYS: string;
  LIBSQL_AUTH_TOKEN?: string;
  /** Stripe secret key (sk_…); card deposits are refused while it is unset. */
  STRIPE_SECRET_KEY?: string;
  /** Signing secret of the Stripe webhook endpoint (whsec_…). */
  STRIPE_WEBHOOK_SECRET?: string;
  /** Comma-separated HMAC secrets of the chain watcher, newest first (two during a rotation). */
  CHAIN_WEBHOOK_SECRETS?: string;
  /** QStash publishing token (QUEUE_TRANSPORT=qstash). */
  QSTASH_TOKEN?: string;
  /** QStash signing keys; the local transport signs with the current one. */
  QSTASH_CURRENT_SIGNING_KEY?: string;
  QSTASH_NEXT_SIGNING_KEY?: string;
}

/** Bindings only the local platform sets (local/worker.ts); never in wrangler.toml. */
export interface LocalBindings {
  /**
   * The local libSQL server as a workerd external service: its HTTP calls go straight to the
   * socket, as a deployed Worker's fetch does, instead of through the local runtime's outbound
   * JS hop. Unset when deployed: libSQL is then reached with the global fetch.
   */
  LIBSQL_HTTP?: Fetcher;
}

export type Bindings = Env & Secrets & LocalBindings;
