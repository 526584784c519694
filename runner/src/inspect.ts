// `gridlease-runner inspect`: an inspector's agent. It polls the account's assignments, re-checks
// each transcript with the same pure check the platform uses (checkTranscript, plus entries of its
// own choosing), commits to a signed verdict with a random salt while the panel commits, and
// reveals it once reveals open: each pass commits all its new verdicts in one request and reveals
// all those due in one more (the batch routes). The verdict and salt are saved (0600) before the
// commitment is sent, so a restart in between still reveals. Its credentials are its own (inspector.json), never
// the node's.
import util from 'node:util';
import { ApiErrorBodySchema } from '../../src/contracts/runner.ts';
import { AssignmentSchema, VERDICT_DOMAIN, VerdictSchema, verdictFields, type Assignment, type Verdict } from '../../src/contracts/inspector-verdicts.ts';
import { signedMessage } from '../../src/contracts/signed-message.ts';
import { verdictCommitment } from '../../src/inspections/panel.ts';
import { checkTranscript } from '../../src/inspections/transcript-check.ts';
import { ApiError, NetworkError, normaliseApiUrl } from './api.ts';
import { Backoff, parseRetryAfter } from './backoff.ts';
import { EXIT, RunnerError, describeError, oneLine } from './errors.ts';
import { generateNodeKey, publicKeyOf, signNodeMessage } from './identity.ts';
import {
  defaultInspectorConfigPath,
  inspectorStatePath,
  readInspectorConfig,
  readInspectorState,
  writeInspectorConfig,
  writeInspectorState,
  type InspectorConfig,
  type InspectorState,
  type PendingVerdict,
} from './inspect-config.ts';
import { cryptoRandom, nodeSha256, nodeVerify, randomHex } from './inspect-crypto.ts';
import type { Logger } from './log.ts';
import { USER_AGENT } from './version.ts';

export const INSPECT_USAGE = `usage: gridlease-runner inspect login --api URL --token TOKEN [--account ACCOUNT_ID] [--config PATH]
       gridlease-runner inspect [run|once] [--config PATH] [--interval SECONDS] [--own-entries N]`;

export const DEFAULT_INTERVAL_MS = 5_000;
export const DEFAULT_OWN_ENTRIES = 16;

/** An assignment still to be judged: it carries its transcript. */
type Judged = Assignment & { transcript: NonNullable<Assignment['transcript']> };
const MAX_OWN_ENTRIES = 4_096;

export interface InspectIo {
  env: NodeJS.ProcessEnv;
  log: Logger;
  /** Command output (login's summary). */
  out: (line: string) => void;
  fetch?: typeof fetch;
  /** Stops `run` (SIGINT/SIGTERM in the CLI). */
  signal?: AbortSignal;
}

class Usage extends Error {}

/** Runs `inspect …`; returns the exit code (0 ok, 1 error, 2 usage, 3 credential refused). */
export async function inspect(argv: readonly string[], io: InspectIo): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (err) {
    if (err instanceof Usage) {
      io.log.error(`${err.message} (see gridlease-runner --help)`);
      return EXIT.usage;
    }
    if (err instanceof RunnerError) {
      io.log.error(err.message);
      return err.exitCode;
    }
    io.log.error(describeError(err));
    return EXIT.error;
  }
}

interface InspectOptions {
  command: 'login' | 'run' | 'once';
  configPath: string;
  api: string | undefined;
  token: string | undefined;
  account: string | undefined;
  intervalMs: number;
  ownEntries: number;
  backoffMaxMs: number;
}

