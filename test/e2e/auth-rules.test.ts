/**
 * Issue 13 / REQUIREMENTS §10, SEC-1, D-22: the rules of auth mode that test/e2e/auth.test.ts does
 * not reach. The letter of every interaction, `_revinclude`, operations, discovery with one issuer
 * or the other, the admin, secrets after deletion, SSRF at creation in auth mode (zero hits), the
 * `Origin` of websocket upgrades, and notificationShape context filtered by the owner's scopes.
 * Tokens are minted here with jose; the external issuer's JWKS is served over HTTP on loopback.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { loadConfig } from '../../src/config.ts';
import { bearer, startIssuer, type TestIssuer } from '../helpers/auth.ts';
import { type TestServer, call, startServer } from '../helpers/server.ts';
import { sqliteOnly } from '../helpers/store.ts';
import { readNotification, subscriptionResource } from '../helpers/subscriptions.ts';
import { connectWs } from '../helpers/ws.ts';

const AUDIENCE = 'https://herald.example.test';
const TOPIC = 'http://example.org/topics/observation-created-with-subject';
const HEADER = 'Authorization: Bearer receiver-secret-456';
const JSON_PATCH = { 'content-type': 'application/json-patch+json' };

const dir = mkdtempSync(join(tmpdir(), 'herald-auth-rules-'));
let issuer: TestIssuer;
/** Both issuers; endpoints allowed only at 127.0.0.1:9 (nothing listens there). */
let server: TestServer;
/** The external issuer only; all of 127.0.0.1 allowed, so that only the self-loop rule refuses Herald. */
let externalOnly: TestServer;
const r4b = () => server.fhir('R4B');

const token = (sub: string, scope: string, extra: Record<string, unknown> = {}) => issuer.mint({ sub, scope, ...extra }).then(bearer);
let admin: Record<string, string>;

