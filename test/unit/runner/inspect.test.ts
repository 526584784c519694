// `gridlease-runner inspect` in-process against a fake API (node:http) that keeps the commit–reveal
// state the Worker keeps: assignments built from real transcripts (a CPU-solver answer signed by a
// real node key, honest and cheating), commitments, reveals. Each `inspect once` is a fresh start
// that reads its config and state files, as a restarted process would.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readInspectorConfig } from '../../../runner/src/inspect-config.ts';
import { inspect } from '../../../runner/src/inspect.ts';
import { generateNodeKey, signNodeMessage } from '../../../runner/src/identity.ts';
import { createCpuSolver } from '../../../runner/src/inspections/cpu-solver.ts';
import { memoryLogger } from '../../../runner/src/log.ts';
import { COMMITMENT_DOMAIN, commitmentFields, type CapacityChallenge, type OpeningRequest } from '../../../src/contracts/inspections.ts';
import { VERDICT_DOMAIN, VerdictRevealBodySchema, verdictFields, type Transcript, type VerdictReveal } from '../../../src/contracts/inspector-verdicts.ts';
import { signedMessage } from '../../../src/contracts/signed-message.ts';
import { verdictCommitment } from '../../../src/inspections/panel.ts';
import { apiError, FakeApi, mode, tempDir } from './helpers.ts';

const sha256 = async (data: Uint8Array) => new Uint8Array(crypto.createHash('sha256').update(data).digest());
const hex = () => crypto.randomBytes(32).toString('hex');
const ACCOUNT = 'acc_inspector_1';
const TOKEN = 'glk_inspector_secret';
const later = (ms = 600_000) => new Date(Date.now() + ms).toISOString();

/** A capacity transcript answered by the CPU solver (or a cheating one) and signed by a real node key. */
async function capacityTranscript(inspectionId: string, cheat = false): Promise<Transcript> {
  const node = generateNodeKey();
  const ch: CapacityChallenge = { kind: 'capacity', challenge_id: `chl_${inspectionId}`, seed: hex(), n: 64, gpu_count: 1, leaf_size: 256, deadline: later() };
  const solver = cheat ? createCpuSolver({ product: (_a, _b, n) => new Int32Array(n * n).fill(7) }) : createCpuSolver();
  const commitment = await solver.commit(ch);
  const request: OpeningRequest = { challenge_id: ch.challenge_id, open_seed: hex(), count: 8, deadline: later() };
  const openings = await solver.open(request);
  return {
    inspection_id: inspectionId,
    kind: 'capacity',
    node_id: 'node_inspected',
    node_public_key: node.publicKey,
    challenge: ch as unknown as Record<string, unknown>,
    registered_gpu_uuids: [],
    identity: null,
    capacity: {
      commitment,
      signature: signNodeMessage(node.privateKey, signedMessage(COMMITMENT_DOMAIN, commitmentFields('node_inspected', ch, commitment))),
      opening_request: request,
      openings,
    },
    order_processing: { at: Date.now(), provision_timeout_ms: 120_000, fee_bps: 500, leases: [] },
  };
}

interface Case {
  /** What the API sends as the assignment's fixed part (possibly malformed). */
  item: Record<string, unknown> | unknown;
  commitment: string | null;
  reveal: VerdictReveal | null;
  /** Reveals open (everyone committed, or the commit deadline passed). */
  open: boolean;
  /** The commit deadline has passed: commitments are refused. */
  late?: boolean;
  /** Commitments are refused with 403 (a bond below the minimum). */
  refuseCommit?: boolean;
}

/** The inspector routes with the Worker's rules, over a FakeApi. */
class FakeInspections {
  readonly cases = new Map<string, Case>();
  key: string | null = null;
  /** Reveals open as soon as this inspector commits (it is the last of the panel). */
  lastToCommit = false;
  refuse: number | null = null;

  readonly api: FakeApi;

