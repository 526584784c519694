import { describe, expect, it } from 'vitest';
import { ApiError, ERROR_CODES, STATUS_BY_CODE } from '../../src/http/errors.ts';

describe('error codes', () => {
  it('map every code to exactly one HTTP error status', () => {
    expect(Object.keys(STATUS_BY_CODE).sort()).toEqual([...ERROR_CODES].sort());
    for (const code of ERROR_CODES) {
      const status = STATUS_BY_CODE[code];
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(600);
    }
  });

  it('use 5xx only for failures that are ours', () => {
    const serverSide = ERROR_CODES.filter((c) => STATUS_BY_CODE[c] >= 500);
    expect(serverSide.sort()).toEqual(['internal', 'service_unavailable']);
  });

  it('render one wire shape', () => {
    const err = new ApiError('conflict', 'already exists', { details: [{ path: 'email' }] });
    expect(err.status).toBe(409);
    expect(err.toBody('req_1')).toEqual({
      error: { code: 'conflict', message: 'already exists', request_id: 'req_1', details: [{ path: 'email' }] },
    });
    expect(new ApiError('not_found', 'gone').toBody('req_2')).toEqual({ error: { code: 'not_found', message: 'gone', request_id: 'req_2' } });
  });
});