function obs(patient: string, id?: string): any {
  return { resourceType: 'Observation', ...(id ? { id } : {}), status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${patient}` } };
}

before(async () => {
  issuer = await startIssuer(AUDIENCE);
  const clients = join(dir, 'clients.json');
  writeFileSync(clients, JSON.stringify({ clients: [{ id: 'feed', secret: 'feed-secret-0123456789', scope: 'system/Observation.cruds' }] }));
  const external = { HERALD_AUTH_ISSUER: issuer.issuer, HERALD_AUTH_JWKS: issuer.jwksUrl, HERALD_AUTH_AUDIENCE: AUDIENCE };
  server = await startServer({ ...external, HERALD_AUTH_CLIENTS: clients, HERALD_ENDPOINT_ALLOW: '127.0.0.1:9' });
  externalOnly = await startServer({ ...external, HERALD_ENDPOINT_ALLOW: '127.0.0.1/32' });
  admin = await token('root', 'system/*.cruds herald/admin');
  for (const p of ['p1', 'p2']) assert.equal((await call('PUT', `${r4b()}/Patient/${p}`, { resourceType: 'Patient', id: p }, admin)).status, 201);
  await call('PUT', `${r4b()}/Observation/o-p1`, obs('p1', 'o-p1'), admin);
  const topic = {
    resourceType: 'SubscriptionTopic',
    url: TOPIC,
    status: 'active',
    resourceTrigger: [{ resource: 'Observation', supportedInteraction: ['create'] }],
    notificationShape: [{ resource: 'Observation', include: ['Observation:subject'] }],
  };
  for (const s of [server, externalOnly]) assert.equal((await call('POST', `${s.fhir('R4B')}/SubscriptionTopic`, topic, admin)).status, 201);
});

after(async () => {
  await server?.close();
  await externalOnly?.close();
  await issuer?.close();
});

describe('every interaction needs its letter (c r u d s)', () => {
  const url = (id = 'pz') => `${r4b()}/Patient/${id}`;
  before(async () => {
    assert.equal((await call('PUT', url(), { resourceType: 'Patient', id: 'pz', active: true }, admin)).status, 201);
  });
  const status = async (method: string, u: string, t: Record<string, string>, body?: unknown, headers: Record<string, string> = {}) =>
    (await call(method, u, body, { ...t, ...headers })).status;
  const patch = [{ op: 'replace', path: '/active', value: false }];

  it('c: create only', async () => {
    const c = await token('c', 'system/Patient.c');
    assert.equal(await status('POST', `${r4b()}/Patient`, c, { resourceType: 'Patient' }), 201);
    assert.equal(await status('GET', url(), c), 403);
    assert.equal(await status('PUT', url(), c, { resourceType: 'Patient', id: 'pz' }), 403);
    assert.equal(await status('DELETE', url(), c), 403);
    assert.equal(await status('GET', `${r4b()}/Patient`, c), 403);
  });

  it('r: read, vread and history; nothing else', async () => {
    const r = await token('r', 'system/Patient.r');
    assert.equal(await status('GET', url(), r), 200);
    assert.equal(await status('GET', `${url()}/_history/1`, r), 200);
    assert.equal(await status('GET', `${url()}/_history`, r), 200);
    assert.equal(await status('GET', `${r4b()}/Patient/_history`, r), 200);
    assert.equal(await status('GET', `${r4b()}/Patient?_id=pz`, r), 403);
    assert.equal(await status('POST', `${r4b()}/Patient`, r, { resourceType: 'Patient' }), 403);
    assert.equal(await status('PUT', url(), r, { resourceType: 'Patient', id: 'pz' }), 403);
    assert.equal(await status('PATCH', url(), r, patch, JSON_PATCH), 403);
    assert.equal(await status('DELETE', url(), r), 403);
  });

  it('u: update and patch; an update that would create needs c too', async () => {
    const u = await token('u', 'system/Patient.u');
    assert.equal(await status('PUT', url(), u, { resourceType: 'Patient', id: 'pz', active: true }), 200);
    assert.equal(await status('PATCH', url(), u, patch, JSON_PATCH), 200);
    assert.equal(await status('PUT', url('pnew'), u, { resourceType: 'Patient', id: 'pnew' }), 403);
    assert.equal(await status('GET', url(), u), 403);
  });

  it('s: search only', async () => {
    const s = await token('s', 'system/Patient.s');
    const res = await call('GET', `${r4b()}/Patient?_id=pz`, undefined, s);
    assert.equal(res.status, 200);
    assert.equal(res.body.entry[0].resource.id, 'pz');
    assert.equal(await status('GET', url(), s), 403);
  });

  it('conditional update needs the search letter too (conditional create: auth.test.ts)', async () => {
    await call('PUT', url('pc'), { resourceType: 'Patient', id: 'pc', identifier: [{ system: 'urn:c', value: '1' }] }, admin);
    const cond = `${r4b()}/Patient?identifier=urn:c|1`;
    const body = { resourceType: 'Patient', identifier: [{ system: 'urn:c', value: '1' }], active: true };
    assert.equal(await status('PUT', cond, await token('u', 'system/Patient.u'), body), 403);
    assert.equal(await status('PUT', cond, await token('us', 'system/Patient.us'), body), 200);
    const noMatch = `${r4b()}/Patient?identifier=urn:c|none`;
    const fresh = { resourceType: 'Patient', identifier: [{ system: 'urn:c', value: 'none' }] };
    assert.equal(await status('PUT', noMatch, await token('us', 'system/Patient.us'), fresh), 403, 'no match creates: needs c');
    assert.equal(await status('PUT', noMatch, await token('cus', 'system/Patient.cus'), fresh), 201);
  });

  it('d: delete only', async () => {
    const d = await token('d', 'system/Patient.d');
    assert.equal(await status('GET', url(), d), 403);
    assert.equal(await status('DELETE', url(), d), 204);
    assert.equal(await status('GET', url(), admin), 410);
  });
});

describe('includes and operations', () => {
  it('_revinclude leaves out types the caller may not read', async () => {
    const q = `${r4b()}/Patient?_id=p1&_revinclude=Observation:subject`;
    const patientsOnly = await call('GET', q, undefined, await token('x', 'system/Patient.rs'));
    assert.equal(patientsOnly.status, 200);
    assert.deepEqual(patientsOnly.body.entry.map((e: any) => e.resource.resourceType), ['Patient']);
    const both = await call('GET', q, undefined, await token('y', 'system/Patient.rs system/Observation.rs'));
    assert.ok(both.body.entry.some((e: any) => e.resource.resourceType === 'Observation' && e.search.mode === 'include'));
  });

  it('$status, $events and $get-ws-binding-token need Subscription read, even on the caller\'s own', async () => {
    const noRead = await token('noread', 'system/Subscription.cud system/Observation.rs');
    const sub = await call('POST', `${r4b()}/Subscription`, subscriptionResource('R4B', { topic: TOPIC, channel: 'websocket' }), noRead);
    assert.equal(sub.status, 201, sub.text);
    for (const op of ['$status', '$events', '$get-ws-binding-token']) {
      const res = await call('GET', `${r4b()}/Subscription/${sub.body.id}/${op}`, undefined, noRead);
      assert.equal(res.status, 403, op);
      assert.equal(res.body.issue[0].code, 'forbidden');
    }
    assert.equal((await call('GET', `${r4b()}/Subscription/$status`, undefined, noRead)).status, 403);
  });
});

describe('discovery', () => {
  it('with the embedded issuer: token endpoint, auth methods, assertion algorithms, scopes and capabilities', async () => {
    const smart = await call('GET', `${r4b()}/.well-known/smart-configuration`);
    assert.equal(smart.status, 200);
    assert.equal(smart.body.token_endpoint, `${server.url}/auth/token`);
    assert.deepEqual(smart.body.token_endpoint_auth_methods_supported, ['client_secret_basic', 'client_secret_post', 'private_key_jwt']);
    assert.deepEqual(smart.body.token_endpoint_auth_signing_alg_values_supported, ['RS384', 'ES384']);
    assert.deepEqual(smart.body.grant_types_supported, ['client_credentials']);
    for (const s of ['system/*.cruds', 'patient/*.cruds', 'user/*.read', 'herald/admin']) assert.ok(smart.body.scopes_supported.includes(s), s);
    for (const c of ['permission-v1', 'permission-v2', 'permission-patient', 'client-confidential-symmetric', 'client-confidential-asymmetric']) assert.ok(smart.body.capabilities.includes(c), c);
    const jwks = await call('GET', `${server.url}/auth/jwks`);
    assert.equal(jwks.body.keys.length, 1);
    assert.equal(jwks.body.keys[0].d, undefined, 'no private part');
  });

  it('with an external issuer only: its issuer, scopes and capabilities, no token endpoint; metadata declares SMART', async () => {
    const smart = await call('GET', `${externalOnly.fhir('R4')}/.well-known/smart-configuration`);
    assert.equal(smart.status, 200);
    assert.equal(smart.body.issuer, issuer.issuer);
    assert.equal(smart.body.token_endpoint, undefined);
    assert.ok(smart.body.capabilities.includes('permission-v2'));
    assert.ok(smart.body.scopes_supported.length > 0);
    assert.equal((await call('POST', `${externalOnly.url}/auth/token`, 'grant_type=client_credentials', { 'content-type': 'application/x-www-form-urlencoded' })).status, 404);
    for (const v of ['R4', 'R4B', 'R5'] as const) {
      const meta = await call('GET', `${externalOnly.fhir(v)}/metadata`);
      assert.equal(meta.status, 200, v);
      assert.equal(meta.body.rest[0].security.service[0].coding[0].code, 'SMART-on-FHIR', v);
    }
    assert.equal((await call('GET', `${externalOnly.fhir('R4')}/Patient`)).status, 401);
  });
});

describe('the admin and subscription secrets', () => {
  it('the admin updates and deletes any subscription, which stays its owner\'s; its secrets stay masked for the admin after deletion', async () => {
    const alice = await token('alice', 'system/Observation.rs system/Subscription.cruds');
    const bob = await token('bob', 'system/Observation.rs system/Subscription.cruds');
    const body = subscriptionResource('R4B', { topic: TOPIC, channel: 'websocket', headers: [HEADER] });
    const sub = await call('POST', `${r4b()}/Subscription`, body, alice);
    assert.equal(sub.status, 201, sub.text);
    const url = `${r4b()}/Subscription/${sub.body.id}`;
    const updated = await call('PUT', url, { ...body, id: sub.body.id, reason: 'changed by the admin' }, admin);
    assert.equal(updated.status, 200, updated.text);
    assert.equal((await call('GET', url, undefined, alice)).body.reason, 'changed by the admin');
    assert.equal((await call('GET', url, undefined, bob)).status, 404);
    assert.equal((await call('PATCH', url, [{ op: 'replace', path: '/reason', value: 'mine now' }], { ...bob, ...JSON_PATCH })).status, 404);
    assert.equal((await call('DELETE', url, undefined, admin)).status, 204);
    const seenByAdmin = await call('GET', `${url}/_history`, undefined, admin);
    assert.equal(seenByAdmin.status, 200);
    assert.ok(seenByAdmin.body.entry.length >= 2);
    assert.ok(!seenByAdmin.text.includes('receiver-secret-456'));
    assert.ok(seenByAdmin.text.includes('Authorization: ***'));
    const first = await call('GET', `${url}/_history/1`, undefined, admin);
    assert.deepEqual(first.body.channel.header, ['Authorization: ***']);
    const own = await call('GET', `${url}/_history/1`, undefined, alice);
    assert.deepEqual(own.body.channel.header, [HEADER]);
    assert.equal((await call('GET', `${url}/_history`, undefined, bob)).status, 404);
  });
});

/** A local HTTP server that counts every request. */
async function countingServer() {
  const hits: string[] = [];
  const s: Server = createServer((req, res) => (hits.push(req.url ?? ''), res.end()));
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return { hits, port: (s.address() as AddressInfo).port, close: () => new Promise<void>((r) => (s.closeAllConnections(), s.close(() => r()))) };
}

describe('rest-hook endpoints in auth mode', () => {
  it('refuses every spelling of an internal address at creation, naming the reason, and the target gets zero hits', async () => {
    const target = await countingServer();
    const owner = await token('hooks', 'system/Observation.rs system/Subscription.cruds');
    const p = target.port;
    try {
      const refused: [string, RegExp][] = [
        [`http://receiver.example.com:${p}/hook`, /https/],
        [`http://127.0.0.1:${p}/hook`, /https|loopback/],
        ...['localhost', 'localhost.', '127.1', '2130706433', '0x7f.1', '0.0.0.0', '[::1]', '[::ffff:127.0.0.1]'].map(
          (h): [string, RegExp] => [`https://${h}:${p}/hook`, /loopback|unspecified/],
        ),
        ['https://10.1.2.3/hook', /private/],
        ['https://192.168.0.10/hook', /private/],
        ['https://[fd00::1]/hook', /private|unique/],
        ['https://169.254.169.254/latest/meta-data', /metadata|link-local/],
        ['https://[fe80::1]/hook', /link-local/],
        ['https://224.0.0.1/hook', /multicast/],
      ];
      for (const [endpoint, why] of refused) {
        const res = await call('POST', `${r4b()}/Subscription`, subscriptionResource('R4B', { topic: TOPIC, endpoint }), owner);
        assert.equal(res.status, 422, `${endpoint}: ${res.text}`);
        assert.equal(res.body.resourceType, 'OperationOutcome');
        assert.match(res.body.issue[0].diagnostics, why, endpoint);
      }
      // What HERALD_ENDPOINT_ALLOW lists is accepted, plain http included.
      const listed = await call('POST', `${r4b()}/Subscription`, subscriptionResource('R4B', { topic: TOPIC, endpoint: 'http://127.0.0.1:9/hook' }), owner);
      assert.equal(listed.status, 201, listed.text);
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(target.hits, []);
    } finally {
      await target.close();
    }
  });

  it('refuses Herald itself even when the allow list covers its address', async () => {
    const owner = await token('loop', 'system/Observation.rs system/Subscription.cruds');
    const port = new URL(externalOnly.url).port;
    for (const host of ['127.0.0.1', 'localhost', '127.1']) {
      const res = await call('POST', `${externalOnly.fhir('R4B')}/Subscription`, subscriptionResource('R4B', { topic: TOPIC, endpoint: `http://${host}:${port}/fhir/R4B/Observation` }), owner);
      assert.equal(res.status, 422, host);
      assert.match(res.body.issue[0].diagnostics, /itself/);
    }
  });
});

