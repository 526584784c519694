// HTTP client for the runner endpoints. Every failure becomes an ApiError (the API answered
// with an error status) or a NetworkError (it did not answer): callers branch on the class.
import {
  ApiErrorBodySchema,
  HeartbeatResponseSchema,
  LogBatchResponseSchema,
  RegisterResponseSchema,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type LeaseEvent,
  type LogBatchRequest,
  type LogBatchResponse,
  type PublicHostRequest,
  type RegisterRequest,
  type RegisterResponse,
} from '../../src/contracts/runner.ts';
import {
  ChallengeOutcomeSchema,
  OpeningRequestSchema,
  type ChallengeOutcome,
  type OpeningRequest,
  type OpeningsAnswer,
  type SignedCommitment,
  type SignedIdentityAnswer,
} from '../../src/contracts/inspections.ts';
import type { z } from 'zod';
import { parseRetryAfter } from './backoff.ts';
import { EXIT, RunnerError, describeError } from './errors.ts';
import { USER_AGENT } from './version.ts';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly requestId: string | null;
  /** From Retry-After, ms. */
  readonly retryAfterMs: number | null;
  constructor(status: number, code: string, message: string, requestId: string | null, retryAfterMs: number | null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.retryAfterMs = retryAfterMs;
  }
}

export class NetworkError extends Error {
  override name = 'NetworkError';
}

/** A reply that is not what the contract promises. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

export interface ApiClientOptions {
  api: string;
  nodeToken?: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** `https://api.example/` → `https://api.example`; refuses anything but http(s) URLs. */
