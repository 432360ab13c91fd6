import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseNotification } from '../../src/client/index.ts';
import { type Receiver, startReceiver } from '../helpers/receiver.ts';
import { VERSIONS, call, startServer, type TestServer } from '../helpers/server.ts';
import { readNotification, subscriptionResource, topicResource } from '../helpers/subscriptions.ts';
import { until } from '../helpers/until.ts';

const TOPIC = 'http://example.org/topics/encounter-finished';

describe('topic-based subscriptions over rest-hook', () => {
  let server: TestServer;
  let hook: Receiver;
  before(async () => {
    server = await startServer({ HERALD_RETRY_BASE_MS: '50', HERALD_RETRY_CAP_MS: '200' });
    hook = await startReceiver();
  });
  after(async () => {
    await server.close();
    await hook.close();
  });

  for (const v of VERSIONS) {
    describe(`on /fhir/${v}`, () => {
      const base = () => server.fhir(v);
      const topicType = v === 'R4' ? 'Basic' : 'SubscriptionTopic';
      const forSub = (id: string) => hook.received.filter((r) => readNotification(r.body).entries !== undefined && r.body.entry[0].resource && JSON.stringify(r.body.entry[0]).includes(`Subscription/${id}`));
      const encounter = (status: string, patient = 'Patient/p1') =>
        v === 'R5'
          ? { resourceType: 'Encounter', status: status === 'finished' ? 'completed' : status, class: [{ coding: [{ code: 'IMP' }] }], subject: { reference: patient } }
          : { resourceType: 'Encounter', status, class: { code: 'IMP' }, subject: { reference: patient } };
      const finished = v === 'R5' ? 'completed' : 'finished';

      before(async () => {
        const topic = topicResource(v, { url: TOPIC, resource: 'Encounter', current: `status=${finished}`, previous: `status:not=${finished}`, requireBoth: true, canFilterBy: [{ param: 'subject' }, { param: 'patient' }] }, 'enc-finished');
        const res = await call('PUT', `${base()}/${topicType}/enc-finished`, topic);
        assert.ok(res.status === 201 || res.status === 200, JSON.stringify(res.body));
      });

      it('handshakes a new rest-hook subscription, then sets it active (ST-2, D-7, RH-5)', async () => {
        const res = await call('POST', `${base()}/Subscription`, subscriptionResource(v, { topic: TOPIC, endpoint: hook.url, filters: ['Encounter?subject=Patient/hs'] }));
        assert.equal(res.status, 201, JSON.stringify(res.body));
        assert.equal(res.body.status, 'requested');
        const id = res.body.id;
        await hook.waitFor(() => forSub(id).length >= 1);
        const handshake = readNotification(forSub(id)[0]!.body);
        assert.equal(handshake.type, 'handshake');
        assert.equal(handshake.eventsSince, 0);
        await until('subscription active', async () => (await call('GET', `${base()}/Subscription/${id}`)).body.status === 'active', { timeoutMs: 10_000, intervalMs: 25 });
      });

      it('notifies matching changes in order with event numbers from 1 (EN-1, EN-2, D-10), and nothing else', async () => {
        const id = await activeSubscription(base(), hook, v, { filters: ['Encounter?subject=Patient/order'] });
        const created: string[] = [];
        for (let i = 0; i < 5; i++) created.push((await call('POST', `${base()}/Encounter`, encounter(finished, 'Patient/order'))).body.id);
        await call('POST', `${base()}/Encounter`, encounter('in-progress', 'Patient/order'));
        await call('POST', `${base()}/Encounter`, encounter(finished, 'Patient/someone-else'));
        await hook.waitFor(() => events(forSub(id)).length >= 5);
        await new Promise((r) => setTimeout(r, 200));
        const got = events(forSub(id));
        assert.deepEqual(got.map((e) => e.number), [1, 2, 3, 4, 5]);
        assert.deepEqual(got.map((e) => e.focus), created.map((c) => `${base()}/Encounter/${c}`));
        const first = readNotification(forSub(id).find((r) => readNotification(r.body).type === 'event-notification')!.body);
        assert.equal(first.eventsSince, 1);
      });

      it('fires on the update that finishes an encounter, not on later ones (queryCriteria previous/current, requireBoth)', async () => {
        const id = await activeSubscription(base(), hook, v, { filters: ['Encounter?subject=Patient/upd'] });
        const enc = (await call('POST', `${base()}/Encounter`, encounter('in-progress', 'Patient/upd'))).body;
        await call('PUT', `${base()}/Encounter/${enc.id}`, { ...encounter(finished, 'Patient/upd'), id: enc.id });
        await call('PUT', `${base()}/Encounter/${enc.id}`, { ...encounter(finished, 'Patient/upd'), id: enc.id, priority: { text: 'x' } });
        await hook.waitFor(() => events(forSub(id)).length >= 1);
        await new Promise((r) => setTimeout(r, 200));
        assert.deepEqual(events(forSub(id)).map((e) => e.number), [1]);
      });

      it('sends Content-Type equal to the payload MIME type and every channel header (RH-2, RH-3)', async () => {
        const id = await activeSubscription(base(), hook, v, { filters: ['Encounter?subject=Patient/hdr'], headers: ['Authorization: Bearer secret-1', 'X-Trace: abc'] });
        await call('POST', `${base()}/Encounter`, encounter(finished, 'Patient/hdr'));
        const [n] = await waitEvents(hook, forSub, id, 1);
        assert.equal(n!.headers['content-type'], 'application/fhir+json');
        assert.equal(n!.headers.authorization, 'Bearer secret-1');
        assert.equal(n!.headers['x-trace'], 'abc');
      });

      it('shapes payloads: empty has no focus, id-only no resource, full-resource the resource (P-2..P-4)', async () => {
        for (const content of ['empty', 'id-only', 'full-resource'] as const) {
          const patient = `Patient/pay-${content}`;
          const id = await activeSubscription(base(), hook, v, { filters: [`Encounter?subject=${patient}`], content });
          const enc = (await call('POST', `${base()}/Encounter`, encounter(finished, patient))).body;
          const [n] = await waitEvents(hook, forSub, id, 1);
          const view = readNotification(n!.body);
          if (content === 'empty') {
            assert.equal(view.events[0]!.focus, undefined);
            assert.equal(view.entries.length, 0);
            assert.equal(view.topic, undefined);
          } else {
            assert.equal(view.events[0]!.focus, `${base()}/Encounter/${enc.id}`);
            const entry = view.entries.find((e: any) => e.fullUrl === `${base()}/Encounter/${enc.id}`);
            if (content === 'id-only') assert.equal(entry?.resource, undefined);
            else assert.equal(entry.resource.id, enc.id);
          }
        }
      });

      it('retries a failing endpoint with backoff: error with the reason in $status, then active, no gap, order kept (D-8, D-9, D-10)', async () => {
        const id = await activeSubscription(base(), hook, v, { filters: ['Encounter?subject=Patient/flaky'] });
        hook.respond(500);
        for (let i = 0; i < 3; i++) await call('POST', `${base()}/Encounter`, encounter(finished, 'Patient/flaky'));
        await until('subscription in error', async () => (await call('GET', `${base()}/Subscription/${id}`)).body.status === 'error', { timeoutMs: 10_000, intervalMs: 25 });
        const status = await call('GET', `${base()}/Subscription/${id}/$status`);
        assert.equal(status.status, 200);
        const view = readNotification({ entry: [status.body.entry[0]] });
        assert.equal(view.type, 'query-status');
        assert.equal(view.status, 'error');
        assert.equal(view.eventsSince, 3);
        assert.match(JSON.stringify(status.body.entry[0].resource), /HTTP 500/);
        // Herald's extension on the status code: when the next attempt is due (backoff ≤ the 200 ms cap)
        const { nextAttempt } = parseNotification(status.body);
        assert.ok(nextAttempt !== undefined && !Number.isNaN(Date.parse(nextAttempt)), JSON.stringify(status.body.entry[0].resource));
        assert.ok(Date.parse(nextAttempt) <= Date.now() + 1000, `${nextAttempt} is within the retry cap`);
        hook.respond(200);
        await call('POST', `${base()}/Encounter`, encounter(finished, 'Patient/flaky'));
        await hook.waitFor(() => events(forSub(id)).length >= 4);
        assert.deepEqual(events(forSub(id)).map((e) => e.number), [1, 2, 3, 4]);
        await until('subscription active', async () => (await call('GET', `${base()}/Subscription/${id}`)).body.status === 'active', { timeoutMs: 10_000, intervalMs: 25 });
        const recovered = await call('GET', `${base()}/Subscription/${id}/$status`);
        assert.equal(parseNotification(recovered.body).nextAttempt, undefined, 'no next attempt once delivery works');
        // what was delivered and when (Herald's extensions on the event count, every version's shape)
        await until('$status delivered through event 4', async () => parseNotification((await call('GET', `${base()}/Subscription/${id}/$status`)).body).delivered?.through === 4, { timeoutMs: 10_000, intervalMs: 25 });
        const { delivered } = parseNotification((await call('GET', `${base()}/Subscription/${id}/$status`)).body);
        assert.ok(delivered?.at !== undefined && Date.parse(delivered.at) <= Date.now(), JSON.stringify(delivered));
      });

      it('answers $events with ranges and $status at type level (OP-S*, OP-E*)', async () => {
        const id = await activeSubscription(base(), hook, v, { filters: ['Encounter?subject=Patient/ev'] });
        for (let i = 0; i < 4; i++) await call('POST', `${base()}/Encounter`, encounter(finished, 'Patient/ev'));
        const all = await call('GET', `${base()}/Subscription/${id}/$events`);
        assert.equal(all.status, 200);
        assert.equal(readNotification(all.body).type, 'query-event');
        assert.deepEqual(readNotification(all.body).events.map((e) => e.number), [1, 2, 3, 4]);
        const some = await call('GET', `${base()}/Subscription/${id}/$events?eventsSinceNumber=2&eventsUntilNumber=3`);
        assert.deepEqual(readNotification(some.body).events.map((e) => e.number), [2, 3]);
        const post = await call('POST', `${base()}/Subscription/${id}/$events`, { resourceType: 'Parameters', parameter: [{ name: 'eventsSinceNumber', valueString: '4' }] });
        assert.deepEqual(readNotification(post.body).events.map((e) => e.number), [4]);
        assert.equal((await call('GET', `${base()}/Subscription/${id}/$events?eventsSinceNumber=abc`)).status, 400);
        assert.equal((await call('GET', `${base()}/Subscription/nope/$events`)).status, 404);
        const typeLevel = await call('GET', `${base()}/Subscription/$status?id=${id}&id=unknown-id`);
        assert.equal(typeLevel.body.type, 'searchset');
        assert.equal(typeLevel.body.entry.length, 1);
        const byStatus = await call('POST', `${base()}/Subscription/$status`, { resourceType: 'Parameters', parameter: [{ name: 'status', valueCode: 'off' }] });
        assert.ok(byStatus.body.entry === undefined || byStatus.body.entry.every((e: any) => readNotification({ entry: [e] }).status === 'off'));
        assert.equal((await call('GET', `${base()}/Subscription/nope/$status`)).status, 404);
      });

      it('stops on off and resumes with a new handshake when set back to requested (ST-1, ER-3)', async () => {
        const id = await activeSubscription(base(), hook, v, { filters: ['Encounter?subject=Patient/off'] });
        const current = (await call('GET', `${base()}/Subscription/${id}`)).body;
        assert.equal((await call('PUT', `${base()}/Subscription/${id}`, { ...current, status: 'off' })).body.status, 'off');
        await call('POST', `${base()}/Encounter`, encounter(finished, 'Patient/off'));
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(events(forSub(id)).length, 0);
        const again = (await call('GET', `${base()}/Subscription/${id}`)).body;
        const back = await call('PUT', `${base()}/Subscription/${id}`, { ...again, status: 'requested' });
        assert.equal(back.body.status, 'requested');
        await until('subscription active', async () => (await call('GET', `${base()}/Subscription/${id}`)).body.status === 'active', { timeoutMs: 10_000, intervalMs: 25 });
        assert.equal(forSub(id).filter((r) => readNotification(r.body).type === 'handshake').length, 2);
        await call('POST', `${base()}/Encounter`, encounter(finished, 'Patient/off'));
        await hook.waitFor(() => events(forSub(id)).length >= 1);
        assert.deepEqual(events(forSub(id)).map((e) => e.number), [1]);
      });

      it('rejects subscriptions it cannot honour with a precise OperationOutcome (N-2, D-13, S-12, RH-7)', async () => {
        const bad = async (s: Parameters<typeof subscriptionResource>[1], pattern: RegExp) => {
          const res = await call('POST', `${base()}/Subscription`, subscriptionResource(v, s));
          assert.equal(res.status, 422, JSON.stringify(res.body));
          assert.equal(res.body.resourceType, 'OperationOutcome');
          assert.match(JSON.stringify(res.body.issue), pattern);
        };
        await bad({ topic: 'http://example.org/no-such-topic', endpoint: hook.url }, /not known/);
        await bad({ topic: TOPIC, endpoint: hook.url, filters: ['Encounter?status=finished'] }, /does not allow filtering by 'status'/);
        await bad({ topic: TOPIC, endpoint: hook.url, filters: ['Encounter?subject:missing=true'] }, /modifier/);
        await bad({ topic: TOPIC, endpoint: 'http://example.com/hook' }, /https/);
        await bad({ topic: TOPIC }, /endpoint/);
        await bad({ topic: TOPIC, endpoint: hook.url, contentType: 'application/fhir+xml' }, /MIME/);
        await bad({ topic: TOPIC, endpoint: hook.url, contentType: `application/fhir+json; fhirVersion=${v === 'R5' ? '4.0' : '5.0'}` }, /fhirVersion/);
      });

      it('names the element the client wrote, in this version\'s shape (N-2, D-13, S-3, S-9)', async () => {
        const at = async (s: Parameters<typeof subscriptionResource>[1], expression: string) => {
          const res = await call('POST', `${base()}/Subscription`, subscriptionResource(v, s));
          assert.equal(res.status, 422, JSON.stringify(res.body));
          assert.deepEqual(res.body.issue[0].expression, [expression], JSON.stringify(res.body.issue));
        };
        const backport = (element: string) => `Subscription.${element}`;
        const r5 = v === 'R5';
        await at({ topic: 'http://example.org/no-such-topic', endpoint: hook.url }, r5 ? 'Subscription.topic' : backport('criteria'));
        // the second filter is not allowed; the first extension holds one filter, so the second is extension[1]
        const filters = ['Encounter?subject=Patient/1', 'Encounter?status=finished'];
        await at({ topic: TOPIC, endpoint: hook.url, filters }, r5 ? 'Subscription.filterBy[1]' : backport('criteria.extension[1]'));
        await at({ topic: TOPIC, endpoint: hook.url, filters: ['Encounter?subject=Patient/1', 'Encounter?patient=Patient/'] }, r5 ? 'Subscription.filterBy[1]' : backport('criteria.extension[1]'));
        await at({ topic: TOPIC, endpoint: 'http://example.com/hook' }, r5 ? 'Subscription.endpoint' : backport('channel.endpoint'));
        await at({ topic: TOPIC, endpoint: hook.url, contentType: 'application/fhir+xml' }, r5 ? 'Subscription.contentType' : backport('channel.payload'));
        await at(
          { topic: TOPIC, endpoint: hook.url, heartbeat: 100_000 },
          r5 ? 'Subscription.heartbeatPeriod' : backport("channel.extension('http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-heartbeat-period')"),
        );
        if (!r5) {
          // Several filters in one extension (`Type?a=1&b=2`) are named by that extension.
          await at({ topic: TOPIC, endpoint: hook.url, filters: ['Encounter?subject=Patient/1&patient=Patient/1', 'Encounter?subject=Patient/1&status=finished'] }, backport('criteria.extension[1]'));
        }
      });

      it('refuses extensions it must understand and does not (criteria, channel, any modifierExtension), keeps ordinary ones (S-3, S-9, S-11)', async () => {
        const refused = async (url: string, body: any, expression: string, needle: string) => {
          const res = await call('POST', `${base()}/${url}`, body);
          assert.equal(res.status, 422, JSON.stringify(res.body));
          assert.equal(res.body.resourceType, 'OperationOutcome');
          assert.deepEqual(res.body.issue[0].expression, [expression]);
          assert.ok(res.body.issue[0].diagnostics.includes(needle), res.body.issue[0].diagnostics);
        };
        const sub = () => subscriptionResource(v, { topic: TOPIC, endpoint: hook.url, filters: ['Encounter?subject=Patient/ext'] });
        if (v !== 'R5') {
          // The Inferno test kit's "unsupported cross-version extensions" test: the filter under a wrong canonical.
          const wrong = 'http://hl7.org/fhir/5.0/subscriptions-backport/StructureDefinition/backport-filter-criteria';
          const body = sub();
          body._criteria.extension[0].url = wrong;
          await refused('Subscription', body, 'Subscription.criteria.extension[0]', wrong);
          const channel = sub();
          channel.channel.extension = [{ url: 'http://example.org/retry-forever', valueBoolean: true }];
          await refused('Subscription', channel, 'Subscription.channel.extension[0]', 'http://example.org/retry-forever');
        }
        const modifier = { url: 'http://example.org/only-on-weekdays', valueBoolean: true };
        await refused('Subscription', { ...sub(), modifierExtension: [modifier] }, 'Subscription.modifierExtension[0]', modifier.url);
        const topic = topicResource(v, { url: 'http://example.org/topics/with-modifier', resource: 'Encounter' }, 'with-modifier');
        topic.modifierExtension = [...(topic.modifierExtension ?? []), modifier];
        await refused(topicType, topic, `${topicType}.modifierExtension[${topic.modifierExtension.length - 1}]`, modifier.url);

        const identifier = { url: 'http://hl7.org/fhir/5.0/StructureDefinition/extension-Subscription.identifier', valueIdentifier: { system: 'urn:ietf:rfc:3986', value: 'urn:uuid:97fa5d48-0b34-4dbe-9a9b-5a4bb6a4c57e' } };
        const kept = await call('POST', `${base()}/Subscription`, { ...sub(), extension: [identifier] });
        assert.equal(kept.status, 201, JSON.stringify(kept.body));
        assert.deepEqual(kept.body.extension, [identifier]);
      });

      it('rejects invalid topics: unknown resource, bad criteria, bad FHIRPath, unknown filter parameter', async () => {
        const bad = async (t: Parameters<typeof topicResource>[1], pattern: RegExp) => {
          const res = await call('POST', `${base()}/${topicType}`, topicResource(v, t, 'x'));
          assert.equal(res.status, 422, JSON.stringify(res.body));
          assert.match(JSON.stringify(res.body.issue), pattern);
        };
        await bad({ url: 'http://e.org/t1', resource: 'Wombat' }, /Wombat/);
        await bad({ url: 'http://e.org/t2', resource: 'Encounter', current: 'status=' }, /current/);
        await bad({ url: 'http://e.org/t3', resource: 'Encounter', fhirPath: '%current.status = = 1' }, /FHIRPath/);
        await bad({ url: 'http://e.org/t4', resource: 'Encounter', canFilterBy: [{ param: 'shoe-size' }] }, /shoe-size/);
      });

      it('declares the subscription framework in the CapabilityStatement (CS-1..CS-4, T-8)', async () => {
        const cs = (await call('GET', `${base()}/metadata`)).body;
        const sub = cs.rest[0].resource.find((r: any) => r.type === 'Subscription');
        const ops = sub.operation.map((o: any) => o.name);
        assert.ok(ops.includes('status') && ops.includes('events'));
        if (v !== 'R5') assert.ok(sub.supportedProfile.some((p: string) => p.endsWith('backport-subscription')));
        if (v === 'R4') assert.ok(JSON.stringify(sub).includes(TOPIC));
      });
    });
  }
});

function events(received: { body: any }[]) {
  return received.map((r) => readNotification(r.body)).filter((n) => n.type === 'event-notification').flatMap((n) => n.events);
}

async function waitEvents(hook: Receiver, forSub: (id: string) => { body: any }[], id: string, n: number) {
  await hook.waitFor(() => events(forSub(id)).length >= n);
  return forSub(id).filter((r) => readNotification(r.body).type === 'event-notification') as any[];
}

async function activeSubscription(base: string, hook: Receiver, v: 'R4' | 'R4B' | 'R5', s: { filters: string[]; headers?: string[]; content?: 'empty' | 'id-only' | 'full-resource' }): Promise<string> {
  const res = await call('POST', `${base}/Subscription`, subscriptionResource(v, { topic: TOPIC, endpoint: hook.url, ...s }));
  assert.equal(res.status, 201, JSON.stringify(res.body));
  await until('subscription active', async () => (await call('GET', `${base}/Subscription/${res.body.id}`)).body.status === 'active', { timeoutMs: 10_000, intervalMs: 25 });
  return res.body.id;
}