  constructor(api: FakeApi) {
    this.api = api;
    api.handler = (req) => {
      if (req.auth !== `Bearer ${TOKEN}`) return { status: 401, body: apiError('unauthorized', 'bad token') };
      if (this.refuse) return { status: this.refuse, body: apiError(this.refuse === 401 ? 'unauthorized' : 'forbidden', 'refused') };
      if (req.method === 'GET' && req.url === '/v1/accounts/me') return { status: 200, body: { account: { id: ACCOUNT, email: 'i@example.com', roles: ['inspector'], status: 'active', created_at: later(0) } } };
      if (req.method === 'PUT' && req.url === '/v1/inspectors/key') {
        this.key = (req.body as { public_key: string }).public_key;
        return { status: 200, body: { public_key: this.key, updated_at: later(0) } };
      }
      if (req.method === 'GET' && req.url.startsWith('/v1/inspectors/assignments')) {
        const data = [...this.cases.values()]
          .filter((c) => c.reveal === null)
          .map((c) => (c.item && typeof c.item === 'object' ? { ...c.item, phase: c.open ? 'reveal' : 'commit', committed: c.commitment !== null, revealed: false } : c.item));
        return { status: 200, body: { data } };
      }
      if (req.method !== 'POST' || (req.url !== '/v1/inspections/commitments' && req.url !== '/v1/inspections/verdicts')) return undefined;
      const items = (req.body as { items?: Array<Record<string, unknown>> }).items ?? [];
      if (items.length < 1 || items.length > 50) return { status: 400, body: apiError('validation_failed', 'invalid body: items: 1 to 50') };
      this.batches.push({ url: req.url, ids: items.map((i) => String(i.inspection_id)) });
      const commits = req.url === '/v1/inspections/commitments';
      // Standing is the request's: one item of an account refused for its bond refuses them all.
      if (commits && items.some((i) => this.cases.get(String(i.inspection_id))?.refuseCommit)) {
        return { status: 403, body: apiError('forbidden', 'this account is not an inspector in good standing') };
      }
      const results = items.map(({ inspection_id: id, ...body }) => {
        const c = this.cases.get(String(id));
        const refused = (code: string, message: string) => ({ inspection_id: id, ok: false, error: { code, message } });
        if (!c) return refused('not_found', `no inspection ${id} assigned to this account`);
        return commits ? this.commit(String(id), c, body, refused) : this.reveal(String(id), c, body, refused);
      });
      return { status: 200, body: { results } };
    };
  }

  /** The batches sent, in order: which route and which inspections. */
  readonly batches: Array<{ url: string; ids: string[] }> = [];

  private commit(id: string, c: Case, body: Record<string, unknown>, refused: (code: string, message: string) => unknown) {
    if (c.commitment !== null) return refused('conflict', `a verdict for inspection ${id} was already committed`);
    if (c.late) return refused('conflict', `the commit deadline of inspection ${id} has passed`);
    c.commitment = (body as { commitment: string }).commitment;
    if (this.lastToCommit) c.open = true;
    return { inspection_id: id, ok: true, committed_at: later(0), reveal_from: c.open ? later(-1000) : later() };
  }

  private reveal(id: string, c: Case, raw: Record<string, unknown>, refused: (code: string, message: string) => unknown) {
    if (c.commitment === null) return refused('conflict', `no committed verdict for inspection ${id}: commit first`);
    if (!c.open) return refused('conflict', `reveals of inspection ${id} open once every inspector has committed, or at ${later()}`);
    if (c.reveal) return refused('conflict', `the verdict for inspection ${id} was already revealed`);
    const body = VerdictRevealBodySchema.parse(raw);
    if (!this.key || !crypto.verify(null, signedMessage(VERDICT_DOMAIN, verdictFields(body.verdict)), publicKey(this.key), Buffer.from(body.signature, 'base64url'))) {
      return refused('unauthorized', "signature does not verify with this inspector's key over this verdict");
    }
    c.reveal = body;
    return { inspection_id: id, ok: true, decided: false };
  }

  add(transcript: Transcript | unknown, id = (transcript as Transcript).inspection_id, extra: Partial<Case> = {}): void {
    const item = { inspection_id: id, commit_deadline: later(), reveal_deadline: later(1_200_000), transcript };
    this.cases.set(id, { item, commitment: null, reveal: null, open: false, ...extra });
  }
}

let honest: Transcript;
let cheating: Transcript;
beforeAll(async () => {
  honest = await capacityTranscript('insp_honest');
  cheating = await capacityTranscript('insp_cheat', true);
});

async function setup() {
  const api = await new FakeApi().listen();
  const fake = new FakeInspections(api);
  const dir = tempDir();
  const configPath = path.join(dir, 'gridlease', 'inspector.json');
  return { api, fake, dir, configPath, close: () => api.close() };
}

async function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const log = memoryLogger();
  const out: string[] = [];
  const code = await inspect(args, { env, log, out: (l) => out.push(l) });
  return { code, log: log.lines.join('\n'), out: out.join('\n') };
}

async function loggedIn(s: Awaited<ReturnType<typeof setup>>) {
  const r = await run(['login', '--api', s.api.url, '--config', s.configPath], { GRIDLEASE_INSPECTOR_TOKEN: TOKEN });
  expect(r.code, r.log).toBe(0);
}

const publicKey = (raw: string) => crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw }, format: 'jwk' });

