import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { bearer, startIssuer, type TestIssuer } from '../helpers/auth.ts';
import { type TestServer, call, startServer } from '../helpers/server.ts';
import { persistentDb } from '../helpers/store.ts';
import { readNotification, subscriptionResource } from '../helpers/subscriptions.ts';
import { connectWs } from '../helpers/ws.ts';

/**
 * Issue 13 / REQUIREMENTS §10, D-2, D-5, D-22: Herald as a SMART resource server. One Herald runs
 * with both issuers at once: an external one (its JWKS served over HTTP on loopback, tokens minted
 * here with jose) and the embedded client_credentials issuer.
 */
const AUDIENCE = 'https://herald.example.test';
const TOPIC = 'http://example.org/topics/observation-created';
// Loopback endpoints are allowed explicitly, for when auth mode refuses private addresses.
const ENDPOINT = 'http://hook-user:hook-pass@127.0.0.1:9/hook';
const HEADER = 'Authorization: Bearer receiver-secret-123';

const dir = mkdtempSync(join(tmpdir(), 'herald-auth-'));
let issuer: TestIssuer;
let server: TestServer;
let assertionKeys: { rsa: CryptoKeyPair; ec: CryptoKeyPair };
const r4b = () => server.fhir('R4B');
const tokens: Record<string, string> = {};

async function jsonFile(name: string, value: unknown): Promise<string> {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(value));
  return file;
}

async function start(env: Record<string, string> = {}): Promise<TestServer> {
  return startServer({
    HERALD_AUTH_ISSUER: issuer.issuer,
    HERALD_AUTH_JWKS: issuer.jwksUrl,
    HERALD_AUTH_AUDIENCE: AUDIENCE,
    HERALD_AUTH_JWKS_REFETCH_S: '0',
    HERALD_AUTH_CLIENTS: join(dir, 'clients.json'),
    HERALD_MAX_SUBSCRIPTIONS_PER_OWNER: '3',
    HERALD_ENDPOINT_ALLOW: '127.0.0.1/32',
    ...env,
  });
}

