import { createHash } from 'node:crypto';

/**
 * The key under which a websocket binding token is stored and found again: the operation that
 * issues a token and the hub that binds with it must agree, so both use this (D-2: the token
 * itself is never kept). A hash lookup, not a comparison of secrets: no constant time needed.
 */
export const bindingTokenHash = (token: string): string => createHash('sha256').update(token).digest('base64url');
