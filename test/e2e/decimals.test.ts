import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Receiver, startReceiver } from '../helpers/receiver.ts';
import { VERSIONS, call, useServer } from '../helpers/server.ts';
import { readNotification, subscriptionResource, topicResource } from '../helpers/subscriptions.ts';

/**
 * Decimals keep the form they were written in (datatypes.html#decimal: `1.50` is not `1.5`), from
 * the request body to every answer and notification that gives the resource.
 */
const WRITTEN = ['1.50', '0.010', '1.0e2', '3.14159265358979323846', '-0.0'];

const observation = (value: string, extra = '') =>
  `{"resourceType":"Observation","status":"final","code":{"text":"decimals"}${extra},"valueQuantity":{"value":${value},"unit":"mg"},` +
  `"referenceRange":[{"low":{"value":${WRITTEN[1]}},"high":{"value":${WRITTEN[2]}}}],` +
  `"component":[{"code":{"text":"pi"},"valueQuantity":{"value":${WRITTEN[3]}}},{"code":{"text":"zero"},"valueQuantity":{"value":${WRITTEN[4]}}}]}`;

/** Every decimal of `observation(value)` in `text`, as written. */
function assertWritten(text: string, value: string, what: string): void {
  for (const n of [value, ...WRITTEN.slice(1)]) assert.ok(text.includes(`"value":${n}`), `${what}: ${n} in ${text.slice(0, 600)}`);
}

