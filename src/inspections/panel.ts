// Who inspects, and what each inspector's verdict earns: the seeded draw of 2N+1 inspectors
// weighted by bond, the verdict commitment, the majority, and each assignment's result. Pure: the
// seed and the candidate pool come in, so anyone holding a report can redo the draw.
import { signedMessage } from '../contracts/signed-message.ts';
import { VERDICT_COMMIT_DOMAIN, VERDICT_DOMAIN, verdictFields, type Verdict } from '../contracts/inspector-verdicts.ts';
import { fromHex, toHex } from './encoding.ts';
import { ascii, concatBytes, type Sha256 } from './sha256.ts';

export const DRAW_DOMAIN = 'gridlease/inspection/v1/draw';

export interface Candidate {
  accountId: string;
  /** Active bond (bonded − unbonding), GRID micro-units. */
  active: bigint;
}

export interface Drawn {
  accountId: string;
  weight: bigint;
}

/** A bond counts up to the cap: a whale cannot fill every panel. */
export const drawWeight = (active: bigint, cap: bigint): bigint => (active < cap ? active : cap);

/**
 * The draw's seed: SHA-256(DRAW_DOMAIN ‖ 0x00 ‖ inspection id ‖ 0x00 ‖ the challenge's seed or
 * nonce ‖ 0x00 ‖ the node's signature over its answer ‖ 0x00 ‖ the platform's random). The node
 * signs (deterministic Ed25519) bytes that include the platform's seed, so the platform cannot
 * know the signature when it picks the seed, and the node cannot know the platform's random;
 * both are published in the report with the pool, so anyone can redo the draw.
 */
export async function drawSeed(inputs: { inspectionId: string; challengeSeed: string; nodeSignature: string; platformRandom: string }, sha256: Sha256): Promise<string> {
  const z = Uint8Array.of(0);
  return toHex(
    await sha256(concatBytes(ascii(DRAW_DOMAIN), z, ascii(inputs.inspectionId), z, ascii(inputs.challengeSeed), z, ascii(inputs.nodeSignature), z, ascii(inputs.platformRandom))),
  );
}

const bigFrom = (bytes: Uint8Array) => bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);

/**
 * Draws up to `size` distinct inspectors without replacement, each round with probability
 * weight / remaining total: round r takes x = SHA-256(seed ‖ u32be r) mod total (a 256-bit
 * number, so the bias is below 2⁻²⁰⁰) and walks the candidates in account-id order. Candidates
 * of weight 0 are never drawn. Fewer candidates than `size` draws them all.
 */
export async function drawPanel(seedHex: string, candidates: readonly Candidate[], size: number, cap: bigint, sha256: Sha256): Promise<Drawn[]> {
  const seed = fromHex(seedHex);
  if (!seed) throw new TypeError('the draw seed is not hex');
  let pool = [...candidates]
    .map((c) => ({ accountId: c.accountId, weight: drawWeight(c.active, cap) }))
    .filter((c) => c.weight > 0n)
    .sort((a, b) => (a.accountId < b.accountId ? -1 : a.accountId > b.accountId ? 1 : 0));
  const drawn: Drawn[] = [];
  for (let round = 0; round < size && pool.length > 0; round++) {
    const total = pool.reduce((sum, c) => sum + c.weight, 0n);
    const r = new Uint8Array(4);
    new DataView(r.buffer).setUint32(0, round);
    let x = bigFrom(await sha256(concatBytes(seed, r))) % total;
    let at = 0;
    while (x >= pool[at]!.weight) x -= pool[at++]!.weight;
    drawn.push(pool[at]!);
    pool = pool.filter((_, i) => i !== at);
  }
  return drawn;
}

/** The commitment an inspector sends first: SHA-256(VERDICT_COMMIT_DOMAIN ‖ salt ‖ the signed verdict's bytes), hex. */
export async function verdictCommitment(saltHex: string, verdict: Verdict, sha256: Sha256): Promise<string> {
  const salt = fromHex(saltHex);
  if (!salt || salt.length !== 32) throw new TypeError('the salt must be 32 bytes of hex');
  return toHex(await sha256(concatBytes(ascii(VERDICT_COMMIT_DOMAIN), salt, signedMessage(VERDICT_DOMAIN, verdictFields(verdict)))));
}

/** The majority of the revealed verdicts; null on a tie or when none was revealed. */
export function majority(verdicts: readonly ('pass' | 'fail')[]): 'pass' | 'fail' | null {
  const pass = verdicts.filter((v) => v === 'pass').length;
  const fail = verdicts.length - pass;
  return pass === fail ? null : pass > fail ? 'pass' : 'fail';
}

export type AssignmentResult = 'paid' | 'wrong' | 'missed';

/** An assignment's result once the outcome is known: a verdict matching it is paid, a wrong one or none at all is slashed. */
export function assignmentResult(revealed: 'pass' | 'fail' | null, outcome: 'pass' | 'fail'): AssignmentResult {
  if (revealed === null) return 'missed';
  return revealed === outcome ? 'paid' : 'wrong';
}

export interface PayConfig {
  /** Inspectors per inspection: 2N + 1. */
  panelSize: number;
  /** A bond counts for the draw up to this. */
  weightCap: bigint;
  reward: bigint;
  wrongSlash: bigint;
  missSlash: bigint;
  commitMs: number;
  revealMs: number;
  /** Parts per million of real inspections followed by a decoy. */
  decoyPpm: number;
}

export interface PayVars {
  INSPECTION_N?: string;
  INSPECTION_WEIGHT_CAP?: string;
  INSPECTION_REWARD?: string;
  INSPECTION_WRONG_SLASH?: string;
  INSPECTION_MISS_SLASH?: string;
  INSPECTION_COMMIT_S?: string;
  INSPECTION_REVEAL_S?: string;
  INSPECTION_DECOY_PPM?: string;
}

const MICRO = 1_000_000n;

function amount(text: string | undefined, fallback: bigint): bigint {
  if (text === undefined || !/^[0-9]{1,12}(\.[0-9]{1,6})?$/.test(text.trim())) return fallback;
  const [whole, frac = ''] = text.trim().split('.');
  return BigInt(whole!) * MICRO + BigInt(frac.padEnd(6, '0'));
}

function count(text: string | undefined, fallback: number, max: number): number {
  const value = Number(text);
  return text !== undefined && text.trim() !== '' && Number.isInteger(value) && value >= 0 && value <= max ? value : fallback;
}

export function payConfig(env: PayVars): PayConfig {
  return {
    panelSize: 2 * count(env.INSPECTION_N, 1, 10) + 1,
    weightCap: amount(env.INSPECTION_WEIGHT_CAP, 10_000n * MICRO),
    reward: amount(env.INSPECTION_REWARD, 1n * MICRO),
    wrongSlash: amount(env.INSPECTION_WRONG_SLASH, 50n * MICRO),
    missSlash: amount(env.INSPECTION_MISS_SLASH, 5n * MICRO),
    commitMs: count(env.INSPECTION_COMMIT_S, 600, 86_400) * 1000,
    revealMs: count(env.INSPECTION_REVEAL_S, 600, 86_400) * 1000,
    decoyPpm: count(env.INSPECTION_DECOY_PPM, 100_000, 1_000_000),
  };
}
