import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { VERSIONS, call, startServer, type TestServer } from '../helpers/server.ts';
import { persistentDb } from '../helpers/store.ts';
import { readNotification, subscriptionResource, topicResource, type Version } from '../helpers/subscriptions.ts';

/**
 * Story: a client writes a topic whose criteria fail, are costly or pull in too much context.
 * Everybody else's writes go on (D-20): the failing criterion does not trigger, the topic can
 * still be fixed or removed, and its subscribers see the fault in `$status`.
 */
const carrier = (v: Version) => (v === 'R4' ? 'Basic' : 'SubscriptionTopic');

async function putTopic(base: string, v: Version, id: string, t: Parameters<typeof topicResource>[1]): Promise<number> {
  const res = await call('PUT', `${base}/${carrier(v)}/${id}`, topicResource(v, t, id));
  return res.status;
}

async function subscribe(base: string, v: Version, topic: string, content: 'id-only' | 'full-resource' = 'id-only'): Promise<string> {
  const res = await call('POST', `${base}/Subscription`, subscriptionResource(v, { topic, channel: 'websocket', content }));
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.id as string;
}

const events = async (base: string, id: string) => readNotification((await call('GET', `${base}/Subscription/${id}/$events`)).body);

describe('topics that fail or cost too much never break writes (D-20)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  for (const v of VERSIONS) {
    describe(`on /fhir/${v}`, () => {
      const base = () => server.fhir(v);

      for (const [name, fhirPath] of [['a union in arithmetic', '(1 | 2) + 1 = 3'], ['single() on two items', '%current.name.given.single() = \'x\'']]) {
        it(`a topic whose FHIRPath throws (${name}): writes answer 201, $status shows the fault, the topic can be updated and deleted`, async () => {
          const url = `http://example.org/topics/throws-${name.replace(/\W+/g, '-')}`;
          assert.equal(await putTopic(base(), v, 'throws', { url, resource: 'Patient', fhirPath }), 201);
          const sub = await subscribe(base(), v, url);
          const res = await call('POST', `${base()}/Patient`, { resourceType: 'Patient', name: [{ given: ['a', 'b'] }] });
          assert.equal(res.status, 201, JSON.stringify(res.body));
          assert.equal((await events(base(), sub)).events.length, 0, 'not triggered');
          const status = JSON.stringify((await call('GET', `${base()}/Subscription/${sub}/$status`)).body);
          assert.match(status, /the topic's resourceTrigger\[0\]\.fhirPathCriteria could not be evaluated at [^;]+; those changes did not trigger/);
          // Fixing the topic clears the fault; removing it is possible.
          assert.equal(await putTopic(base(), v, 'throws', { url, resource: 'Patient', fhirPath: '%current.name.exists()' }), 200);
          assert.doesNotMatch(JSON.stringify((await call('GET', `${base()}/Subscription/${sub}/$status`)).body), /could not be evaluated/);
          assert.equal((await call('POST', `${base()}/Patient`, { resourceType: 'Patient', name: [{ given: ['c'] }] })).status, 201);
          assert.equal((await events(base(), sub)).events.length, 1, 'the fixed topic triggers');
          assert.equal((await call('DELETE', `${base()}/Subscription/${sub}`)).status, 204);
          assert.equal((await call('DELETE', `${base()}/${carrier(v)}/throws`)).status, 204);
        });
      }

      it(`a throwing topic on ${carrier(v)} itself: topics and Subscriptions can still be written and it can be deleted`, async () => {
        const url = 'http://example.org/topics/watches-topics';
        assert.equal(await putTopic(base(), v, 'watches-topics', { url, resource: carrier(v), interactions: ['create', 'update', 'delete'], fhirPath: '(1 | 2) + 1 = 3' }), 201);
        assert.equal(await putTopic(base(), v, 'other', { url: 'http://example.org/topics/other', resource: 'Patient' }), 201);
        await subscribe(base(), v, url);
        assert.equal((await call('DELETE', `${base()}/${carrier(v)}/other`)).status, 204);
        assert.equal((await call('DELETE', `${base()}/${carrier(v)}/watches-topics`)).status, 204);
      });

      it('a catastrophic regex runs on RE2 in linear time, with the right answers', async () => {
        const url = 'http://example.org/topics/evil-regex';
        assert.equal(await putTopic(base(), v, 'evil-regex', { url, resource: 'Patient', fhirPath: "%current.name.family.first().matches('^(a+)+$')" }), 201);
        const sub = await subscribe(base(), v, url);
        const started = performance.now();
        // 2^60 backtracking steps: a backtracking engine would not finish.
        const res = await call('POST', `${base()}/Patient`, { resourceType: 'Patient', name: [{ family: `${'a'.repeat(60)}!` }] });
        console.log(`# ${v}: a write watched by matches('^(a+)+$') on 61 characters took ${(performance.now() - started).toFixed(1)} ms`);
        assert.equal(res.status, 201);
        assert.equal((await call('POST', `${base()}/Patient`, { resourceType: 'Patient', name: [{ family: 'aaaa' }] })).status, 201);
        const got = await events(base(), sub);
        assert.equal(got.events.length, 1, 'only the matching family triggers');
      });

      it('a deeply nested select, or an overlong expression, is refused at topic write with 422 naming the element', async () => {
        let nested = '%current.name.given';
        for (let i = 0; i < 5; i++) nested = `%current.name.select(${nested})`;
        for (const fhirPath of [`${nested}.count() > 0`, `%current.id.exists()${' and true'.repeat(120)}`]) {
          const res = await call('PUT', `${base()}/${carrier(v)}/nested`, topicResource(v, { url: 'http://example.org/topics/nested', resource: 'Patient', fhirPath }, 'nested'));
          assert.equal(res.status, 422, JSON.stringify(res.body));
          assert.equal(res.body.resourceType, 'OperationOutcome');
          assert.match(JSON.stringify(res.body.issue), /fhirPathCriteria/);
        }
      });
    });
  }

  it('revInclude * context is capped per event and per notification ($events page)', async () => {
    const v = 'R5';
    const base = server.fhir(v);
    const url = 'http://example.org/topics/patient-revinclude-all';
    assert.equal(await putTopic(base, v, 'revinclude-all', { url, resource: 'Patient', interactions: ['update'], revInclude: ['*'] }), 201);
    const sub = await subscribe(base, v, url, 'full-resource');
    const patients: string[] = [];
    for (let p = 0; p < 8; p++) {
      const patient = (await call('POST', `${base}/Patient`, { resourceType: 'Patient', name: [{ family: `Many${p}` }] })).body;
      patients.push(patient.id);
      const entry = Array.from({ length: 30 }, () => ({
        resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${patient.id}` } },
        request: { method: 'POST', url: 'Observation' },
      }));
      assert.equal((await call('POST', base, { resourceType: 'Bundle', type: 'batch', entry })).status, 200);
    }
    for (const id of patients) assert.equal((await call('PUT', `${base}/Patient/${id}`, { resourceType: 'Patient', id, name: [{ family: 'Changed' }] })).status, 200);
    const bundle = (await call('GET', `${base}/Subscription/${sub}/$events`)).body;
    const status = bundle.entry[0].resource;
    assert.equal(status.notificationEvent.length, 8);
    const perEvent = status.notificationEvent.map((e: any) => (e.additionalContext ?? []).length);
    const context = bundle.entry.filter((e: any) => e.fullUrl.includes('/Observation/'));
    console.log(`# context per event: ${perEvent.join(', ')}; ${context.length} Observations in the bundle`);
    assert.ok(perEvent.every((n: number) => n <= 20), 'at most 20 per event');
    assert.equal(perEvent[0], 20, 'the first event gets its full share');
    assert.equal(context.length, 100, 'at most 100 distinct context resources in one bundle');
  });
});

describe('a stored topic that throws on its own type can be deleted after a restart (D-20)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-topic-faults-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const v of ['R4', 'R5'] as const) {
    it(`on /fhir/${v}`, async () => {
      const env = { HERALD_DB: await persistentDb(dir, v) };
      let server = await startServer(env);
      try {
        assert.equal(await putTopic(server.fhir(v), v, 'self', { url: 'http://example.org/topics/self', resource: carrier(v), interactions: ['create', 'update', 'delete'], fhirPath: '(1 | 2) + 1 = 3' }), 201);
      } finally {
        await server.close();
      }
      server = await startServer(env);
      try {
        assert.equal((await call('DELETE', `${server.fhir(v)}/${carrier(v)}/self`)).status, 204);
      } finally {
        await server.close();
      }
    });
  }
});
