import { OpenAPIHono, type Hook } from '@hono/zod-openapi';
import type { ZodType } from 'zod';
import type { AppEnv } from '../app-env.ts';
import { ApiError } from './errors.ts';

type Issue = { path: PropertyKey[]; message: string; code?: string; keys?: string[] };

/** Turns zod issues into one readable sentence plus a machine-readable list. */
export function validationError(issues: readonly Issue[], where: string): ApiError {
  const details = issues.map((i) => ({
    path: i.path.map(String).join('.') || where,
    message: i.code === 'unrecognized_keys' && i.keys ? `unknown field(s): ${i.keys.join(', ')}` : i.message,
  }));
  const first = details[0];
  const message = first ? `invalid ${where}: ${first.path === where ? '' : `${first.path}: `}${first.message}` : `invalid ${where}`;
  return new ApiError('validation_failed', message, { details });
}

const hook: Hook<unknown, AppEnv, string, unknown> = (result) => {
  if (!result.success) {
    const where = result.target === 'json' ? 'body' : result.target;
    throw validationError(result.error.issues as unknown as Issue[], where);
  }
};

/** Every resource's sub-app: OpenAPI-described routes whose validation errors use our shape. */
export function router() {
  return new OpenAPIHono<AppEnv>({ defaultHook: hook });
}

/**
 * Validates a raw body that had to be read as text first (signed callbacks verify the exact
 * bytes before anything is parsed), with the same errors as the route validators.
 */
export function parseRawJson<T>(raw: string, schema: ZodType<T>): T {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new ApiError('invalid_json', 'request body is not valid JSON');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw validationError(parsed.error.issues as unknown as Issue[], 'body');
  return parsed.data;
}
