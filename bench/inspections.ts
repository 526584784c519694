// npm run bench:inspections — what checking a capacity answer costs next to computing it, and how
// fast bonded inspectors get inspections decided on the local platform.
//
// Table 1 (no platform): for each n of --sizes (default 64,128,256,512,1024), one GPU, m = --openings
// (64) openings and leafSizeFor(n)'s leaf, the prover is the runner's reference CPU solver (commit +
// open, node:crypto SHA-256; median of --runs, default 3, each on a fresh seed) and the verifier is
// checkCapacityAnswer with Web Crypto SHA-256, as the Worker runs it (median of max(--runs, 5)), on
// the prover's last answer. Both run on this machine, one thread. Then one row per full catalog
// size from capacityTable(): computed, not run (MACs, the product's time at the card's INT8 peak,
// and the verifier's time extrapolated linearly in n from the largest measured size).
//
// Table 2 (end to end): a fresh local platform (temp data folder, request logging off, credential
// and report-read rate limits off); an admin (an account given the role in libSQL, as the e2e test
// does) mints the rewards pool; three inspector accounts get GRID from the dev faucet, bond
// INSPECTOR_MIN_BOND and register Ed25519 keys. Baseline: --inspections plain authenticated GETs
// (GET /v1/inspectors/me), three clients at once, one request each at a time. Then the admin plants
// --inspections decoys (POST /v1/admin/inspections/decoys, alternately expect pass and fail,
// --plant-concurrency at a time) while the three inspectors, concurrently, poll their assignments
// (limit --poll-limit), check each transcript with checkTranscript (node:crypto SHA-256, Ed25519
// verify, 8 entries of their own per GPU), commit, and reveal once the phase is 'reveal' (at once
// when their own commitment was the last: its reveal_from is now), until every planted inspection
// is decided or --timeout-s passes. By default each poll's new commitments go in one request
// (POST /v1/inspections/commitments) and its due reveals in one more (POST /v1/inspections/verdicts);
// --single sends one request per inspection instead (the per-inspection routes), to compare the
// two in separate runs. Plant → decided is from sending the plant request to the
// answer of the reveal that decided it. Then every planted inspection's report
// (GET /v1/inspections/{id}) gives the paid and slashed verdicts.
//
// A bench reports; it asserts nothing. The goals (verification ≤ 1% of the prover's work; ≥ 50
// inspections/s locally) are printed as met or not.
import { createClient } from '@libsql/client/web';
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createCpuSolver } from '../runner/src/inspections/cpu-solver.ts';
import type { CapacityChallenge, OpeningRequest } from '../src/contracts/inspections.ts';
import { VERDICT_DOMAIN, verdictFields, type Transcript, type Verdict } from '../src/contracts/inspector-verdicts.ts';
import { signedMessage } from '../src/contracts/signed-message.ts';
import { GPU_MODELS } from '../src/catalog/gpus.ts';
import { checkCapacityAnswer } from '../src/inspections/capacity-wire.ts';
import { leafSizeFor } from '../src/inspections/challenge-terms.ts';
import { dot, fillLine, matrixKey } from '../src/inspections/matrices.ts';
import { leafCountFor } from '../src/inspections/openings.ts';
import { verdictCommitment } from '../src/inspections/panel.ts';
import { webCryptoSha256, type Sha256 } from '../src/inspections/sha256.ts';
import { capacityTable } from '../src/inspections/sizing.ts';
import { checkTranscript, type VerifySignature } from '../src/inspections/transcript-check.ts';
import { freePort, launch, type Platform } from '../test/support/platform.ts';
import { findWorkerd, ticks } from './proc.ts';
import { percentile } from './support.ts';

const { values: args } = parseArgs({
  options: {
    inspections: { type: 'string', default: '200' },
    sizes: { type: 'string', default: '64,128,256,512,1024' },
    runs: { type: 'string', default: '3' },
    openings: { type: 'string', default: '64' },
    'plant-concurrency': { type: 'string', default: '2' },
    'poll-limit': { type: 'string', default: '20' },
    'timeout-s': { type: 'string', default: '150' },
    'decoy-n': { type: 'string', default: '64' },
    'inspector-concurrency': { type: 'string', default: '8' },
    'poll-idle-ms': { type: 'string', default: '100' },
    'plant-first': { type: 'boolean', default: false },
    single: { type: 'boolean', default: false },
    'skip-e2e': { type: 'boolean', default: false },
    'skip-cost': { type: 'boolean', default: false },
  },
  strict: true,
});
const intArg = (name: keyof typeof args, min: number, max: number): number => {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`--${name} must be an integer in [${min}, ${max}], not ${String(args[name])}`);
  return v;
};
const K = intArg('inspections', 1, 100_000);
const SIZES = String(args.sizes)
  .split(',')
  .map((s) => Number(s.trim()));
if (SIZES.some((n) => !Number.isInteger(n) || n < 4 || n > 1024)) throw new Error('--sizes: integers in [4, 1024] (the CPU solver handles n ≤ 1024), comma-separated');
const RUNS = intArg('runs', 1, 100);
const VERIFIER_RUNS = Math.max(3 * RUNS, 9);
const OPENINGS = intArg('openings', 1, 256);
const PLANT_CONCURRENCY = intArg('plant-concurrency', 1, 64);
const POLL_LIMIT = intArg('poll-limit', 1, 50);
const TIMEOUT_S = intArg('timeout-s', 5, 3_600);
/** The platform makes decoys at min(CAPACITY_MAX_N, 512); the bench sets CAPACITY_MAX_N to this. */
const DECOY_N = intArg('decoy-n', 16, 512);
/** Assignments of one poll an inspector handles at once (check, commit, reveal). */
const INSPECTOR_CONCURRENCY = intArg('inspector-concurrency', 1, 64);
/** An inspector polls again after this long when a poll brought nothing to do. */
const POLL_IDLE_MS = intArg('poll-idle-ms', 0, 60_000);
const INSPECTORS = 3;
/** --single: one request per commitment and per reveal (the per-inspection routes) instead of one batch per poll. */
const SINGLE = args.single;
const OWN_ENTRIES_PER_GPU = 8;
const REQUEST_TIMEOUT_MS = 30_000;

