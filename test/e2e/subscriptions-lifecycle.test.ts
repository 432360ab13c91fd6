import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { type Receiver, startReceiver } from '../helpers/receiver.ts';
import { VERSIONS, call, startServer, type TestServer } from '../helpers/server.ts';
import { readNotification, subscriptionResource, topicResource } from '../helpers/subscriptions.ts';
import { connectWs } from '../helpers/ws.ts';

const TOPICS_DIR = fileURLToPath(new URL('../fixtures/topics', import.meta.url));
const FOLDER_TOPIC = 'http://example.org/topics/patient-created';
const DELETE_TOPIC = 'http://example.org/topics/observation-deleted';

describe('subscription lifecycle', () => {
  let server: TestServer;
  let hook: Receiver;
  before(async () => {
    server = await startServer({ HERALD_TOPICS: TOPICS_DIR, HERALD_RETRY_BASE_MS: '50', HERALD_RETRY_CAP_MS: '200', HERALD_MIN_HEARTBEAT_S: '1' });
    hook = await startReceiver();
  });
  after(async () => {
    await server.close();
    await hook.close();
  });
  const notes = (id: string) => hook.received.filter((r) => JSON.stringify(r.body?.entry?.[0] ?? '').includes(`Subscription/${id}`)).map((r) => readNotification(r.body));

  for (const v of VERSIONS) {
    describe(`on /fhir/${v}`, () => {
      const base = () => server.fhir(v);
      const subscribe = async (s: Parameters<typeof subscriptionResource>[1]) => {
        const res = await call('POST', `${base()}/Subscription`, subscriptionResource(v, { endpoint: hook.url, ...s }));
        assert.equal(res.status, 201, JSON.stringify(res.body));
        return res.body.id as string;
      };

      it('installs topics from HERALD_TOPICS in this version\'s shape, searchable by url (D-12, T-7, T-9)', async () => {
        const res = v === 'R4'
          ? await call('GET', `${base()}/Basic?code=http://hl7.org/fhir/fhir-types|SubscriptionTopic`)
          : await call('GET', `${base()}/SubscriptionTopic?url=${encodeURIComponent(FOLDER_TOPIC)}`);
        assert.equal(res.status, 200);
        assert.ok(JSON.stringify(res.body).includes(FOLDER_TOPIC));
        const id = await subscribe({ topic: FOLDER_TOPIC, filters: ['Patient?identifier=urn:t|folder-1'] });
        await call('POST', `${base()}/Patient`, { resourceType: 'Patient', identifier: [{ system: 'urn:t', value: 'folder-1' }] });
        await hook.waitFor(() => notes(id).some((n) => n.type === 'event-notification'));
      });

      it('finds topics and subscriptions by their search parameters (T-7, T-9, S-14)', async () => {
        const found = async (q: string) => (await call('GET', `${base()}/${q}`)).body.total as number;
        const url = encodeURIComponent(FOLDER_TOPIC);
        if (v === 'R4') {
          assert.equal(await found(`Basic?code=http://hl7.org/fhir/fhir-types|SubscriptionTopic&url=${url}`), 1);
        } else {
          for (const q of [`url=${url}`, 'status=active', 'resource=Patient', 'title=a%20patient%20rec', `derived-or-self=${url}`]) {
            assert.ok((await found(`SubscriptionTopic?${q}`)) >= 1, q);
          }
          assert.equal(await found('SubscriptionTopic?url=http://nowhere'), 0);
        }
        const id = await subscribe({ topic: FOLDER_TOPIC, filters: ['Patient?identifier=urn:t|searchable'] });
        const ids = async (q: string) => ((await call('GET', `${base()}/Subscription?${q}`)).body.entry ?? []).map((e: any) => e.resource.id);
        assert.ok((await ids(v === 'R5' ? `topic=${url}` : `topic=${url}`)).includes(id));
        if (v !== 'R5') {
          assert.ok((await ids('payload-type=id-only')).includes(id));
          assert.ok((await ids('filter-criteria=Patient?identifier')).includes(id));
        }
      });

      it('sends heartbeats when the channel is idle for heartbeatPeriod (NT-3, HB-1)', async () => {
        const id = await subscribe({ topic: FOLDER_TOPIC, filters: ['Patient?identifier=urn:t|never'], heartbeat: 1 });
        await hook.waitFor(() => notes(id).some((n) => n.type === 'heartbeat'), 5000);
        const hb = notes(id).find((n) => n.type === 'heartbeat')!;
        assert.equal(hb.eventsSince, 0, 'heartbeats do not count');
        assert.equal(hb.events.length, 0);
      });

      it('turns a subscription off when its end passes (D-17)', async () => {
        const end = new Date(Date.now() + 1500).toISOString();
        const body = subscriptionResource(v, { topic: FOLDER_TOPIC, endpoint: hook.url, filters: ['Patient?identifier=urn:t|end'] });
        const res = await call('POST', `${base()}/Subscription`, { ...body, end });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        const deadline = Date.now() + 6000;
        while ((await call('GET', `${base()}/Subscription/${res.body.id}`)).body.status !== 'off') {
          assert.ok(Date.now() < deadline, 'did not turn off');
          await new Promise((r) => setTimeout(r, 100));
        }
        const past = await call('POST', `${base()}/Subscription`, { ...body, end: '2001-01-01T00:00:00Z' });
        assert.equal(past.status, 422);
      });

      it('notifies deletes with request DELETE and no resource (resultForDelete, P-4)', async () => {
        const topicType = v === 'R4' ? 'Basic' : 'SubscriptionTopic';
        const topic = topicResource(v, { url: DELETE_TOPIC, resource: 'Observation', interactions: ['delete'] }, 'obs-deleted');
        assert.ok([200, 201].includes((await call('PUT', `${base()}/${topicType}/obs-deleted`, topic)).status));
        const id = await subscribe({ topic: DELETE_TOPIC, content: 'full-resource' });
        const obs = (await call('POST', `${base()}/Observation`, { resourceType: 'Observation', status: 'final', code: { text: 'x' } })).body;
        await call('DELETE', `${base()}/Observation/${obs.id}`);
        await hook.waitFor(() => notes(id).some((n) => n.type === 'event-notification'));
        const n = notes(id).find((x) => x.type === 'event-notification')!;
        assert.equal(n.events[0]!.focus, `${base()}/Observation/${obs.id}`);
        const entry = n.entries.find((e: any) => e.fullUrl === `${base()}/Observation/${obs.id}`);
        assert.equal(entry.request.method, 'DELETE');
        assert.equal(entry.resource, undefined);
      });

      it('fires a fhirPathCriteria topic on the create: %previous of a create is empty (D-20, D-12)', async () => {
        const topicType = v === 'R4' ? 'Basic' : 'SubscriptionTopic';
        const url = 'http://example.org/topics/encounter-finished-fhirpath';
        const finished = v === 'R5' ? 'completed' : 'finished';
        const fhirPath = `(%previous.empty() or %previous.status != '${finished}') and %current.status = '${finished}'`;
        const topic = topicResource(v, { url, resource: 'Encounter', interactions: ['create', 'update', 'delete'], fhirPath }, 'enc-fhirpath');
        assert.ok([200, 201].includes((await call('PUT', `${base()}/${topicType}/enc-fhirpath`, topic)).status));
        const id = await subscribe({ topic: url });
        const encounter = (status: string) =>
          v === 'R5' ? { resourceType: 'Encounter', status, class: [{ coding: [{ code: 'IMP' }] }] } : { resourceType: 'Encounter', status, class: { code: 'IMP' } };
        await call('POST', `${base()}/Encounter`, encounter('planned'));
        const created = (await call('POST', `${base()}/Encounter`, encounter(finished))).body;
        await call('DELETE', `${base()}/Encounter/${created.id}`);
        await hook.waitFor(() => notes(id).some((n) => n.type === 'event-notification'));
        await new Promise((r) => setTimeout(r, 200));
        const events = notes(id).filter((n) => n.type === 'event-notification').flatMap((n) => n.events);
        assert.deepEqual(events.map((e) => e.focus), [`${base()}/Encounter/${created.id}`], 'only the create of a finished encounter');
      });

      it('adds the topic notificationShape include/revInclude as additional context (P-5, P-6)', async () => {
        const topicType = v === 'R4' ? 'Basic' : 'SubscriptionTopic';
        const url = 'http://example.org/topics/observation-shaped';
        const topic = topicResource(v, { url, resource: 'Observation', interactions: ['create'], include: ['Observation:subject'], revInclude: ['Provenance:target'] }, 'obs-shaped');
        assert.ok([200, 201].includes((await call('PUT', `${base()}/${topicType}/obs-shaped`, topic)).status));
        const full = await subscribe({ topic: url, content: 'full-resource' });
        const ids = await subscribe({ topic: url, content: 'id-only' });
        const pat = (await call('POST', `${base()}/Patient`, { resourceType: 'Patient', name: [{ family: 'Shape' }] })).body;
        const obs = (await call('POST', `${base()}/Observation`, { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${pat.id}` } })).body;
        await hook.waitFor(() => notes(full).some((n) => n.type === 'event-notification') && notes(ids).some((n) => n.type === 'event-notification'));
        for (const [id, withResource] of [[full, true], [ids, false]] as const) {
          const n = notes(id).find((x) => x.type === 'event-notification')!;
          assert.equal(n.events[0]!.focus, `${base()}/Observation/${obs.id}`);
          const entry = n.entries.find((e: any) => e.fullUrl === `${base()}/Patient/${pat.id}`);
          assert.ok(entry, 'the subject is included');
          assert.equal(entry.resource !== undefined, withResource);
          const raw = hook.received.find((r) => JSON.stringify(r.body?.entry?.[0] ?? '').includes(`Subscription/${id}`) && readNotification(r.body).type === 'event-notification')!.body;
          assert.ok(JSON.stringify(raw.entry[0]).includes(`Patient/${pat.id}`), 'additionalContext names it');
        }
      });

      it('numbers events of one subscription without gaps under concurrent writes (EN-1, D-18)', async () => {
        const id = await subscribe({ topic: FOLDER_TOPIC, filters: ['Patient?identifier=urn:t|burst'] });
        await Promise.all(Array.from({ length: 30 }, () => call('POST', `${base()}/Patient`, { resourceType: 'Patient', identifier: [{ system: 'urn:t', value: 'burst' }] })));
        await hook.waitFor(() => notes(id).flatMap((n) => (n.type === 'event-notification' ? n.events : [])).length >= 30);
        const numbers = notes(id).filter((n) => n.type === 'event-notification').flatMap((n) => n.events.map((e) => e.number));
        assert.deepEqual(numbers, Array.from({ length: 30 }, (_, i) => i + 1));
      });

      it('an update that changes nothing is no event: the next change is the next number (EN-1)', async () => {
        const topicType = v === 'R4' ? 'Basic' : 'SubscriptionTopic';
        const url = 'http://example.org/topics/patient-changed';
        const topic = topicResource(v, { url, resource: 'Patient', interactions: ['create', 'update'] }, 'patient-changed');
        assert.ok([200, 201].includes((await call('PUT', `${base()}/${topicType}/patient-changed`, topic)).status));
        const id = await subscribe({ topic: url, content: 'full-resource' });
        const created = (await call('POST', `${base()}/Patient`, { resourceType: 'Patient', active: true })).body;
        const same = await call('PUT', `${base()}/Patient/${created.id}`, created);
        assert.equal(same.status, 200);
        assert.equal(same.body.meta.versionId, '1');
        const changed = await call('PUT', `${base()}/Patient/${created.id}`, { ...created, active: false });
        assert.equal(changed.body.meta.versionId, '2');
        const events = () => notes(id).filter((n) => n.type === 'event-notification').flatMap((n) => n.events);
        await hook.waitFor(() => events().length >= 2);
        await new Promise((r) => setTimeout(r, 200));
        assert.deepEqual(events().map((e) => e.number), [1, 2]);
        const resources = notes(id).flatMap((n) => n.entries.filter((e: any) => e.resource?.resourceType === 'Patient').map((e: any) => e.resource));
        assert.deepEqual(resources.map((r: any) => [r.meta.versionId, r.active]), [['1', true], ['2', false]]);
      });
    });
  }

  it('runs R4 classic criteria subscriptions on the same engine, posting the resource', async () => {
    const res = await call('POST', `${server.fhir('R4')}/Subscription`, {
      resourceType: 'Subscription',
      status: 'requested',
      reason: 'classic',
      criteria: 'Observation?code=http://loinc.org|1234-5',
      channel: { type: 'rest-hook', endpoint: `${hook.url}/classic`, payload: 'application/fhir+json' },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const obs = (await call('POST', `${server.fhir('R4')}/Observation`, { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '1234-5' }] } })).body;
    await call('POST', `${server.fhir('R4')}/Observation`, { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '9999-9' }] } });
    await hook.waitFor(() => hook.received.some((r) => r.path === '/hook/classic'));
    await new Promise((r) => setTimeout(r, 200));
    const got = hook.received.filter((r) => r.path === '/hook/classic');
    assert.equal(got.length, 1);
    assert.equal(got[0]!.body.resourceType, 'Observation');
    assert.equal(got[0]!.body.id, obs.id);
  });

  it('accepts R4 classic subscriptions without channel.payload: the rest-hook POST has no body (D-19)', async () => {
    const res = await call('POST', `${server.fhir('R4')}/Subscription`, {
      resourceType: 'Subscription',
      status: 'requested',
      reason: 'classic without payload',
      criteria: 'Observation?code=http://loinc.org|5555-5',
      channel: { type: 'rest-hook', endpoint: `${hook.url}/classic-bare` },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.channel.payload, undefined, 'stored as given');
    assert.equal(res.body.channel._payload, undefined, 'no backport extension added');
    await call('POST', `${server.fhir('R4')}/Observation`, { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '5555-5' }] } });
    await hook.waitFor(() => hook.received.some((r) => r.path === '/hook/classic-bare'));
    const [got] = hook.received.filter((r) => r.path === '/hook/classic-bare');
    assert.equal(got!.text, '');
    assert.equal(got!.headers['content-type'], undefined);
    assert.equal(got!.headers['content-length'], '0');
    assert.equal((await call('GET', `${server.fhir('R4')}/Subscription/${res.body.id}`)).body.status, 'active');
  });

  it('notifies R4 classic websocket subscriptions without channel.payload with empty-content notifications, a ping per event (D-19, WS-5)', async () => {
    const res = await call('POST', `${server.fhir('R4')}/Subscription`, {
      resourceType: 'Subscription',
      status: 'requested',
      reason: 'classic websocket',
      criteria: 'Observation?code=http://loinc.org|6666-6',
      channel: { type: 'websocket' },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const token = (await call('GET', `${server.fhir('R4')}/Subscription/${res.body.id}/$get-ws-binding-token`)).body.parameter.find((p: any) => p.name === 'token').valueString;
    const ws = await connectWs(`${server.url.replace('http', 'ws')}/ws`);
    ws.send(`bind-with-token ${token}`);
    const isNote = (type: string) => (f: any) => f?.resourceType === 'Bundle' && readNotification(f).type === type;
    await ws.next(isNote('handshake'));
    await call('POST', `${server.fhir('R4')}/Observation`, { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '6666-6' }] } });
    const note = readNotification(await ws.next(isNote('event-notification')));
    assert.deepEqual(note.events, [{ number: 1, focus: undefined }], 'the event number, nothing about the resource');
    assert.equal(note.entries.length, 0);
    await ws.close();
  });
});