export function normaliseApiUrl(api: string): string {
  let url: URL;
  try {
    url = new URL(api);
  } catch {
    throw new RunnerError(`the API URL is not a URL: ${api}`, EXIT.usage);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new RunnerError(`the API URL must be http(s): ${api}`, EXIT.usage);
  return url.href.replace(/\/+$/, '');
}

export class ApiClient {
  readonly api: string;
  private readonly nodeToken: string | undefined;
  private readonly timeoutMs: number;
  private readonly fetchFn: typeof fetch;

  constructor(options: ApiClientOptions) {
    this.api = normaliseApiUrl(options.api);
    this.nodeToken = options.nodeToken;
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.fetchFn = options.fetch ?? fetch;
  }

  async register(body: RegisterRequest): Promise<RegisterResponse> {
    const res = await this.request('POST', '/v1/runner/register', body, { auth: false });
    return parse(RegisterResponseSchema, await readJson(res, 'register'), 'register');
  }

  async heartbeat(body: HeartbeatRequest, signal?: AbortSignal): Promise<LooseHeartbeatResponse> {
    const res = await this.request('POST', '/v1/runner/heartbeats', body, { signal });
    return parseHeartbeatResponse(await readJson(res, 'heartbeat'));
  }

  async leaseEvent(leaseId: string, event: LeaseEvent, signal?: AbortSignal): Promise<void> {
    const res = await this.request('POST', `/v1/runner/leases/${encodeURIComponent(leaseId)}/events`, event, { signal });
    await res.body?.cancel();
  }

  async publicHost(body: PublicHostRequest, signal?: AbortSignal): Promise<void> {
    const res = await this.request('PUT', '/v1/runner/public-host', body, { signal });
    await res.body?.cancel();
  }

  async logs(leaseId: string, body: LogBatchRequest, signal?: AbortSignal): Promise<LogBatchResponse> {
    const res = await this.request('POST', `/v1/runner/leases/${encodeURIComponent(leaseId)}/logs`, body, { signal });
    return parse(LogBatchResponseSchema, await readJson(res, 'logs'), 'logs');
  }

  async identityAnswer(challengeId: string, body: SignedIdentityAnswer, signal?: AbortSignal): Promise<ChallengeOutcome> {
    const res = await this.request('POST', `${challengePath(challengeId)}/identity`, body, { signal });
    return parse(ChallengeOutcomeSchema, await readJson(res, 'identity answer'), 'identity answer');
  }

  async commitment(challengeId: string, body: SignedCommitment, signal?: AbortSignal): Promise<OpeningRequest> {
    const res = await this.request('POST', `${challengePath(challengeId)}/commitment`, body, { signal });
    return parse(OpeningRequestSchema, await readJson(res, 'commitment'), 'commitment');
  }

  async openings(challengeId: string, body: OpeningsAnswer, signal?: AbortSignal): Promise<ChallengeOutcome> {
    const res = await this.request('POST', `${challengePath(challengeId)}/openings`, body, { signal });
    return parse(ChallengeOutcomeSchema, await readJson(res, 'openings'), 'openings');
  }

  /** GET /healthz: the status line, or throws NetworkError. */
  async health(): Promise<{ status: number; body: string }> {
    const res = await this.send('GET', '/healthz', undefined, {});
    return { status: res.status, body: (await res.text()).slice(0, 200) };
  }

  private async request(method: string, path: string, body: unknown, options: { auth?: boolean; signal?: AbortSignal }): Promise<Response> {
    const res = await this.send(method, path, body, options);
    if (res.ok) return res;
    throw await apiError(res);
  }

  private async send(method: string, path: string, body: unknown, options: { auth?: boolean; signal?: AbortSignal }): Promise<Response> {
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (options.auth !== false && this.nodeToken) headers.authorization = `Bearer ${this.nodeToken}`;
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const signal = options.signal ? anySignal(options.signal, timeout) : timeout;
    try {
      return await this.fetchFn(`${this.api}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
    } catch (err) {
      if (timeout.aborted) throw new NetworkError(`no answer from ${this.api} within ${this.timeoutMs / 1000} s`);
      // The reason is in the message already (fetch hides it in `cause`), so no cause: one line, said once.
      throw new NetworkError(`cannot reach ${this.api}: ${describeError(err).replace(/^fetch failed: /, '')}`);
    }
  }
}

const challengePath = (id: string) => `/v1/runner/challenges/${encodeURIComponent(id)}`;

async function readJson(res: Response, what: string): Promise<unknown> {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new ProtocolError(`unexpected ${what} reply from the API (HTTP ${res.status}, not JSON)`);
  }
}

async function apiError(res: Response): Promise<ApiError> {
  const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
  const text = await res.text().catch(() => '');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const parsed = ApiErrorBodySchema.safeParse(body);
  if (parsed.success) {
    const { code, message, request_id } = parsed.data.error;
    return new ApiError(res.status, code, message, request_id, retryAfter);
  }
  const snippet = text.replace(/\s+/g, ' ').trim().slice(0, 120);
  return new ApiError(res.status, `http_${res.status}`, `HTTP ${res.status}${snippet ? `: ${snippet}` : ''}`, null, retryAfter);
}

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  throw new ProtocolError(`unexpected ${what} reply from the API${issue ? ` (${issue.path.map(String).join('.') || 'body'}: ${issue.message})` : ''}`);
}

/**
 * The heartbeat reply, read leniently: each command is kept as it came (validated one by one
 * later), so one command this runner does not understand does not make it drop the others.
 */
export type LooseHeartbeatResponse = Omit<HeartbeatResponse, 'commands'> & { commands: unknown[] };

export function parseHeartbeatResponse(value: unknown): LooseHeartbeatResponse {
  const envelope = HeartbeatResponseSchema.omit({ commands: true }).safeParse(value);
  const commands = (value as { commands?: unknown } | null)?.commands;
  if (!envelope.success || !Array.isArray(commands)) {
    return parse(HeartbeatResponseSchema, value, 'heartbeat');
  }
  return { ...envelope.data, commands };
}

/** AbortSignal.any arrived in Node 20.3; this works on 18. */
export function anySignal(...signals: AbortSignal[]): AbortSignal {
  const controller = new AbortController();
  for (const s of signals) {
    if (s.aborted) {
      controller.abort(s.reason);
      break;
    }
    s.addEventListener('abort', () => controller.abort(s.reason), { once: true });
  }
  return controller.signal;
}
