import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { type Receiver, startReceiver } from '../helpers/receiver.ts';
import { call, startServer, type TestServer } from '../helpers/server.ts';
import { subscriptionResource } from '../helpers/subscriptions.ts';

const TOPICS_DIR = fileURLToPath(new URL('../fixtures/topics', import.meta.url));
const TOPIC = 'http://example.org/topics/patient-created';

/**
 * ST-3/ST-4: `off` set by the owner is final for the server. A delivery already in flight when the
 * owner switches the subscription off must not bring it back as `error` when that delivery fails.
 */
describe('a subscription set off while a delivery is in flight', () => {
  let server: TestServer;
  let hook: Receiver;
  before(async () => {
    server = await startServer({ HERALD_TOPICS: TOPICS_DIR, HERALD_RETRY_BASE_MS: '50', HERALD_RETRY_CAP_MS: '200' });
    hook = await startReceiver();
  });
  after(async () => {
    await server.close();
    await hook.close();
  });

  it('stays off when that delivery then fails', async () => {
    const base = server.fhir('R5');
    const created = await call('POST', `${base}/Subscription`, subscriptionResource('R5', { topic: TOPIC, endpoint: hook.url, filters: ['Patient?identifier=urn:t|race'] }));
    assert.equal(created.status, 201, created.text);
    const id = created.body.id as string;
    for (let i = 0; (await call('GET', `${base}/Subscription/${id}`)).body.status !== 'active'; i++) {
      assert.ok(i < 200, 'the handshake did not make the subscription active');
      await new Promise((r) => setTimeout(r, 50));
    }
    // The next attempt is answered 500, but only after the owner has switched the subscription off.
    hook.respond(500, 1500);
    await call('POST', `${base}/Patient`, { resourceType: 'Patient', identifier: [{ system: 'urn:t', value: 'race' }] });
    const current = (await call('GET', `${base}/Subscription/${id}`)).body;
    const off = await call('PUT', `${base}/Subscription/${id}`, { ...current, status: 'off' });
    assert.equal(off.status, 200, off.text);
    assert.equal(off.body.status, 'off');
    for (let i = 0; hook.failures() === 0; i++) {
      assert.ok(i < 400, 'the delivery in flight was never answered');
      await new Promise((r) => setTimeout(r, 50));
    }
    // Give the failed attempt time to be recorded, then look at every version since.
    await new Promise((r) => setTimeout(r, 1000));
    const read = await call('GET', `${base}/Subscription/${id}`);
    assert.equal(read.body.status, 'off', `the subscription came back as ${read.body.status}`);
    const history = await call('GET', `${base}/Subscription/${id}/_history`);
    const statuses = history.body.entry.map((e: any) => e.resource.status);
    assert.equal(statuses[0], 'off', `versions newest first: ${statuses.join(', ')}`);
    hook.respond(200);
  });
});
