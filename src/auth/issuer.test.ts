/**
 * The embedded issuer on the server's clock (issue 12): the tokens it signs carry `iat` and `exp`
 * from the injected clock, a client assertion is judged by that clock, and a verifier on the
 * same clock accepts the token until `exp` and refuses it after.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { SignJWT, createLocalJWKSet, decodeJwt, exportJWK, generateKeyPair } from 'jose';
import { EmbeddedIssuer, signingKey } from './issuer.ts';
import { TokenError, TokenVerifier } from './verify.ts';

const BASE = 'https://herald.example.test';
const TOKEN_URL = `${BASE}/auth/token`;
const SECRET = 'a-secret-of-sixteen-or-more';

async function issuerAt(clock: () => Date, jwks?: { keys: object[] }) {
  const key = await signingKey({});
  const clients = [
    { id: 'svc', secret: SECRET, scope: 'system/*.rs' },
    ...(jwks ? [{ id: 'asym', jwks: jwks as never, scope: 'system/*.rs' }] : []),
  ];
  const issuer = new EmbeddedIssuer(clients, key, BASE, TOKEN_URL, 300_000, clock);
  const verifier = new TokenVerifier([{ issuer: BASE, audience: BASE, keys: createLocalJWKSet(issuer.jwks), algorithms: [key.publicJwk.alg!] }], 'herald/admin', clock);
  return { issuer, verifier };
}

const form = (fields: Record<string, string>) => new URLSearchParams(fields);

describe('EmbeddedIssuer on the injected clock', () => {
  it('stamps iat and exp from the clock, and a verifier on the same clock refuses the token once exp has passed', async () => {
    let clock = new Date('2020-03-01T12:00:00Z');
    const { issuer, verifier } = await issuerAt(() => clock);
    const answer = await issuer.token(form({ grant_type: 'client_credentials', client_id: 'svc', client_secret: SECRET }), undefined);
    assert.equal(answer.status, 200);
    const token = answer.body.access_token as string;
    const { iat, exp } = decodeJwt(token);
    assert.equal(iat, Date.parse('2020-03-01T12:00:00Z') / 1000);
    assert.equal(exp, iat! + 300);
    clock = new Date('2020-03-01T12:04:59Z');
    assert.equal((await verifier.verify(token)).id, 'svc');
    clock = new Date('2020-03-01T12:05:01Z'); // past exp, although the verifier had cached the token
    await assert.rejects(verifier.verify(token), (err: unknown) => err instanceof TokenError && /expired/.test(err.message));
  });

  it('judges a client assertion by the clock: its exp and the 5-minute limit', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES384', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'a1', alg: 'ES384' };
    let clock = new Date('2020-03-01T12:00:00Z');
    const { issuer } = await issuerAt(() => clock, { keys: [jwk] });
    const t = Date.parse('2020-03-01T12:00:00Z') / 1000;
    const assertion = (exp: number) =>
      new SignJWT({}).setProtectedHeader({ alg: 'ES384', kid: 'a1' }).setIssuer('asym').setSubject('asym').setAudience(TOKEN_URL).setExpirationTime(exp).setJti(randomUUID()).sign(privateKey);
    const ask = async (a: string) =>
      issuer.token(form({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: a }), undefined);
    assert.equal((await ask(await assertion(t + 120))).status, 200);
    const tooLong = await ask(await assertion(t + 600));
    assert.equal(tooLong.status, 401);
    assert.match(String(tooLong.body.error_description), /more than 5 minutes/);
    const later = await assertion(t + 120);
    clock = new Date('2020-03-01T12:03:00Z'); // the assertion's exp has passed by the clock
    assert.equal((await ask(later)).status, 401);
  });
});
