import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { bearer, startIssuer, type TestIssuer } from '../helpers/auth.ts';
import { usePostgresDatabase } from '../helpers/postgres.ts';
import { type Receiver, startReceiver } from '../helpers/receiver.ts';
import { call, startServer, type TestServer } from '../helpers/server.ts';
import { readNotification, subscriptionResource, topicResource } from '../helpers/subscriptions.ts';
import { connectWs } from '../helpers/ws.ts';

/**
 * Herald on PostgreSQL, always (whatever HERALD_TEST_STORE says): REST, both channels, and two
 * nodes on one database racing on conditional create and If-Match. The whole e2e suite can also
 * run on PostgreSQL with HERALD_TEST_STORE=postgres; this file keeps the essentials in `npm test`.
 */
const TOPICS_DIR = fileURLToPath(new URL('../fixtures/topics', import.meta.url));
const TOPIC = 'http://example.org/topics/patient-created';
const isNote = (type: string, sub: string) => (f: any) =>
  f?.resourceType === 'Bundle' && readNotification(f).type === type && JSON.stringify(f.entry[0]).includes(`Subscription/${sub}`);
const patient = (value: string, extra: Record<string, unknown> = {}) => ({ resourceType: 'Patient', identifier: [{ system: 'urn:pg', value }], ...extra });

