/**
 * The Medplum client, unchanged (issue 17): `@medplum/core`'s `MedplumClient.subscribeToCriteria`
 * (what `@medplum/react-hooks`' `useSubscription` uses) against a real Herald. The client creates
 * a classic R4 Subscription (`criteria: 'Patient'`, `channel.type: websocket`, no payload, D-19),
 * asks `fhir/R4/Subscription/{id}/$get-ws-binding-token`, opens `/ws/subscriptions-r4`, sends
 * `{"type":"bind-with-token",…}` (D-1) and reads Bundles whose first entry is a SubscriptionStatus
 * with a relative `subscription` reference (its `resolveId` splits `Subscription/<id>`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClientStorage, MedplumClient, MemoryStorage, type SubscriptionEmitter } from '@medplum/core';
import { WebSocket as UndiciWebSocket } from 'undici';
import { call, startServer, type TestServer } from '../helpers/server.ts';
import { connectWs } from '../helpers/ws.ts';

// Node 20 has no global WebSocket (Node 22 does: the same undici implementation); Medplum's
// ReconnectingWebSocket uses the global one. Browsers have it too.
(globalThis as { WebSocket?: unknown }).WebSocket ??= UndiciWebSocket;

/** Resolves with the next `count` events of `type` on an emitter (their payloads, in order). */
function collect(emitter: SubscriptionEmitter, type: 'message' | 'connect', count: number): Promise<any[]> {
  const got: any[] = [];
  return new Promise((resolve) => {
    const listener = (e: { payload?: unknown }) => {
      got.push(e.payload);
      if (got.length === count) {
        emitter.removeEventListener(type, listener as never);
        resolve(got);
      }
    };
    emitter.addEventListener(type, listener as never);
  });
}

describe('@medplum/core MedplumClient.subscribeToCriteria against Herald (issue 17)', () => {
  let server: TestServer;
  let medplum: MedplumClient;
  before(async () => {
    server = await startServer();
    medplum = new MedplumClient({
      baseUrl: `${server.url}/`,
      fhirUrlPath: 'fhir/R4',
      fetch: (url: string | URL | Request, init?: RequestInit) => fetch(url, init),
      storage: new ClientStorage(new MemoryStorage()),
    });
  });
  after(async () => {
    medplum.getSubscriptionManager().closeWebSocket();
    await server.close();
  });

  it('delivers two created Patients through the emitter, in order, each a SubscriptionStatus then the resource', { timeout: 60_000 }, async () => {
    const emitter = medplum.subscribeToCriteria('Patient');
    const [connected] = await collect(emitter, 'connect', 1);
    const subscriptionId = (connected as { subscriptionId: string }).subscriptionId;
    const stored = await medplum.readResource('Subscription', subscriptionId);
    assert.equal(stored.criteria, 'Patient');
    assert.equal(stored.channel.type, 'websocket');
    assert.equal(stored.status, 'active');

    const messages = collect(emitter, 'message', 2);
    const first = await medplum.createResource({ resourceType: 'Patient', name: [{ family: 'First' }] });
    const second = await medplum.createResource({ resourceType: 'Patient', name: [{ family: 'Second' }] });
    const bundles = await messages;

    assert.deepEqual(
      bundles.map((b) => b.entry[1].resource.id),
      [first.id, second.id],
      'both events, in the order of the writes',
    );
    for (const [i, b] of bundles.entries()) {
      const status = b.entry[0].resource;
      assert.equal(b.resourceType, 'Bundle');
      assert.equal(b.type, 'history');
      assert.equal(status.resourceType, 'SubscriptionStatus', 'Medplum reads the first entry as a SubscriptionStatus, on R4 too');
      assert.equal(status.type, 'event-notification');
      assert.equal(status.subscription.reference, `Subscription/${subscriptionId}`);
      assert.equal(status.notificationEvent[0].eventNumber, String(i + 1), 'Herald keeps its real event numbers');
      assert.equal(status.notificationEvent[0].focus.reference, `Patient/${[first, second][i]!.id}`);
      assert.equal(b.entry[1].fullUrl, `${server.fhir('R4')}/Patient/${[first, second][i]!.id}`);
    }
    // The events are Herald's usual ones: $events has them too.
    const events = await call('GET', `${server.fhir('R4')}/Subscription/${subscriptionId}/$events`);
    assert.equal(events.status, 200);
    medplum.unsubscribeFromCriteria('Patient');
  });

  it('keeps the IG shapes on /ws for the same subscription (R4 Parameters status, absolute references)', { timeout: 60_000 }, async () => {
    const sub = await call('POST', `${server.fhir('R4')}/Subscription`, {
      resourceType: 'Subscription',
      status: 'active',
      reason: 'both paths',
      criteria: 'Patient',
      channel: { type: 'websocket' },
    });
    assert.equal(sub.status, 201, JSON.stringify(sub.body));
    const token = await call('GET', `${server.fhir('R4')}/Subscription/${sub.body.id}/$get-ws-binding-token`);
    const value = token.body.parameter.find((p: any) => p.name === 'token').valueString;
    const ig = await connectWs(`${server.url.replace('http', 'ws')}/ws`);
    const medplumPath = await connectWs(`${server.url.replace('http', 'ws')}/ws/subscriptions-r4`);
    try {
      ig.send(`bind-with-token ${value}`);
      medplumPath.send(JSON.stringify({ type: 'bind-with-token', payload: { token: value } }));
      const isBundle = (f: any) => f?.resourceType === 'Bundle';
      const igHandshake = await ig.next(isBundle, 30_000);
      const mpHandshake = await medplumPath.next(isBundle, 30_000);
      assert.equal(igHandshake.entry[0].resource.resourceType, 'Parameters', '/ws: the backport IG R4 shape');
      assert.equal(mpHandshake.entry[0].resource.resourceType, 'SubscriptionStatus');
      assert.equal(mpHandshake.entry[0].resource.type, 'handshake');
      assert.equal(mpHandshake.entry[0].resource.subscription.reference, `Subscription/${sub.body.id}`);

      const created = await call('POST', `${server.fhir('R4')}/Patient`, { resourceType: 'Patient' });
      const [, igEvent] = await ig.waitCount(isBundle, 2, 30_000);
      const [, mpEvent] = await medplumPath.waitCount(isBundle, 2, 30_000);
      const igStatus = igEvent.entry[0].resource;
      assert.equal(igStatus.resourceType, 'Parameters');
      assert.ok(JSON.stringify(igStatus).includes(`${server.fhir('R4')}/Subscription/${sub.body.id}`), '/ws: absolute references (D-15)');
      assert.equal(igEvent.entry.length, 1, '/ws: no payload on a classic subscription means no focus entries (D-19)');
      assert.equal(mpEvent.entry[0].resource.notificationEvent[0].focus.reference, `Patient/${created.body.id}`);
      assert.equal(mpEvent.entry[1].resource.id, created.body.id, 'Medplum path: the resource, as Medplum sends it');
    } finally {
      await ig.close();
      await medplumPath.close();
    }
  });
});
