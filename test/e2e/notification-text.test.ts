import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { VERSIONS, call, startServer, type TestServer } from '../helpers/server.ts';
import { readNotification, subscriptionResource } from '../helpers/subscriptions.ts';
import { connectWs } from '../helpers/ws.ts';

const TOPICS_DIR = fileURLToPath(new URL('../fixtures/topics', import.meta.url));
const TOPIC = 'http://example.org/topics/patient-created';

const isEvent = (f: any) => f?.resourceType === 'Bundle' && readNotification(f).type === 'event-notification';

/** Strings a splice of serialized text could trip over, if it were done carelessly. */
const TRICKY = ['\u0001herald-splice-0', '"\\u0001herald-splice-1"', '{"resourceType":"Patient"}', '$& $1 $$', '\u2028 ünïcödé 🚀'];

/**
 * Channels splice each focus resource's JSON, serialized once per version, into every
 * subscription's own envelope (issue 15). What a subscriber receives must be exactly what the
 * Bundle itself says: the focus as stored (P-3), the status entry first (NB-1).
 */
describe('notification text: the focus serialized once and spliced (issue 15, P-3, NB-1)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ HERALD_TOPICS: TOPICS_DIR });
  });
  after(() => server.close());

  for (const v of VERSIONS) {
    it(`on /fhir/${v}: two subscriptions get the stored focus and their own status; $events renders the same entries`, async () => {
      const base = server.fhir(v);
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) {
        const res = await call('POST', `${base}/Subscription`, subscriptionResource(v, { topic: TOPIC, channel: 'websocket', content: 'full-resource', filters: ['Patient?identifier=urn:splice|x'] }));
        assert.equal(res.status, 201, JSON.stringify(res.body));
        ids.push(res.body.id);
      }
      const tok = await call('GET', `${base}/Subscription/$get-ws-binding-token?${ids.map((i) => `id=${i}`).join('&')}`);
      const token = tok.body.parameter.find((p: any) => p.name === 'token').valueString;
      const ws = await connectWs(`${server.url.replace('http', 'ws')}/ws`);
      ws.send(`bind-with-token ${token}`);
      await ws.waitCount((f) => f?.resourceType === 'Bundle' && readNotification(f).type === 'handshake', 2);

      const created = await call('POST', `${base}/Patient`, { resourceType: 'Patient', identifier: [{ system: 'urn:splice', value: 'x' }], name: TRICKY.map((t) => ({ family: t, given: [t] })) });
      assert.equal(created.status, 201);
      const stored = (await call('GET', `${base}/Patient/${created.body.id}/_history/1`)).body;

      const frames = await ws.waitCount(isEvent, 2, 30_000);
      const bySub = new Map(frames.map((f) => [ids.find((id) => JSON.stringify(f.entry[0]).includes(`Subscription/${id}`)), f]));
      assert.deepEqual([...bySub.keys()].sort(), [...ids].sort(), 'each subscription its own notification');
      for (const id of ids) {
        const frame = bySub.get(id)!;
        assert.deepEqual(frame.entry[1].resource, stored, 'the focus exactly as stored, tricky strings included');
        assert.equal(readNotification(frame).events[0]!.number, 1);
        const events = (await call('GET', `${base}/Subscription/${id}/$events?eventsSinceNumber=1&content=full-resource`)).body;
        assert.deepEqual(frame.entry.slice(1), events.entry.slice(1), '$events (a Bundle) and the channel (spliced text) agree');
      }
      await ws.close();
    });
  }
});
