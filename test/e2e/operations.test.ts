import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { VERSIONS, call, startServer, type Res, type TestServer } from '../helpers/server.ts';
import { onPostgres, persistentDb } from '../helpers/store.ts';
import { readNotification, subscriptionResource } from '../helpers/subscriptions.ts';
import { openPostgresStore } from '../../src/store/postgres/index.ts';
import { openSqliteStore } from '../../src/store/sqlite/index.ts';

const TOPICS_DIR = fileURLToPath(new URL('../fixtures/topics', import.meta.url));
const TOPIC = 'http://example.org/topics/patient-created';

const parameters = (...parameter: unknown[]) => ({ resourceType: 'Parameters', parameter });

/** An operation at one level: its path below the base, given a subscription id. */
interface Target {
  name: string;
  path: (id: string) => string;
}
const TARGETS: Target[] = [
  { name: '$status (type)', path: () => 'Subscription/$status' },
  { name: '$status (instance)', path: (id) => `Subscription/${id}/$status` },
  { name: '$events', path: (id) => `Subscription/${id}/$events` },
  { name: '$get-ws-binding-token (type)', path: () => 'Subscription/$get-ws-binding-token' },
  { name: '$get-ws-binding-token (instance)', path: (id) => `Subscription/${id}/$get-ws-binding-token` },
];
const op = (name: string) => TARGETS.filter((t) => t.name.startsWith(name));

/** A bad input: the request, which operations it is sent to, and what the outcome must name. */
interface BadInput {
  what: string;
  targets: Target[];
  /** A POST body (raw text when a string), or a GET query. */
  body?: unknown;
  query?: string;
  names: string;
}

/** Bodies that are not a Parameters resource, or not a well-formed one: wrong for every operation. */
const BAD_BODIES: BadInput[] = [
  { what: 'parameter given as an object', body: { resourceType: 'Parameters', parameter: { name: 'id', valueId: 'x' } }, names: 'Parameters.parameter' },
  { what: 'parameter given as a string', body: { resourceType: 'Parameters', parameter: 'id=x' }, names: 'Parameters.parameter' },
  { what: 'a JSON array', body: '[]', names: 'Parameters' },
  { what: 'a JSON string', body: '"Parameters"', names: 'Parameters' },
  { what: 'a JSON number', body: '42', names: 'Parameters' },
  { what: 'JSON null', body: 'null', names: 'Parameters' },
  { what: 'a Patient', body: { resourceType: 'Patient' }, names: 'Parameters' },
  { what: 'no resourceType', body: { parameter: [] }, names: 'Parameters' },
  { what: 'a parameter that is null', body: parameters(null), names: 'Parameters.parameter[0]' },
  { what: 'a parameter that is a string', body: parameters('id'), names: 'Parameters.parameter[0]' },
  { what: 'a parameter without name', body: parameters({ valueString: 'x' }), names: 'Parameters.parameter[0]' },
  { what: 'a parameter whose name is a number', body: parameters({ name: 7, valueString: 'x' }), names: 'Parameters.parameter[0]' },
  { what: 'an unknown parameter', body: parameters({ name: 'bogus', valueString: 'x' }), names: 'bogus' },
].map((b) => ({ ...b, targets: TARGETS }));

