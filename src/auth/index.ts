/**
 * Authentication and authorization (REQUIREMENTS §10, D-22): SMART bearer tokens verified with
 * jose (external issuer and/or Herald's embedded client_credentials issuer), scopes, patient
 * compartments and subscription secrets. Pure FHIR-side helpers plus the token machinery; the
 * HTTP edge authenticates and hands a Principal to the interactions, which enforce.
 */
import { dirname, join } from 'node:path';
import { FhirError } from '../fhir/errors.ts';
import type { AuthConfig } from './config.ts';
import { EmbeddedIssuer, type KeyHome, readClients, signingKey } from './issuer.ts';
import { ACCESS_TOKEN_ALGORITHMS, type TokenSource, TokenVerifier, jwksKeys } from './verify.ts';
import { createLocalJWKSet } from 'jose';

export type { AuthConfig } from './config.ts';
export { Compartments } from './compartment.ts';
export { EmbeddedIssuer, type TokenResponse } from './issuer.ts';
export { LETTER_NAMES, type Letter, type Principal, type Reach, principalOf, reach } from './scopes.ts';
export { MASK, maskSubscriptionSecrets } from './secrets.ts';
export { TokenError, TokenVerifier } from './verify.ts';
export { sameSecret } from './issuer.ts';

/** A 403 OperationOutcome: the caller is known but its scopes do not allow this. */
export const forbidden = (msg: string) => new FhirError(403, 'forbidden', msg);

/** The authentication of a running Herald: what verifies bearer tokens and, when on, the embedded issuer. */
export interface Auth {
  verifier: TokenVerifier;
  issuer?: EmbeddedIssuer;
  adminScope: string;
  maxSubscriptionsPerOwner: number;
  /** `[base]/.well-known/smart-configuration` (SMART App Launch §2.0.3, Backend Services). */
  smartConfiguration: Record<string, unknown>;
}

/** The scopes Herald understands, for smart-configuration's `scopes_supported`. */
const SCOPES_SUPPORTED = ['system/*.cruds', 'user/*.cruds', 'patient/*.cruds', 'system/*.read', 'system/*.write', 'user/*.read', 'patient/*.read'];

/**
 * Builds the authentication of a Herald whose public URL is `baseUrl`, on the server's clock
 * `now` (tokens are stamped and judged by it). The embedded issuer keeps its signing key in the
 * file HERALD_AUTH_KEY names, else in `dataDir` (beside a SQLite database), else through `share`
 * (a database every node shares); with none of them (an in-memory store) the key lives as long
 * as the process.
 */
export async function createAuth(config: AuthConfig, baseUrl: string, now: () => Date, dataDir: string | undefined, share?: KeyHome['share']): Promise<Auth> {
  const sources: TokenSource[] = [];
  if (config.external) {
    const { issuer, jwks, audience, jwksRefetchMs } = config.external;
    sources.push({ issuer, keys: jwksKeys(jwks, jwksRefetchMs), algorithms: ACCESS_TOKEN_ALGORITHMS, ...(audience ? { audience } : {}) });
  }
  let issuer: EmbeddedIssuer | undefined;
  if (config.embedded) {
    const clients = readClients(config.embedded.clients);
    const file = config.embedded.key ?? (dataDir ? join(dataDir, 'auth-key.json') : undefined);
    const key = await signingKey(file ? { file } : share ? { share } : {});
    issuer = new EmbeddedIssuer(clients, key, baseUrl, `${baseUrl}/auth/token`, config.embedded.tokenTtlMs, now);
    sources.push({ issuer: baseUrl, audience: baseUrl, keys: createLocalJWKSet(issuer.jwks), algorithms: [key.publicJwk.alg!] });
  }
  const smartConfiguration: Record<string, unknown> = {
    ...(issuer
      ? {
          issuer: issuer.issuer,
          jwks_uri: `${baseUrl}/auth/jwks`,
          token_endpoint: issuer.tokenUrl,
          token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
          token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
          grant_types_supported: ['client_credentials'],
        }
      : { issuer: config.external!.issuer }),
    scopes_supported: [...SCOPES_SUPPORTED, config.adminScope],
    capabilities: ['permission-v1', 'permission-v2', 'permission-patient', 'permission-user', 'client-confidential-symmetric', 'client-confidential-asymmetric'],
  };
  return { verifier: new TokenVerifier(sources, config.adminScope, now), ...(issuer ? { issuer } : {}), adminScope: config.adminScope, maxSubscriptionsPerOwner: config.maxSubscriptionsPerOwner, smartConfiguration };
}

/** The folder of a `sqlite:<path>` store, where the embedded issuer's key is kept. */
export function dataDirOf(db: string): string | undefined {
  const path = db.startsWith('sqlite:') ? db.slice('sqlite:'.length) : undefined;
  return path && path !== ':memory:' ? dirname(path) : undefined;
}
