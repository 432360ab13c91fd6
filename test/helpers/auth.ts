import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, type JWK, SignJWT, UnsecuredJWT, exportJWK, exportSPKI, generateKeyPair } from 'jose';

/**
 * An external OAuth issuer for tests: its JWKS served over HTTP on loopback, and tokens minted
 * with jose, good or bad in every way a resource server must notice.
 */
export interface TestIssuer {
  /** The `iss` of its tokens. */
  issuer: string;
  /** Where its JWKS is served. */
  jwksUrl: string;
  /** How many times the JWKS was fetched. */
  fetches(): number;
  mint(claims: Record<string, unknown>, options?: MintOptions): Promise<string>;
  /** Adds a new key to the JWKS and returns its kid (mint with `{ kid }` to use it). */
  rotate(): Promise<string>;
  close(): Promise<void>;
}

export interface MintOptions {
  alg?: 'RS256' | 'ES256';
  kid?: string;
  /** Seconds from now; negative for an expired token. Default 300. */
  expiresIn?: number;
  /** Seconds from now before which the token is not valid. */
  notBefore?: number;
  iss?: string;
  aud?: string;
  /** Sign with a key the JWKS does not hold, under the JWKS's own kid (a forged signature). */
  forge?: boolean;
  /** `none`: an unsecured JWT; `HS256`: HMAC keyed with the RSA public key (alg confusion). */
  attack?: 'none' | 'HS256';
}

interface Key {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

async function newKey(alg: 'RS256' | 'ES256', kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

export async function startIssuer(audience: string): Promise<TestIssuer> {
  const keys = [await newKey('RS256', 'rsa-1'), await newKey('ES256', 'ec-1')];
  const outsider = await newKey('RS256', 'rsa-1');
  let fetches = 0;
  const server = createServer((req, res) => {
    fetches++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: keys.map((k) => k.jwk) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  const issuer = 'https://issuer.example.test';
  return {
    issuer,
    jwksUrl,
    fetches: () => fetches,
    async mint(claims, o = {}) {
      const now = Math.floor(Date.now() / 1000);
      const body = { iat: now, exp: now + (o.expiresIn ?? 300), iss: o.iss ?? issuer, aud: o.aud ?? audience, ...(o.notBefore ? { nbf: now + o.notBefore } : {}), ...claims };
      if (o.attack === 'none') return new UnsecuredJWT(body).encode();
      const alg = o.alg ?? 'RS256';
      const key = (o.kid ? keys.find((k) => k.kid === o.kid) : undefined) ?? keys.find((k) => k.alg === alg)!;
      if (o.attack === 'HS256') {
        const pem = await exportSPKI(keys[0]!.publicKey);
        return new SignJWT(body).setProtectedHeader({ alg: 'HS256', kid: keys[0]!.kid }).sign(new TextEncoder().encode(pem));
      }
      const signer = o.forge ? outsider : key;
      return new SignJWT(body).setProtectedHeader({ alg: signer.alg, kid: o.kid ?? key.kid, typ: 'JWT' }).sign(signer.privateKey);
    },
    async rotate() {
      const kid = `rsa-${keys.length + 1}`;
      keys.push(await newKey('RS256', kid));
      return kid;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
