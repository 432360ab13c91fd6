import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { topicResource, subscriptionResource } from '../../test/helpers/subscriptions.ts';
import { Compartments } from '../auth/index.ts';
import { loadConfig } from '../config.ts';
import { loadDefinitions } from '../fhir/definitions/index.ts';
import type { Resource } from '../fhir/types.ts';
import { adapterFor } from '../fhir/versions/index.ts';
import { searchRegistry } from '../search/parameters.ts';
import { openSqliteStore } from '../store/sqlite/index.ts';
import type { Store, StoredEvent } from '../store/store.ts';
import { EndpointGuard, SubscriptionEngine } from './index.ts';
import { type Dialect, type NotifyContext, renderNotification, renderNotificationText } from './notify.ts';

/**
 * Event notifications from a shared template (issue 15) must be exactly what rendering each one
 * would give (REQUIREMENTS §5, EN-2), apart from the fresh ids and the Bundle's timestamp: here the
 * clock moves 1 ms at every reading, so a shared template shows as one timestamp for all.
 */
for (const version of ['R4', 'R5'] as const) {
  describe(`notifications from a shared template (${version}, issue 15)`, () => {
    let store: Store;
    let engine: SubscriptionEngine;
    let ctx: NotifyContext;
    let clock = Date.parse('2026-01-01T00:00:00.000Z');
    const now = () => new Date((clock += 1));
    const TOPIC = 'http://example.org/topics/template-test';

    before(async () => {
      store = await openSqliteStore({ path: ':memory:' });
      const config = loadConfig([], { HERALD_DB: 'sqlite::memory:' });
      const adapter = adapterFor(version);
      const search = searchRegistry(loadDefinitions(version));
      const baseUrl = `http://herald.test/fhir/${adapter.pathSegment}`;
      const endpoints = new EndpointGuard({ authMode: config.authMode, allow: config.endpointAllow, allowInsecureEndpoints: true, baseUrl: config.baseUrl, listen: { host: '127.0.0.1', port: 1 } });
      const policy = { channels: new Set(['rest-hook', 'websocket']), endpoints, quotas: config.quotas };
      const log = { info() {}, warn() {}, error() {}, debug() {}, child() { return log; } } as never;
      engine = new SubscriptionEngine({ version, adapter, search, store, baseUrl, policy, now, log, compartments: new Compartments(search, baseUrl) });
      await engine.load();
      ctx = { engine, store, baseUrl, now };
      const write = (type: string, id: string, resource: Resource | undefined, vid: number) =>
        store.transaction(async (tx) => {
          const current = await tx.read(version, type, id);
          await engine.writeVersion(tx, type, id, resource, current, vid === 1 ? 'PUT' : resource ? 'PUT' : 'DELETE');
        });
      const topic = topicResource(version, { url: TOPIC, resource: 'Patient', interactions: ['create', 'update', 'delete'] }, 'tt');
      await write(topic.resourceType, 'tt', topic, 1);
      for (const content of ['empty', 'id-only', 'full-resource'] as const) {
        for (const n of [1, 2]) await write('Subscription', `${content}-${n}`, subscriptionResource(version, { topic: TOPIC, channel: 'websocket', content, id: `${content}-${n}` }), 1);
      }
      await write('Patient', 'p1', { resourceType: 'Patient', id: 'p1', name: [{ family: 'One "quoted" \u2028' }] } as Resource, 1);
      await write('Patient', 'p1', { resourceType: 'Patient', id: 'p1', name: [{ family: 'Two' }] } as Resource, 2);
      await write('Patient', 'p2', { resourceType: 'Patient', id: 'p2', gender: 'other' } as Resource, 1);
      await write('Patient', 'p2', undefined, 2);
    });
    after(() => store.close());

    const event = (subscription: string, number: number, id: string, versionId: number, interaction: StoredEvent['interaction']): StoredEvent => ({
      subscription,
      number,
      timestamp: `2026-01-01T00:00:0${number % 10}.000Z`,
      focus: { type: 'Patient', id, versionId },
      interaction,
    });
    // Fresh per notification: the status resource's id (and its urn:uuid: fullUrl), medplum's Bundle.id.
    const normalize = (text: string) => {
      const b = JSON.parse(text);
      const status = b.entry[0];
      assert.match(String(status.resource.id), /^[0-9a-f-]{36}$/);
      if (status.fullUrl) assert.equal(status.fullUrl, `urn:uuid:${status.resource.id}`);
      const ids = { status: status.resource.id as string, bundle: b.id as string | undefined, timestamp: b.timestamp as string };
      status.resource.id = 'S';
      if (status.fullUrl) status.fullUrl = 'urn:uuid:S';
      if (b.id !== undefined) b.id = 'B';
      b.timestamp = 'T';
      return { bundle: b, ids };
    };

    for (const dialect of ['ig', 'medplum'] as Dialect[]) {
      for (const content of ['empty', 'id-only', 'full-resource'] as const) {
        it(`${dialect}, ${content}: each subscription's text is its own rendered notification; the envelope is shared`, async (t) => {
          if (dialect === 'medplum' && version !== 'R4') return t.skip('the medplum shape is R4 only');
          const batches = [
            (s: string, k: number) => [event(s, 3 + k, 'p1', 1, 'create')],
            (s: string, k: number) => [event(s, 7 + k, 'p1', 2, 'update'), event(s, 8 + k, 'p2', 1, 'create'), event(s, 9 + k, 'p2', 2, 'delete')],
          ];
          for (const batch of batches) {
            const seen: { ids: { status: string; bundle?: string; timestamp: string } }[] = [];
            // The first of a key is rendered on its own; the next ones come from the template.
            for (const [k, n] of [[0, 1], [40, 2], [80, 1]] as const) {
              const sub = engine.registry.subscription(`${content}-${n}`)!;
              assert.ok(sub, 'the subscription is live');
              const events = batch(sub.id, k);
              const text = await renderNotificationText(ctx, sub, 'event-notification', events, content, dialect);
              const rendered = JSON.stringify(await renderNotification(ctx, sub, 'event-notification', events, content, dialect));
              const got = normalize(text);
              assert.deepEqual(got.bundle, normalize(rendered).bundle);
              assert.ok(text.includes(`Subscription/${sub.id}"`), 'its own id');
              seen.push(got);
            }
            assert.notEqual(seen[0]!.ids.timestamp, seen[1]!.ids.timestamp, 'the first was rendered on its own');
            assert.equal(seen[1]!.ids.timestamp, seen[2]!.ids.timestamp, 'one template served the next two');
            assert.notEqual(seen[1]!.ids.status, seen[2]!.ids.status, 'each status resource has its own id');
            if (dialect === 'medplum') assert.notEqual(seen[1]!.ids.bundle, seen[2]!.ids.bundle, 'each Bundle has its own id');
          }
        });
      }
    }

    it('serves a template for a short while only (its timestamp is the Bundle\'s)', async () => {
      const sub = engine.registry.subscription('id-only-1')!;
      const events = [event(sub.id, 1, 'p1', 1, 'create')];
      await renderNotificationText(ctx, sub, 'event-notification', events);
      const first = normalize(await renderNotificationText(ctx, sub, 'event-notification', events)).ids.timestamp;
      assert.equal(normalize(await renderNotificationText(ctx, sub, 'event-notification', events)).ids.timestamp, first);
      clock += 1000;
      const later = normalize(await renderNotificationText(ctx, sub, 'event-notification', events)).ids.timestamp;
      assert.ok(Date.parse(later) >= Date.parse(first) + 1000, `${later} is fresh`);
    });
  });
}
