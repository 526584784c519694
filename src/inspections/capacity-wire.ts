// Between the capacity challenge's wire shapes (src/contracts/inspections.ts) and the pure
// protocol: the verifier's whole check of a node's answer, from untrusted JSON to a verdict.
import {
  CapacityCommitmentSchema,
  OpeningsAnswerSchema,
  type CapacityChallenge,
  type OpeningRequest,
  type OpeningsAnswer,
} from '../contracts/inspections.ts';
import { fromBase64, fromHex, toBase64, toHex } from './encoding.ts';
import { verifyOpenings, type CapacityParams, type Opening, type OpeningsVerdict } from './openings.ts';
import { webCryptoSha256, type Sha256 } from './sha256.ts';

export function challengeParams(challenge: CapacityChallenge): CapacityParams {
  const seed = fromHex(challenge.seed);
  if (!seed) throw new TypeError('the challenge seed is not hex');
  return { seed, n: challenge.n, gpuCount: challenge.gpu_count, leafSize: challenge.leaf_size };
}

export function encodeOpenings(challengeId: string, gpus: readonly (readonly Opening[])[]): OpeningsAnswer {
  return {
    challenge_id: challengeId,
    gpus: gpus.map((openings) =>
      openings.map((o) => ({ leaf_index: o.leafIndex, leaf: toBase64(o.leaf), path: o.path.map(toHex) })),
    ),
  };
}

/** Wire openings to bytes, or null when a leaf or hash does not decode. */
export function decodeOpenings(answer: OpeningsAnswer): Opening[][] | null {
  const gpus: Opening[][] = [];
  for (const openings of answer.gpus) {
    const decoded: Opening[] = [];
    for (const o of openings) {
      const leaf = fromBase64(o.leaf);
      const path = o.path.map(fromHex);
      if (!leaf || path.some((h) => h === null)) return null;
      decoded.push({ leafIndex: o.leaf_index, leaf, path: path as Uint8Array[] });
    }
    gpus.push(decoded);
  }
  return gpus;
}

const refused = (message: string): OpeningsVerdict => ({ ok: false, failures: [{ reason: 'parameters', message }] });

/**
 * The verifier's check of a node's commitment and openings, both untrusted JSON, against the
 * challenge and opening request it sent. Never throws: anything malformed is a failed verdict.
 */
export async function checkCapacityAnswer(
  challenge: CapacityChallenge,
  request: OpeningRequest,
  commitment: unknown,
  answer: unknown,
  sha256: Sha256 = webCryptoSha256,
): Promise<OpeningsVerdict> {
  try {
    const committed = CapacityCommitmentSchema.safeParse(commitment);
    if (!committed.success) return refused('the commitment is malformed');
    const opened = OpeningsAnswerSchema.safeParse(answer);
    if (!opened.success) return refused('the openings are malformed');
    const ids = [request.challenge_id, committed.data.challenge_id, opened.data.challenge_id];
    if (ids.some((id) => id !== challenge.challenge_id)) return refused('the answer is for another challenge');
    const roots = committed.data.roots.map(fromHex) as Uint8Array[];
    const openSeed = fromHex(request.open_seed);
    const openings = decodeOpenings(opened.data);
    if (!openSeed || !openings) return refused('a leaf or hash does not decode');
    return await verifyOpenings(challengeParams(challenge), roots, openSeed, request.count, openings, sha256);
  } catch {
    return refused('the answer could not be checked');
  }
}