describe('websocket upgrades in auth mode', () => {
  const upgrade = (headers: Record<string, string>) =>
    new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${server.url.replace('http', 'ws')}/ws`, { headers });
      ws.once('open', () => (ws.close(), resolve(101)));
      ws.once('unexpected-response', (_req, res) => (res.resume(), resolve(res.statusCode!)));
      ws.once('error', reject);
    });

  it('refuses a foreign Origin without any HERALD_CORS_ORIGINS; accepts its own and clients without one', async () => {
    assert.equal(await upgrade({ origin: 'https://evil.example' }), 403);
    assert.equal(await upgrade({ origin: server.url }), 101);
    assert.equal(await upgrade({}), 101);
  });
});

describe('notificationShape context follows the owner\'s scopes (D-22)', () => {
  it('includes the subject Patient only for an owner who may read Patients', async () => {
    const blind = await token('no-patients', 'system/Observation.rs system/Subscription.cruds');
    const sighted = await token('patients-too', 'system/Observation.rs system/Patient.rs system/Subscription.cruds');
    const ws = await connectWs(`${server.url.replace('http', 'ws')}/ws`);
    const subs: Record<string, string> = {};
    for (const [who, t] of [['blind', blind], ['sighted', sighted]] as const) {
      const sub = await call('POST', `${r4b()}/Subscription`, subscriptionResource('R4B', { topic: TOPIC, channel: 'websocket', content: 'full-resource' }), t);
      assert.equal(sub.status, 201, sub.text);
      subs[who] = sub.body.id;
      const b = await call('GET', `${r4b()}/Subscription/${sub.body.id}/$get-ws-binding-token`, undefined, t);
      ws.send(`bind-with-token ${b.body.parameter.find((p: any) => p.name === 'token').valueString}`);
    }
    await ws.waitCount((f: any) => f.resourceType === 'Bundle' && readNotification(f).type === 'handshake', 2);
    const created = await call('POST', `${r4b()}/Observation`, obs('p2'), admin);
    assert.equal(created.status, 201);
    const eventFor = (id: string) => (f: any) => f.resourceType === 'Bundle' && readNotification(f).type === 'event-notification' && JSON.stringify(f).includes(id) && JSON.stringify(f).includes(created.body.id);
    const [forBlind] = await ws.waitCount(eventFor(subs.blind!), 1);
    const [forSighted] = await ws.waitCount(eventFor(subs.sighted!), 1);
    const types = (b: any) => b.entry.slice(1).map((e: any) => e.resource?.resourceType);
    assert.ok(types(forSighted).includes('Patient'), JSON.stringify(types(forSighted)));
    assert.ok(types(forBlind).includes('Observation'));
    assert.ok(!types(forBlind).includes('Patient'), JSON.stringify(types(forBlind)));
    await ws.close();
  });
});

describe('the embedded issuer\'s signing key', () => {
  const clientsFile = () => join(dir, 'clients.json');
  const getToken = async (s: TestServer) =>
    (await call('POST', `${s.url}/auth/token`, 'grant_type=client_credentials&client_id=feed&client_secret=feed-secret-0123456789', { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' })).body.access_token as string;

  it('is kept in the data folder (mode 0600): tokens stay valid across a restart', sqliteOnly('the key file beside the SQLite database; on PostgreSQL the key is kept in the database (test/e2e/postgres.test.ts)'), async () => {
    const data = mkdtempSync(join(tmpdir(), 'herald-key-'));
    const env = { HERALD_AUTH_CLIENTS: clientsFile(), HERALD_DB: `sqlite:${join(data, 'herald.db')}`, HERALD_BASE_URL: 'https://herald.example.org' };
    let s = await startServer(env);
    const t = await getToken(s);
    const kid = (await call('GET', `${s.url}/auth/jwks`)).body.keys[0].kid;
    await s.close();
    assert.equal(statSync(join(data, 'auth-key.json')).mode & 0o777, 0o600);
    s = await startServer(env);
    try {
      assert.equal((await call('GET', `${s.url}/auth/jwks`)).body.keys[0].kid, kid);
      assert.equal((await call('GET', `${s.fhir('R4')}/Observation`, undefined, bearer(t))).status, 200);
    } finally {
      await s.close();
    }
  });

  it('or in HERALD_AUTH_KEY, whatever the store', async () => {
    const keyFile = join(mkdtempSync(join(tmpdir(), 'herald-key-')), 'key.json');
    const env = { HERALD_AUTH_CLIENTS: clientsFile(), HERALD_AUTH_KEY: keyFile, HERALD_BASE_URL: 'https://herald.example.org' };
    const first = await startServer(env);
    const t = await getToken(first);
    await first.close();
    const second = await startServer(env);
    try {
      assert.equal((await call('GET', `${second.fhir('R4')}/Observation`, undefined, bearer(t))).status, 200);
    } finally {
      await second.close();
    }
  });
});

describe('auth settings', () => {
  const env = { HERALD_DB: 'sqlite::memory:', HERALD_AUTH_CLIENTS: '/nonexistent/clients.json' };
  it('defaults: 1,000 subscriptions per owner, admin scope herald/admin, JWKS refetch 30 s, tokens 300 s', () => {
    const auth = loadConfig([], { ...env, HERALD_AUTH_ISSUER: 'https://i', HERALD_AUTH_JWKS: 'https://i/jwks' }).auth!;
    assert.equal(auth.maxSubscriptionsPerOwner, 1000);
    assert.equal(auth.adminScope, 'herald/admin');
    assert.equal(auth.external!.jwksRefetchMs, 30_000);
    assert.equal(auth.embedded!.tokenTtlMs, 300_000);
    assert.equal(auth.external!.audience, undefined, 'the audience is optional');
  });

  it('refuses incomplete or bad settings at start', () => {
    assert.throws(() => loadConfig([], { ...env, HERALD_MAX_SUBSCRIPTIONS_PER_OWNER: '0' }), /HERALD_MAX_SUBSCRIPTIONS_PER_OWNER must be an integer/);
    assert.throws(() => loadConfig([], { HERALD_DB: 'sqlite::memory:', HERALD_AUTH_ISSUER: 'https://i' }), /needs HERALD_AUTH_JWKS/);
    assert.throws(() => loadConfig([], { HERALD_DB: 'sqlite::memory:', HERALD_AUTH_JWKS: 'https://i/jwks' }), /needs HERALD_AUTH_ISSUER/);
    assert.throws(() => loadConfig([], { HERALD_DB: 'sqlite::memory:', HOST: '0.0.0.0' }), /HERALD_ALLOW_OPEN/);
    assert.equal(loadConfig([], { ...env, HOST: '0.0.0.0' }).authMode, true, 'auth mode listens anywhere');
  });
});
