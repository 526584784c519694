// SHA-256 through node:crypto: synchronous and native in Node and in workerd (nodejs_compat), so
// the thousands of 33- and 65-byte Merkle hashes of one check cost no Web Crypto round trip each
// (about 4× faster in the Worker's verifier; bench/inspections.ts). The same bytes as Web Crypto.
import { createHash } from 'node:crypto';
import type { Sha256 } from './sha256.ts';

export const nodeSha256: Sha256 = async (data) => new Uint8Array(createHash('sha256').update(data).digest());
