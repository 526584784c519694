// sdk/src/schema.d.ts is what openapi-typescript makes of sdk/openapi.json: neither was edited by
// hand, nor one regenerated without the other. (test/worker/sdk-schema.test.ts checks the
// document against the live API.)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DOCUMENT, TYPES, generateTypes } from '../../../sdk/types.ts';

describe('the SDK’s generated types', () => {
  it('are those of the committed OpenAPI document', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gridlease-sdk-types-'));
    try {
      const fresh = join(dir, 'schema.d.ts');
      generateTypes(DOCUMENT, fresh);
      const same = readFileSync(fresh, 'utf8') === readFileSync(TYPES, 'utf8');
      expect(same, 'sdk/src/schema.d.ts does not match sdk/openapi.json: run `npm run build:sdk`').toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