export function parseInspectOptions(argv: readonly string[], env: NodeJS.ProcessEnv): InspectOptions {
  let parsed;
  try {
    parsed = util.parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        api: { type: 'string' },
        token: { type: 'string' },
        account: { type: 'string' },
        config: { type: 'string' },
        interval: { type: 'string' },
        'own-entries': { type: 'string' },
      },
    });
  } catch (err) {
    throw new Usage((err as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, ''));
  }
  const { values, positionals } = parsed;
  const command = positionals[0] ?? 'run';
  if (command !== 'login' && command !== 'run' && command !== 'once') throw new Usage(`unknown inspect command "${command}": use login, run or once`);
  if (positionals.length > 1) throw new Usage(`unexpected argument "${positionals[1]}"`);
  const interval = values.interval ?? env.GRIDLEASE_INSPECT_INTERVAL_S;
  let intervalMs = DEFAULT_INTERVAL_MS;
  if (interval !== undefined && interval !== '') {
    const s = Number(interval);
    if (!Number.isFinite(s) || s < 0.05 || s > 3600) throw new Usage('--interval must be a number of seconds in [0.05, 3600]');
    intervalMs = Math.round(s * 1000);
  }
  let ownEntries = DEFAULT_OWN_ENTRIES;
  if (values['own-entries'] !== undefined) {
    const n = Number(values['own-entries']);
    if (!Number.isInteger(n) || n < 0 || n > MAX_OWN_ENTRIES) throw new Usage(`--own-entries must be an integer in [0, ${MAX_OWN_ENTRIES}]`);
    ownEntries = n;
  }
  const backoffS = Number(env.GRIDLEASE_BACKOFF_MAX_S);
  return {
    command,
    configPath: values.config ?? (env.GRIDLEASE_INSPECTOR_CONFIG || defaultInspectorConfigPath(env)),
    api: values.api ?? (env.GRIDLEASE_API || undefined),
    token: values.token ?? (env.GRIDLEASE_INSPECTOR_TOKEN || undefined),
    account: values.account,
    intervalMs,
    ownEntries,
    backoffMaxMs: env.GRIDLEASE_BACKOFF_MAX_S && Number.isFinite(backoffS) && backoffS >= 1 ? Math.round(backoffS * 1000) : 60_000,
  };
}

async function dispatch(argv: readonly string[], io: InspectIo): Promise<number> {
  const options = parseInspectOptions(argv, io.env);
  if (options.command === 'login') return login(options, io);
  const config = readInspectorConfig(options.configPath);
  const agent = new Inspector(config, options, io);
  if (options.command === 'once') return (await agent.pass()) ? EXIT.ok : EXIT.error;
  return agent.run();
}

// ── HTTP ─────────────────────────────────────────────────────────────────────────────

/** The most items the batch routes take in one request. */
export const BATCH_MAX = 50;

/** One item of a batch answer: done (with the route's fields), or refused with the single route's error. */
export type BatchItemResult =
  | { inspection_id: string; ok: true; reveal_from?: unknown; decided?: unknown }
  | { inspection_id: string; ok: false; error: { code: string; message: string } };

function batchResults(body: unknown, count: number, what: string): BatchItemResult[] {
  const results = (body as { results?: unknown } | null)?.results;
  if (!Array.isArray(results) || results.length !== count) throw new NetworkError(`${what}: the reply is not {"results": [...]} with one result per item`);
  return results.map((r) => {
    const item = (r ?? {}) as { inspection_id?: unknown; ok?: unknown; error?: { code?: unknown; message?: unknown } };
    if (item.ok === true) return item as BatchItemResult;
    return { inspection_id: String(item.inspection_id), ok: false, error: { code: String(item.error?.code ?? 'unknown'), message: String(item.error?.message ?? 'refused') } };
  });
}

/** The HTTP status a refused item's code stands for (the single routes' statuses). */
const ITEM_STATUS: Record<string, number> = { validation_failed: 400, unauthorized: 401, forbidden: 403, not_found: 404, conflict: 409 };

const chunks = <T>(items: T[], size: number): T[][] => Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));

/** The few calls an inspector makes, with its bearer credential. */
export class InspectorApi {
  readonly api: string;
  private readonly token: string;
  private readonly fetchFn: typeof fetch;
  private readonly timeoutMs: number;

  constructor(api: string, token: string, fetchFn: typeof fetch = fetch, timeoutMs = 15_000) {
    this.api = normaliseApiUrl(api);
    this.token = token;
    this.fetchFn = fetchFn;
    this.timeoutMs = timeoutMs;
  }

