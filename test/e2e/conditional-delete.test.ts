import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { call, useServer, VERSIONS } from '../helpers/server.ts';
import { readNotification, subscriptionResource, topicResource } from '../helpers/subscriptions.ts';

const patient = (value: string, system = 'urn:cdel') => ({ resourceType: 'Patient', identifier: [{ system, value }] });

/** DELETE [base]/[type]?criteria (FHIR http.html#cdelete), in single mode as the CapabilityStatement says. */
describe('conditional delete', () => {
  const server = useServer();

  for (const v of VERSIONS) {
    describe(`on /fhir/${v}`, () => {
      const base = () => server.fhir(v);

      it('says conditionalDelete single in the CapabilityStatement', async () => {
        const cap = (await call('GET', `${base()}/metadata`)).body;
        assert.equal(cap.rest[0].resource.find((r: any) => r.type === 'Patient').conditionalDelete, 'single');
      });

      it('no match: 204, nothing deleted', async () => {
        const other = (await call('POST', `${base()}/Patient`, patient('keep-0'))).body.id;
        const res = await call('DELETE', `${base()}/Patient?identifier=urn:cdel|none-such`);
        assert.equal(res.status, 204);
        assert.equal((await call('GET', `${base()}/Patient/${other}`)).status, 200);
      });

      it('one match: deleted as by its id (410 after, a deletion version in history)', async () => {
        const id = (await call('POST', `${base()}/Patient`, patient('one'))).body.id;
        const keep = (await call('POST', `${base()}/Patient`, patient('keep-1'))).body.id;
        const res = await call('DELETE', `${base()}/Patient?identifier=urn:cdel|one`);
        assert.equal(res.status, 204);
        assert.equal(res.headers.get('etag'), 'W/"2"');
        assert.equal((await call('GET', `${base()}/Patient/${id}`)).status, 410);
        assert.equal((await call('GET', `${base()}/Patient/${keep}`)).status, 200);
        const history = (await call('GET', `${base()}/Patient/${id}/_history`)).body;
        assert.equal(history.entry[0].request.method, 'DELETE');
        // Again: the criteria match nothing now.
        assert.equal((await call('DELETE', `${base()}/Patient?identifier=urn:cdel|one`)).status, 204);
      });

      it('several matches: 412, nothing deleted', async () => {
        const a = (await call('POST', `${base()}/Patient`, patient('twin'))).body.id;
        const b = (await call('POST', `${base()}/Patient`, patient('twin'))).body.id;
        const res = await call('DELETE', `${base()}/Patient?identifier=urn:cdel|twin`);
        assert.equal(res.status, 412);
        assert.equal(res.body.resourceType, 'OperationOutcome');
        assert.match(res.body.issue[0].diagnostics, /more than one Patient/);
        for (const id of [a, b]) assert.equal((await call('GET', `${base()}/Patient/${id}`)).status, 200);
      });

      it('criteria are strict: an unknown parameter or none at all is a 400', async () => {
        const unknown = await call('DELETE', `${base()}/Patient?nonsense=1`);
        assert.equal(unknown.status, 400);
        assert.equal((await call('DELETE', `${base()}/Patient`)).status, 400);
        assert.equal((await call('DELETE', `${base()}/Patient?_sort=name`)).status, 400);
      });

      it('If-Match applies to the one match', async () => {
        await call('POST', `${base()}/Patient`, patient('versioned'));
        assert.equal((await call('DELETE', `${base()}/Patient?identifier=urn:cdel|versioned`, undefined, { 'if-match': 'W/"7"' })).status, 412);
        assert.equal((await call('DELETE', `${base()}/Patient?identifier=urn:cdel|versioned`, undefined, { 'if-match': 'W/"1"' })).status, 204);
      });

      it('works as a transaction entry: 0, 1 and more matches as above (the last fails the whole transaction)', async () => {
        const id = (await call('POST', `${base()}/Patient`, patient('tx-one'))).body.id;
        const entry = (value: string) => ({ request: { method: 'DELETE', url: `Patient?identifier=urn:cdel|${value}` } });
        const ok = await call('POST', base(), { resourceType: 'Bundle', type: 'transaction', entry: [entry('tx-one'), entry('tx-none')] });
        assert.equal(ok.status, 200, ok.text);
        assert.deepEqual(ok.body.entry.map((e: any) => e.response.status.slice(0, 3)), ['204', '204']);
        assert.equal((await call('GET', `${base()}/Patient/${id}`)).status, 410);
        const twin = [(await call('POST', `${base()}/Patient`, patient('tx-twin'))).body.id, (await call('POST', `${base()}/Patient`, patient('tx-twin'))).body.id];
        const keep = (await call('POST', `${base()}/Patient`, patient('tx-keep'))).body.id;
        const failed = await call('POST', base(), { resourceType: 'Bundle', type: 'transaction', entry: [entry('tx-keep'), entry('tx-twin')] });
        assert.equal(failed.status, 412);
        for (const x of [...twin, keep]) assert.equal((await call('GET', `${base()}/Patient/${x}`)).status, 200, 'nothing of a failed transaction stands');
      });

      it('emits a delete event to a subscription, as a delete by id does', async () => {
        const url = `http://example.org/topics/cdel-${v}`;
        const topic = topicResource(v, { url, resource: 'Patient', interactions: ['delete'] }, `cdel-${v.toLowerCase()}`);
        assert.equal((await call('PUT', `${base()}/${topic.resourceType}/${topic.id}`, topic)).status, 201);
        const sub = await call('POST', `${base()}/Subscription`, subscriptionResource(v, { topic: url, channel: 'websocket', content: 'id-only' }));
        assert.equal(sub.status, 201, sub.text);
        const id = (await call('POST', `${base()}/Patient`, patient('watched'))).body.id;
        assert.equal((await call('DELETE', `${base()}/Patient?identifier=urn:cdel|watched`)).status, 204);
        const events = await call('GET', `${base()}/Subscription/${sub.body.id}/$events`);
        assert.equal(events.status, 200, events.text);
        const view = readNotification(events.body);
        assert.equal(view.events.length, 1);
        assert.match(view.events[0]!.focus!, new RegExp(`Patient/${id}`));
      });
    });
  }
});
