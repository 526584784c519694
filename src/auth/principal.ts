export const SIGNUP_ROLES = ['renter', 'provider'] as const;
/** Roles that will need a bond posted first: never granted at sign-up. */
export const BONDED_ROLES = ['inspector'] as const;
export const ROLES = [...SIGNUP_ROLES, ...BONDED_ROLES, 'admin'] as const;
export type Role = (typeof ROLES)[number];

/**
 * What a credential may do. An API key carries a subset; a password login gets all.
 * `read` scopes never allow a change.
 */
export const SCOPES = [
  'account:read',
  'account:write',
  'keys:read',
  'keys:write',
  'nodes:read',
  'nodes:write',
  'orders:read',
  'orders:write',
  'leases:read',
  'leases:write',
  'funds:read',
  'funds:write',
  'inspections:read',
  'inspections:write',
] as const;
export type Scope = (typeof SCOPES)[number];

/** The authenticated caller of a request. */
export interface Principal {
  accountId: string;
  roles: readonly Role[];
  scopes: ReadonlySet<Scope>;
  via: 'jwt' | 'api_key';
  /** The API key that authenticated the request, or that the JWT was exchanged for. */
  apiKeyId: string | null;
}

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}