before(async () => {
  issuer = await startIssuer(AUDIENCE);
  assertionKeys = { rsa: await generateKeyPair('RS384', { extractable: true }), ec: await generateKeyPair('ES384', { extractable: true }) };
  await jsonFile('clients.json', {
    clients: [
      { id: 'lab-feed', secret: 'lab-feed-secret-0123456789', scope: 'system/Observation.cruds system/Subscription.cruds' },
      { id: 'svc-rsa', jwks: { keys: [{ ...(await exportJWK(assertionKeys.rsa.publicKey)), kid: 'r1', alg: 'RS384' }] }, scope: 'system/Patient.rs' },
      { id: 'svc-ec', jwks: { keys: [{ ...(await exportJWK(assertionKeys.ec.publicKey)), kid: 'e1', alg: 'ES384' }] }, scope: 'system/Patient.rs' },
      { id: 'portal', secret: 'portal-secret-0123456789', scope: 'patient/*.rs patient/Subscription.cruds', patient: 'p1' },
    ],
  });
  server = await start();
  const mint = (sub: string, scope: string, extra: Record<string, unknown> = {}) => issuer.mint({ sub, scope, ...extra });
  tokens.admin = await mint('root', 'system/*.cruds herald/admin');
  tokens.alice = await mint('alice', 'system/Observation.rs system/Patient.rs system/Subscription.cruds');
  tokens.bob = await mint('bob', 'system/Observation.rs system/Subscription.cruds');
  tokens.pat = await mint('pat', 'patient/*.rs patient/Subscription.cruds', { patient: 'p1' });
  tokens.mixed = await mint('mixed', 'patient/Observation.rs system/Encounter.rs', { patient: 'p1' });
  tokens.obsOnly = await mint('obs', 'system/Observation.rs');
  // Two patients, an Observation and an Encounter for each, and a topic on Observation creates.
  const admin = bearer(tokens.admin);
  for (const p of ['p1', 'p2']) {
    assert.equal((await call('PUT', `${r4b()}/Patient/${p}`, { resourceType: 'Patient', id: p }, admin)).status, 201);
    await call('PUT', `${r4b()}/Encounter/e-${p}`, { resourceType: 'Encounter', id: `e-${p}`, status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient/${p}` } }, admin);
    await call('PUT', `${r4b()}/Observation/o-${p}`, obs(p, `o-${p}`), admin);
  }
  const topic = { resourceType: 'SubscriptionTopic', url: TOPIC, status: 'active', resourceTrigger: [{ resource: 'Observation', supportedInteraction: ['create'] }] };
  assert.equal((await call('POST', `${r4b()}/SubscriptionTopic`, topic, admin)).status, 201);
});

after(async () => {
  await server?.close();
  await issuer?.close();
});

function obs(patient: string, id?: string): any {
  return { resourceType: 'Observation', ...(id ? { id } : {}), status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${patient}` } };
}

const as = (who: string) => bearer(tokens[who]!);

describe('open endpoints and discovery', () => {
  it('serves metadata with rest.security, smart-configuration and /healthz without a token', async () => {
    const meta = await call('GET', `${r4b()}/metadata`);
    assert.equal(meta.status, 200);
    assert.equal(meta.body.rest[0].security.service[0].coding[0].code, 'SMART-on-FHIR');
    const smart = await call('GET', `${r4b()}/.well-known/smart-configuration`);
    assert.equal(smart.status, 200);
    assert.equal(smart.body.token_endpoint, `${server.url}/auth/token`);
    assert.deepEqual(smart.body.token_endpoint_auth_methods_supported, ['client_secret_basic', 'client_secret_post', 'private_key_jwt']);
    assert.ok(smart.body.scopes_supported.includes('herald/admin'));
    assert.ok(smart.body.capabilities.includes('permission-v2'));
    assert.equal((await call('GET', `${server.url}/healthz`)).status, 200);
  });
});

describe('bearer tokens: every bad kind is a 401 with WWW-Authenticate and an OperationOutcome', () => {
  const cases: [string, () => Promise<Record<string, string>>][] = [
    ['missing', async () => ({})],
    ['not a JWT', async () => bearer('not-a-jwt')],
    ['not Bearer', async () => ({ authorization: 'Basic abc' })],
    ['expired', async () => bearer(await issuer.mint({ sub: 'x', scope: 'system/*.rs' }, { expiresIn: -60 }))],
    ['not yet valid', async () => bearer(await issuer.mint({ sub: 'x', scope: 'system/*.rs' }, { notBefore: 600 }))],
    ['forged signature', async () => bearer(await issuer.mint({ sub: 'x', scope: 'system/*.rs' }, { forge: true }))],
    ['wrong issuer', async () => bearer(await issuer.mint({ sub: 'x', scope: 'system/*.rs' }, { iss: 'https://evil.test' }))],
    ['wrong audience', async () => bearer(await issuer.mint({ sub: 'x', scope: 'system/*.rs' }, { aud: 'https://other.test' }))],
    ['unknown kid', async () => bearer(await issuer.mint({ sub: 'x', scope: 'system/*.rs' }, { kid: 'nope' }))],
    ['alg none', async () => bearer(await issuer.mint({ sub: 'x', scope: 'system/*.rs' }, { attack: 'none' }))],
    ['HS256 keyed with the public key', async () => bearer(await issuer.mint({ sub: 'x', scope: 'system/*.rs' }, { attack: 'HS256' }))],
    ['no subject', async () => bearer(await issuer.mint({ scope: 'system/*.rs' }))],
  ];
  for (const [name, headers] of cases) {
    it(name, async () => {
      const res = await call('GET', `${r4b()}/Patient/p1`, undefined, await headers());
      assert.equal(res.status, 401, res.text);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm="herald"/);
      assert.equal(res.body.resourceType, 'OperationOutcome');
      assert.equal(res.body.issue[0].code, 'login');
    });
  }

  it('never takes a token from the query string', async () => {
    const res = await call('GET', `${r4b()}/Patient/p1?access_token=${tokens.admin}`);
    assert.equal(res.status, 401);
    assert.match(res.body.issue[0].diagnostics, /query string/);
  });

  it('accepts RS256 and ES256, and fetches the JWKS again for a new kid', async () => {
    assert.equal((await call('GET', `${r4b()}/Patient/p1`, undefined, bearer(await issuer.mint({ sub: 'x', scope: 'system/*.rs' }, { alg: 'ES256' })))).status, 200);
    const before = issuer.fetches();
    const kid = await issuer.rotate();
    const res = await call('GET', `${r4b()}/Patient/p1`, undefined, bearer(await issuer.mint({ sub: 'x', scope: 'system/*.rs' }, { kid })));
    assert.equal(res.status, 200);
    assert.ok(issuer.fetches() > before);
  });
});

describe('scopes: letters per interaction, 403 when missing', () => {
  it('v1 read allows read and search, not create', async () => {
    assert.equal((await call('GET', `${r4b()}/Observation/o-p1`, undefined, as('obsOnly'))).status, 200);
    assert.equal((await call('GET', `${r4b()}/Observation`, undefined, as('obsOnly'))).status, 200);
    const res = await call('POST', `${r4b()}/Observation`, obs('p1'), as('obsOnly'));
    assert.equal(res.status, 403);
    assert.equal(res.body.issue[0].code, 'forbidden');
    assert.equal((await call('GET', `${r4b()}/Patient/p1`, undefined, as('obsOnly'))).status, 403);
  });

  it('v2 letters: c without r creates but cannot read; v1 write cannot search', async () => {
    const creator = bearer(await issuer.mint({ sub: 'c', scope: 'system/Observation.c' }));
    const created = await call('POST', `${r4b()}/Observation`, obs('p1'), creator);
    assert.equal(created.status, 201);
    assert.equal((await call('GET', `${r4b()}/Observation/${created.body.id}`, undefined, creator)).status, 403);
    const writer = bearer(await issuer.mint({ sub: 'w', scope: 'user/Observation.write' }));
    assert.equal((await call('GET', `${r4b()}/Observation`, undefined, writer)).status, 403);
    assert.equal((await call('DELETE', `${r4b()}/Observation/${created.body.id}`, undefined, writer)).status, 204);
  });

  it('a transaction with one forbidden entry stores nothing; a batch fails that entry alone', async () => {
    const token = bearer(await issuer.mint({ sub: 't', scope: 'system/Patient.cruds system/Observation.rs' }));
    const entries = [
      { resource: { resourceType: 'Patient', identifier: [{ system: 'urn:tx', value: 'one' }] }, request: { method: 'POST', url: 'Patient' } },
      { resource: obs('p1'), request: { method: 'POST', url: 'Observation' } },
    ];
    const tx = await call('POST', r4b(), { resourceType: 'Bundle', type: 'transaction', entry: entries }, token);
    assert.equal(tx.status, 403);
    const found = await call('GET', `${r4b()}/Patient?identifier=urn:tx|one`, undefined, as('admin'));
    assert.equal(found.body.total, 0);
    const batch = await call('POST', r4b(), { resourceType: 'Bundle', type: 'batch', entry: entries }, token);
    assert.deepEqual(batch.body.entry.map((e: any) => e.response.status.slice(0, 3)), ['201', '403']);
  });

  it('conditional create needs the search letter too', async () => {
    const token = bearer(await issuer.mint({ sub: 'c', scope: 'system/Observation.c' }));
    const res = await call('POST', `${r4b()}/Observation`, obs('p1'), { ...token, 'if-none-exist': 'code=x' });
    assert.equal(res.status, 403);
  });

  it('_include leaves out types the caller may not read; system search narrows _type', async () => {
    const inc = await call('GET', `${r4b()}/Observation?_include=Observation:subject`, undefined, as('obsOnly'));
    assert.equal(inc.status, 200);
    assert.ok(inc.body.entry.length > 0);
    assert.ok(inc.body.entry.every((e: any) => e.resource.resourceType === 'Observation'));
    const withAdmin = await call('GET', `${r4b()}/Observation?_include=Observation:subject`, undefined, as('admin'));
    assert.ok(withAdmin.body.entry.some((e: any) => e.resource.resourceType === 'Patient'));
    const sys = await call('GET', `${r4b()}?_type=Observation,Patient`, undefined, as('obsOnly'));
    assert.equal(sys.status, 200);
    const matches = sys.body.entry.filter((e: any) => e.search.mode === 'match');
    assert.ok(matches.length > 0 && matches.every((e: any) => e.resource.resourceType === 'Observation'));
    assert.equal((await call('GET', `${r4b()}?_type=Patient`, undefined, as('obsOnly'))).status, 403);
    const hist = await call('GET', `${r4b()}/_history`, undefined, as('obsOnly'));
    assert.ok(hist.body.entry.every((e: any) => e.request.url.startsWith('Observation')));
  });
});

describe('patient context: the compartment of the patient claim', () => {
  it('reads and searches only within Patient/p1', async () => {
    assert.equal((await call('GET', `${r4b()}/Observation/o-p1`, undefined, as('pat'))).status, 200);
    assert.equal((await call('GET', `${r4b()}/Observation/o-p2`, undefined, as('pat'))).status, 404);
    assert.equal((await call('GET', `${r4b()}/Patient/p1`, undefined, as('pat'))).status, 200);
    assert.equal((await call('GET', `${r4b()}/Patient/p2`, undefined, as('pat'))).status, 404);
    assert.equal((await call('GET', `${r4b()}/Observation/o-p2/_history`, undefined, as('pat'))).status, 404);
    const search = await call('GET', `${r4b()}/Observation`, undefined, as('pat'));
    assert.deepEqual(search.body.entry.map((e: any) => e.resource.subject.reference), search.body.entry.map(() => 'Patient/p1'));
    assert.ok(search.body.entry.some((e: any) => e.resource.id === 'o-p1'));
    const patients = await call('GET', `${r4b()}/Patient`, undefined, as('pat'));
    assert.deepEqual(patients.body.entry.map((e: any) => e.resource.id), ['p1']);
  });

  it('a write is judged on its conditional references once resolved: within Patient/p1 only', async () => {
    const writer = bearer(await issuer.mint({ sub: 'pw', scope: 'patient/Observation.cru patient/Patient.rs', patient: 'p1' }));
    const mine = await call('POST', `${r4b()}/Observation`, { ...obs('p1'), subject: { reference: 'Patient?_id=p1' } }, writer);
    assert.equal(mine.status, 201, mine.text);
    assert.equal(mine.body.subject.reference, 'Patient/p1');
    // p2 is not the caller's to see, so the criteria find nothing; a literal reference to it is a 403.
    assert.equal((await call('POST', `${r4b()}/Observation`, { ...obs('p1'), subject: { reference: 'Patient?_id=p2' } }, writer)).status, 412);
    assert.equal((await call('POST', `${r4b()}/Observation`, obs('p2'), writer)).status, 403);
  });

  it('a token with several levels: patient/ confines only its own scopes', async () => {
    const enc = await call('GET', `${r4b()}/Encounter`, undefined, as('mixed'));
    assert.deepEqual(enc.body.entry.map((e: any) => e.resource.id).sort(), ['e-p1', 'e-p2']);
    const observations = await call('GET', `${r4b()}/Observation`, undefined, as('mixed'));
    assert.ok(observations.body.entry.every((e: any) => e.resource.subject.reference === 'Patient/p1'));
    const sys = await call('GET', `${r4b()}?_type=Observation,Encounter`, undefined, as('mixed'));
    const ids = sys.body.entry.map((e: any) => e.resource.id);
    assert.ok(ids.includes('e-p2') && ids.includes('o-p1') && !ids.includes('o-p2'));
    assert.equal((await call('GET', `${r4b()}/Patient/p1`, undefined, as('mixed'))).status, 403);
  });
});

describe('subscriptions belong to their owner (D-22)', () => {
  let aliceSub: string;

  before(async () => {
    const res = await call('POST', `${r4b()}/Subscription`, subscriptionResource('R4B', { topic: TOPIC, endpoint: ENDPOINT, headers: [HEADER] }), as('alice'));
    assert.equal(res.status, 201, res.text);
    aliceSub = res.body.id;
    assert.deepEqual(res.body.channel.header, [HEADER]);
  });

  it('does not exist for another principal: read, history, search, update, delete, operations', async () => {
    const url = `${r4b()}/Subscription/${aliceSub}`;
    assert.equal((await call('GET', url, undefined, as('bob'))).status, 404);
    assert.equal((await call('GET', `${url}/_history`, undefined, as('bob'))).status, 404);
    assert.equal((await call('GET', `${url}/_history/1`, undefined, as('bob'))).status, 404);
    const search = await call('GET', `${r4b()}/Subscription`, undefined, as('bob'));
    assert.equal(search.body.total, 0);
    const history = await call('GET', `${r4b()}/Subscription/_history`, undefined, as('bob'));
    assert.equal((history.body.entry ?? []).length, 0);
    const body = { ...subscriptionResource('R4B', { topic: TOPIC, endpoint: ENDPOINT }), id: aliceSub };
    assert.equal((await call('PUT', url, body, as('bob'))).status, 404);
    assert.equal((await call('DELETE', url, undefined, as('bob'))).status, 404);
    for (const op of ['$status', '$events', '$get-ws-binding-token']) {
      assert.equal((await call('GET', `${url}/${op}`, undefined, as('bob'))).status, 404, op);
    }
    const status = await call('GET', `${r4b()}/Subscription/$status`, undefined, as('bob'));
    assert.equal((status.body.entry ?? []).length, 0);
    const asked = await call('GET', `${r4b()}/Subscription/$status?id=${aliceSub}`, undefined, as('bob'));
    assert.equal((asked.body.entry ?? []).length, 0);
    assert.equal((await call('GET', url, undefined, as('alice'))).status, 200);
  });

  it('its secrets are visible to the owner only: the admin sees them masked in read, search and history', async () => {
    const url = `${r4b()}/Subscription/${aliceSub}`;
    const own = await call('GET', url, undefined, as('alice'));
    assert.deepEqual(own.body.channel.header, [HEADER]);
    assert.equal(own.body.channel.endpoint, ENDPOINT);
    const admin = await call('GET', url, undefined, as('admin'));
    assert.equal(admin.status, 200);
    assert.deepEqual(admin.body.channel.header, ['Authorization: ***']);
    assert.equal(admin.body.channel.endpoint, 'http://***@127.0.0.1:9/hook');
    const texts = [
      (await call('GET', `${r4b()}/Subscription?_id=${aliceSub}`, undefined, as('admin'))).text,
      (await call('GET', `${url}/_history`, undefined, as('admin'))).text,
      (await call('GET', `${url}/_history/1`, undefined, as('admin'))).text,
      (await call('POST', r4b(), { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `Subscription/${aliceSub}` } }] }, as('admin'))).text,
    ];
    for (const text of texts) {
      assert.ok(text.includes(aliceSub));
      assert.ok(!text.includes('receiver-secret-123') && !text.includes('hook-pass'), text.slice(0, 300));
    }
  });

  it('masks R5 parameter values as well', async () => {
    const r5 = server.fhir('R5');
    const topic = { resourceType: 'SubscriptionTopic', url: TOPIC, status: 'active', resourceTrigger: [{ resource: 'Observation', supportedInteraction: ['create'] }] };
    await call('POST', `${r5}/SubscriptionTopic`, topic, as('admin'));
    const created = await call('POST', `${r5}/Subscription`, subscriptionResource('R5', { topic: TOPIC, endpoint: ENDPOINT, headers: [HEADER] }), as('bob'));
    assert.equal(created.status, 201, created.text);
    const admin = await call('GET', `${r5}/Subscription/${created.body.id}`, undefined, as('admin'));
    assert.deepEqual(admin.body.parameter, [{ name: 'Authorization', value: '***' }]);
    const own = await call('GET', `${r5}/Subscription/${created.body.id}`, undefined, as('bob'));
    assert.equal(own.body.parameter[0].value, 'Bearer receiver-secret-123');
  });

  it('refuses a topic whose trigger resources the owner may not read (403), and more than the per-owner maximum', async () => {
    const blind = bearer(await issuer.mint({ sub: 'blind', scope: 'system/Subscription.cruds' }));
    const res = await call('POST', `${r4b()}/Subscription`, subscriptionResource('R4B', { topic: TOPIC, channel: 'websocket' }), blind);
    assert.equal(res.status, 403);
    const counter = bearer(await issuer.mint({ sub: 'counter', scope: 'system/Observation.rs system/Subscription.cruds' }));
    for (let i = 0; i < 3; i++) {
      assert.equal((await call('POST', `${r4b()}/Subscription`, subscriptionResource('R4B', { topic: TOPIC, channel: 'websocket' }), counter)).status, 201);
    }
    const fourth = await call('POST', `${r4b()}/Subscription`, subscriptionResource('R4B', { topic: TOPIC, channel: 'websocket' }), counter);
    assert.equal(fourth.status, 422);
    assert.equal(fourth.body.resourceType, 'OperationOutcome');
  });

  it('binding tokens only for own subscriptions; without ids only own', async () => {
    const mine = await call('POST', `${r4b()}/Subscription`, subscriptionResource('R4B', { topic: TOPIC, channel: 'websocket' }), as('bob'));
    const theirs = await call('POST', `${r4b()}/Subscription`, subscriptionResource('R4B', { topic: TOPIC, channel: 'websocket' }), as('alice'));
    const all = await call('GET', `${r4b()}/Subscription/$get-ws-binding-token`, undefined, as('bob'));
    assert.equal(all.status, 200);
    const ids = all.body.parameter.filter((p: any) => p.name === 'subscription').map((p: any) => p.valueString);
    assert.ok(ids.includes(mine.body.id) && !ids.includes(theirs.body.id));
    assert.equal((await call('GET', `${r4b()}/Subscription/$get-ws-binding-token?id=${theirs.body.id}`, undefined, as('bob'))).status, 404);
    const admin = await call('GET', `${r4b()}/Subscription/$get-ws-binding-token?id=${theirs.body.id}`, undefined, as('admin'));
    assert.equal(admin.status, 200);
  });

  it('notifications carry only what the owner may read: no event at all for a change outside its patient context', async () => {
    const patSub = await call('POST', `${r4b()}/Subscription`, subscriptionResource('R4B', { topic: TOPIC, channel: 'websocket', content: 'full-resource' }), as('pat'));
    assert.equal(patSub.status, 201, patSub.text);
    const obsSub = await call('POST', `${r4b()}/Subscription`, subscriptionResource('R4B', { topic: TOPIC, channel: 'websocket', content: 'id-only' }), as('bob'));
    assert.equal(obsSub.status, 201, obsSub.text);
    const ws = await connectWs(`${server.url.replace('http', 'ws')}/ws`);
    for (const [who, id] of [['pat', patSub.body.id], ['bob', obsSub.body.id]] as const) {
      const t = await call('GET', `${r4b()}/Subscription/${id}/$get-ws-binding-token`, undefined, as(who));
      ws.send(`bind-with-token ${t.body.parameter.find((p: any) => p.name === 'token').valueString}`);
    }
    await ws.waitCount((f: any) => f.resourceType === 'Bundle' && readNotification(f).type === 'handshake', 2);
    const other = await call('POST', `${r4b()}/Observation`, obs('p2'), as('admin'));
    const mine = await call('POST', `${r4b()}/Observation`, obs('p1'), as('admin'));
    const events = (id: string) => (f: any) => f.resourceType === 'Bundle' && readNotification(f).type === 'event-notification' && JSON.stringify(f).includes(id);
    const forObs = await ws.waitCount(events(obsSub.body.id), 2);
    assert.deepEqual(forObs.flatMap((f) => readNotification(f).events.map((e) => e.number)), [1, 2]);
    const forPat = await ws.waitCount(events(patSub.body.id), 1);
    const view = readNotification(forPat[0]);
    assert.deepEqual(view.events.map((e) => e.number), [1]);
    assert.ok(JSON.stringify(forPat[0]).includes(mine.body.id));
    assert.ok(!JSON.stringify(forPat[0]).includes(other.body.id));
    const log = await call('GET', `${r4b()}/Subscription/${patSub.body.id}/$events`, undefined, as('pat'));
    assert.deepEqual(readNotification(log.body).events.map((e) => e.number), [1]);
    await ws.close();
  });
});

