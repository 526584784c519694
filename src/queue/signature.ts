// QStash's delivery signature: an HS256 JWT in `Upstash-Signature`, signed with the current
// signing key, whose claims bind it to the destination URL (`sub`) and the body (`body` =
// base64url SHA-256). Written here for the local transport; verified with the official
// @upstash/qstash Receiver in every environment.
import { SignJWT } from 'jose';
import { sha256, toBase64Url } from '../auth/encoding.ts';

export async function signLikeQStash(signingKey: string, url: string, body: string, nowS: number): Promise<string> {
  const bodyHash = toBase64Url(await sha256(body));
  return new SignJWT({ body: bodyHash })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer('Upstash')
    .setSubject(url)
    .setIssuedAt(nowS)
    .setNotBefore(nowS)
    .setExpirationTime(nowS + 300)
    .setJti(`jwt_${crypto.randomUUID().replaceAll('-', '')}`)
    .sign(new TextEncoder().encode(signingKey));
}
