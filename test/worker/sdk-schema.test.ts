// The SDK's types are generated from /openapi.json (`npm run build:sdk` writes sdk/openapi.json and
// sdk/src/schema.d.ts); this fails when a route changed and the SDK was not regenerated.
import { describe, expect, it } from 'vitest';
import committed from '../../sdk/openapi.json';
import { call } from './support.ts';

describe('the SDK’s OpenAPI document', () => {
  it('is the one the API serves now (ignoring servers, which name the origin)', async () => {
    const res = await call('/openapi.json');
    expect(res.status).toBe(200);
    const { servers: _servers, ...live } = (await res.json()) as Record<string, unknown>;
    // JSON round trips on both sides: key order and undefined members do not count.
    const normalize = (doc: unknown) => JSON.parse(JSON.stringify(doc)) as unknown;
    const stale = Object.keys((live.paths ?? {}) as object).filter((p) => !Object.hasOwn((committed as { paths: object }).paths, p));
    expect(
      normalize(committed),
      `sdk/openapi.json is stale${stale.length ? ` (missing ${stale.join(', ')})` : ''}: run \`npm run build:sdk\` and commit sdk/openapi.json and sdk/src/schema.d.ts`,
    ).toStrictEqual(normalize(live));
  });
});