describe('on PostgreSQL', () => {
  let server: TestServer;
  let hook: Receiver;
  before(async () => {
    server = await startServer({ HERALD_TOPICS: TOPICS_DIR, HERALD_RETRY_BASE_MS: '50', HERALD_RETRY_CAP_MS: '200' }, undefined, { postgres: true });
    hook = await startReceiver();
  });
  after(async () => {
    await server.close();
    await hook.close();
  });
  const base = () => server.fhir('R4');

  it('creates, reads, updates with If-Match, patches, deletes and keeps history (CRUD, versions)', async () => {
    const created = await call('POST', `${base()}/Patient`, patient('crud', { active: true }));
    assert.equal(created.status, 201);
    const id = created.body.id;
    assert.equal(created.headers.get('etag'), 'W/"1"');
    const read = await call('GET', `${base()}/Patient/${id}`);
    assert.deepEqual(read.body, created.body);
    const updated = await call('PUT', `${base()}/Patient/${id}`, { ...read.body, active: false }, { 'if-match': 'W/"1"' });
    assert.equal(updated.status, 200);
    assert.equal(updated.body.meta.versionId, '2');
    assert.equal((await call('PUT', `${base()}/Patient/${id}`, { ...read.body, active: true }, { 'if-match': 'W/"1"' })).status, 412);
    const patched = await call('PATCH', `${base()}/Patient/${id}`, [{ op: 'replace', path: '/active', value: true }], { 'content-type': 'application/json-patch+json' });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.meta.versionId, '3');
    assert.equal((await call('DELETE', `${base()}/Patient/${id}`)).status, 204);
    assert.equal((await call('GET', `${base()}/Patient/${id}`)).status, 410);
    const history = await call('GET', `${base()}/Patient/${id}/_history`);
    assert.equal(history.body.total, 4);
    assert.deepEqual(history.body.entry.map((e: any) => e.request.method), ['DELETE', 'PATCH', 'PUT', 'POST']);
    assert.equal((await call('GET', `${base()}/Patient/${id}/_history/1`)).body.active, true);
  });

  it('searches with the shared SQL: tokens, strings, dates, sort, paging, _include and counts', async () => {
    const names = ['Adams', 'Baker', 'Clark', 'Davis', 'Evans'];
    const ids: string[] = [];
    for (const [i, family] of names.entries()) {
      const res = await call('POST', `${base()}/Patient`, patient(`s${i}`, { name: [{ family }], birthDate: `19${70 + i}-01-01`, gender: i % 2 ? 'male' : 'female' }));
      ids.push(res.body.id);
    }
    await call('POST', `${base()}/Observation`, { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${ids[0]}` } });
    const byToken = await call('GET', `${base()}/Patient?identifier=urn:pg|s2`);
    assert.deepEqual(byToken.body.entry.map((e: any) => e.resource.id), [ids[2]]);
    const byName = await call('GET', `${base()}/Patient?family=ba`);
    assert.deepEqual(byName.body.entry.map((e: any) => e.resource.name[0].family), ['Baker']);
    const contains = await call('GET', `${base()}/Patient?family:contains=VI`);
    assert.deepEqual(contains.body.entry.map((e: any) => e.resource.name[0].family), ['Davis']);
    const dates = await call('GET', `${base()}/Patient?birthdate=ge1972&identifier=urn:pg|s1,urn:pg|s2,urn:pg|s3,urn:pg|s4&_sort=-birthdate&_count=2`);
    assert.equal(dates.body.total, 3);
    assert.deepEqual(dates.body.entry.map((e: any) => e.resource.name[0].family), ['Evans', 'Davis']);
    const next = dates.body.link.find((l: any) => l.relation === 'next').url;
    const page2 = await call('GET', next);
    assert.deepEqual(page2.body.entry.map((e: any) => e.resource.name[0].family), ['Clark']);
    const included = await call('GET', `${base()}/Observation?subject=Patient/${ids[0]}&_include=Observation:subject`);
    assert.deepEqual(included.body.entry.map((e: any) => e.search.mode), ['match', 'include']);
    assert.equal((await call('GET', `${base()}/Patient?gender=male&identifier=urn:pg|s1,urn:pg|s3&_summary=count`)).body.total, 2);
  });

  it('delivers rest-hook notifications in order, numbered from 1 (EN-1, EN-2)', async () => {
    const res = await call('POST', `${base()}/Subscription`, subscriptionResource('R4', { topic: TOPIC, endpoint: hook.url, filters: ['Patient?identifier=urn:pg|hook'] }));
    assert.equal(res.status, 201);
    const id = res.body.id;
    const forSub = () => hook.received.filter((r) => JSON.stringify(r.body.entry[0]).includes(`Subscription/${id}`) && readNotification(r.body).type === 'event-notification');
    for (let i = 0; i < 5; i++) assert.equal((await call('POST', `${base()}/Patient`, patient('hook'))).status, 201);
    await hook.waitFor(() => forSub().length >= 5, 20_000);
    assert.deepEqual(forSub().flatMap((r) => readNotification(r.body).events.map((e) => e.number)), [1, 2, 3, 4, 5]);
    const events = readNotification((await call('GET', `${base()}/Subscription/${id}/$events?eventsSinceNumber=2&eventsUntilNumber=3`)).body);
    assert.deepEqual(events.events.map((e) => e.number), [2, 3]);
  });

  it('delivers websocket notifications in order to a bound client (D-1, HS-1)', async () => {
    const res = await call('POST', `${base()}/Subscription`, subscriptionResource('R4', { topic: TOPIC, channel: 'websocket', filters: ['Patient?identifier=urn:pg|ws'] }));
    const id = res.body.id;
    const token = (await call('GET', `${base()}/Subscription/${id}/$get-ws-binding-token`)).body.parameter.find((p: any) => p.name === 'token').valueString;
    const ws = await connectWs(`${server.url.replace('http', 'ws')}/ws`);
    ws.send(`bind-with-token ${token}`);
    await ws.next(isNote('handshake', id));
    for (let i = 0; i < 5; i++) await call('POST', `${base()}/Patient`, patient('ws'));
    const notes = await ws.waitCount(isNote('event-notification', id), 5, 20_000);
    assert.deepEqual(notes.flatMap((n) => readNotification(n).events.map((e) => e.number)), [1, 2, 3, 4, 5]);
    await ws.close();
  });
});

describe('two nodes on one PostgreSQL database', () => {
  const database = usePostgresDatabase();
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    const url = await database;
    // Started together: both migrate the empty database at once, under the advisory lock.
    [a, b] = await Promise.all([startServer({ HERALD_DB: url }), startServer({ HERALD_DB: url })]);
  });
  after(async () => {
    await a?.close();
    await b?.close();
  });

  it('a write on one node is read on the other as soon as it is acknowledged', async () => {
    for (let i = 0; i < 10; i++) {
      const [from, to] = i % 2 ? [a, b] : [b, a];
      const res = await call('POST', `${from.fhir('R4')}/Patient`, patient(`seen${i}`));
      assert.equal(res.status, 201);
      assert.equal((await call('GET', `${to.fhir('R4')}/Patient/${res.body.id}`)).status, 200);
    }
  });

  it('conditional create racing on both nodes creates exactly one resource; the others find it', async () => {
    for (let round = 0; round < 3; round++) {
      const value = `race${round}`;
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          call('POST', `${(i % 2 ? a : b).fhir('R4')}/Patient`, patient(value), { 'if-none-exist': `identifier=urn:pg|${value}` }),
        ),
      );
      const statuses = results.map((r) => r.status).sort();
      assert.equal(statuses.filter((s) => s === 201).length, 1, `exactly one create: ${statuses}`);
      assert.ok(statuses.every((s) => s === 200 || s === 201), `the others found it: ${statuses}`);
      assert.equal(new Set(results.map((r) => r.body.id)).size, 1);
      const found = await call('GET', `${a.fhir('R4')}/Patient?identifier=urn:pg|${value}`);
      assert.equal(found.body.total, 1);
    }
  });

  it('conditional update racing on both nodes creates exactly one resource', async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => call('PUT', `${(i % 2 ? a : b).fhir('R4')}/Patient?identifier=urn:pg|cu`, patient('cu', { active: i % 2 === 0, multipleBirthInteger: i + 1 }))),
    );
    assert.equal(results.filter((r) => r.status === 201).length, 1, results.map((r) => r.status).join());
    assert.equal(new Set(results.map((r) => r.body.id)).size, 1);
    assert.equal((await call('GET', `${b.fhir('R4')}/Patient/${results[0]!.body.id}/_history`)).body.total, 8);
  });

  it('If-Match racing on both nodes: exactly one update succeeds, the others get 412', async () => {
    const created = await call('POST', `${a.fhir('R4')}/Patient`, patient('ifmatch'));
    const id = created.body.id;
    for (let version = 1; version <= 3; version++) {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          call('PUT', `${(i % 2 ? a : b).fhir('R4')}/Patient/${id}`, { ...patient('ifmatch'), id, multipleBirthInteger: version * 10 + i }, { 'if-match': `W/"${version}"` }),
        ),
      );
      const statuses = results.map((r) => r.status);
      assert.equal(statuses.filter((s) => s === 200).length, 1, statuses.join());
      assert.equal(statuses.filter((s) => s === 412).length, 7, statuses.join());
    }
    assert.equal((await call('GET', `${b.fhir('R4')}/Patient/${id}`)).body.meta.versionId, '4');
  });

  it('a topic and a websocket Subscription made on node A, a token minted on A, bound on node B: B delivers every write of either node, in order', async () => {
    const topicUrl = 'http://example.org/topics/pg-two-nodes';
    const topic = topicResource('R4B', { url: topicUrl, resource: 'Patient', current: 'active=true', canFilterBy: [{ param: 'identifier' }] }, 'pg-two-nodes');
    assert.ok([200, 201].includes((await call('PUT', `${a.fhir('R4B')}/SubscriptionTopic/pg-two-nodes`, topic)).status));
    const sub = await call('POST', `${a.fhir('R4B')}/Subscription`, subscriptionResource('R4B', { topic: topicUrl, channel: 'websocket', filters: ['Patient?identifier=urn:pg|nodes'] }));
    assert.equal(sub.status, 201, sub.text);
    const id = sub.body.id;
    const token = (await call('GET', `${a.fhir('R4B')}/Subscription/${id}/$get-ws-binding-token`)).body.parameter.find((p: any) => p.name === 'token').valueString;
    const ws = await connectWs(`${b.url.replace('http', 'ws')}/ws`);
    // B learns of the Subscription from A's commit (LISTEN/NOTIFY); until then the bind is refused.
    const deadline = Date.now() + 10_000;
    for (;;) {
      ws.send(`bind-with-token ${token}`);
      const answer = await ws.next((f) => isNote('handshake', id)(f) || f?.resourceType === 'OperationOutcome', 5_000);
      ws.frames.length = 0;
      if (answer.resourceType === 'Bundle') break;
      assert.ok(Date.now() < deadline, `node B never accepted the token: ${JSON.stringify(answer)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const n = 12;
    for (let i = 0; i < n; i++) {
      const res = await call('POST', `${(i % 2 ? a : b).fhir('R4B')}/Patient`, patient('nodes', { active: true }));
      assert.equal(res.status, 201);
    }
    const notes = await ws.waitCount(isNote('event-notification', id), n, 20_000);
    assert.deepEqual(notes.flatMap((x) => readNotification(x).events.map((e) => e.number)), Array.from({ length: n }, (_, i) => i + 1));
    const status = readNotification((await call('GET', `${b.fhir('R4B')}/Subscription/${id}/$status`)).body);
    assert.equal(status.eventsSince, n, '$status answers the same on every node');
    await ws.close();
  });
});

describe('two nodes in auth mode (SEC-1, D-22)', () => {
  const database = usePostgresDatabase();
  const AUDIENCE = 'https://herald.example.test';
  let issuer: TestIssuer;
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    issuer = await startIssuer(AUDIENCE);
    const env = { HERALD_DB: await database, HERALD_AUTH_ISSUER: issuer.issuer, HERALD_AUTH_JWKS: issuer.jwksUrl, HERALD_AUTH_AUDIENCE: AUDIENCE };
    [a, b] = await Promise.all([startServer(env), startServer(env)]);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await issuer?.close();
  });
  const token = (sub: string, scope: string) => issuer.mint({ sub, scope }).then(bearer);
  const obs = (p: string) => ({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${p}` } });

  it('a subscription made on node A belongs to its owner on node B too: B records only what the owner may read, and only the owner manages it', async () => {
    const admin = await token('root', 'system/*.cruds herald/admin');
    const alice = await token('alice', 'system/Observation.rs system/Subscription.cruds');
    const mallory = await token('mallory', 'system/*.cruds');
    const topicUrl = 'http://example.org/topics/pg-auth-nodes';
    const topic = { resourceType: 'SubscriptionTopic', url: topicUrl, status: 'active', resourceTrigger: [{ resource: 'Observation', supportedInteraction: ['create'] }, { resource: 'Patient', supportedInteraction: ['create'] }] };
    assert.equal((await call('POST', `${a.fhir('R4B')}/SubscriptionTopic`, topic, admin)).status, 201);
    const sub = await call('POST', `${a.fhir('R4B')}/Subscription`, subscriptionResource('R4B', { topic: topicUrl, channel: 'websocket' }), alice);
    assert.equal(sub.status, 201, sub.text);
    const id = sub.body.id;
    // B follows A's commit within a second or so; until then B does not know the subscription at all.
    const deadline = Date.now() + 10_000;
    while ((await call('GET', `${b.fhir('R4B')}/Subscription/${id}/$status`, undefined, alice)).status !== 200) {
      assert.ok(Date.now() < deadline, 'node B never learned of the subscription');
      await new Promise((r) => setTimeout(r, 100));
    }
    // $status reads the database; B's matcher learns of the subscription on its own schedule. An
    // Observation created on B until one is recorded shows that B now matches it.
    const since = async () => Number(readNotification((await call('GET', `${a.fhir('R4B')}/Subscription/${id}/$status`, undefined, alice)).body).eventsSince);
    for (;;) {
      assert.equal((await call('POST', `${b.fhir('R4B')}/Observation`, obs('p0'), admin)).status, 201);
      if ((await since()) > 0) break;
      assert.ok(Date.now() < deadline, 'node B never matched the subscription');
      await new Promise((r) => setTimeout(r, 100));
    }
    const before = await since();
    // Alice may not read Patients: a Patient created on B is no event for her subscription (D-22),
    // while an Observation is. Had B not learned her scopes from A, both would be events.
    assert.equal((await call('POST', `${b.fhir('R4B')}/Patient`, { resourceType: 'Patient' }, admin)).status, 201);
    const o = await call('POST', `${b.fhir('R4B')}/Observation`, obs('p1'), admin);
    assert.equal(o.status, 201);
    assert.equal(await since(), before + 1, 'one more event: the Observation, not the Patient');
    const events = await call('GET', `${b.fhir('R4B')}/Subscription/${id}/$events`, undefined, alice);
    assert.equal(events.status, 200);
    assert.ok(JSON.stringify(events.body).includes(`Observation/${o.body.id}`));
    // Only the owner (or an admin) manages it, on either node.
    assert.equal((await call('GET', `${b.fhir('R4B')}/Subscription/${id}/$status`, undefined, mallory)).status, 404);
    assert.equal((await call('GET', `${b.fhir('R4B')}/Subscription/${id}/$get-ws-binding-token`, undefined, mallory)).status, 404);
    assert.equal((await call('GET', `${b.fhir('R4B')}/Subscription/${id}/$get-ws-binding-token`, undefined, alice)).status, 200);
  });
});

describe('the embedded auth issuer on two nodes of one PostgreSQL database', () => {
  const database = usePostgresDatabase();
  const dir = mkdtempSync(join(tmpdir(), 'herald-pg-auth-'));
  const clients = join(dir, 'clients.json');
  writeFileSync(clients, JSON.stringify({ clients: [{ id: 'feed', secret: 'feed-secret-0123456789', scope: 'system/Patient.cruds' }] }));
  // Behind one load balancer every node has the balancer's URL: the tokens' issuer and audience.
  const env = async () => ({ HERALD_DB: await database, HERALD_AUTH_CLIENTS: clients, HERALD_BASE_URL: 'http://herald.example.test' });
  const servers: TestServer[] = [];
  after(async () => {
    for (const s of servers) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const tokenFrom = async (s: TestServer) => {
    const form = 'grant_type=client_credentials&client_id=feed&client_secret=feed-secret-0123456789';
    const res = await call('POST', `${s.url}/auth/token`, form, { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' });
    assert.equal(res.status, 200, res.text);
    return { authorization: `Bearer ${res.body.access_token}` };
  };

  it('signs with one key kept in the database: a token minted on A is accepted on B, and on a node started later', async () => {
    // Started together: both offer a new key at once; the first stored is the one both use.
    const [a, b] = await Promise.all([startServer(await env()), startServer(await env())]);
    servers.push(a, b);
    assert.deepEqual((await call('GET', `${a.url}/auth/jwks`)).body, (await call('GET', `${b.url}/auth/jwks`)).body);
    const fromA = await tokenFrom(a);
    const created = await call('POST', `${b.fhir('R4')}/Patient`, patient('auth-a'), fromA);
    assert.equal(created.status, 201, created.text);
    assert.equal((await call('GET', `${a.fhir('R4')}/Patient/${created.body.id}`, undefined, await tokenFrom(b))).status, 200);
    assert.equal((await call('GET', `${b.fhir('R4')}/Patient/${created.body.id}`)).status, 401, 'auth is on');
    await a.close();
    servers.splice(0, 1);
    const c = await startServer(await env());
    servers.push(c);
    assert.equal((await call('GET', `${c.fhir('R4')}/Patient/${created.body.id}`, undefined, fromA)).status, 200, 'a restart keeps the key');
  });
});
