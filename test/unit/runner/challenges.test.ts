// The runner's side of platform challenges, against a fake API that checks what it receives with
// the real pure modules: signatures over the canonical messages, openings through the verifier.
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  COMMITMENT_DOMAIN,
  IDENTITY_DOMAIN,
  SignedCommitmentSchema,
  SignedIdentityAnswerSchema,
  commitmentFields,
  identityFields,
  type CapacityChallenge,
  type IdentityChallenge,
  type OpeningRequest,
} from '../../../src/contracts/inspections.ts';
import type { DetectedGpu, HeartbeatRequest } from '../../../src/contracts/runner.ts';
import { signedMessage } from '../../../src/contracts/signed-message.ts';
import { checkCapacityAnswer } from '../../../src/inspections/capacity-wire.ts';
import { ApiClient } from '../../../runner/src/api.ts';
import { ChallengeResponder } from '../../../runner/src/challenges.ts';
import { CommandProcessor } from '../../../runner/src/commands.ts';
import { detectMachine } from '../../../runner/src/detect.ts';
import { HeartbeatLoop } from '../../../runner/src/heartbeat.ts';
import { generateNodeKey } from '../../../runner/src/identity.ts';
import { createCpuSolver } from '../../../runner/src/inspections/cpu-solver.ts';
import type { ChallengeSolver } from '../../../runner/src/inspections/solver.ts';
import { memoryLogger } from '../../../runner/src/log.ts';
import { CommandState } from '../../../runner/src/state.ts';
import { FAKE_SMI, FakeApi, apiError, waitFor, type Recorded } from './helpers.ts';

const NODE = 'node_1';
const KEY = generateNodeKey();
const PUBLIC = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: KEY.publicKey }, format: 'jwk' });
const verifies = (message: Uint8Array, signature: string) => crypto.verify(null, message, PUBLIC, Buffer.from(signature, 'base64url'));

const GPU = (index: number): DetectedGpu => ({
  index,
  uuid: `GPU-0000000${index}-aaaa-bbbb-cccc-dddddddddddd`,
  name: 'NVIDIA H100 80GB HBM3',
  memory_mib: 81559,
  driver: '550.54.15',
  model: 'h100-sxm-80gb',
});

const inMinutes = (m: number, from = Date.now()) => new Date(from + m * 60_000).toISOString();
const identity = (id: string, deadline = inMinutes(1)): IdentityChallenge => ({ kind: 'identity', challenge_id: id, nonce: 'ab'.repeat(32), deadline });
const capacity = (id: string, over: Partial<CapacityChallenge> = {}): CapacityChallenge => ({
  kind: 'capacity',
  challenge_id: id,
  seed: '5e'.repeat(32),
  n: 48,
  gpu_count: 2,
  leaf_size: 16,
  deadline: inMinutes(1),
  ...over,
});
const passed = (id: string) => ({ status: 200, body: { challenge_id: id, outcome: 'passed', reasons: [] } });
const openingRequest = (id: string): OpeningRequest => ({ challenge_id: id, open_seed: '0f'.repeat(32), count: 8, deadline: inMinutes(1) });

/** Answers every challenge endpoint as an honest platform would; `override` replaces a route's reply. */
function platform(api: FakeApi, override: (req: Recorded) => ReturnType<FakeApi['handler']> = () => undefined) {
  api.handler = (req) => {
    const special = override(req);
    if (special) return special;
    const m = /^\/v1\/runner\/challenges\/([^/]+)\/(identity|commitment|openings)$/.exec(req.url);
    if (!m) return undefined;
    return m[2] === 'commitment' ? { status: 200, body: openingRequest(m[1]!) } : passed(m[1]!);
  };
}