/** Values of the wrong type or form, per operation, by POST and by GET. */
const BAD_VALUES: BadInput[] = [
  ...[...op('$status'), ...op('$get-ws-binding-token')].flatMap((t) => [
    { what: 'id as valueBoolean', targets: [t], body: parameters({ name: 'id', valueBoolean: true }), names: 'id' },
    { what: 'id as a JSON number', targets: [t], body: parameters({ name: 'id', valueString: 5 }), names: 'id' },
    { what: 'id as an object', targets: [t], body: parameters({ name: 'id', valueId: { value: 'x' } }), names: 'id' },
    { what: 'id without value', targets: [t], body: parameters({ name: 'id' }), names: 'id' },
    { what: 'id with two values', targets: [t], body: parameters({ name: 'id', valueId: 'a', valueString: 'b' }), names: 'id' },
    { what: 'id with a resource', targets: [t], body: parameters({ name: 'id', resource: { resourceType: 'Patient' } }), names: 'id' },
    { what: 'id with parts', targets: [t], body: parameters({ name: 'id', part: [{ name: 'x', valueString: 'y' }] }), names: 'id' },
    { what: 'id that is not an id', targets: [t], body: parameters({ name: 'id', valueId: 'has space' }), names: 'id' },
    { what: 'GET id that is not an id', targets: [t], query: 'id=has%20space', names: 'id' },
    { what: 'GET empty id', targets: [t], query: 'id=', names: 'id' },
    { what: 'GET unknown parameter', targets: [t], query: 'bogus=1', names: 'bogus' },
  ]),
  ...op('$status').flatMap((t) => [
    { what: 'status not a subscription status', targets: [t], body: parameters({ name: 'status', valueCode: 'bogus' }), names: 'status' },
    { what: 'status as valueInteger', targets: [t], body: parameters({ name: 'status', valueInteger: 1 }), names: 'status' },
    { what: 'GET status not a subscription status', targets: [t], query: 'status=bogus', names: 'status' },
  ]),
  ...op('$events').flatMap((t) => [
    { what: 'eventsSinceNumber not a number', targets: [t], body: parameters({ name: 'eventsSinceNumber', valueString: 'abc' }), names: 'eventsSinceNumber' },
    { what: 'eventsSinceNumber negative', targets: [t], body: parameters({ name: 'eventsSinceNumber', valueString: '-1' }), names: 'eventsSinceNumber' },
    { what: 'eventsSinceNumber as a JSON number', targets: [t], body: parameters({ name: 'eventsSinceNumber', valueString: 1 }), names: 'eventsSinceNumber' },
    { what: 'eventsSinceNumber as valueBoolean', targets: [t], body: parameters({ name: 'eventsSinceNumber', valueBoolean: true }), names: 'eventsSinceNumber' },
    { what: 'eventsSinceNumber as an object', targets: [t], body: parameters({ name: 'eventsSinceNumber', valueString: { n: 1 } }), names: 'eventsSinceNumber' },
    {
      what: 'eventsUntilNumber twice',
      targets: [t],
      body: parameters({ name: 'eventsUntilNumber', valueString: '1' }, { name: 'eventsUntilNumber', valueString: '2' }),
      names: 'eventsUntilNumber',
    },
    { what: 'content not a content code', targets: [t], body: parameters({ name: 'content', valueCode: 'everything' }), names: 'content' },
    { what: 'id (not a parameter of $events)', targets: [t], body: parameters({ name: 'id', valueId: 'x' }), names: 'id' },
    { what: 'GET eventsSinceNumber not a number', targets: [t], query: 'eventsSinceNumber=abc', names: 'eventsSinceNumber' },
    { what: 'GET eventsSinceNumber twice', targets: [t], query: 'eventsSinceNumber=1&eventsSinceNumber=2', names: 'eventsSinceNumber' },
    { what: 'GET eventsUntilNumber below eventsSinceNumber', targets: [t], query: 'eventsSinceNumber=5&eventsUntilNumber=3', names: 'eventsUntilNumber' },
    { what: 'GET content not a content code', targets: [t], query: 'content=everything', names: 'content' },
    { what: 'GET misspelt bound', targets: [t], query: 'eventSinceNumber=1', names: 'eventSinceNumber' },
  ]),
];

const expectBadRequest = (res: Res, names: string, what: string) => {
  assert.equal(res.status, 400, `${what}: ${res.text.slice(0, 300)}`);
  assert.equal(res.body?.resourceType, 'OperationOutcome', what);
  const issue = res.body.issue[0];
  assert.equal(issue.severity, 'error');
  assert.ok(`${issue.diagnostics} ${(issue.expression ?? []).join(' ')}`.includes(names), `${what}: the outcome names ${names}: ${JSON.stringify(issue)}`);
};

