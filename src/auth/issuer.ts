import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  type JSONWebKeySet,
  type JWK,
  type CryptoKey,
  SignJWT,
  calculateJwkThumbprint,
  createLocalJWKSet,
  decodeJwt,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
} from 'jose';

/** One client of the embedded issuer (HERALD_AUTH_CLIENTS): a shared secret or a public JWKS. */
export interface ClientConfig {
  id: string;
  secret?: string;
  jwks?: JSONWebKeySet;
  /** The scopes it may be given (space-separated). */
  scope: string;
  /** A fixed patient context: its tokens carry this `patient` claim. */
  patient?: string;
}

/** An OAuth token endpoint answer (RFC 6749 §5): the JSON body and its status. */
export interface TokenResponse {
  status: number;
  body: Record<string, unknown>;
  /** Set on a 401 after client_secret_basic (RFC 6749 §5.2). */
  wwwAuthenticate?: string;
}

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** SMART Backend Services: client assertions signed with RS384 or ES384, at most 5 minutes ahead. */
const ASSERTION_ALGORITHMS = ['RS384', 'ES384'];
const ASSERTION_MAX_LIFETIME_S = 300;
const SIGNING_ALG = 'ES256';

export function readClients(file: string): ClientConfig[] {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as { clients?: unknown };
  if (!Array.isArray(raw.clients)) throw new Error(`HERALD_AUTH_CLIENTS: ${file} must hold {"clients":[…]}`);
  const seen = new Set<string>();
  return raw.clients.map((c: Partial<ClientConfig>, i) => {
    const where = `HERALD_AUTH_CLIENTS: clients[${i}]`;
    if (typeof c.id !== 'string' || c.id === '') throw new Error(`${where} needs an id`);
    if (seen.has(c.id)) throw new Error(`${where}: the id '${c.id}' is used twice`);
    seen.add(c.id);
    if (typeof c.scope !== 'string') throw new Error(`${where} needs a scope string`);
    if ((typeof c.secret === 'string') === (c.jwks !== undefined)) throw new Error(`${where} needs exactly one of secret or jwks`);
    if (c.jwks !== undefined && !Array.isArray(c.jwks.keys)) throw new Error(`${where}: jwks must be {"keys":[…]}`);
    if (typeof c.secret === 'string' && c.secret.length < 16) throw new Error(`${where}: the secret must be at least 16 characters`);
    return c as ClientConfig;
  });
}

/**
 * Where the embedded issuer's signing key is kept when HERALD_AUTH_KEY names no file: a JWK file
 * in the data folder (SQLite), or the database every node shares (PostgreSQL: `share` stores the
 * first candidate any node offers and returns the stored one, so every node signs with one key).
 * With neither (an in-memory store) the key lives as long as the process.
 */
export interface KeyHome {
  file?: string;
  share?: (candidate: string) => Promise<string>;
}

/**
 * The signing key: a private JWK file (HERALD_AUTH_KEY or the data folder's `auth-key.json`,
 * created with mode 0600 when missing), the one kept in a shared database, or a key that lives as
 * long as the process.
 */
export async function signingKey(home: KeyHome): Promise<{ key: CryptoKey; publicJwk: JWK }> {
  const { file, share } = home;
  let jwk: JWK;
  if (file && existsSync(file)) {
    jwk = JSON.parse(readFileSync(file, 'utf8')) as JWK;
    if (!jwk.d) throw new Error(`HERALD_AUTH_KEY: ${file} must hold a private JWK`);
  } else {
    const pair = await generateKeyPair(SIGNING_ALG, { extractable: true });
    jwk = { ...(await exportJWK(pair.privateKey)), alg: SIGNING_ALG, use: 'sig' };
    jwk.kid = await calculateJwkThumbprint(jwk);
    if (file) {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, JSON.stringify(jwk), { mode: 0o600 });
    } else if (share) {
      jwk = JSON.parse(await share(JSON.stringify(jwk))) as JWK;
    }
  }
  const alg = jwk.alg ?? SIGNING_ALG;
  const key = (await importJWK(jwk, alg)) as CryptoKey;
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = jwk;
  return { key, publicJwk: { ...publicJwk, alg, use: 'sig', kid: jwk.kid ?? (await calculateJwkThumbprint(publicJwk)) } };
}

/**
 * The embedded token issuer (SMART Backend Services, client_credentials): authenticates a client
 * by client_secret_basic, client_secret_post or private_key_jwt and signs a short-lived access
 * token with the client's scopes (those asked for, when `scope` is given).
 */
export class EmbeddedIssuer {
  /** Assertion `jti`s already used, until their expiry (replay protection). */
  private readonly usedJtis = new Map<string, number>();
  private readonly clients: Map<string, ClientConfig>;

  constructor(
    clients: ClientConfig[],
    private readonly signing: { key: CryptoKey; publicJwk: JWK },
    /** The `iss` of its tokens and their audience. */
    readonly issuer: string,
    readonly tokenUrl: string,
    private readonly ttlMs: number,
    /** The server's clock (app.ts): it stamps `iat` and `exp` and judges client assertions. */
    private readonly now: () => Date,
  ) {
    this.clients = new Map(clients.map((c) => [c.id, c]));
  }

