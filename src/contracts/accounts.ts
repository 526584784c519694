import { z } from '@hono/zod-openapi';
import { BONDED_ROLES, ROLES, SCOPES, SIGNUP_ROLES } from '../auth/principal.ts';
import { PASSWORD_MAX } from '../auth/password.ts';

export const Email = z
  .string()
  .trim()
  .max(254)
  .email()
  .transform((e) => e.normalize('NFKC').toLowerCase())
  .openapi({ example: 'ada@example.com' });

export const CreateAccountBody = z
  .object({
    email: Email,
    password: z.string().max(PASSWORD_MAX * 4).openapi({ example: 'correct horse battery staple' }),
    // A bonded role is named in the enum so that asking for it gets its own reason.
    roles: z
      .array(z.enum([...SIGNUP_ROLES, ...BONDED_ROLES]))
      .min(1)
      .max(SIGNUP_ROLES.length)
      .refine((roles) => !roles.some((r) => (BONDED_ROLES as readonly string[]).includes(r)), {
        message: `${BONDED_ROLES.join(', ')} cannot be taken at sign-up: it needs a bond; choose from ${SIGNUP_ROLES.join(', ')}`,
      })
      .openapi({ example: ['renter'], description: `Any of ${SIGNUP_ROLES.join(', ')}` }),
  })
  .strict()
  .openapi('CreateAccount');

export const AccountSchema = z
  .object({
    id: z.string(),
    email: z.string(),
    roles: z.array(z.enum(ROLES)),
    status: z.enum(['active', 'suspended']),
    created_at: z.string(),
  })
  .openapi('Account');

export const ApiKeySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    prefix: z.string(),
    scopes: z.array(z.enum(SCOPES)),
    created_at: z.string(),
    last_used_at: z.string().nullable(),
    expires_at: z.string().nullable(),
    revoked_at: z.string().nullable(),
  })
  .openapi('ApiKey');

export const NewApiKeySchema = ApiKeySchema.extend({
  key: z.string().openapi({ description: 'The secret key. Shown only in this response.' }),
}).openapi('NewApiKey');

export const CreateApiKeyBody = z
  .object({
    name: z.string().trim().min(1).max(100),
    scopes: z.array(z.enum(SCOPES)).min(1).optional().openapi({ description: 'Defaults to every scope the caller has.' }),
    expires_in_days: z.number().int().min(1).max(3650).optional(),
  })
  .strict()
  .openapi('CreateApiKey');

export const TokenBody = z
  .discriminatedUnion('grant_type', [
    z.object({ grant_type: z.literal('password'), email: Email, password: z.string().max(PASSWORD_MAX * 4) }).strict(),
    z.object({ grant_type: z.literal('api_key'), api_key: z.string().max(200) }).strict(),
  ])
  .openapi('TokenRequest');

export const TokenSchema = z
  .object({
    access_token: z.string(),
    token_type: z.literal('Bearer'),
    expires_in: z.number().int(),
    scope: z.string(),
  })
  .openapi('AccessToken');