  async accountId(): Promise<string> {
    const body = (await this.request('GET', '/v1/accounts/me')) as { account?: { id?: unknown } } | null;
    const id = body?.account?.id;
    if (typeof id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new RunnerError('GET /v1/accounts/me did not answer an account id');
    return id;
  }

  async registerKey(publicKey: string): Promise<void> {
    await this.request('PUT', '/v1/inspectors/key', { public_key: publicKey });
  }

  /** The assignments as sent: each is validated on its own, so one malformed entry does not hide the others. */
  async assignments(): Promise<unknown[]> {
    const body = (await this.request('GET', '/v1/inspectors/assignments?limit=50')) as { data?: unknown } | null;
    if (!body || !Array.isArray(body.data)) throw new NetworkError('the assignments reply is not {"data": [...]}');
    return body.data;
  }

  /** Commitments to several inspections in one request (at most BATCH_MAX): one result per item, in order. */
  async commitMany(items: Array<{ inspection_id: string; commitment: string }>): Promise<BatchItemResult[]> {
    return batchResults(await this.request('POST', '/v1/inspections/commitments', { items }), items.length, 'POST /v1/inspections/commitments');
  }

  /** Reveals of several inspections in one request (at most BATCH_MAX): one result per item, in order. */
  async revealMany(items: Array<{ inspection_id: string; verdict: Verdict; salt: string; signature: string }>): Promise<BatchItemResult[]> {
    return batchResults(await this.request('POST', '/v1/inspections/verdicts', { items }), items.length, 'POST /v1/inspections/verdicts');
  }

  private async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, accept: 'application/json', authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const timeout = AbortSignal.timeout(this.timeoutMs);
    let res: Response;
    try {
      res = await this.fetchFn(`${this.api}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: timeout });
    } catch (err) {
      if (timeout.aborted) throw new NetworkError(`no answer from ${this.api} within ${this.timeoutMs / 1000} s`);
      throw new NetworkError(`cannot reach ${this.api}: ${describeError(err).replace(/^fetch failed: /, '')}`);
    }
    const text = await res.text().catch(() => '');
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const parsed = ApiErrorBodySchema.safeParse(json);
      const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
      if (parsed.success) throw new ApiError(res.status, parsed.data.error.code, parsed.data.error.message, parsed.data.error.request_id, retryAfter);
      throw new ApiError(res.status, `http_${res.status}`, `HTTP ${res.status}${text ? `: ${oneLine(text, 120)}` : ''}`, null, retryAfter);
    }
    if (json === undefined) throw new NetworkError(`${method} ${path.split('?')[0]}: the API answered HTTP ${res.status} but not JSON`);
    return json;
  }
}

// ── login ────────────────────────────────────────────────────────────────────────────

async function login(options: InspectOptions, io: InspectIo): Promise<number> {
  if (!options.api) throw new Usage('login needs --api URL (or GRIDLEASE_API)');
  if (!options.token) throw new Usage('login needs --token TOKEN (or GRIDLEASE_INSPECTOR_TOKEN): an access token or API key of the inspector account');
  if (options.account !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(options.account)) throw new Usage('--account must be an account id');
  const client = new InspectorApi(options.api, options.token, io.fetch);
  let inspectorId = options.account;
  if (!inspectorId) {
    try {
      inspectorId = await client.accountId();
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) {
        throw new RunnerError(`the token may not read its account (${err.message}): give the account id with --account ACCOUNT_ID, or use a token with account:read`);
      }
      throw loginError(err);
    }
  }
  const key = generateNodeKey();
  try {
    await client.registerKey(key.publicKey);
  } catch (err) {
    throw loginError(err);
  }
  writeInspectorConfig(options.configPath, {
    api: client.api,
    token: options.token,
    inspector_id: inspectorId,
    private_key: key.privateKey,
    public_key: key.publicKey,
    registered_at: new Date().toISOString(),
  });
  io.out(`inspector ${inspectorId}: key ${key.publicKey} registered with ${client.api}; config saved to ${options.configPath}`);
  return EXIT.ok;
}

function loginError(err: unknown): RunnerError {
  if (err instanceof ApiError) {
    const hint = err.status === 401 ? ' (the token was refused)' : err.status === 403 ? ' (the token lacks inspections:write, or the account is not active)' : '';
    return new RunnerError(`login failed: ${err.status} ${err.code}: ${err.message}${hint}`, err.status === 401 ? EXIT.revoked : EXIT.error);
  }
  return new RunnerError(`login failed: ${describeError(err)}`);
}

// ── The agent ────────────────────────────────────────────────────────────────────────

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** A credential the API refuses: retrying cannot help. */
const fatal = (err: unknown) => err instanceof ApiError && (err.status === 401 || err.status === 403);

export class Inspector {
  private readonly config: InspectorConfig;
  private readonly options: Pick<InspectOptions, 'configPath' | 'intervalMs' | 'ownEntries' | 'backoffMaxMs'>;
  private readonly io: InspectIo;
  private readonly client: InspectorApi;
  private readonly statePath: string;
  private state: InspectorState;
  /** Inspection ids already reported as unusable, so each is logged once. */
  private readonly skipped = new Set<string>();
  /** Per-assignment warnings already logged. */
  private readonly warned = new Set<string>();

  constructor(config: InspectorConfig, options: Pick<InspectOptions, 'configPath' | 'intervalMs' | 'ownEntries' | 'backoffMaxMs'>, io: InspectIo) {
    this.config = config;
    this.options = options;
    this.io = io;
    this.client = new InspectorApi(config.api, config.token, io.fetch);
    this.statePath = inspectorStatePath(options.configPath);
    this.state = readInspectorState(this.statePath, (m) => io.log.warn(m));
    if (publicKeyOf(config.private_key) !== config.public_key) throw new RunnerError(`inspector config ${options.configPath}: the key pair does not match; run \`gridlease-runner inspect login\` again`);
  }

  /** Polls until the signal; back-off on errors; stops (exit 3) when the credential is refused. */
  async run(): Promise<number> {
    const { log, signal } = this.io;
    log.info(`inspector ${this.config.inspector_id} polling ${this.client.api} every ${this.options.intervalMs / 1000} s`);
    const backoff = new Backoff({ maxMs: this.options.backoffMaxMs });
    while (!signal?.aborted) {
      try {
        await this.poll();
        if (backoff.failures > 0) log.info('the API answers again');
        backoff.reset();
        await sleep(this.options.intervalMs, signal);
      } catch (err) {
        if (fatal(err)) return this.refused(err as ApiError);
        const wait = Math.max(backoff.next(), err instanceof ApiError && err.retryAfterMs !== null ? err.retryAfterMs : 0);
        if (backoff.failures === 1 || backoff.failures % 10 === 0) log.warn(`assignments: ${describeError(err)}; retrying (failure ${backoff.failures})`);
        await sleep(wait, signal);
      }
    }
    log.info('inspector stopped');
    return EXIT.ok;
  }

  /** One pass (`inspect once`): true when the assignments could be read. */
  async pass(): Promise<boolean> {
    try {
      await this.poll();
      return true;
    } catch (err) {
      if (fatal(err)) {
        this.refused(err as ApiError);
        throw new RunnerError(`the API refused the inspector's token: ${(err as ApiError).message}`, (err as ApiError).status === 401 ? EXIT.revoked : EXIT.error);
      }
      this.io.log.error(`assignments: ${describeError(err)}`);
      return false;
    }
  }

  private refused(err: ApiError): number {
    this.io.log.error(`the API refused the inspector's token (${err.status} ${err.code}: ${err.message}): run \`gridlease-runner inspect login\` again`);
    return err.status === 401 ? EXIT.revoked : EXIT.error;
  }

  /**
   * One pass: every assignment is classified; the new verdicts are committed in one request and
   * the reveals due (with those opened by this pass's own commitments) sent in one more.
   */
  private async poll(): Promise<void> {
    const items = await this.client.assignments();
    const seen = new Set<string>();
    const toCommit: PendingVerdict[] = [];
    const toReveal: PendingVerdict[] = [];
    for (const item of items) {
      const id = typeof (item as { inspection_id?: unknown })?.inspection_id === 'string' ? (item as { inspection_id: string }).inspection_id.slice(0, 64) : '(no id)';
      seen.add(id);
      const parsed = AssignmentSchema.safeParse(item);
      if (!parsed.success) {
        if (!this.skipped.has(id)) {
          this.skipped.add(id);
          const issue = parsed.error.issues[0];
          this.io.log.warn(`inspection ${id}: skipped, malformed assignment (${issue ? `${issue.path.join('.') || 'body'}: ${issue.message}` : 'unreadable'})`);
        }
        continue;
      }
      try {
        const next = await this.classify(parsed.data);
        if (next?.[0] === 'commit') toCommit.push(next[1]);
        else if (next?.[0] === 'reveal') toReveal.push(next[1]);
      } catch (err) {
        this.warnOnce(`inspection ${id}: ${describeError(err)}`);
      }
    }
    for (const batch of chunks(toCommit, BATCH_MAX)) toReveal.push(...(await this.commitBatch(batch)));
    for (const batch of chunks(toReveal, BATCH_MAX)) await this.revealBatch(batch);
    this.prune(seen);
  }

  /** Logged once per distinct line. */
  private warnOnce(line: string): void {
    if (!this.warned.has(line)) (this.warned.add(line), this.io.log.warn(line));
  }

  /**
   * A request of a batch that failed as a whole. The token refused: stop. Anything else (403 for
   * a bond below the minimum, a network failure) is each item's: logged once per distinct
   * message, tried again next pass.
   */
  private batchFailed(ids: string[], err: unknown): void {
    if (err instanceof ApiError && err.status === 401) throw err;
    for (const id of ids) this.warnOnce(`inspection ${id}: ${describeError(err)}`);
  }

  /** What an assignment needs this pass: its verdict committed, revealed, or nothing. */
  private async classify(a: Assignment): Promise<['commit' | 'reveal', PendingVerdict] | null> {
    const id = a.inspection_id;
    const { log } = this.io;
    if (a.revealed) return (this.forget(id), null);
    const entry: PendingVerdict | undefined = this.state.pending[id];
    if (!a.committed && !entry?.committed) {
      if (a.phase === 'reveal') {
        // Reveals open to the others only after the commit deadline (or once everyone committed): too late to commit.
        if (!this.skipped.has(id)) (this.skipped.add(id), log.warn(`inspection ${id}: the commit window has closed; no verdict`));
        return null;
      }
      if (!entry && a.transcript === null) {
        if (!this.skipped.has(id)) (this.skipped.add(id), log.warn(`inspection ${id}: skipped, no transcript to check`));
        return null;
      }
      return ['commit', entry ?? (await this.judge(a as Judged))];
    }
    if (a.phase !== 'reveal') return null;
    if (!entry) {
      if (!this.skipped.has(id)) (this.skipped.add(id), log.warn(`inspection ${id}: committed, but no saved verdict to reveal (the state file ${this.statePath} was lost)`));
      return null;
    }
    return ['reveal', entry];
  }

  /** Commits saved verdicts in one request; returns those whose reveals this opened (the last of their panels to commit). */
  private async commitBatch(entries: PendingVerdict[]): Promise<PendingVerdict[]> {
    const { log } = this.io;
    let results: BatchItemResult[];
    try {
      results = await this.client.commitMany(entries.map((e) => ({ inspection_id: e.inspection_id, commitment: e.commitment })));
    } catch (err) {
      this.batchFailed(entries.map((e) => e.inspection_id), err);
      return [];
    }
    const opened: PendingVerdict[] = [];
    for (const [i, result] of results.entries()) {
      let entry = entries[i]!;
      const id = entry.inspection_id;
      let revealFrom: unknown;
      if (result.ok) {
        revealFrom = result.reveal_from;
      } else if (result.error.code !== 'conflict') {
        this.warnOnce(`inspection ${id}: ${ITEM_STATUS[result.error.code] ?? ''} ${result.error.code}: ${result.error.message}`.replace(':  ', ': '));
        continue;
      } else {
        log.warn(`inspection ${id}: commitment refused (${result.error.message})`);
        // Committed before (a lost answer) or too late: either way the saved verdict may still reveal.
        if (!/already committed/i.test(result.error.message)) {
          this.forget(id);
          continue;
        }
      }
      entry = { ...entry, committed: true };
      this.save(id, entry);
      log.info(`inspection ${id}: committed ${entry.verdict.verdict}${entry.verdict.reasons.length ? ` (${entry.verdict.reasons.slice(0, 3).join('; ')})` : ''}`);
      // The last to commit opens the reveals at once.
      if (typeof revealFrom === 'string' && Date.parse(revealFrom) <= Date.now()) opened.push(entry);
    }
    return opened;
  }

  /** Re-checks the transcript and saves the verdict, salt and signature before anything is sent. */
  private async judge(a: Judged): Promise<PendingVerdict> {
    const started = Date.now();
    const checked = await checkTranscript(a.transcript, { sha256: nodeSha256, verify: nodeVerify, random: cryptoRandom, ownEntriesPerGpu: this.options.ownEntries });
    const reasons = [...checked.reasons];
    let verdict: 'pass' | 'fail' = checked.verdict;
    if (a.transcript.inspection_id !== a.inspection_id) {
      verdict = 'fail';
      reasons.unshift('the transcript is for another inspection');
    }
    const v: Verdict = VerdictSchema.parse({
      inspection_id: a.inspection_id,
      inspector_id: this.config.inspector_id,
      verdict,
      reasons: reasons.slice(0, 16),
      entries_checked: Math.min(checked.entriesChecked, 1_000_000),
      leases_checked: Math.min(checked.leasesChecked, 20),
      lease_findings: Math.min(checked.leaseFindings, 10_000),
      evidence: checked.evidence,
    });
    const salt = randomHex(32);
    const entry: PendingVerdict = {
      inspection_id: a.inspection_id,
      verdict: v,
      salt,
      signature: signNodeMessage(this.config.private_key, signedMessage(VERDICT_DOMAIN, verdictFields(v))),
      public_key: this.config.public_key,
      commitment: await verdictCommitment(salt, v, nodeSha256),
      committed: false,
      reveal_deadline: a.reveal_deadline,
    };
    this.save(a.inspection_id, entry);
    this.io.log.info(
      `inspection ${a.inspection_id} (${a.transcript.kind}, node ${a.transcript.node_id}): ${v.verdict}, ${v.entries_checked} entries and ${v.leases_checked} leases checked in ${Date.now() - started} ms` +
        (v.reasons.length ? `: ${v.reasons.slice(0, 3).join('; ')}` : ''),
    );
    return entry;
  }

  /** Reveals saved verdicts in one request. */
  private async revealBatch(entries: PendingVerdict[]): Promise<void> {
    // Ed25519 is deterministic: re-signing with the same key gives the same bytes; a newer key (login again) signs afresh.
    const signatureOf = (e: PendingVerdict) =>
      e.public_key === this.config.public_key ? e.signature : signNodeMessage(this.config.private_key, signedMessage(VERDICT_DOMAIN, verdictFields(e.verdict)));
    let results: BatchItemResult[];
    try {
      results = await this.client.revealMany(entries.map((e) => ({ inspection_id: e.inspection_id, verdict: e.verdict, salt: e.salt, signature: signatureOf(e) })));
    } catch (err) {
      this.batchFailed(entries.map((e) => e.inspection_id), err);
      return;
    }
    for (const [i, result] of results.entries()) {
      const entry = entries[i]!;
      const id = entry.inspection_id;
      if (result.ok) {
        this.io.log.info(`inspection ${id}: revealed ${entry.verdict.verdict}${result.decided === true ? '; the inspection is decided' : ''}`);
        this.forget(id);
        continue;
      }
      const { code, message } = result.error;
      const status = ITEM_STATUS[code];
      // Unauthorized here is the signature: the key registered now is not inspector.json's (a login
      // elsewhere). Kept, and tried again: a refused token stops the next poll anyway.
      if (code === 'unauthorized') {
        this.warnOnce(`inspection ${id}: reveal refused (${message}); was the inspector key replaced by another login?`);
        continue;
      }
      if (status !== 409 && status !== 400 && status !== 404) {
        this.warnOnce(`inspection ${id}: ${status ?? ''} ${code}: ${message}`.replace(':  ', ': '));
        continue;
      }
      this.io.log.warn(`inspection ${id}: reveal refused (${status} ${message})`);
      // Not open yet: try again next pass. Anything else (revealed, too late, decided, a mismatch) will not change.
      if (status === 409 && /open once/i.test(message)) continue;
      this.forget(id);
    }
  }

  private save(id: string, entry: PendingVerdict): void {
    this.state.pending[id] = entry;
    writeInspectorState(this.statePath, this.state);
  }

  private forget(id: string): void {
    if (!(id in this.state.pending)) return;
    delete this.state.pending[id];
    writeInspectorState(this.statePath, this.state);
  }

  /** Drops saved verdicts whose reveal deadline has passed and that the API no longer lists. */
  private prune(seen: Set<string>): void {
    const now = Date.now();
    let changed = false;
    for (const [id, entry] of Object.entries(this.state.pending)) {
      if (!seen.has(id) && Date.parse(entry.reveal_deadline) < now) {
        delete this.state.pending[id];
        changed = true;
      }
    }
    if (changed) writeInspectorState(this.statePath, this.state);
  }
}
