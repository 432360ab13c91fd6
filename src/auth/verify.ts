import { readFileSync } from 'node:fs';
import { type JSONWebKeySet, type JWTVerifyGetKey, createLocalJWKSet, createRemoteJWKSet, decodeJwt, errors, jwtVerify } from 'jose';
import { type Principal, principalOf } from './scopes.ts';

/** Why a bearer token was refused: the text of the 401 (never the token itself). */
export class TokenError extends Error {
  /** RFC 6750 error code: `invalid_request` (malformed header) or `invalid_token`. */
  constructor(
    message: string,
    readonly code: 'invalid_request' | 'invalid_token' = 'invalid_token',
  ) {
    super(message);
    this.name = 'TokenError';
  }
}

/** One trusted issuer: its `iss`, the audience its tokens must name, its keys and algorithms. */
export interface TokenSource {
  issuer: string;
  audience?: string;
  keys: JWTVerifyGetKey;
  algorithms: string[];
}

/** RS256 and ES256 for access tokens: asymmetric only (no `none`, no HS* confusion). */
export const ACCESS_TOKEN_ALGORITHMS = ['RS256', 'ES256'];

/**
 * The keys of an external issuer: a JWKS URL (cached; refetched when a token names an unknown
 * `kid`, at most once per `refetchMs`) or a JWKS file read once.
 */
export function jwksKeys(where: string, refetchMs: number): JWTVerifyGetKey {
  if (/^https?:\/\//.test(where)) {
    return createRemoteJWKSet(new URL(where), { cooldownDuration: refetchMs, cacheMaxAge: 10 * 60_000, timeoutDuration: 5000 });
  }
  const jwks = JSON.parse(readFileSync(where, 'utf8')) as JSONWebKeySet;
  if (!Array.isArray(jwks.keys)) throw new Error(`HERALD_AUTH_JWKS: ${where} is not a JWKS ({"keys":[…]})`);
  return createLocalJWKSet(jwks);
}

/** How long a verified token is remembered (by its exact text), at most until it expires. */
const CACHE_MS = 60_000;
const CACHE_SIZE = 10_000;

/**
 * Verifies bearer tokens (jose: signature, `iss`, `aud`, `exp`, `nbf`, allowed algorithms) and
 * turns them into Principals. Verified tokens are cached briefly by their exact string, so a
 * client sending the same token again costs a map lookup.
 */
export class TokenVerifier {
  private readonly cache = new Map<string, { principal: Principal; until: number }>();

  constructor(
    private readonly sources: readonly TokenSource[],
    private readonly adminScope: string,
    /** The server's clock (app.ts): it decides `exp` and `nbf`, and how long a token stays cached. */
    private readonly now: () => Date,
  ) {}

  async verify(token: string): Promise<Principal> {
    const at = this.now();
    const now = at.getTime();
    const hit = this.cache.get(token);
    if (hit && hit.until > now) return hit.principal;
    if (hit) this.cache.delete(token);
    let iss: unknown;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      throw new TokenError('The bearer token is not a well-formed JWT');
    }
    const source = this.sources.find((s) => s.issuer === iss);
    if (!source) throw new TokenError('The token was not issued by a trusted issuer');
    let payload: Awaited<ReturnType<typeof jwtVerify>>['payload'];
    try {
      ({ payload } = await jwtVerify(token, source.keys, {
        issuer: source.issuer,
        ...(source.audience ? { audience: source.audience } : {}),
        algorithms: source.algorithms,
        requiredClaims: ['exp'],
        currentDate: at,
      }));
    } catch (err) {
      throw new TokenError(reason(err));
    }
    const id = typeof payload.sub === 'string' && payload.sub ? payload.sub : payload.client_id;
    if (typeof id !== 'string' || id === '') throw new TokenError('The token names no subject (sub or client_id)');
    const scope = typeof payload.scope === 'string' ? payload.scope : '';
    const patient = typeof payload.patient === 'string' && payload.patient ? payload.patient : undefined;
    const principal = principalOf(id, scope, patient, this.adminScope);
    if (this.cache.size >= CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(token, { principal, until: Math.min(now + CACHE_MS, (payload.exp as number) * 1000) });
    return principal;
  }
}

function reason(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'The token has expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' || err.claim === 'iat') return 'The token is not valid yet';
    if (err.claim === 'aud') return 'The token is not meant for this server (audience)';
    if (err.claim === 'iss') return 'The token was not issued by a trusted issuer';
    return `The token's ${err.claim} claim is missing or invalid`;
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'The token is signed with an algorithm this server does not accept';
  if (err instanceof errors.JWKSNoMatchingKey) return 'The token is signed with an unknown key';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'The token signature is invalid';
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JOSEError) return 'The token could not be verified';
  return 'The token could not be verified';
}
