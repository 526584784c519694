import { z } from '@hono/zod-openapi';
import { ERROR_CODES } from '../http/errors.ts';

export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES),
      message: z.string(),
      request_id: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .openapi('Error');

/** The error responses every private route can give, for the OpenAPI document. */
export function errorResponses(...statuses: number[]) {
  const descriptions: Record<number, string> = {
    400: 'Invalid request',
    401: 'Missing or invalid credentials',
    402: 'Insufficient funds',
    403: 'Credential lacks the role or scope',
    404: 'Not found',
    409: 'Conflict',
    413: 'Body too large',
    415: 'Body is not JSON',
    426: 'Not a WebSocket upgrade',
    429: 'Rate limited',
  };
  return Object.fromEntries(
    statuses.map((s) => [s, { description: descriptions[s] ?? 'Error', content: { 'application/json': { schema: ErrorBodySchema } } }]),
  );
}

export const BEARER = [{ bearer: [] }];

export function jsonContent<T>(schema: T, description: string) {
  return { description, content: { 'application/json': { schema } } };
}

export function jsonBodyOf<T>(schema: T) {
  return { required: true, content: { 'application/json': { schema } } };
}
