import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The key under which a websocket binding token is stored and found again: the operation that
 * issues a token and the hub that binds with it must agree, so both use this (D-2: the token
 * itself is never kept). Binding looks the token up by this hash: timing can then reveal at most
 * something of the SHA-256 of a stored token, which does not help to find the token (256 random bits).
 */
export const bindingTokenHash = (token: string): string => createHash('sha256').update(token).digest('base64url');

/** Whether `token` hashes to `hash`, compared in constant time (issue 13). */
export function bindingTokenMatches(token: string, hash: string): boolean {
  const a = Buffer.from(bindingTokenHash(token));
  const b = Buffer.from(hash);
  return a.length === b.length && timingSafeEqual(a, b);
}