describe('operations', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ HERALD_TOPICS: TOPICS_DIR });
  });
  after(() => server.close());

  for (const v of VERSIONS) {
    describe(`on /fhir/${v}`, () => {
      const base = () => server.fhir(v);
      const wsSubscription = async (value: string) => {
        const res = await call('POST', `${base()}/Subscription`, subscriptionResource(v, { topic: TOPIC, channel: 'websocket', filters: [`Patient?identifier=urn:ops|${value}`] }));
        assert.equal(res.status, 201, JSON.stringify(res.body));
        return res.body.id as string;
      };
      const patient = (value: string) => call('POST', `${base()}/Patient`, { resourceType: 'Patient', identifier: [{ system: 'urn:ops', value }] });

      it('answers input of the wrong shape with a 400 OperationOutcome naming the parameter, every operation and level', async () => {
        const id = await wsSubscription('bad-input');
        let n = 0;
        for (const bad of [...BAD_BODIES, ...BAD_VALUES]) {
          for (const t of bad.targets) {
            const url = `${base()}/${t.path(id)}`;
            const what = `${t.name} with ${bad.what}`;
            if (bad.query !== undefined) expectBadRequest(await call('GET', `${url}?${bad.query}`), bad.names, what);
            else expectBadRequest(await call('POST', url, bad.body), bad.names, what);
            n++;
          }
        }
        assert.ok(n > 100, `${n} bad requests`);
        // The same operations with good input still work, by GET and POST.
        assert.equal((await call('GET', `${base()}/Subscription/${id}/$status`)).status, 200);
        assert.equal((await call('POST', `${base()}/Subscription/$status`, parameters({ name: 'id', valueString: id }, { name: 'status', valueCode: 'active' }))).status, 200);
        assert.equal((await call('POST', `${base()}/Subscription/${id}/$events`, parameters({ name: 'eventsSinceNumber', valueInteger64: '1' }, { name: 'content', valueCode: 'empty' }))).status, 200);
        assert.equal((await call('POST', `${base()}/Subscription/$get-ws-binding-token`, parameters({ name: 'id', valueId: id }))).status, 200);
        assert.equal((await call('POST', `${base()}/Subscription/${id}/$get-ws-binding-token`)).status, 200, 'POST without a body');
      });

      it('$status answers carry a self link: the request as asked (a POST as the query asking the same)', async () => {
        const id = await wsSubscription('self-link');
        const self = (res: Res) => (res.body as { link?: { relation: string; url: string }[] }).link?.find((l) => l.relation === 'self')?.url;
        assert.equal(self(await call('GET', `${base()}/Subscription/${id}/$status`)), `${base()}/Subscription/${id}/$status`);
        assert.equal(self(await call('GET', `${base()}/Subscription/$status?id=${id}&status=active`)), `${base()}/Subscription/$status?id=${id}&status=active`);
        assert.equal(self(await call('POST', `${base()}/Subscription/$status`, parameters({ name: 'id', valueString: id }, { name: 'status', valueCode: 'active' }))), `${base()}/Subscription/$status?id=${id}&status=active`);
        assert.equal(self(await call('GET', `${base()}/Subscription/$status`)), `${base()}/Subscription/$status`);
      });

      it('$events with nothing in the range: 200, a notification bundle whose status is query-status, no events (D-21)', async () => {
        const id = await wsSubscription('empty-range');
        const bundleType = v === 'R5' ? 'subscription-notification' : 'history';
        const expectEmpty = (res: Res, eventsSince: number, what: string) => {
          assert.equal(res.status, 200, `${what}: ${res.text.slice(0, 300)}`);
          assert.equal(res.body.resourceType, 'Bundle');
          assert.equal(res.body.type, bundleType, what);
          assert.equal(res.body.entry.length, 1, `${what}: the status and nothing else`);
          const note = readNotification(res.body);
          assert.equal(note.type, 'query-status', `${what}: sst-1 forbids an empty query-event`);
          assert.equal(note.status, 'active', `${what}: sst-2, the status is there`);
          assert.equal(note.eventsSince, eventsSince, what);
          assert.deepEqual(note.events, [], what);
        };
        expectEmpty(await call('GET', `${base()}/Subscription/${id}/$events`), 0, 'a fresh subscription');
        expectEmpty(await call('POST', `${base()}/Subscription/${id}/$events`, parameters()), 0, 'a fresh subscription, by POST');
        expectEmpty(await call('GET', `${base()}/Subscription/${id}/$events?eventsSinceNumber=0`), 0, 'a fresh subscription from 0');
        await patient('empty-range');
        await patient('empty-range');
        expectEmpty(await call('GET', `${base()}/Subscription/${id}/$events?eventsSinceNumber=3`), 2, 'one past the last event');
        expectEmpty(await call('GET', `${base()}/Subscription/${id}/$events?eventsSinceNumber=50&eventsUntilNumber=60`), 2, 'far past the last event');
        expectEmpty(await call('GET', `${base()}/Subscription/${id}/$events?eventsUntilNumber=0`), 2, 'up to 0');
        const some = await call('GET', `${base()}/Subscription/${id}/$events?eventsSinceNumber=2`);
        assert.equal(readNotification(some.body).type, 'query-event');
        assert.deepEqual(readNotification(some.body).events.map((e) => e.number), [2]);
      });

      it('$events?eventsSinceNumber=0 means from the first event: numbers start at 1 (EN-1)', async () => {
        const id = await wsSubscription('from-zero');
        for (let i = 0; i < 3; i++) await patient('from-zero');
        for (const res of [
          await call('GET', `${base()}/Subscription/${id}/$events?eventsSinceNumber=0`),
          await call('POST', `${base()}/Subscription/${id}/$events`, parameters({ name: 'eventsSinceNumber', valueString: '0' }), { 'content-type': 'application/fhir+json' }),
          await call('GET', `${base()}/Subscription/${id}/$events?eventsSinceNumber=0&eventsUntilNumber=2`),
        ]) {
          assert.equal(res.status, 200, res.text.slice(0, 300));
          const note = readNotification(res.body);
          assert.equal(note.type, 'query-event');
          assert.equal(note.eventsSince, 3);
          assert.equal(note.events[0]!.number, 1);
        }
        const upTo2 = readNotification((await call('GET', `${base()}/Subscription/${id}/$events?eventsSinceNumber=0&eventsUntilNumber=2`)).body);
        assert.deepEqual(upTo2.events.map((e) => e.number), [1, 2]);
      });
    });
  }
});

