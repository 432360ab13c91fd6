/**
 * Bearer token verification with jose (issue 13, REQUIREMENTS §10): an external issuer's JWKS over
 * HTTP on loopback (refetched for an unknown kid, at most once per cooldown) or from a file; RS256
 * and ES256 only.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type JWK, SignJWT, UnsecuredJWT, exportJWK, exportSPKI, generateKeyPair } from 'jose';
import { ACCESS_TOKEN_ALGORITHMS, TokenError, TokenVerifier, jwksKeys } from './verify.ts';

const ISS = 'https://issuer.example.test';
type Alg = 'RS256' | 'ES256' | 'RS384';
const keys = new Map<string, { alg: Alg; privateKey: CryptoKey; publicKey: CryptoKey; jwk: JWK }>();
const published: string[] = [];
let fetches = 0;
let server: Server;
let jwksUrl: string;

async function addKey(kid: string, alg: Alg, publish = true): Promise<void> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  keys.set(kid, { alg, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } });
  if (publish) published.push(kid);
}

const jwks = () => ({ keys: published.map((k) => keys.get(k)!.jwk) });

function mint(kid: string, claims: Record<string, unknown> = {}, exp = '5m'): Promise<string> {
  const k = keys.get(kid)!;
  return new SignJWT({ scope: 'system/*.rs', ...claims }).setProtectedHeader({ alg: k.alg, kid }).setIssuer(ISS).setSubject('svc').setExpirationTime(exp).sign(k.privateKey);
}

const verifier = (refetchMs: number, where = jwksUrl, now = () => new Date()) =>
  new TokenVerifier([{ issuer: ISS, keys: jwksKeys(where, refetchMs), algorithms: ACCESS_TOKEN_ALGORITHMS }], 'herald/admin', now);

async function refused(v: TokenVerifier, token: string, why: RegExp): Promise<void> {
  await assert.rejects(v.verify(token), (err: unknown) => err instanceof TokenError && why.test(err.message));
}

before(async () => {
  await addKey('rsa-1', 'RS256');
  await addKey('ec-1', 'ES256');
  server = createServer((_req, res) => {
    fetches++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(jwks()));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
});
after(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));

describe('TokenVerifier with an external JWKS', () => {
  it('accepts RS256 and ES256 tokens and turns them into principals', async () => {
    const v = verifier(60_000);
    const rsa = await v.verify(await mint('rsa-1', { patient: 'p1' }));
    assert.deepEqual([rsa.id, rsa.patient, rsa.scope], ['svc', 'p1', 'system/*.rs']);
    assert.equal((await v.verify(await mint('ec-1'))).id, 'svc');
  });

  it('takes client_id as the identity when there is no sub', async () => {
    const k = keys.get('rsa-1')!;
    const token = await new SignJWT({ client_id: 'lab-feed', scope: '' }).setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' }).setIssuer(ISS).setExpirationTime('5m').sign(k.privateKey);
    assert.equal((await verifier(60_000).verify(token)).id, 'lab-feed');
  });

  it('refuses other algorithms: RS384, HS256 keyed with the public key, none', async () => {
    await addKey('rsa384', 'RS384');
    const v = verifier(0);
    await refused(v, await mint('rsa384'), /algorithm/);
    const pem = await exportSPKI(keys.get('rsa-1')!.publicKey);
    const hs = await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' }).setIssuer(ISS).setExpirationTime('5m').sign(new TextEncoder().encode(pem));
    await refused(v, hs, /algorithm/);
    await refused(v, new UnsecuredJWT({ sub: 'x', iss: ISS, exp: Math.floor(Date.now() / 1000) + 300 }).encode(), /algorithm|verified/);
  });

  it('refuses expired tokens, tokens without exp and tokens of another issuer', async () => {
    const v = verifier(60_000);
    await refused(v, await mint('rsa-1', {}, '-1m'), /expired/);
    const k = keys.get('rsa-1')!;
    await refused(v, await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' }).setIssuer(ISS).sign(k.privateKey), /exp/);
    await refused(v, await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' }).setIssuer('https://evil.test').setExpirationTime('5m').sign(k.privateKey), /trusted issuer/);
  });

  it('judges exp and nbf by the injected clock, also for a token it has cached', async () => {
    // Valid only during 2020-01-01 00:00-00:05 UTC: long past by the real clock.
    const k = keys.get('rsa-1')!;
    const t0 = Date.parse('2020-01-01T00:00:00Z') / 1000;
    const token = await new SignJWT({ scope: 'system/*.rs' }).setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' }).setIssuer(ISS).setSubject('svc').setNotBefore(t0).setExpirationTime(t0 + 300).sign(k.privateKey);
    let clock = new Date('2020-01-01T00:01:00Z');
    const v = verifier(60_000, jwksUrl, () => clock);
    assert.equal((await v.verify(token)).id, 'svc');
    clock = new Date('2020-01-01T00:06:00Z'); // past exp, within the verifier's 60 s cache
    await refused(v, token, /expired/);
    clock = new Date('2019-12-31T23:59:00Z'); // before nbf
    await refused(v, token, /not valid yet/);
    await refused(verifier(60_000), token, /expired/); // and the real clock sees it expired
  });

  it('fetches the JWKS again when a token names an unknown kid', async () => {
    const v = verifier(0);
    await v.verify(await mint('rsa-1'));
    const before = fetches;
    await addKey('rsa-new', 'RS256');
    assert.equal((await v.verify(await mint('rsa-new'))).id, 'svc');
    assert.equal(fetches, before + 1);
  });

  it('refetches at most once per cooldown, however many unknown kids arrive (rate limit)', async () => {
    const v = verifier(10 * 60_000);
    await v.verify(await mint('rsa-1'));
    const before = fetches;
    await addKey('rsa-later', 'RS256');
    for (let i = 0; i < 20; i++) {
      await refused(v, await mint('rsa-later', { n: i }), /unknown key/);
    }
    await addKey('never-published', 'RS256', false);
    await refused(v, await mint('never-published'), /unknown key/);
    assert.equal(fetches, before, 'no fetch during the cooldown');
  });

  it('reads a JWKS from a file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-jwks-'));
    const file = join(dir, 'jwks.json');
    writeFileSync(file, JSON.stringify(jwks()));
    const v = verifier(0, file);
    assert.equal((await v.verify(await mint('ec-1'))).id, 'svc');
    writeFileSync(join(dir, 'bad.json'), '{"nokeys":1}');
    assert.throws(() => jwksKeys(join(dir, 'bad.json'), 0), /not a JWKS/);
  });
});
