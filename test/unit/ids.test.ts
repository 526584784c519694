import { describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.ts';

describe('ids', () => {
  it('are prefixed, URL-safe and unique', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newId('acc')));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^acc_[0-9a-hjkmnp-tv-z]{20}$/);
  });
});