describe('decimals as written (datatypes.html#decimal)', () => {
  const server = useServer();
  let hook: Receiver;
  before(async () => {
    hook = await startReceiver();
  });
  after(() => hook.close());

  for (const v of VERSIONS) {
    describe(`on /fhir/${v}`, () => {
      const base = () => server.fhir(v);

      it('keeps them through create, read, vread, search, _summary, history, transactions and patch', async () => {
        const created = await call('POST', `${base()}/Observation`, observation(WRITTEN[0]!));
        assert.equal(created.status, 201, created.text);
        assertWritten(created.text, '1.50', 'create');
        const id = created.body.id as string;
        assertWritten((await call('GET', `${base()}/Observation/${id}`)).text, '1.50', 'read');
        assertWritten((await call('GET', `${base()}/Observation/${id}/_history/1`)).text, '1.50', 'vread');
        assertWritten((await call('GET', `${base()}/Observation?_id=${id}`)).text, '1.50', 'search');
        assertWritten((await call('GET', `${base()}/Observation?_id=${id}&_summary=data`)).text, '1.50', 'search with _summary');
        assertWritten((await call('GET', `${base()}/Observation/${id}/_history`)).text, '1.50', 'history');
        // Searched by value, the value is what counts.
        assert.equal((await call('GET', `${base()}/Observation?_id=${id}&value-quantity=1.5`)).body.total, 1);

        // With a urn:uuid fullUrl referenced from another entry: its links are rewritten, its decimals kept.
        const patient = `{"fullUrl":"urn:uuid:4b5e7f3a-0d8e-4f0c-9a55-0a1b2c3d4e5f","resource":{"resourceType":"Patient","active":true},"request":{"method":"POST","url":"Patient"}}`;
        const subject = `,"subject":{"reference":"urn:uuid:4b5e7f3a-0d8e-4f0c-9a55-0a1b2c3d4e5f"}`;
        const tx = await call('POST', base(), `{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:9d0c1e2f-3a4b-4c5d-8e6f-708192a3b4c5","resource":${observation('2.50', subject)},"request":{"method":"POST","url":"Observation"}},${patient}]}`);
        assert.equal(tx.status, 200, tx.text);
        assertWritten(tx.text, '2.50', 'transaction response');
        const fromTx = /Observation\/([^/]+)\/_history\/1$/.exec(tx.body.entry[0].response.location)![1]!;
        const stored = await call('GET', `${base()}/Observation/${fromTx}`);
        assertWritten(stored.text, '2.50', 'read of a transaction entry');
        assert.match(stored.body.subject.reference, /^Patient\/[^/]+$/);

        const patched = await call('PATCH', `${base()}/Observation/${id}`, '[{"op":"replace","path":"/valueQuantity/value","value":7.70}]', { 'content-type': 'application/json-patch+json' });
        assert.equal(patched.status, 200, patched.text);
        assertWritten(patched.text, '7.70', 'patch');
        assertWritten((await call('GET', `${base()}/Observation/${id}`)).text, '7.70', 'read after patch');
        // A patch that writes the same value otherwise is a change; one that sets another member keeps the rest.
        const fewer = await call('PATCH', `${base()}/Observation/${id}`, '[{"op":"replace","path":"/valueQuantity/value","value":7.7}]', { 'content-type': 'application/json-patch+json' });
        assert.equal(fewer.body.meta.versionId, '3');
        assert.ok(fewer.text.includes('"value":7.7,'), fewer.text);
        const moved = await call('PATCH', `${base()}/Observation/${id}`, '[{"op":"remove","path":"/valueQuantity/value"},{"op":"add","path":"/valueQuantity/value","value":7.7}]', { 'content-type': 'application/json-patch+json' });
        assert.equal(moved.body.meta.versionId, '3', 'no change');
      });

      it('a body that repeats a key in one object is a 400 naming it', async () => {
        const res = await call('POST', `${base()}/Observation`, observation('1.50').replace('"status":"final"', '"status":"final","status":"preliminary"'));
        assert.equal(res.status, 400);
        assert.match(res.body.issue[0].diagnostics, /repeats the key 'status'/);
      });

      it('a Subscription keeps a decimal of its own as written', async () => {
        const url = 'http://example.org/topics/observation-decimals-own';
        const topic = topicResource(v, { url, resource: 'Observation', interactions: ['create'] }, 'obs-decimals-own');
        assert.ok([200, 201].includes((await call('PUT', `${base()}/${v === 'R4' ? 'Basic' : 'SubscriptionTopic'}/obs-decimals-own`, topic)).status));
        const body = subscriptionResource(v, { topic: url, endpoint: hook.url });
        const text = JSON.stringify({ ...body, extension: [{ url: 'http://example.org/weight', valueDecimal: 0 }] }).replace('"valueDecimal":0', '"valueDecimal":0.50');
        const res = await call('POST', `${base()}/Subscription`, text);
        assert.equal(res.status, 201, res.text);
        assert.ok((await call('GET', `${base()}/Subscription/${res.body.id}`)).text.includes('"valueDecimal":0.50'));
      });

      it('an update that changes only how a decimal is written is a change', async () => {
        const created = await call('POST', `${base()}/Observation`, observation('1.50'));
        const id = created.body.id as string;
        const same = await call('PUT', `${base()}/Observation/${id}`, observation('1.50', `,"id":"${id}"`));
        assert.equal(same.body.meta.versionId, '1', 'the same text is no change');
        const fewer = await call('PUT', `${base()}/Observation/${id}`, observation('1.5', `,"id":"${id}"`));
        assert.equal(fewer.body.meta.versionId, '2', '1.5 is not 1.50');
        assert.ok(fewer.text.includes('"value":1.5,'));
      });

      it('an integer written with a fraction or exponent is a 400 naming it', async () => {
        for (const written of ['2.0', '2e0', '-0']) {
          const res = await call('POST', `${base()}/Patient`, `{"resourceType":"Patient","multipleBirthInteger":${written}}`);
          assert.equal(res.status, 400, written);
          assert.match(res.body.issue[0].diagnostics, new RegExp(`^${written.replace('.', '\\.')} is not a valid integer`));
        }
        assert.equal((await call('POST', `${base()}/Patient`, '{"resourceType":"Patient","multipleBirthInteger":2}')).status, 201);
      });

      it('notifications carry the focus as written (full-resource, rest-hook)', async () => {
        const topicType = v === 'R4' ? 'Basic' : 'SubscriptionTopic';
        const url = 'http://example.org/topics/observation-decimals';
        const topic = topicResource(v, { url, resource: 'Observation', interactions: ['create'] }, 'obs-decimals');
        assert.ok([200, 201].includes((await call('PUT', `${base()}/${topicType}/obs-decimals`, topic)).status));
        const sub = await call('POST', `${base()}/Subscription`, subscriptionResource(v, { topic: url, endpoint: hook.url, content: 'full-resource' }));
        assert.equal(sub.status, 201, sub.text);
        const mine = () => hook.received.filter((r) => r.text.includes(`Subscription/${sub.body.id}`) && readNotification(r.body).type === 'event-notification');
        await call('POST', `${base()}/Observation`, observation('9.90'));
        await hook.waitFor(() => mine().length > 0);
        assertWritten(mine()[0]!.text, '9.90', 'notification');
        assertWritten((await call('GET', `${base()}/Subscription/${sub.body.id}/$events`)).text, '9.90', '$events');
      });
    });
  }
});