  get jwks(): JSONWebKeySet {
    return { keys: [this.signing.publicJwk] };
  }

  async token(form: URLSearchParams, authorization: string | undefined): Promise<TokenResponse> {
    if (form.get('grant_type') !== 'client_credentials') {
      return error(400, form.has('grant_type') ? 'unsupported_grant_type' : 'invalid_request', 'grant_type must be client_credentials');
    }
    const auth = await this.authenticate(form, authorization);
    if ('status' in auth) return auth;
    const client = auth;
    const allowed = client.scope.split(/\s+/).filter(Boolean);
    const asked = form.get('scope');
    const scopes = asked === null ? allowed : asked.split(/\s+/).filter((s) => allowed.includes(s));
    if (scopes.length === 0) return error(400, 'invalid_scope', 'None of the requested scopes is allowed for this client');
    const scope = scopes.join(' ');
    const expiresIn = Math.round(this.ttlMs / 1000);
    const iat = Math.floor(this.now().getTime() / 1000);
    const accessToken = await new SignJWT({ scope, client_id: client.id, ...(client.patient ? { patient: client.patient } : {}) })
      .setProtectedHeader({ alg: this.signing.publicJwk.alg!, kid: this.signing.publicJwk.kid!, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setSubject(client.id)
      .setAudience(this.issuer)
      .setIssuedAt(iat)
      .setExpirationTime(iat + expiresIn)
      .setJti(randomUUID())
      .sign(this.signing.key);
    return {
      status: 200,
      body: { access_token: accessToken, token_type: 'bearer', expires_in: expiresIn, scope, ...(client.patient ? { patient: client.patient } : {}) },
    };
  }

  private async authenticate(form: URLSearchParams, authorization: string | undefined): Promise<ClientConfig | TokenResponse> {
    if (authorization?.toLowerCase().startsWith('basic ')) {
      const [id, secret] = basicCredentials(authorization.slice(6));
      const client = id === undefined ? undefined : this.clients.get(id);
      if (!client?.secret || secret === undefined || !sameSecret(secret, client.secret)) {
        return { ...error(401, 'invalid_client', 'Client authentication failed'), wwwAuthenticate: 'Basic realm="herald"' };
      }
      return client;
    }
    if (form.has('client_assertion') || form.has('client_assertion_type')) return this.assertion(form);
    const id = form.get('client_id');
    const secret = form.get('client_secret');
    const client = id === null ? undefined : this.clients.get(id);
    if (!client?.secret || secret === null || !sameSecret(secret, client.secret)) return error(401, 'invalid_client', 'Client authentication failed');
    return client;
  }

  /** private_key_jwt (RFC 7523, SMART Backend Services): iss = sub = client id, aud = token URL, unique jti. */
  private async assertion(form: URLSearchParams): Promise<ClientConfig | TokenResponse> {
    const assertion = form.get('client_assertion');
    if (form.get('client_assertion_type') !== ASSERTION_TYPE || !assertion) {
      return error(400, 'invalid_request', `client_assertion_type must be ${ASSERTION_TYPE}, with a client_assertion`);
    }
    let iss: unknown;
    try {
      iss = decodeJwt(assertion).iss;
    } catch {
      return error(401, 'invalid_client', 'The client assertion is not a well-formed JWT');
    }
    const client = typeof iss === 'string' ? this.clients.get(iss) : undefined;
    if (!client?.jwks) return error(401, 'invalid_client', 'Client authentication failed');
    const at = this.now();
    let payload;
    try {
      ({ payload } = await jwtVerify(assertion, createLocalJWKSet(client.jwks), {
        issuer: client.id,
        subject: client.id,
        audience: this.tokenUrl,
        algorithms: ASSERTION_ALGORITHMS,
        requiredClaims: ['exp', 'jti'],
        currentDate: at,
      }));
    } catch {
      return error(401, 'invalid_client', 'The client assertion is invalid (signature, algorithm, iss/sub, aud or exp)');
    }
    const now = Math.floor(at.getTime() / 1000);
    const exp = payload.exp!;
    if (exp > now + ASSERTION_MAX_LIFETIME_S) return error(401, 'invalid_client', 'The client assertion expires more than 5 minutes from now');
    for (const [k, until] of this.usedJtis) if (until < now) this.usedJtis.delete(k);
    const key = `${client.id}\n${payload.jti}`;
    if (this.usedJtis.has(key)) return error(401, 'invalid_client', 'The client assertion was used before (jti replay)');
    this.usedJtis.set(key, exp);
    return client;
  }
}

function error(status: number, code: string, description: string): TokenResponse {
  return { status, body: { error: code, error_description: description } };
}

/** `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1). */
function basicCredentials(encoded: string): [string | undefined, string | undefined] {
  const text = Buffer.from(encoded.trim(), 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return [undefined, undefined];
  try {
    return [decodeURIComponent(text.slice(0, colon).replace(/\+/g, ' ')), decodeURIComponent(text.slice(colon + 1).replace(/\+/g, ' '))];
  } catch {
    return [undefined, undefined];
  }
}

/** Constant-time comparison (of digests, so lengths never leak). */
export function sameSecret(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}