describe('embedded issuer: POST /auth/token (client_credentials)', () => {
  const tokenUrl = () => `${server.url}/auth/token`;
  const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
  const post = (fields: Record<string, string>, headers: Record<string, string> = {}) =>
    call('POST', tokenUrl(), form(fields), { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers });

  it('client_secret_basic and client_secret_post, never cached; the token works on the FHIR base', async () => {
    const basic = await post({ grant_type: 'client_credentials' }, { authorization: `Basic ${Buffer.from('lab-feed:lab-feed-secret-0123456789').toString('base64')}` });
    assert.equal(basic.status, 200, basic.text);
    assert.equal(basic.headers.get('cache-control'), 'no-store');
    assert.equal(basic.body.token_type, 'bearer');
    assert.equal(basic.body.scope, 'system/Observation.cruds system/Subscription.cruds');
    const created = await call('POST', `${r4b()}/Observation`, obs('p1'), bearer(basic.body.access_token));
    assert.equal(created.status, 201);
    const viaPost = await post({ grant_type: 'client_credentials', client_id: 'lab-feed', client_secret: 'lab-feed-secret-0123456789', scope: 'system/Observation.cruds' });
    assert.equal(viaPost.status, 200);
    assert.equal(viaPost.body.scope, 'system/Observation.cruds');
  });

  it('refuses a wrong secret (401 invalid_client), another grant type and scopes the client does not have', async () => {
    const wrong = await post({ grant_type: 'client_credentials', client_id: 'lab-feed', client_secret: 'nope-nope-nope-nope' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error, 'invalid_client');
    assert.equal((await post({ grant_type: 'password', client_id: 'lab-feed', client_secret: 'x' })).body.error, 'unsupported_grant_type');
    const scope = await post({ grant_type: 'client_credentials', client_id: 'lab-feed', client_secret: 'lab-feed-secret-0123456789', scope: 'system/*.cruds' });
    assert.equal(scope.body.error, 'invalid_scope');
  });

  it('private_key_jwt with RS384 and ES384 assertions; a replayed jti and a wrong audience are refused', async () => {
    const assertion = (client: string, alg: 'RS384' | 'ES384', key: CryptoKey, o: { jti?: string; aud?: string } = {}) =>
      new SignJWT({})
        .setProtectedHeader({ alg, kid: alg === 'RS384' ? 'r1' : 'e1', typ: 'JWT' })
        .setIssuer(client)
        .setSubject(client)
        .setAudience(o.aud ?? tokenUrl())
        .setExpirationTime('4m')
        .setJti(o.jti ?? crypto.randomUUID())
        .sign(key);
    const type = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
    const jti = crypto.randomUUID();
    const rsa = await post({ grant_type: 'client_credentials', client_assertion_type: type, client_assertion: await assertion('svc-rsa', 'RS384', assertionKeys.rsa.privateKey, { jti }) });
    assert.equal(rsa.status, 200, rsa.text);
    assert.equal((await call('GET', `${r4b()}/Patient/p1`, undefined, bearer(rsa.body.access_token))).status, 200);
    const ec = await post({ grant_type: 'client_credentials', client_assertion_type: type, client_assertion: await assertion('svc-ec', 'ES384', assertionKeys.ec.privateKey) });
    assert.equal(ec.status, 200, ec.text);
    const replay = await post({ grant_type: 'client_credentials', client_assertion_type: type, client_assertion: await assertion('svc-rsa', 'RS384', assertionKeys.rsa.privateKey, { jti }) });
    assert.equal(replay.status, 401);
    const aud = await post({ grant_type: 'client_credentials', client_assertion_type: type, client_assertion: await assertion('svc-rsa', 'RS384', assertionKeys.rsa.privateKey, { aud: 'https://elsewhere' }) });
    assert.equal(aud.status, 401);
  });

  it('a client with a patient context gets tokens confined to it', async () => {
    const res = await post({ grant_type: 'client_credentials', client_id: 'portal', client_secret: 'portal-secret-0123456789' });
    assert.equal(res.body.patient, 'p1');
    assert.equal((await call('GET', `${r4b()}/Observation/o-p2`, undefined, bearer(res.body.access_token))).status, 404);
    assert.equal((await call('GET', `${r4b()}/Observation/o-p1`, undefined, bearer(res.body.access_token))).status, 200);
  });
});

describe('ownership survives a restart', () => {
  it('keeps the owner of a subscription in the store', async () => {
    const db = await persistentDb(dir, 'restart');
    let s = await start({ HERALD_DB: db });
    const url = () => `${s.fhir('R4B')}/Subscription`;
    const topic = { resourceType: 'SubscriptionTopic', url: TOPIC, status: 'active', resourceTrigger: [{ resource: 'Observation', supportedInteraction: ['create'] }] };
    await call('POST', `${s.fhir('R4B')}/SubscriptionTopic`, topic, as('admin'));
    const created = await call('POST', url(), subscriptionResource('R4B', { topic: TOPIC, channel: 'websocket', headers: [HEADER] }), as('alice'));
    assert.equal(created.status, 201, created.text);
    await s.close();
    s = await start({ HERALD_DB: db });
    try {
      assert.equal((await call('GET', `${url()}/${created.body.id}`, undefined, as('bob'))).status, 404);
      assert.deepEqual((await call('GET', `${url()}/${created.body.id}`, undefined, as('alice'))).body.channel.header, [HEADER]);
      assert.deepEqual((await call('GET', `${url()}/${created.body.id}`, undefined, as('admin'))).body.channel.header, ['Authorization: ***']);
    } finally {
      await s.close();
    }
  });
});
