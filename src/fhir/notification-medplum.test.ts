import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NotificationInput } from './notification.ts';
import { buildMedplumNotification } from './notification-medplum.ts';
import type { NotificationEvent } from './subscription-model.ts';

const BASE = 'https://example.org/fhir/R4';
const TS = '2026-01-01T00:00:00.000Z';
const patient = (id: string, versionId = 1) => ({ resourceType: 'Patient', id, meta: { versionId: String(versionId) } });
const event = (eventNumber: number, id: string, interaction: NotificationEvent['interaction'] = 'create', versionId = 1): NotificationEvent =>
  ({ eventNumber, timestamp: TS, focus: { type: 'Patient', id, versionId }, interaction });

function input(extra: Partial<NotificationInput>): NotificationInput {
  return { baseUrl: BASE, subscriptionId: 'sub1', status: 'active', type: 'event-notification', eventsSinceSubscriptionStart: 1, content: 'full-resource', events: [event(1, 'p1')], resources: new Map(), timestamp: TS, ...extra };
}

/** What @medplum/core's SubscriptionManager reads: entry[0].resource.type and resolveId(entry[0].resource.subscription). */
const medplumReads = (b: any) => ({ type: b.entry[0].resource.type, subscriptionId: b.entry[0].resource.subscription.reference.split('/')[1] });

describe('buildMedplumNotification (the shape @medplum/core reads, issue 17)', () => {
  it('writes a handshake as a history Bundle whose first entry is a SubscriptionStatus with a relative reference', () => {
    const b = buildMedplumNotification(input({ type: 'handshake', events: [], eventsSinceSubscriptionStart: 0 })) as any;
    assert.equal(b.resourceType, 'Bundle');
    assert.equal(b.type, 'history');
    assert.deepEqual(medplumReads(b), { type: 'handshake', subscriptionId: 'sub1' });
    assert.equal(b.entry.length, 1);
    assert.equal(b.entry[0].resource.notificationEvent, undefined);
  });

  it('puts the focus in notificationEvent and the resource of the event version in entry[1] (full-resource)', () => {
    const resources = new Map([['Patient/p1/_history/2', patient('p1', 2)], ['Patient/p1', patient('p1', 3)]]);
    const b = buildMedplumNotification(input({ events: [event(7, 'p1', 'update', 2)], eventsSinceSubscriptionStart: 7, resources })) as any;
    assert.deepEqual(medplumReads(b), { type: 'event-notification', subscriptionId: 'sub1' });
    assert.deepEqual(b.entry[0].resource.notificationEvent, [{ eventNumber: '7', timestamp: TS, focus: { reference: 'Patient/p1' } }]);
    assert.equal(b.entry[0].resource.eventsSinceSubscriptionStart, '7');
    assert.deepEqual(b.entry[1], { fullUrl: `${BASE}/Patient/p1`, resource: patient('p1', 2) });
  });

  it('leaves the resource out for id-only, the focus too for empty, and a deletion has no resource', () => {
    const resources = new Map([['Patient/p1', patient('p1')]]);
    const idOnly = buildMedplumNotification(input({ content: 'id-only', resources })) as any;
    assert.equal(idOnly.entry.length, 1);
    assert.deepEqual(idOnly.entry[0].resource.notificationEvent[0].focus, { reference: 'Patient/p1' });
    const empty = buildMedplumNotification(input({ content: 'empty', resources, topic: 'http://example.org/t' })) as any;
    assert.equal(empty.entry[0].resource.notificationEvent[0].focus, undefined);
    assert.equal(empty.entry[0].resource.topic, undefined, 'the topic is left out of empty notifications (P-2)');
    const deleted = buildMedplumNotification(input({ events: [event(2, 'p1', 'delete')], resources })) as any;
    assert.equal(deleted.entry.length, 1);
  });

  it('carries errors as CodeableConcept text', () => {
    const b = buildMedplumNotification(input({ type: 'heartbeat', events: [], status: 'error', errors: [{ code: 'no-response', text: 'down' }] })) as any;
    assert.deepEqual(b.entry[0].resource.error, [{ text: 'down' }]);
    assert.equal(b.entry[0].resource.status, 'error');
  });
});
