import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SubscriptionSpec } from '../../fhir/subscription-model.ts';
import type { ActiveSubscription } from '../registry.ts';
import { type Channel, Dispatcher } from './channel.ts';

/** A channel that writes down what it is told (the dispatcher's only collaborator). */
function channel(...types: string[]) {
  const told: string[] = [];
  const c: Channel = {
    types,
    eventsCommitted: (subs) => told.push(`events ${subs.map((s) => s.id).join(',')}`),
    subscriptionChanged: (id, sub) => told.push(`changed ${id} ${sub ? sub.status : 'gone'}`),
    leaseReleased: (subs) => told.push(`released ${subs.map((s) => s.id).join(',')}`),
    start: () => told.push('start'),
    stop: async () => void told.push('stop'),
  };
  return { c, told };
}

const sub = (id: string, type: string): ActiveSubscription => ({
  id,
  spec: { channel: { type } } as SubscriptionSpec,
  topicUrl: 'http://example.org/topic',
  status: 'active',
  filters: new Map(),
  endsAt: undefined,
});

describe('Dispatcher (after the commit: the engine tells the channels)', () => {
  it("gives each channel the events of its own subscriptions only, one call per commit (§6)", () => {
    const rest = channel('rest-hook');
    const ws = channel('websocket');
    const d = new Dispatcher([rest.c, ws.c]);
    d.eventsCommitted([sub('a', 'rest-hook'), sub('b', 'websocket'), sub('c', 'rest-hook'), sub('d', 'email')]);
    d.eventsCommitted([sub('e', 'websocket')]);
    assert.deepEqual(rest.told, ['events a,c']);
    assert.deepEqual(ws.told, ['events b', 'events e']);
  });

  it('tells every channel of a Subscription change, so the one it moved away from lets it go', () => {
    const rest = channel('rest-hook');
    const ws = channel('websocket');
    const d = new Dispatcher([rest.c, ws.c]);
    d.subscriptionChanged('a', sub('a', 'websocket'));
    d.subscriptionChanged('b', undefined);
    assert.deepEqual(rest.told, ['changed a active', 'changed b gone']);
    assert.deepEqual(ws.told, rest.told);
  });

  it('tells a channel of released delivery leases of its own subscriptions only (several nodes)', () => {
    const rest = channel('rest-hook');
    const ws = channel('websocket');
    const d = new Dispatcher([rest.c, ws.c]);
    d.leaseReleased([sub('a', 'rest-hook'), sub('b', 'rest-hook')]);
    assert.deepEqual(rest.told, ['released a,b']);
    assert.deepEqual(ws.told, [], 'nothing to tell: not called');
  });

  it('starts and stops every channel, and refuses two channels for one type', async () => {
    const rest = channel('rest-hook');
    const ws = channel('websocket');
    const d = new Dispatcher([rest.c, ws.c]);
    d.start();
    await d.stop();
    assert.deepEqual([rest.told, ws.told], [['start', 'stop'], ['start', 'stop']]);
    assert.throws(() => new Dispatcher([channel('websocket').c, channel('rest-hook', 'websocket').c]), /two channels deliver 'websocket'/);
  });
});