describe('gridlease-runner inspect', () => {
  it('login saves a 0600 config with a fresh Ed25519 key, registers it, and names the account', async ({ onTestFinished }) => {
    const s = await setup();
    onTestFinished(s.close);
    await loggedIn(s);
    expect(mode(s.configPath)).toBe(0o600);
    expect(mode(path.dirname(s.configPath))).toBe(0o700);
    const config = readInspectorConfig(s.configPath);
    expect(config).toMatchObject({ api: s.api.url, token: TOKEN, inspector_id: ACCOUNT });
    expect(s.fake.key).toBe(config.public_key);
    expect(s.api.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /v1/accounts/me', 'PUT /v1/inspectors/key']);
    // Another login makes another key.
    await loggedIn(s);
    expect(readInspectorConfig(s.configPath).public_key).not.toBe(config.public_key);
    expect(s.fake.key).toBe(readInspectorConfig(s.configPath).public_key);
  });

  it('login without a token is a usage error; a refused token exits 3', async ({ onTestFinished }) => {
    const s = await setup();
    onTestFinished(s.close);
    expect((await run(['login', '--api', s.api.url, '--config', s.configPath])).code).toBe(2);
    const refused = await run(['login', '--api', s.api.url, '--config', s.configPath, '--token', 'wrong']);
    expect(refused.code).toBe(3);
    expect(refused.log).toContain('login failed: 401');
    expect(fs.existsSync(s.configPath)).toBe(false);
  });

  it('refuses an inspector config that group or others can read', async ({ onTestFinished }) => {
    const s = await setup();
    onTestFinished(s.close);
    await loggedIn(s);
    fs.chmodSync(s.configPath, 0o644);
    const r = await run(['once', '--config', s.configPath]);
    expect(r.code).toBe(1);
    expect(r.log).toContain('is open to group or others (mode 644)');
    expect(s.api.requests.filter((q) => q.url.startsWith('/v1/inspectors/assignments'))).toHaveLength(0);
  });

  it('passes an honest transcript and fails a cheating one; commits, restarts, then reveals what it committed, signed by its key', async ({ onTestFinished }) => {
    const s = await setup();
    onTestFinished(s.close);
    await loggedIn(s);
    s.fake.add(honest);
    s.fake.add(cheating);

    const first = await run(['once', '--config', s.configPath]);
    expect(first.code, first.log).toBe(0);
    expect(first.log).toMatch(/inspection insp_honest \(capacity, node node_inspected\): pass, \d+ entries/);
    expect(first.log).toMatch(/inspection insp_cheat .*: fail, .*GPU 0 opening \d+: C\[\d+\]\[\d+\] is 7, not/);
    const honestCase = s.fake.cases.get('insp_honest')!;
    const cheatCase = s.fake.cases.get('insp_cheat')!;
    expect(honestCase.commitment).toMatch(/^[0-9a-f]{64}$/);
    expect(cheatCase.commitment).toMatch(/^[0-9a-f]{64}$/);
    expect(honestCase.reveal).toBeNull();
    // Saved before the commitment was sent, 0600: the salt must not leak before the reveal.
    const statePath = path.join(path.dirname(s.configPath), 'inspector.state.json');
    expect(mode(statePath)).toBe(0o600);
    expect(Object.keys(JSON.parse(fs.readFileSync(statePath, 'utf8')).pending).sort()).toEqual(['insp_cheat', 'insp_honest']);

    // Still the commit phase: nothing more happens.
    expect((await run(['once', '--config', s.configPath])).code).toBe(0);
    expect(honestCase.reveal).toBeNull();
    // Both verdicts went in one batch of commitments; the second pass sent nothing.
    expect(s.fake.batches).toEqual([{ url: '/v1/inspections/commitments', ids: ['insp_honest', 'insp_cheat'] }]);

    // A fresh start once reveals are open: the state file carries the verdicts and salts.
    honestCase.open = cheatCase.open = true;
    const second = await run(['once', '--config', s.configPath]);
    expect(second.code, second.log).toBe(0);
    expect(second.log).toContain('inspection insp_honest: revealed pass');
    expect(s.fake.batches.slice(1)).toEqual([{ url: '/v1/inspections/verdicts', ids: ['insp_honest', 'insp_cheat'] }]);
    const key = publicKey(readInspectorConfig(s.configPath).public_key);
    for (const [c, expected] of [[honestCase, 'pass'], [cheatCase, 'fail']] as const) {
      const r = c.reveal!;
      expect(r.verdict.verdict).toBe(expected);
      expect(r.verdict.inspector_id).toBe(ACCOUNT);
      expect(await verdictCommitment(r.salt, r.verdict, sha256)).toBe(c.commitment);
      expect(crypto.verify(null, signedMessage(VERDICT_DOMAIN, verdictFields(r.verdict)), key, Buffer.from(r.signature, 'base64url'))).toBe(true);
    }
    // The honest check recomputed the 8 openings and entries of its own choosing.
    expect(honestCase.reveal!.verdict.entries_checked).toBe(8 + 16);
    expect(honestCase.reveal!.verdict.reasons).toEqual([]);
    expect(cheatCase.reveal!.verdict.reasons[0]).toMatch(/^GPU 0 opening \d+: C\[\d+\]\[\d+\] is 7, not -?\d+$/);
    expect(JSON.parse(fs.readFileSync(statePath, 'utf8')).pending).toEqual({});
  });

  it('the last to commit reveals in the same pass', async ({ onTestFinished }) => {
    const s = await setup();
    onTestFinished(s.close);
    await loggedIn(s);
    s.fake.lastToCommit = true;
    s.fake.add(honest);
    const r = await run(['once', '--config', s.configPath, '--own-entries', '4']);
    expect(r.code, r.log).toBe(0);
    const c = s.fake.cases.get('insp_honest')!;
    expect(c.reveal?.verdict).toMatchObject({ verdict: 'pass', entries_checked: 12 });
    expect(s.fake.batches.map((b) => b.url)).toEqual(['/v1/inspections/commitments', '/v1/inspections/verdicts']);
    expect(await verdictCommitment(c.reveal!.salt, c.reveal!.verdict, sha256)).toBe(c.commitment);
  });

  it('skips malformed assignments and fails a hostile transcript without crashing; 409s are logged and passed over', async ({ onTestFinished }) => {
    const s = await setup();
    onTestFinished(s.close);
    await loggedIn(s);
    s.fake.cases.set('raw', { item: 'not an assignment', commitment: null, reveal: null, open: false });
    s.fake.add({ inspection_id: 'insp_shape', kind: 'capacity' }, 'insp_shape');
    const hostile = structuredClone(honest) as any;
    hostile.inspection_id = 'insp_hostile';
    hostile.challenge = { kind: 'capacity', challenge_id: 'x', seed: 'zz', n: 1e12, gpu_count: -1, leaf_size: 3, deadline: 'never' };
    hostile.capacity = { commitment: { roots: 'a'.repeat(10_000) }, signature: '!!', opening_request: [], openings: { gpus: [[{ leaf: 5 }]] } };
    hostile.order_processing.leases = [{ record: { nonsense: true, __proto__: { x: 1 } }, refunded: 'NaN' }];
    s.fake.add(hostile);
    const garbage = structuredClone(honest) as any;
    garbage.inspection_id = 'insp_garbage';
    garbage.capacity.openings = { gpus: [[{ leaf_index: 0, leaf: '@@@', path: ['zz'] }]] };
    s.fake.add(garbage);
    s.fake.add({ ...honest, inspection_id: 'insp_late' }, 'insp_late', { late: true });
    s.fake.add(honest);

    const r = await run(['once', '--config', s.configPath]);
    expect(r.code, r.log).toBe(0);
    expect(r.log).toContain('inspection (no id): skipped, malformed assignment');
    expect(r.log).toMatch(/inspection insp_shape: skipped, malformed assignment \(transcript\./);
    expect(r.log).toMatch(/inspection insp_hostile \(capacity, node node_inspected\): fail/);
    expect(r.log).toMatch(/inspection insp_garbage .*: fail/);
    expect(r.log).toContain('inspection insp_late: commitment refused (the commit deadline of inspection insp_late has passed)');
    expect(s.fake.cases.get('insp_honest')!.commitment).toMatch(/^[0-9a-f]{64}$/);
    expect(s.fake.cases.get('insp_hostile')!.commitment).toMatch(/^[0-9a-f]{64}$/);
    expect(s.fake.cases.get('insp_shape')!.commitment).toBeNull();
    const state = JSON.parse(fs.readFileSync(path.join(path.dirname(s.configPath), 'inspector.state.json'), 'utf8')).pending;
    expect(Object.keys(state).sort()).toEqual(['insp_garbage', 'insp_honest', 'insp_hostile']);
    expect(state.insp_hostile.verdict.reasons.length).toBeGreaterThan(0);

    // A reveal the API already has (409) is dropped from the state, not retried forever.
    for (const c of s.fake.cases.values()) c.open = true;
    s.fake.cases.get('insp_garbage')!.reveal = { verdict: state.insp_garbage.verdict, salt: state.insp_garbage.salt, signature: state.insp_garbage.signature };
    const again = await run(['once', '--config', s.configPath]);
    expect(again.code, again.log).toBe(0);
    expect(s.fake.cases.get('insp_honest')!.reveal?.verdict.verdict).toBe('pass');
    expect(s.fake.cases.get('insp_hostile')!.reveal?.verdict.verdict).toBe('fail');
  });

  it('a 403 on a commitment and a reveal signature refused (the key replaced elsewhere) keep the saved verdict for the next pass', async ({ onTestFinished }) => {
    const s = await setup();
    onTestFinished(s.close);
    await loggedIn(s);
    s.fake.add(honest, 'insp_honest', { refuseCommit: true });
    const first = await run(['once', '--config', s.configPath]);
    expect(first.code, first.log).toBe(0);
    expect(first.log).toMatch(/warn inspection insp_honest: .*not an inspector in good standing/);
    const c = s.fake.cases.get('insp_honest')!;
    expect(c.commitment).toBeNull();
    const statePath = path.join(path.dirname(s.configPath), 'inspector.state.json');
    const saved = JSON.parse(fs.readFileSync(statePath, 'utf8')).pending.insp_honest;
    c.refuseCommit = false;
    expect((await run(['once', '--config', s.configPath])).code).toBe(0);
    expect(c.commitment).toBe(saved.commitment);
    // Another machine registers another key: the reveal is refused (401) but not forgotten.
    const registered = s.fake.key;
    s.fake.key = generateNodeKey().publicKey;
    c.open = true;
    const refused = await run(['once', '--config', s.configPath]);
    expect(refused.code, refused.log).toBe(0);
    expect(refused.log).toContain('was the inspector key replaced by another login?');
    expect(c.reveal).toBeNull();
    expect(JSON.parse(fs.readFileSync(statePath, 'utf8')).pending.insp_honest.salt).toBe(saved.salt);
    s.fake.key = registered;
    expect((await run(['once', '--config', s.configPath])).code).toBe(0);
    expect(c.reveal?.salt).toBe(saved.salt);
    expect(await verdictCommitment(c.reveal!.salt, c.reveal!.verdict, sha256)).toBe(c.commitment);
  });

  it('a login again between commit and reveal re-signs the saved verdict with the new key', async ({ onTestFinished }) => {
    const s = await setup();
    onTestFinished(s.close);
    await loggedIn(s);
    s.fake.add(honest);
    expect((await run(['once', '--config', s.configPath])).code).toBe(0);
    await loggedIn(s);
    const c = s.fake.cases.get('insp_honest')!;
    c.open = true;
    const r = await run(['once', '--config', s.configPath]);
    expect(r.code, r.log).toBe(0);
    expect(c.reveal?.verdict.verdict).toBe('pass');
    expect(crypto.verify(null, signedMessage(VERDICT_DOMAIN, verdictFields(c.reveal!.verdict)), publicKey(s.fake.key!), Buffer.from(c.reveal!.signature, 'base64url'))).toBe(true);
    expect(await verdictCommitment(c.reveal!.salt, c.reveal!.verdict, sha256)).toBe(c.commitment);
  });

  it('a refused token stops it with exit 3; a network failure is exit 1 for once', async ({ onTestFinished }) => {
    const s = await setup();
    onTestFinished(s.close);
    await loggedIn(s);
    s.fake.refuse = 401;
    const refused = await run(['once', '--config', s.configPath]);
    expect(refused.code).toBe(3);
    expect(refused.log).toContain("the API refused the inspector's token");
    await s.close();
    const down = await run(['once', '--config', s.configPath]);
    expect(down.code).toBe(1);
    expect(down.log).toContain('assignments: cannot reach');
  });

  it('run polls until stopped', async ({ onTestFinished }) => {
    const s = await setup();
    onTestFinished(s.close);
    await loggedIn(s);
    s.fake.lastToCommit = true;
    s.fake.add(honest);
    const stop = new AbortController();
    const log = memoryLogger();
    const running = inspect(['run', '--config', s.configPath, '--interval', '0.05'], { env: {}, log, out: () => {}, signal: stop.signal });
    const until = Date.now() + 10_000;
    while (!s.fake.cases.get('insp_honest')!.reveal && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    stop.abort();
    expect(await running).toBe(0);
    expect(s.fake.cases.get('insp_honest')!.reveal?.verdict.verdict).toBe('pass');
    expect(s.api.requests.filter((r) => r.url.startsWith('/v1/inspectors/assignments')).length).toBeGreaterThanOrEqual(1);
    expect(log.lines.at(-1)).toBe('info inspector stopped');
  });
});
