// Hrana-over-HTTP (v2, JSON) message shapes: validation of request bodies and
// encoding of values, as sent and expected by @libsql/hrana-client (lib-esm/shared/
// json_encode.js and json_decode.js). Integers travel as decimal strings (full 64-bit),
// blobs as base64 (the client sends it padded and accepts padded or not).

/** A value bound to or read from SQLite, as the libsql driver takes/returns it. */
export type SqlValue = null | bigint | number | string | Uint8Array;

export type JsonValue =
  | { type: 'null' }
  | { type: 'integer'; value: string }
  | { type: 'float'; value: number }
  | { type: 'text'; value: string }
  | { type: 'blob'; base64: string };

export interface Stmt {
  sql: string | undefined;
  sqlId: number | undefined;
  args: SqlValue[];
  namedArgs: { name: string; value: SqlValue }[];
  wantRows: boolean;
}

export type BatchCond =
  | { type: 'ok' | 'error'; step: number }
  | { type: 'not'; cond: BatchCond }
  | { type: 'and' | 'or'; conds: BatchCond[] }
  | { type: 'is_autocommit' };

export interface BatchStep {
  stmt: Stmt;
  condition: BatchCond | undefined;
}

export type StreamRequest =
  | { type: 'close' | 'get_autocommit' }
  | { type: 'execute'; stmt: Stmt }
  | { type: 'batch'; steps: BatchStep[] }
  | { type: 'sequence' | 'describe'; sql: string | undefined; sqlId: number | undefined }
  | { type: 'store_sql'; sqlId: number; sql: string }
  | { type: 'close_sql'; sqlId: number };

export interface PipelineRequest {
  baton: string | null;
  requests: StreamRequest[];
}

export interface ErrorJson {
  message: string;
  code: string;
}

export interface StmtResultJson {
  cols: { name: string; decltype: string | null }[];
  rows: JsonValue[][];
  affected_row_count: number;
  last_insert_rowid: string | null;
  rows_read: number;
  rows_written: number;
  query_duration_ms: number;
}

/** An error with a Hrana error code. `status` is used when it fails a whole HTTP request. */
export class HranaError extends Error {
  readonly code: string;
  readonly status: number;
  constructor(code: string, message: string, status = 400) {
    super(message);
    this.code = code;
    this.status = status;
  }
  toJSON(): ErrorJson {
    return { message: this.message, code: this.code };
  }
}

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const MAX_COND_DEPTH = 100;