async function setup(onTestFinished: (fn: () => void | Promise<void>) => void, over: { solver?: ChallengeSolver; gpus?: DetectedGpu[]; now?: () => number; sleep?: (ms: number) => Promise<void> } = {}) {
  const api = await new FakeApi().listen();
  onTestFinished(() => api.close());
  const log = memoryLogger();
  let detections = 0;
  const responder = new ChallengeResponder({
    api: new ApiClient({ api: api.url, nodeToken: 'nt_1' }),
    nodeId: NODE,
    privateKey: KEY.privateKey,
    solver: over.solver ?? createCpuSolver(),
    gpus: async () => (detections++, over.gpus ?? [GPU(0), GPU(1)]),
    log,
    now: over.now,
    sleep: over.sleep,
    random: () => 0.99,
  });
  onTestFinished(() => responder.close());
  return { api, log, responder, detections: () => detections, challengeRequests: () => api.requests.filter((r) => r.url.startsWith('/v1/runner/challenges/')) };
}

describe('challenges', () => {
  it('answers an identity challenge at once, before the next heartbeat, with the GPUs detected now, signed over the canonical message', async ({ onTestFinished }) => {
    const api = await new FakeApi().listen();
    onTestFinished(() => api.close());
    const log = memoryLogger();
    const client = new ApiClient({ api: api.url, nodeToken: 'nt_1' });
    const challenge = identity('chl_id1');
    platform(api, (req) => {
      if (req.url !== '/v1/runner/heartbeats') return undefined;
      const first = api.heartbeats().length === 1;
      return { status: 202, body: { accepted: true, commands: first ? [{ id: 'cmd_1', type: 'challenge', challenge }] : [], next_interval_s: 1 } };
    });
    const responder = new ChallengeResponder({
      api: client,
      nodeId: NODE,
      privateKey: KEY.privateKey,
      solver: createCpuSolver(),
      gpus: async () => (await detectMachine({ bin: FAKE_SMI })).machine.gpus,
      log,
    });
    const state = CommandState.load(null, NODE);
    const leases = { snapshot: () => [], delivered: () => undefined, start: async () => {}, stop: async () => {}, extend: async () => {}, refuse: async () => {} };
    const loop = new HeartbeatLoop({ api: client, nodeId: NODE, bootId: 'boot', metrics: async () => [], leases, state, commands: new CommandProcessor(state, leases, log, responder), log });
    const stop = new AbortController();
    const running = loop.run(stop.signal);
    await waitFor(() => api.heartbeats().length >= 2, 8_000, 'the second heartbeat');
    stop.abort();
    await running;

    const urls = api.requests.map((r) => r.url);
    const answerAt = urls.indexOf('/v1/runner/challenges/chl_id1/identity');
    expect(answerAt).toBeGreaterThan(0);
    expect(answerAt).toBeLessThan(urls.indexOf('/v1/runner/heartbeats', 1)); // sent before the next heartbeat
    expect((api.heartbeats()[1]!.body as HeartbeatRequest).acks).toEqual(['cmd_1']);
    expect(api.requests[answerAt]!.auth).toBe('Bearer nt_1');

    const { answer, signature } = SignedIdentityAnswerSchema.parse(api.requests[answerAt]!.body);
    expect(answer).toMatchObject({ challenge_id: 'chl_id1', nonce: challenge.nonce, gpu_uuids: ['GPU-6513270e-269e-0d37-f2a7-4de452e6b438'], driver: '550.54.15' });
    expect(Date.parse(answer.at)).toBeLessThanOrEqual(Date.now());
    expect(verifies(signedMessage(IDENTITY_DOMAIN, identityFields(NODE, answer)), signature)).toBe(true);
    // Over exactly those bytes: another node id or another nonce does not verify.
    expect(verifies(signedMessage(IDENTITY_DOMAIN, identityFields('node_2', answer)), signature)).toBe(false);
    expect(verifies(signedMessage(IDENTITY_DOMAIN, identityFields(NODE, { ...answer, nonce: 'cd'.repeat(32) })), signature)).toBe(false);
    expect(log.lines).toContain('info challenge chl_id1 identity: passed');
  });

  it('answers a capacity challenge with a signed commitment, then openings that pass the verifier’s check', async ({ onTestFinished }) => {
    const { api, log, responder, challengeRequests } = await setup(onTestFinished, { gpus: [GPU(0)] });
    platform(api);
    const challenge = capacity('chl_cap1');
    await responder.answer(challenge);

    const [commit, open] = challengeRequests();
    expect([commit?.url, open?.url]).toEqual(['/v1/runner/challenges/chl_cap1/commitment', '/v1/runner/challenges/chl_cap1/openings']);
    const { commitment, signature } = SignedCommitmentSchema.parse(commit!.body);
    expect(commitment.roots).toHaveLength(2);
    expect(verifies(signedMessage(COMMITMENT_DOMAIN, commitmentFields(NODE, challenge, commitment)), signature)).toBe(true);
    expect(verifies(signedMessage(COMMITMENT_DOMAIN, commitmentFields(NODE, { ...challenge, n: 64 }, commitment)), signature)).toBe(false);
    const verdict = await checkCapacityAnswer(challenge, openingRequest('chl_cap1'), commitment, open!.body);
    expect(verdict).toEqual({ ok: true, failures: [] });
    // The check has teeth: one wrong opened value fails it.
    const opened = structuredClone(open!.body) as { gpus: { leaf: string }[][] };
    const leaf = Buffer.from(opened.gpus[1]![0]!.leaf, 'base64');
    leaf[0]! ^= 1;
    opened.gpus[1]![0]!.leaf = leaf.toString('base64');
    expect((await checkCapacityAnswer(challenge, openingRequest('chl_cap1'), commitment, opened)).ok).toBe(false);
    // The node has one GPU and was asked about two: said, and answered as asked.
    expect(log.lines).toContain('warn challenge chl_cap1 capacity: asks for 2 GPUs but this node has 1; answering as asked');
    expect(log.lines).toContainEqual(expect.stringMatching(/^info challenge chl_cap1 capacity: passed \(committed in \d+\.\d s\)$/));
  });

  it('refuses malformed and oversized challenges without crashing, and heartbeats go on', async ({ onTestFinished }) => {
    const api = await new FakeApi().listen();
    onTestFinished(() => api.close());
    const log = memoryLogger();
    const client = new ApiClient({ api: api.url, nodeToken: 'nt_1' });
    const hostile = [
      { id: 'c_huge', type: 'challenge', challenge: capacity('chl_huge', { n: 10_000_000, gpu_count: 16 }) },
      { id: 'c_path', type: 'challenge', challenge: identity('../../etc/passwd') },
      { id: 'c_shell', type: 'challenge', challenge: { ...identity('chl_x'), nonce: '$(reboot)' } },
      { id: 'c_extra', type: 'challenge', challenge: { ...identity('chl_y'), command: 'rm -rf /' } },
      { id: 'c_kind', type: 'challenge', challenge: { ...identity('chl_z'), kind: 'exec' } },
      { id: 'c_big', type: 'challenge', challenge: capacity('chl_big', { n: 4096, gpu_count: 16, leaf_size: 4096 }) },
    ];
    api.handler = (req) => {
      if (req.url !== '/v1/runner/heartbeats') return undefined;
      const first = api.heartbeats().length === 1;
      return { status: 202, body: { accepted: true, commands: first ? hostile : [], next_interval_s: 1 } };
    };
    let commits = 0;
    const cpu = createCpuSolver();
    const solver: ChallengeSolver = { ...cpu, name: cpu.name, maxN: cpu.maxN, commit: (c) => (commits++, cpu.commit(c)) };
    const responder = new ChallengeResponder({ api: client, nodeId: NODE, privateKey: KEY.privateKey, solver, gpus: async () => [GPU(0)], log });
    const state = CommandState.load(null, NODE);
    const leases = { snapshot: () => [], delivered: () => undefined, start: async () => {}, stop: async () => {}, extend: async () => {}, refuse: async () => {} };
    const loop = new HeartbeatLoop({ api: client, nodeId: NODE, bootId: 'boot', metrics: async () => [], leases, state, commands: new CommandProcessor(state, leases, log, responder), log });
    const stop = new AbortController();
    const running = loop.run(stop.signal);
    await waitFor(() => api.heartbeats().length >= 3, 8_000, 'the third heartbeat');
    stop.abort();
    await running;

    expect((api.heartbeats()[1]!.body as HeartbeatRequest).acks).toEqual(hostile.map((c) => c.id));
    expect(api.requests.filter((r) => r.url !== '/v1/runner/heartbeats')).toEqual([]);
    expect(commits).toBe(0);
    for (const id of ['c_huge', 'c_path', 'c_shell', 'c_extra', 'c_kind']) {
      expect(log.lines).toContainEqual(expect.stringMatching(new RegExp(`^warn command ${id}: ignored, malformed \\(challenge`)));
    }
    expect(log.lines).toContain("warn challenge chl_big capacity: n = 4096 is above the cpu solver's limit of 1024; not answered (the platform expires it)");
    expect(log.lines.every((l) => !l.includes('\n'))).toBe(true);
  });

  it('does not work on a challenge whose deadline has passed, nor send a commitment finished after it', async ({ onTestFinished }) => {
    let t = Date.parse('2030-01-01T00:00:00Z');
    let commits = 0;
    const cpu = createCpuSolver();
    // Models a solve that outlasts the deadline: the clock moves on while it works.
    const slow: ChallengeSolver = { name: 'cpu', maxN: cpu.maxN, open: cpu.open, commit: async (c) => (commits++, (t += 120_000), cpu.commit(c)) };
    const { api, log, responder, detections, challengeRequests } = await setup(onTestFinished, { solver: slow, now: () => t });
    platform(api);
    const past = inMinutes(-1, t);
    await responder.answer(identity('chl_late_id', past));
    await responder.answer(capacity('chl_late_cap', { deadline: past }));
    expect(detections()).toBe(0);
    expect(commits).toBe(0);

    await responder.answer(capacity('chl_slow', { deadline: inMinutes(1, t) }));
    expect(commits).toBe(1);
    expect(challengeRequests()).toEqual([]);
    expect(log.lines).toEqual([
      `warn challenge chl_late_id identity: its deadline ${past} has passed; not worked on`,
      `warn challenge chl_late_cap capacity: its deadline ${past} has passed; not worked on`,
      'warn challenge chl_slow capacity: the commitment took 120.0 s and missed the deadline 2030-01-01T00:01:00.000Z; not sent',
    ]);
  });

  it('logs a 409 or a 404 from the API once and does not retry it', async ({ onTestFinished }) => {
    const { api, log, responder, challengeRequests } = await setup(onTestFinished);
    platform(api, (req) => {
      if (req.url.endsWith('/identity')) return { status: 409, body: apiError('conflict', 'this challenge was already answered') };
      if (req.url.endsWith('/commitment')) return { status: 404, body: apiError('not_found', 'no such challenge for this node') };
      return undefined;
    });
    await responder.answer(identity('chl_dup'));
    await responder.answer(capacity('chl_gone'));
    expect(challengeRequests().map((r) => r.url)).toEqual(['/v1/runner/challenges/chl_dup/identity', '/v1/runner/challenges/chl_gone/commitment']);
    expect(log.lines).toEqual([
      'error challenge chl_dup identity: answer refused (HTTP 409 conflict: this challenge was already answered); not retried',
      'error challenge chl_gone capacity: commitment refused (HTTP 404 not_found: no such challenge for this node); not retried',
    ]);
  });

  it('retries a 503 with back-off until the deadline, and no longer', async ({ onTestFinished }) => {
    let t = Date.parse('2030-01-01T00:00:00Z');
    const waits: number[] = [];
    const { api, log, responder, challengeRequests } = await setup(onTestFinished, { now: () => t, sleep: async (ms) => void (waits.push(ms), (t += ms)) });
    platform(api, (req) => (req.url.endsWith('/identity') ? { status: 503, body: apiError('service_unavailable', 'try later') } : undefined));
    await responder.answer(identity('chl_busy', new Date(t + 10_000).toISOString()));
    expect(challengeRequests().length).toBe(waits.length + 1);
    expect(waits.length).toBeGreaterThanOrEqual(2);
    expect(waits.reduce((a, b) => a + b, 0)).toBeLessThan(10_000);
    expect(log.lines).toEqual([
      'warn challenge chl_busy identity: answer not delivered (HTTP 503 service_unavailable: try later); retrying until the deadline',
      'warn challenge chl_busy identity: answer not delivered (HTTP 503 service_unavailable: try later); the deadline comes before the next try, given up',
    ]);
  });

  it('runs one capacity challenge at a time: a second waits for the first, a third is refused', async ({ onTestFinished }) => {
    const cpu = createCpuSolver();
    const started: string[] = [];
    const release: (() => void)[] = [];
    const gated: ChallengeSolver = {
      name: 'cpu',
      maxN: cpu.maxN,
      open: cpu.open,
      commit: async (c) => {
        started.push(c.challenge_id);
        await new Promise<void>((resolve) => release.push(resolve));
        return cpu.commit(c);
      },
    };
    const { api, log, responder } = await setup(onTestFinished, { solver: gated });
    platform(api);
    const first = responder.answer(capacity('chl_a'));
    const second = responder.answer(capacity('chl_b'));
    await responder.answer(capacity('chl_c'));
    expect(log.lines).toEqual(['warn challenge chl_c capacity: refused, 2 capacity challenges already in hand; not answered (the platform expires it)']);
    // Identity challenges are not held up by a capacity challenge in progress.
    await responder.answer(identity('chl_i'));
    await waitFor(() => started.length === 1, 5_000, 'the first commit');
    expect(started).toEqual(['chl_a']);
    release.shift()!();
    await first;
    await waitFor(() => started.length === 2, 5_000, 'the second commit');
    expect(started).toEqual(['chl_a', 'chl_b']);
    release.shift()!();
    await second;
    expect(log.lines.filter((l) => l.includes(': passed')).map((l) => l.split(':')[0])).toEqual(['info challenge chl_i identity', 'info challenge chl_a capacity', 'info challenge chl_b capacity']);
  });

  it('logs a failed outcome with its reasons in one line, without control characters', async ({ onTestFinished }) => {
    const { api, log, responder } = await setup(onTestFinished);
    platform(api, (req) =>
      req.url.endsWith('/identity')
        ? { status: 200, body: { challenge_id: 'chl_f', outcome: 'failed', reasons: ['GPU-1 is not\nregistered\u001b[2J', 'answered late'] } }
        : undefined,
    );
    await responder.answer(identity('chl_f'));
    expect(log.lines).toEqual(['warn challenge chl_f identity: failed: GPU-1 is not registered [2J; answered late']);
  });

  it('answers nothing without a node key, and says how to get one', async ({ onTestFinished }) => {
    const api = await new FakeApi().listen();
    onTestFinished(() => api.close());
    const log = memoryLogger();
    const responder = new ChallengeResponder({ api: new ApiClient({ api: api.url }), nodeId: NODE, privateKey: undefined, solver: createCpuSolver(), gpus: async () => [GPU(0)], log });
    await responder.answer(identity('chl_nokey'));
    expect(api.requests).toEqual([]);
    expect(log.lines).toEqual(['warn challenge chl_nokey identity: this node has no node key to sign with; not answered (run `gridlease-runner join` again)']);
  });
});