const GOAL_VERIFIER_SHARE = 0.01;
const GOAL_RATE = 50;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => {
  const s = sorted(xs);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const fmt = (v: number, digits = 2) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
const sci = (v: number) => (Number.isFinite(v) ? v.toExponential(1).replace('e', '·10^').replace('+', '') : 'n/a');
const pct = (v: number) => (Number.isFinite(v) ? `${(v * 100).toPrecision(3)}%` : 'n/a');
const hex = (bytes = 32) => randomBytes(bytes).toString('hex');
const nodeSha256: Sha256 = async (data) => new Uint8Array(createHash('sha256').update(data).digest());
const progressStart = performance.now();
const progress = (what: string) => console.error(`${((performance.now() - progressStart) / 1000).toFixed(1).padStart(6)} s  ${what}`);

// ── Table 1: prover and verifier on this CPU ─────────────────────────────────────────
interface CostRow {
  n: number;
  leaf: number;
  proverMs: number;
  verifierMs: number;
  verifierRuns: number;
  /** The same check with node:crypto SHA-256: what Web Crypto's per-call overhead adds. */
  verifierNodeMs: number;
  ok: boolean;
}

async function measureCost(n: number): Promise<CostRow> {
  const leaf = leafSizeFor(n);
  const deadline = new Date(Date.now() + 3_600_000).toISOString();
  const prover: number[] = [];
  let last: { challenge: CapacityChallenge; request: OpeningRequest; commitment: unknown; openings: unknown } | null = null;
  for (let run = 0; run < RUNS; run++) {
    const challenge: CapacityChallenge = { kind: 'capacity', challenge_id: `chl_bench_${n}_${run}`, seed: hex(), n, gpu_count: 1, leaf_size: leaf, deadline };
    const request: OpeningRequest = { challenge_id: challenge.challenge_id, open_seed: hex(), count: OPENINGS, deadline };
    const solver = createCpuSolver();
    const t = performance.now();
    const commitment = await solver.commit(challenge);
    const openings = await solver.open(request);
    prover.push(performance.now() - t);
    last = { challenge, request, commitment, openings };
  }
  const verifier: number[] = [];
  let ok = true;
  const verifierNode: number[] = [];
  for (let run = 0; run < VERIFIER_RUNS; run++) {
    let t = performance.now();
    const verdict = await checkCapacityAnswer(last!.challenge, last!.request, last!.commitment, last!.openings, webCryptoSha256);
    verifier.push(performance.now() - t);
    ok &&= verdict.ok;
    t = performance.now();
    ok &&= (await checkCapacityAnswer(last!.challenge, last!.request, last!.commitment, last!.openings, nodeSha256)).ok;
    verifierNode.push(performance.now() - t);
  }
  return { n, leaf, proverMs: median(prover), verifierMs: median(verifier), verifierRuns: VERIFIER_RUNS, verifierNodeMs: median(verifierNode), ok };
}

/**
 * The verifier's per-opening work at a size no solver here can answer: m openings' two lines and
 * dot product (random seed and positions) and m Merkle paths of the tree's depth (a leaf and
 * ⌈log₂ leaves⌉ node hashes, Web Crypto), timed. No real answer is checked: there is none.
 */
async function verifierPartsMs(n: number): Promise<{ linesMs: number; hashMs: number }> {
  const leaf = leafSizeFor(n);
  const depth = Math.ceil(Math.log2(leafCountFor(n, leaf)));
  const seed = randomBytes(32);
  const row = new Int8Array(n);
  const col = new Int8Array(n);
  let t = performance.now();
  const keyA = await matrixKey(seed, 0, 'A', webCryptoSha256);
  const keyB = await matrixKey(seed, 0, 'B', webCryptoSha256);
  let sink = 0;
  for (let o = 0; o < OPENINGS; o++) {
    fillLine(keyA, Math.floor(Math.random() * n), n, row);
    fillLine(keyB, Math.floor(Math.random() * n), n, col);
    sink ^= dot(row, 0, col, 0, n);
  }
  const linesMs = performance.now() - t;
  const leafBytes = new Uint8Array(1 + 4 * leaf);
  const node = new Uint8Array(65);
  t = performance.now();
  for (let o = 0; o < OPENINGS; o++) {
    await webCryptoSha256(leafBytes);
    for (let d = 0; d < depth; d++) await webCryptoSha256(node);
  }
  const hashMs = performance.now() - t;
  if (sink === 0.5) console.log(''); // keeps the dot products from being optimised away
  return { linesMs, hashMs };
}

async function printCost(rows: CostRow[]): Promise<void> {
  console.log(
    `\nTable 1. Prover vs verifier per GPU, one GPU, m = ${OPENINGS} openings, leaf = leafSizeFor(n). Prover: the runner's reference CPU solver, commit + open ` +
      `(node:crypto SHA-256), median of ${RUNS}. Verifier: checkCapacityAnswer with Web Crypto SHA-256 as the Worker runs it (schema parse, decode, ${OPENINGS} entries and paths), ` +
      `median of ${VERIFIER_RUNS}; beside it the same check with node:crypto SHA-256. All on this machine (${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, Node ${process.versions.node}, ` +
      `load average ${loadavg().map((x) => x.toFixed(2)).join(' / ')}: other processes share these cores, so small times are noisy), one thread.\n`,
  );
  console.log('| n | leaf | prover ms (commit + open) | verifier ms (Web Crypto) | verifier / prover (time) | verifier ms (node:crypto) | prover MACs n³ | verifier MACs m·n | work ratio m·n / n³ | time ≤ 1%? | answer verified |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|:---:|');
  for (const r of rows) {
    const ratio = r.verifierMs / r.proverMs;
    console.log(
      `| ${r.n} | ${r.leaf} | ${fmt(r.proverMs, 1)} | ${fmt(r.verifierMs, 2)} | ${pct(ratio)} | ${fmt(r.verifierNodeMs, 2)} | ${sci(r.n ** 3)} | ${(OPENINGS * r.n).toLocaleString('en-US')} | ` +
        `${pct((OPENINGS * r.n) / r.n ** 3)} | ${ratio <= GOAL_VERIFIER_SHARE ? 'yes' : 'no'} | ${r.ok ? 'yes' : 'NO'} |`,
    );
  }

  // Full catalog sizes: computed, never run end to end (the CPU solver stops at 1,024; a GPU does the product).
  const byN = new Map<number, (typeof GPU_MODELS)[number][]>();
  for (const c of capacityTable(OPENINGS)) byN.set(c.n, [...(byN.get(c.n) ?? []), GPU_MODELS.find((m) => m.id === c.model)!]);
  console.log(
    `\nCOMPUTED, not run: the full catalog sizes (capacityTable(), m = ${OPENINGS}, one GPU). No answer at these sizes exists here. The prover's time is computed: 2n³ at the ` +
      `fastest listed card's dense INT8 peak (the product alone, at peak). The verifier's column times only its per-opening arithmetic at that n: ${OPENINGS} × (two lines ` +
      `and a dot product) on a random seed, and ${OPENINGS} Merkle paths of the tree's depth hashed with Web Crypto (not a real answer: no schema parse or decode).\n`,
  );
  console.log('| n (COMPUTED) | models | prover MACs n³ | verifier MACs m·n | work ratio m·n / n³ | work ≤ 1%? | product at peak s (computed) | verifier lines + dot ms (run) | verifier hashes ms (run) | verifier CPU / product at peak |');
  console.log('|---:|---|---:|---:|---:|:---:|---:|---:|---:|---:|');
  for (const [n, models] of [...byN].sort((a, b) => b[0] - a[0])) {
    const fastest = models.reduce((a, b) => (b.int8Tops > a.int8Tops ? b : a));
    const productS = (2 * n ** 3) / (fastest.int8Tops * 1e12);
    const { linesMs, hashMs } = await verifierPartsMs(n);
    const work = (OPENINGS * n) / n ** 3;
    console.log(
      `| ${n.toLocaleString('en-US')} | ${models.map((m) => m.id).join(', ')} | ${sci(n ** 3)} | ${(OPENINGS * n).toLocaleString('en-US')} | ${sci(work)} | ${work <= GOAL_VERIFIER_SHARE ? 'yes' : 'no'} | ` +
        `${fmt(productS, 2)} (${fastest.id}) | ${fmt(linesMs, 1)} | ${fmt(hashMs, 1)} | ${pct((linesMs + hashMs) / 1000 / productS)} |`,
    );
  }
}

// ── HTTP ─────────────────────────────────────────────────────────────────────────────
interface Reply {
  status: number;
  body: any;
  bytes: number;
}
interface Traffic {
  /** Error messages of non-2xx answers, ids replaced by {id}, with their counts. */
  messages: Map<string, number>;
  sent: number;
  statuses: Map<number, number>;
  errors: number;
  latencies: number[];
  bytes: number;
}
const traffic = new Map<string, Traffic>();
const trafficOf = (kind: string) => {
  let t = traffic.get(kind);
  if (!t) traffic.set(kind, (t = { messages: new Map(), sent: 0, statuses: new Map(), errors: 0, latencies: [], bytes: 0 }));
  return t;
};
let base = new URL('http://127.0.0.1');

function call(agent: Agent, kind: string, method: 'GET' | 'POST' | 'PUT', path: string, opts: { auth?: string; body?: unknown; key?: string } = {}): Promise<Reply> {
  const t = trafficOf(kind);
  const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  const headers: Record<string, string | number> = {};
  if (body !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  if (opts.auth) headers.authorization = `Bearer ${opts.auth}`;
  if (opts.key) headers['idempotency-key'] = opts.key;
  const started = performance.now();
  t.sent++;
  return new Promise<Reply>((resolve, reject) => {
    const req = request({ agent, host: base.hostname, port: base.port, path, method, headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('error', reject);
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        const buf = Buffer.concat(chunks);
        t.latencies.push(performance.now() - started);
        t.statuses.set(status, (t.statuses.get(status) ?? 0) + 1);
        t.bytes += buf.length;
        let parsed: unknown = buf.toString('utf8');
        try {
          parsed = JSON.parse(parsed as string);
        } catch {
          // not JSON: keep the text
        }
        if (status >= 300) {
          const message = `${status} ${String((parsed as any)?.error?.message ?? parsed).replace(/\b[a-z]+_[A-Za-z0-9_-]{8,}/g, '{id}').replace(/\d{4}-\d\d-\d\dT[0-9:.]+Z/g, '{time}').slice(0, 160)}`;
          t.messages.set(message, (t.messages.get(message) ?? 0) + 1);
        }
        resolve({ status, body: parsed, bytes: buf.length });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => {
      t.errors++;
      reject(err);
    });
    req.end(body);
  });
}

async function ok(reply: Promise<Reply>, expected: number | number[], what: string): Promise<any> {
  const r = await reply;
  if (!(Array.isArray(expected) ? expected : [expected]).includes(r.status)) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body).slice(0, 500)}`);
  return r.body;
}

async function each<T>(items: T[], concurrency: number, job: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) await job(items[i]!, i);
    }),
  );
}

// ── Inspectors ───────────────────────────────────────────────────────────────────────
const publicKeys = new Map<string, KeyObject | null>();
const verifyEd25519: VerifySignature = async (publicKey, message, signature) => {
  let key = publicKeys.get(publicKey);
  if (key === undefined) {
    try {
      key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKey }, format: 'jwk' });
    } catch {
      key = null;
    }
    publicKeys.set(publicKey, key);
  }
  if (!key) return false;
  try {
    return edVerify(null, message, key, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
};

interface Held {
  verdict: Verdict;
  salt: string;
  signature: string;
  committed: boolean;
  revealed: boolean;
}

interface Inspector {
  index: number;
  accountId: string;
  apiKey: string;
  privateKey: KeyObject;
  publicKey: string;
  agent: Agent;
  held: Map<string, Held>;
  checkMs: number[];
  polls: number;
  emptyPolls: number;
  commits: number;
  reveals: number;
  conflicts: number;
  failures: number;
}

interface Shared {
  done: boolean;
  /** Wall time (Date.now) each inspection was seen decided: the answer of the reveal that decided it. */
  decidedAt: Map<string, number>;
  /** Our inspectors' verdict on each inspection (they agree or the bench says so). */
  verdicts: Map<string, Set<'pass' | 'fail'>>;
}

function newInspectorKey() {
  const { privateKey } = generateKeyPairSync('ed25519');
  const { x } = createPublicKey(privateKey).export({ format: 'jwk' });
  return { privateKey, publicKey: x as string };
}

async function prepare(ins: Inspector, inspectionId: string, transcript: Transcript): Promise<Held> {
  const t = performance.now();
  const check = await checkTranscript(transcript, { sha256: nodeSha256, verify: verifyEd25519, random: Math.random, ownEntriesPerGpu: OWN_ENTRIES_PER_GPU });
  const verdict: Verdict = {
    inspection_id: inspectionId,
    inspector_id: ins.accountId,
    verdict: check.verdict,
    reasons: check.reasons,
    entries_checked: check.entriesChecked,
    leases_checked: check.leasesChecked,
    lease_findings: check.leaseFindings,
    // A fail verdict carries the wrong entries it found, which anyone can recompute.
    evidence: check.evidence,
  };
  const salt = hex();
  const signature = edSign(null, signedMessage(VERDICT_DOMAIN, verdictFields(verdict)), ins.privateKey).toString('base64url');
  const held: Held = { verdict, salt, signature, committed: false, revealed: false };
  ins.checkMs.push(performance.now() - t);
  return held;
}

async function reveal(ins: Inspector, shared: Shared, id: string, held: Held): Promise<void> {
  const r = await call(ins.agent, 'reveal (POST /v1/inspections/{id}/verdict)', 'POST', `/v1/inspections/${id}/verdict`, {
    auth: ins.apiKey,
    body: { verdict: held.verdict, salt: held.salt, signature: held.signature },
  });
  if (r.status === 200) {
    held.revealed = true;
    ins.reveals++;
    if (r.body.decided) shared.decidedAt.set(id, Date.now());
  } else if (r.status === 409) {
    ins.conflicts++;
    if (/decided|already revealed/.test(String(r.body?.error?.message ?? JSON.stringify(r.body)))) held.revealed = true;
  } else ins.failures++;
}

async function handle(ins: Inspector, shared: Shared, a: { inspection_id: string; phase: 'commit' | 'reveal'; committed: boolean; transcript: Transcript }): Promise<boolean> {
  const id = a.inspection_id;
  let held = ins.held.get(id);
  let progressed = false;
  if (!held) {
    held = await prepare(ins, id, a.transcript);
    ins.held.set(id, held);
    const votes = shared.verdicts.get(id) ?? new Set();
    votes.add(held.verdict.verdict);
    shared.verdicts.set(id, votes);
  }
  if (a.committed) held.committed = true;
  if (!held.committed) {
    const commitment = await verdictCommitment(held.salt, held.verdict, nodeSha256);
    const r = await call(ins.agent, 'commit (POST /v1/inspections/{id}/commitment)', 'POST', `/v1/inspections/${id}/commitment`, { auth: ins.apiKey, body: { commitment } });
    if (r.status === 200) {
      held.committed = true;
      ins.commits++;
      progressed = true;
      // The last of the panel to commit opens the reveals: its answer says so (reveal_from = now).
      if (Date.parse(r.body.reveal_from) <= Date.now()) {
        await reveal(ins, shared, id, held);
        return true;
      }
    } else if (r.status === 409) {
      ins.conflicts++;
      held.committed = true;
    } else ins.failures++;
  }
  if (a.phase === 'reveal' && held.committed && !held.revealed) {
    await reveal(ins, shared, id, held);
    progressed = true;
  }
  return progressed;
}

type Polled = { inspection_id: string; phase: 'commit' | 'reveal'; committed: boolean; transcript: Transcript };

/** One batch request's per-item results, counted as the single routes' answers would be. */
function tally(ins: Inspector, r: Reply, count: number): Array<{ ok: boolean; body: any }> | null {
  if (r.status !== 200 || !Array.isArray(r.body?.results) || r.body.results.length !== count) {
    ins.failures += count;
    return null;
  }
  return r.body.results.map((x: any) => ({ ok: x.ok === true, body: x }));
}

/** A poll's work in two requests: every new commitment in one batch, then every due reveal in one. */
async function handleBatch(ins: Inspector, shared: Shared, data: Polled[]): Promise<boolean> {
  let progressed = false;
  // Checking transcripts is this process's CPU: up to --inspector-concurrency at a time, as with --single.
  await each(data, INSPECTOR_CONCURRENCY, async (a) => {
    if (shared.done || ins.held.has(a.inspection_id) || a.transcript === null) return;
    const held = await prepare(ins, a.inspection_id, a.transcript);
    ins.held.set(a.inspection_id, held);
    const votes = shared.verdicts.get(a.inspection_id) ?? new Set();
    votes.add(held.verdict.verdict);
    shared.verdicts.set(a.inspection_id, votes);
  });
  const due = new Set<string>();
  const toCommit: Array<{ inspection_id: string; commitment: string }> = [];
  for (const a of data) {
    const held = ins.held.get(a.inspection_id);
    if (!held) continue;
    if (a.committed) held.committed = true;
    if (!held.committed) toCommit.push({ inspection_id: a.inspection_id, commitment: await verdictCommitment(held.salt, held.verdict, nodeSha256) });
    else if (a.phase === 'reveal' && !held.revealed) due.add(a.inspection_id);
  }
  if (toCommit.length > 0 && !shared.done) {
    const r = await call(ins.agent, 'commit batch (POST /v1/inspections/commitments)', 'POST', '/v1/inspections/commitments', { auth: ins.apiKey, body: { items: toCommit } });
    for (const [i, x] of (tally(ins, r, toCommit.length) ?? []).entries()) {
      const id = toCommit[i]!.inspection_id;
      const held = ins.held.get(id)!;
      if (x.ok) {
        held.committed = true;
        ins.commits++;
        progressed = true;
        // The last of the panel to commit opens the reveals: its result says so (reveal_from = now).
        if (Date.parse(x.body.reveal_from) <= Date.now()) due.add(id);
      } else if (x.body.error?.code === 'conflict') {
        ins.conflicts++;
        held.committed = true;
      } else ins.failures++;
    }
  }
  const reveals = [...due].map((id) => {
    const held = ins.held.get(id)!;
    return { inspection_id: id, verdict: held.verdict, salt: held.salt, signature: held.signature };
  });
  if (reveals.length > 0 && !shared.done) {
    const r = await call(ins.agent, 'reveal batch (POST /v1/inspections/verdicts)', 'POST', '/v1/inspections/verdicts', { auth: ins.apiKey, body: { items: reveals } });
    const answered = Date.now();
    for (const [i, x] of (tally(ins, r, reveals.length) ?? []).entries()) {
      const id = reveals[i]!.inspection_id;
      const held = ins.held.get(id)!;
      if (x.ok) {
        held.revealed = true;
        ins.reveals++;
        progressed = true;
        if (x.body.decided) shared.decidedAt.set(id, answered);
      } else if (x.body.error?.code === 'conflict') {
        ins.conflicts++;
        if (/decided|already revealed/.test(String(x.body.error.message))) held.revealed = true;
      } else ins.failures++;
    }
  }
  return progressed;
}

async function runInspector(ins: Inspector, shared: Shared): Promise<void> {
  while (!shared.done) {
    let r: Reply;
    try {
      r = await call(ins.agent, 'poll (GET /v1/inspectors/assignments)', 'GET', `/v1/inspectors/assignments?limit=${POLL_LIMIT}`, { auth: ins.apiKey });
    } catch {
      await sleep(200);
      continue;
    }
    ins.polls++;
    if (r.status !== 200) {
      ins.failures++;
      await sleep(200);
      continue;
    }
    const data = r.body.data as Polled[];
    let progressed = false;
    if (!SINGLE) {
      try {
        progressed = await handleBatch(ins, shared, data);
      } catch {
        ins.failures++;
      }
    } else {
      await each(data, INSPECTOR_CONCURRENCY, async (a) => {
        if (shared.done) return;
        try {
          if (await handle(ins, shared, a)) progressed = true;
        } catch {
          ins.failures++;
        }
      });
    }
    if (!progressed) {
      ins.emptyPolls++;
      await sleep(POLL_IDLE_MS);
    }
  }
}

// ── Table 2: end to end ──────────────────────────────────────────────────────────────
async function endToEnd(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'gridlease-bench-inspections-'));
  const setupAgent = new Agent({ keepAlive: true, maxSockets: 16 });
  let platform: Platform | undefined;
  const inspectors: Inspector[] = [];
  try {
    const libsqlPort = await freePort();
    const loadBefore = loadavg();
    platform = await launch({
      dataDir,
      port: await freePort(),
      libsqlPort,
      env: {
        LOG_REQUESTS: 'false',
        AUTH_IP_RATE_LIMIT: '1000000/60',
        WRITE_IP_RATE_LIMIT: 'off',
        AUTH_RATE_LIMIT: '1000000/60',
        REPORTS_IP_RATE_LIMIT: 'off',
        // Decoys are made at min(CAPACITY_MAX_N, 512): 64 here by default (as the worker tests use),
        // where `npm start` uses 256, so that the default run fits in a few minutes on two cores.
        CAPACITY_MAX_N: String(DECOY_N),
      },
    });
    base = new URL(platform.url);
    const workerdPid = findWorkerd(platform.child.pid ?? 0);
    const launcherPid = platform.child.pid ?? 0;
    progress(`platform up at ${platform.url}`);
    const api = (kind: string, method: 'GET' | 'POST' | 'PUT', path: string, opts?: { auth?: string; body?: unknown; key?: string }) => call(setupAgent, kind, method, path, opts);

    // Accounts: an admin (role set in libSQL, as test/e2e/runner.test.ts does) and three inspectors.
    const signUp = async (label: string) => {
      const body = { email: `bench.${label}.${crypto.randomUUID().slice(0, 8)}@example.com`, password: 'Benchmark-Inspect-4417', roles: ['renter'] };
      const r = await ok(api('setup', 'POST', '/v1/accounts', { body }), 201, `sign-up ${label}`);
      return { accountId: r.account.id as string, apiKey: r.api_key.key as string };
    };
    const admin = await signUp('admin');
    const db = createClient({ url: `http://127.0.0.1:${libsqlPort}` });
    try {
      await db.execute({ sql: `UPDATE accounts SET roles = '["renter","admin"]' WHERE id = ?`, args: [admin.accountId] });
    } finally {
      db.close();
    }
    const probe = await ok(api('setup', 'GET', '/v1/inspectors/me', { auth: admin.apiKey }), 200, 'inspectors/me');
    const minBond = String(probe.min_bond);
    for (let i = 0; i < INSPECTORS; i++) {
      const account = await signUp(`inspector${i}`);
      await ok(api('setup', 'POST', '/v1/dev/faucet', { auth: account.apiKey, key: crypto.randomUUID(), body: { asset: 'GRID', amount: String(Number(minBond) * 2) } }), 201, 'faucet GRID');
      await ok(api('setup', 'POST', '/v1/inspectors/bond', { auth: account.apiKey, key: crypto.randomUUID(), body: { amount: minBond } }), 201, 'bond');
      const key = newInspectorKey();
      await ok(api('setup', 'PUT', '/v1/inspectors/key', { auth: account.apiKey, body: { public_key: key.publicKey } }), 200, 'inspector key');
      const me = await ok(api('setup', 'GET', '/v1/inspectors/me', { auth: account.apiKey }), 200, 'inspectors/me');
      if (!me.inspector) throw new Error(`inspector ${i} does not hold the role after bonding ${minBond}: ${JSON.stringify(me)}`);
      inspectors.push({
        index: i,
        ...account,
        privateKey: key.privateKey,
        publicKey: key.publicKey,
        agent: new Agent({ keepAlive: true, maxSockets: INSPECTOR_CONCURRENCY + 1 }),
        held: new Map(),
        checkMs: [],
        polls: 0,
        emptyPolls: 0,
        commits: 0,
        reveals: 0,
        conflicts: 0,
        failures: 0,
      });
    }
    // Enough for every verdict to be paid (1 GRID each by default), many times over.
    const pool = String(Math.max(10_000, K * INSPECTORS * 10));
    await ok(api('setup', 'POST', '/v1/admin/rewards-pool/mint', { auth: admin.apiKey, key: crypto.randomUUID(), body: { amount: pool, reason: 'bench:inspections rewards pool' } }), 201, 'mint');
    progress(`admin, ${INSPECTORS} inspectors bonded at ${minBond} GRID with keys, rewards pool minted ${pool} GRID`);

    // Baseline: the platform's request floor, K plain authenticated GETs, the inspectors' three clients at once.
    const baseStarted = performance.now();
    await Promise.all(
      inspectors.map(async (ins) => {
        for (let i = ins.index; i < K; i += INSPECTORS) await ok(call(ins.agent, 'baseline (GET /v1/inspectors/me)', 'GET', '/v1/inspectors/me', { auth: ins.apiKey }), 200, 'baseline');
      }),
    );
    const baselineS = (performance.now() - baseStarted) / 1000;
    progress(`baseline: ${K} GET /v1/inspectors/me in ${fmt(baselineS)} s`);

    // Plant and inspect at once.
    const shared: Shared = { done: false, decidedAt: new Map(), verdicts: new Map() };
    const plantedAt = new Map<string, number>();
    const expectOf = new Map<string, 'pass' | 'fail'>();
    let plantFailures = 0;
    const cpu0 = { workerd: ticks(workerdPid), launcher: ticks(launcherPid), self: process.cpuUsage() };
    const phaseStarted = Date.now();
    // By default the inspectors start with the planting; --plant-first holds them until every
    // decoy is planted, to time the inspection pipeline alone.
    let running: Promise<void>[] = args['plant-first'] ? [] : inspectors.map((ins) => runInspector(ins, shared));
    let inspectStart = phaseStarted;
    let plantsDoneAt = 0;
    const planting = (async () => {
      await each(Array.from({ length: K }, (_, i) => i), PLANT_CONCURRENCY, async (i) => {
        const expect = i % 2 === 0 ? 'pass' : 'fail';
        const sent = Date.now();
        try {
          const r = await call(setupAgent, 'plant (POST /v1/admin/inspections/decoys)', 'POST', '/v1/admin/inspections/decoys', { auth: admin.apiKey, body: { expect } });
          if (r.status !== 201) {
            plantFailures++;
            return;
          }
          plantedAt.set(r.body.inspection_id, sent);
          expectOf.set(r.body.inspection_id, expect);
        } catch {
          plantFailures++;
        }
      });
      plantsDoneAt = Date.now();
      progress(`planted ${plantedAt.size} decoys (${plantFailures} failed) in ${fmt((plantsDoneAt - phaseStarted) / 1000)} s`);
    })();
    if (args['plant-first']) {
      await planting;
      inspectStart = Date.now();
      running = inspectors.map((ins) => runInspector(ins, shared));
    }
    const giveUpAt = inspectStart + TIMEOUT_S * 1000;
    let lastReport = Date.now();
    for (;;) {
      const decided = [...plantedAt.keys()].filter((id) => shared.decidedAt.has(id)).length;
      if (plantsDoneAt > 0 && decided >= plantedAt.size) break;
      if (Date.now() > giveUpAt) {
        progress(`gave up after ${TIMEOUT_S} s: ${decided} of ${plantedAt.size} planted decided`);
        break;
      }
      if (Date.now() - lastReport > 10_000) {
        lastReport = Date.now();
        progress(`${decided} of ${plantedAt.size} planted decided`);
      }
      await sleep(20);
    }
    shared.done = true;
    const phaseEnd = Math.max(phaseStarted, ...[...plantedAt.keys()].map((id) => shared.decidedAt.get(id) ?? 0));
    const cpu1 = { workerd: ticks(workerdPid), launcher: ticks(launcherPid), self: process.cpuUsage(cpu0.self) };
    const cpuWall = Date.now() - phaseStarted;
    await planting;
    await Promise.all(running);
    progress('inspection phase over; reading reports');

    // Reports: paid and slashed verdicts, outcome vs our verdicts, majority.
    const results = new Map<string, number>();
    const amounts = new Map<string, number>();
    let reportsRead = 0;
    let reportFailures = 0;
    let outcomeMismatch = 0;
    let majorityMismatch = 0;
    let verdictsDisagree = 0;
    const decidedIds = [...plantedAt.keys()].filter((id) => shared.decidedAt.has(id));
    await each([...plantedAt.keys()], 8, async (id) => {
      try {
        const r = await call(setupAgent, 'report (GET /v1/inspections/{id})', 'GET', `/v1/inspections/${id}`);
        if (r.status !== 200) {
          reportFailures++;
          return;
        }
        reportsRead++;
        const report = r.body.report as { outcome: string; majority: string | null; verdicts: Array<{ result: string | null; amount: string | null }> };
        if (report.outcome !== expectOf.get(id)) outcomeMismatch++;
        if (report.majority !== report.outcome) majorityMismatch++;
        for (const v of report.verdicts) {
          const result = v.result ?? 'unsettled';
          results.set(result, (results.get(result) ?? 0) + 1);
          amounts.set(result, (amounts.get(result) ?? 0) + Number(v.amount ?? 0));
        }
      } catch {
        reportFailures++;
      }
    });
    for (const [id, votes] of shared.verdicts) if (plantedAt.has(id) && (votes.size !== 1 || !votes.has(expectOf.get(id)!))) verdictsDisagree++;
    const others = [...shared.verdicts.keys()].filter((id) => !plantedAt.has(id)).length;

    const latencies = sorted(decidedIds.map((id) => (shared.decidedAt.get(id)! - plantedAt.get(id)!) / 1000));
    const wallS = (phaseEnd - inspectStart) / 1000;
    const rate = decidedIds.length / wallS;
    const plantS = (plantsDoneAt - phaseStarted) / 1000;
    const checkMs = sorted(inspectors.flatMap((i) => i.checkMs));
    const cpuPct = (ms: number) => fmt((ms / cpuWall) * 100, 0);

    console.log(
      `\nTable 2. End to end on the local platform: ${K} decoy inspections planted (${PLANT_CONCURRENCY} plant requests at a time, alternately known good and known bad; ` +
        `decoys of 1–4 GPUs at n = ${Math.min(DECOY_N, 512)}: CAPACITY_MAX_N=${DECOY_N}, --decoy-n; \`npm start\` uses 256) ` +
        `${args['plant-first'] ? 'and then (--plant-first), once all are planted,' : 'while'} ${INSPECTORS} inspectors poll (limit ${POLL_LIMIT}; again after ${POLL_IDLE_MS} ms when a poll brought nothing to do) and, up to ${INSPECTOR_CONCURRENCY} assignments at a time each, check (checkTranscript, node:crypto SHA-256 + Ed25519, ${OWN_ENTRIES_PER_GPU} own entries per GPU), commit and reveal, concurrently` +
        `${SINGLE ? ', one request per commitment and per reveal (--single)' : ', each poll\'s commitments in one batch request and its due reveals in another'}. ` +
        `${cpus().length} CPUs shared by this process, the launcher (libSQL) and workerd; load average ${loadBefore.map((x) => x.toFixed(2)).join(' / ')} before, ` +
        `${loadavg().map((x) => x.toFixed(2)).join(' / ')} after.\n`,
    );
    console.log('| measure | value |');
    console.log('|---|---:|');
    console.log(`| K (decoys planted / asked) | ${plantedAt.size} / ${K} |`);
    console.log(`| decided (reveal answered decided: true) | ${decidedIds.length} |`);
    console.log(
      args['plant-first']
        ? `| wall time, inspectors started (all planted) → last decided | ${fmt(wallS)} s |`
        : `| wall time, first plant sent → last decided (inspectors running from the start) | ${fmt(wallS)} s |`,
    );
    console.log(`| inspections completed per second | ${fmt(rate)} |`);
    console.log(`| planting alone: all ${plantedAt.size} planted after | ${fmt(plantS)} s (${fmt(plantedAt.size / plantS)} plants/s) |`);
    console.log(`| last decided − last plant answered | ${fmt((phaseEnd - plantsDoneAt) / 1000)} s |`);
    console.log(`| plant → decided p50 / p99 / max | ${fmt(percentile(latencies, 50))} / ${fmt(percentile(latencies, 99))} / ${fmt(latencies.at(-1) ?? NaN)} s |`);
    console.log(`| inspector's checkTranscript per transcript p50 / p99 | ${fmt(percentile(checkMs, 50))} / ${fmt(percentile(checkMs, 99))} ms (${checkMs.length} checks) |`);
    console.log(`| CPU over the phase (% of one core): workerd / launcher (libSQL) / this process | ${cpuPct(cpu1.workerd - cpu0.workerd)} / ${cpuPct(cpu1.launcher - cpu0.launcher)} / ${cpuPct((cpu1.self.user + cpu1.self.system) / 1000)} |`);
    console.log(`| reports read (200) / failed | ${reportsRead} / ${reportFailures} |`);
    const slashedKinds = [...results.keys()].filter((r) => r !== 'paid' && r !== 'unsettled');
    const slashed = slashedKinds.reduce((sum, r) => sum + results.get(r)!, 0);
    const slashedGrid = slashedKinds.reduce((sum, r) => sum + (amounts.get(r) ?? 0), 0);
    console.log(`| verdicts paid (from the reports) | ${results.get('paid') ?? 0} (${fmt(amounts.get('paid') ?? 0)} GRID) |`);
    console.log(
      `| verdicts slashed (from the reports) | ${slashed} (${fmt(slashedGrid)} GRID${slashedKinds.length ? `; ${slashedKinds.map((r) => `${r} ${results.get(r)}`).join(', ')}` : ''}) |`,
    );
    console.log(`| verdicts not settled yet | ${results.get('unsettled') ?? 0} |`);
    console.log(`| outcome ≠ decoy's expectation / majority ≠ outcome / our inspectors' verdict ≠ expectation | ${outcomeMismatch} / ${majorityMismatch} / ${verdictsDisagree} |`);
    console.log(`| other inspections assigned (not planted by the bench) | ${others} |`);
    console.log(`| baseline: ${K} × GET /v1/inspectors/me, ${INSPECTORS} clients | ${fmt(baselineS)} s, ${fmt(K / baselineS)} requests/s |`);

    console.log('\n| requests | sent | 2xx | 409 | other non-2xx | errors | p50 ms | p99 ms | MB received |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const [kind, t] of traffic) {
      if (kind === 'setup') continue;
      const lat = sorted(t.latencies);
      const n2xx = [...t.statuses].filter(([s]) => s >= 200 && s < 300).reduce((s, [, c]) => s + c, 0);
      const n409 = t.statuses.get(409) ?? 0;
      console.log(`| ${kind} | ${t.sent} | ${n2xx} | ${n409} | ${t.sent - t.errors - n2xx - n409} | ${t.errors} | ${fmt(percentile(lat, 50))} | ${fmt(percentile(lat, 99))} | ${fmt(t.bytes / 1e6, 1)} |`);
    }
    const messages = [...traffic].flatMap(([kind, t]) => [...t.messages].map(([m, c]) => `  ${kind}: ${c} × ${m}`));
    if (messages.length > 0) console.log(`\nnon-2xx answers:\n${messages.join('\n')}`);
    console.log(
      `\ninspectors: ${inspectors.map((i) => `#${i.index} ${i.polls} polls (${i.emptyPolls} without progress), ${i.commits} commits, ${i.reveals} reveals, ${i.conflicts} conflicts, ${i.failures} failures`).join('; ')}`,
    );

    const complete = decidedIds.length === K;
    console.log('\nGoal:');
    console.log(
      `  ≥ ${GOAL_RATE} inspections/s locally: ${fmt(rate)} inspections/s over ${fmt(wallS)} s${complete ? '' : ` (only ${decidedIds.length} of ${K} decided)`} → ${complete && rate >= GOAL_RATE ? 'met' : 'NOT met'}` +
        ` (request floor on this machine: ${fmt(K / baselineS)} plain GETs/s with ${INSPECTORS} clients)`,
    );
  } catch (err) {
    if (platform) console.error(`platform output (start and latest lines):\n${platform.output().slice(-6000)}`);
    throw err;
  } finally {
    setupAgent.destroy();
    for (const i of inspectors) i.agent.destroy();
    if (platform) await platform.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main() {
  if (!args['skip-cost']) {
    const rows: CostRow[] = [];
    for (const n of SIZES) {
      rows.push(await measureCost(n));
      progress(`n = ${n}: prover ${fmt(rows.at(-1)!.proverMs, 1)} ms, verifier ${fmt(rows.at(-1)!.verifierMs, 2)} ms`);
    }
    await printCost(rows);
    const measured = rows.filter((r) => r.verifierMs / r.proverMs <= GOAL_VERIFIER_SHARE).map((r) => r.n);
    console.log('\nGoal:');
    console.log(
      `  verification ≤ 1% of the prover's work: measured CPU time (verifier / prover, same machine) within it for n = ${measured.join(', ') || 'none'} of ${SIZES.join(', ')} → ` +
        `${measured.length === rows.length ? 'met' : measured.length > 0 ? 'met only at the larger sizes' : 'NOT met'}; in multiply-adds (m·n / n³ = m / n²) within it for every n ≥ ${Math.ceil(Math.sqrt(OPENINGS / GOAL_VERIFIER_SHARE))} ` +
        `(all full catalog sizes: computed, not run)`,
    );
  }
  if (!args['skip-e2e']) await endToEnd();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