function bad(path: string, what: string): never {
  throw new HranaError('PROTOCOL_ERROR', `Invalid request: ${path} ${what}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function object(v: unknown, path: string): Record<string, unknown> {
  if (!isObject(v)) bad(path, 'must be an object');
  return v;
}

function array(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) bad(path, 'must be an array');
  return v;
}

function optArray(v: unknown, path: string): unknown[] {
  return v === undefined || v === null ? [] : array(v, path);
}

function string(v: unknown, path: string): string {
  if (typeof v !== 'string') bad(path, 'must be a string');
  return v;
}

function optString(v: unknown, path: string): string | undefined {
  return v === undefined || v === null ? undefined : string(v, path);
}

function int32(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) bad(path, 'must be a 32-bit integer');
  return v;
}

function optInt32(v: unknown, path: string): number | undefined {
  return v === undefined || v === null ? undefined : int32(v, path);
}

export function parseValue(v: unknown, path: string): SqlValue {
  const o = object(v, path);
  switch (o.type) {
    case 'null':
      return null;
    case 'integer': {
      let n: bigint;
      if (typeof o.value === 'string' && /^-?[0-9]{1,20}$/.test(o.value)) n = BigInt(o.value);
      else if (typeof o.value === 'number' && Number.isSafeInteger(o.value)) n = BigInt(o.value);
      else bad(`${path}.value`, 'must be a decimal integer string');
      if (n < I64_MIN || n > I64_MAX) bad(`${path}.value`, 'is out of the 64-bit integer range');
      return n;
    }
    case 'float':
      if (typeof o.value !== 'number') bad(`${path}.value`, 'must be a number');
      return o.value;
    case 'text':
      return string(o.value, `${path}.value`);
    case 'blob': {
      const b64 = string(o.base64, `${path}.base64`);
      if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(b64)) bad(`${path}.base64`, 'must be base64');
      return new Uint8Array(Buffer.from(b64, 'base64'));
    }
    default:
      return bad(`${path}.type`, `has unknown value type ${JSON.stringify(o.type)}`);
  }
}

function parseStmt(v: unknown, path: string): Stmt {
  const o = object(v, path);
  const args = optArray(o.args, `${path}.args`).map((a, i) => parseValue(a, `${path}.args[${i}]`));
  const namedArgs = optArray(o.named_args, `${path}.named_args`).map((a, i) => {
    const p = `${path}.named_args[${i}]`;
    const arg = object(a, p);
    return { name: string(arg.name, `${p}.name`), value: parseValue(arg.value, `${p}.value`) };
  });
  if (o.want_rows !== undefined && o.want_rows !== null && typeof o.want_rows !== 'boolean') bad(`${path}.want_rows`, 'must be a boolean');
  return {
    sql: optString(o.sql, `${path}.sql`),
    sqlId: optInt32(o.sql_id, `${path}.sql_id`),
    args,
    namedArgs,
    wantRows: o.want_rows !== false,
  };
}

function parseCond(v: unknown, path: string, depth: number): BatchCond {
  if (depth > MAX_COND_DEPTH) bad(path, 'is nested too deeply');
  const o = object(v, path);
  switch (o.type) {
    case 'ok':
    case 'error': {
      const step = o.step;
      if (typeof step !== 'number' || !Number.isInteger(step) || step < 0) bad(`${path}.step`, 'must be a step index');
      return { type: o.type, step };
    }
    case 'not':
      return { type: 'not', cond: parseCond(o.cond, `${path}.cond`, depth + 1) };
    case 'and':
    case 'or':
      return { type: o.type, conds: array(o.conds, `${path}.conds`).map((c, i) => parseCond(c, `${path}.conds[${i}]`, depth + 1)) };
    case 'is_autocommit':
      return { type: 'is_autocommit' };
    default:
      return bad(`${path}.type`, `has unknown condition type ${JSON.stringify(o.type)}`);
  }
}

function parseRequest(v: unknown, path: string): StreamRequest {
  const o = object(v, path);
  switch (o.type) {
    case 'close':
    case 'get_autocommit':
      return { type: o.type };
    case 'execute':
      return { type: 'execute', stmt: parseStmt(o.stmt, `${path}.stmt`) };
    case 'batch': {
      const batch = object(o.batch, `${path}.batch`);
      const steps = array(batch.steps, `${path}.batch.steps`).map((s, i) => {
        const p = `${path}.batch.steps[${i}]`;
        const step = object(s, p);
        const condition = step.condition === undefined || step.condition === null ? undefined : parseCond(step.condition, `${p}.condition`, 0);
        return { stmt: parseStmt(step.stmt, `${p}.stmt`), condition };
      });
      return { type: 'batch', steps };
    }
    case 'sequence':
    case 'describe':
      return { type: o.type, sql: optString(o.sql, `${path}.sql`), sqlId: optInt32(o.sql_id, `${path}.sql_id`) };
    case 'store_sql':
      return { type: 'store_sql', sqlId: int32(o.sql_id, `${path}.sql_id`), sql: string(o.sql, `${path}.sql`) };
    case 'close_sql':
      return { type: 'close_sql', sqlId: int32(o.sql_id, `${path}.sql_id`) };
    default:
      return bad(`${path}.type`, `has unknown request type ${JSON.stringify(o.type)}`);
  }
}

/** Validates a parsed JSON pipeline body; throws HranaError (HTTP 400) on a bad shape. */
export function parsePipelineRequest(body: unknown): PipelineRequest {
  const o = object(body, 'body');
  const baton = o.baton === undefined || o.baton === null ? null : string(o.baton, 'baton');
  const requests = array(o.requests, 'requests').map((r, i) => parseRequest(r, `requests[${i}]`));
  return { baton, requests };
}

export function encodeValue(v: unknown): JsonValue {
  if (v === null || v === undefined) return { type: 'null' };
  if (typeof v === 'bigint') return { type: 'integer', value: v.toString() };
  if (typeof v === 'number') return { type: 'float', value: v };
  if (typeof v === 'string') return { type: 'text', value: v };
  if (v instanceof Uint8Array) return { type: 'blob', base64: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  if (v instanceof ArrayBuffer) return { type: 'blob', base64: Buffer.from(v).toString('base64') };
  throw new HranaError('INTERNAL_ERROR', `cannot encode a value of type ${typeof v}`, 500);
}