describe('$events after retention has pruned the log', () => {
  it('without bounds: the latest events still held (none: a query-status bundle); a bound below the oldest held: 410 naming it (D-9, D-21)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-ops-'));
    const path = join(dir, 'herald.db');
    const db = await persistentDb(dir, 'herald');
    const env = { HERALD_TOPICS: TOPICS_DIR, HERALD_DB: db };
    const patient = (server: TestServer, v: string, value: string) =>
      call('POST', `${server.fhir(v as 'R4')}/Patient`, { resourceType: 'Patient', identifier: [{ system: 'urn:ops', value }] });
    const ids = new Map<string, string>();
    let server = await startServer(env);
    try {
      for (const v of VERSIONS) {
        const sub = await call('POST', `${server.fhir(v)}/Subscription`, subscriptionResource(v, { topic: TOPIC, channel: 'websocket', filters: ['Patient?identifier=urn:ops|pruned'] }));
        ids.set(v, sub.body.id);
        for (let i = 0; i < 3; i++) await patient(server, v, 'pruned');
      }
    } finally {
      await server.close();
    }
    // Retention drops every event held so far (the server's hourly pruning, run now).
    const store = onPostgres ? await openPostgresStore({ url: db }) : await openSqliteStore({ path });
    await store.pruneEvents(new Date(Date.now() + 60_000).toISOString());
    await store.close();
    server = await startServer(env);
    try {
      for (const v of VERSIONS) {
        const events = (query = '') => call('GET', `${server.fhir(v)}/Subscription/${ids.get(v)}/$events${query}`);
        const latest = await events();
        assert.equal(latest.status, 200, latest.text.slice(0, 300));
        assert.equal(readNotification(latest.body).type, 'query-status');
        assert.equal(readNotification(latest.body).eventsSince, 3);
        for (const query of ['?eventsSinceNumber=1', '?eventsSinceNumber=0', '?eventsUntilNumber=2']) {
          const gone = await events(query);
          assert.equal(gone.status, 410, `${v} ${query}`);
          assert.match(gone.body.issue[0].diagnostics, /oldest event still held is 4/);
        }
        assert.equal(readNotification((await events('?eventsSinceNumber=4')).body).type, 'query-status');
        await patient(server, v, 'pruned');
        assert.deepEqual(readNotification((await events()).body).events.map((e) => e.number), [4]);
      }
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('$status at type level lists at most 1,000 subscriptions', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ HERALD_TOPICS: TOPICS_DIR });
  });
  after(() => server.close());

  it('more: 422 too-costly saying how to ask; by status (as far as it narrows) and by ids in chunks it answers (bounded work)', async () => {
    const base = server.fhir('R4');
    const sub = (value: string) => subscriptionResource('R4', { topic: TOPIC, channel: 'websocket', filters: [`Patient?identifier=urn:ops|${value}`] });
    const made = await call('POST', base, { resourceType: 'Bundle', type: 'transaction', entry: Array.from({ length: 1001 }, (_, i) => ({ resource: sub(`n${i}`), request: { method: 'POST', url: 'Subscription' } })) });
    assert.equal(made.status, 200, JSON.stringify(made.body).slice(0, 300));
    const ids = (made.body.entry as { response: { location: string } }[]).map((e) => /Subscription\/([^/]+)/.exec(e.response.location)![1]!);
    const tooMany = (res: Res, n: number) => {
      assert.equal(res.status, 422, JSON.stringify(res.body).slice(0, 300));
      assert.equal(res.body.issue[0].code, 'too-costly');
      assert.match(res.body.issue[0].diagnostics, new RegExp(`would list ${n} subscriptions, more than 1000 at once: ask for some by id`));
    };
    tooMany(await call('GET', `${base}/Subscription/$status`), 1001);
    tooMany(await call('GET', `${base}/Subscription/$status?status=active,requested`), 1001);
    // 1,001 ids asked: the request's shape, 400 naming the parameter; the same id many times counts once.
    const asked = await call('POST', `${base}/Subscription/$status`, parameters(...ids.map((id) => ({ name: 'id', valueString: id }))));
    assert.equal(asked.status, 400);
    assert.equal(asked.body.issue[0].code, 'too-costly');
    assert.deepEqual(asked.body.issue[0].expression, ['id']);
    assert.match(asked.body.issue[0].diagnostics, /at most 1000 ids at once \(1001 asked\)/);
    const same = await call('POST', `${base}/Subscription/$status`, parameters(...Array.from({ length: 1001 }, () => ({ name: 'id', valueString: ids[1] }))));
    assert.equal(same.status, 200);
    assert.equal(same.body.total, 1, 'one entry per subscription');
    assert.equal(same.body.link[0].url, `${base}/Subscription/$status?id=${ids[1]}`);
    // A status that narrows them below the cap is answered (the registry's statuses narrow first).
    const none = await call('GET', `${base}/Subscription/$status?status=off`);
    assert.equal(none.status, 200);
    assert.equal(none.body.total, 0);
    // Ids in chunks, as the client and the console ask. A query too long to repeat: the self link is the bare operation.
    let total = 0;
    for (let i = 0; i < ids.length; i += 400) {
      const res = await call('POST', `${base}/Subscription/$status`, parameters(...ids.slice(i, i + 400).map((id) => ({ name: 'id', valueString: id }))));
      assert.equal(res.status, 200);
      assert.equal(res.body.link[0].url, `${base}/Subscription/$status`);
      total += res.body.total;
    }
    assert.equal(total, 1001);
    // One gone: 1,000 left, listed at once.
    assert.equal((await call('DELETE', `${base}/Subscription/${ids[0]}`)).status, 204);
    const all = await call('GET', `${base}/Subscription/$status`);
    assert.equal(all.status, 200);
    assert.equal(all.body.total, 1000);
  });
});
