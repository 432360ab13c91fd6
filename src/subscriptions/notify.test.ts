import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { topicResource, subscriptionResource } from '../../test/helpers/subscriptions.ts';
import { openEngine } from '../../test/helpers/engine.ts';
import type { Resource } from '../fhir/types.ts';
import { openSqliteStore } from '../store/sqlite/index.ts';
import type { Store, StoredEvent } from '../store/store.ts';
import type { SubscriptionEngine } from './index.ts';
import type { PayloadContent } from '../fhir/subscription-model.ts';
import { type Dialect, type NotifyContext, renderNotification, renderNotificationText, templateCounts } from './notify.ts';

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
      let baseUrl: string;
      ({ engine, baseUrl } = await openEngine(version, store, now));
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

    const check = async (subscription: string, events: StoredEvent[], content: PayloadContent, dialect: Dialect) => {
      const sub = engine.registry.subscription(subscription)!;
      assert.ok(sub, 'the subscription is live');
      const mine = events.map((e) => ({ ...e, subscription }));
      const text = await renderNotificationText(ctx, sub, 'event-notification', mine, content, dialect);
      const rendered = JSON.stringify(await renderNotification(ctx, sub, 'event-notification', mine, content, dialect));
      const got = normalize(text);
      assert.deepEqual(got.bundle, normalize(rendered).bundle);
      assert.ok(text.includes(`Subscription/${sub.id}"`), 'its own id');
      return got.ids;
    };

    for (const dialect of ['ig', 'medplum'] as Dialect[]) {
      for (const content of ['empty', 'id-only', 'full-resource'] as const) {
        it(`${dialect}, ${content}: each notification's text is the one rendered for it; one envelope serves one shape`, async (t) => {
          if (dialect === 'medplum' && version !== 'R4') return t.skip('the medplum shape is R4 only');
          const [one, two] = [`${content}-1`, `${content}-2`];
          // The first of a shape (here: a Patient created) is rendered on its own; the next ones,
          // other subscriptions and other changes alike, come from its template.
          const before = { ...templateCounts };
          const counted = () => [templateCounts.made - before.made, templateCounts.filled - before.filled];
          await check(one, [event(one, 3, 'p1', 1, 'create')], content, dialect);
          assert.deepEqual(counted(), [0, 0], 'the first was rendered on its own');
          const second = await check(two, [event(two, 43, 'p1', 1, 'create')], content, dialect);
          const third = await check(one, [event(one, 4, 'p2', 1, 'create')], content, dialect);
          assert.deepEqual(counted(), [1, 2], 'one template served the next two');
          assert.notEqual(second.status, third.status, 'each status resource has its own id');
          assert.ok(third.timestamp > second.timestamp, 'each Bundle has the time it was filled');
          if (dialect === 'medplum') assert.notEqual(second.bundle, third.bundle, 'each Bundle has its own id');
          // Another shape (an update, a deletion) has a template of its own.
          for (const [id, vid, interaction] of [['p1', 2, 'update'], ['p2', 2, 'delete']] as const) {
            await check(one, [event(one, 5, id, vid, interaction)], content, dialect);
            await check(two, [event(two, 44, id, vid, interaction)], content, dialect);
            await check(one, [event(one, 6, id, vid, interaction)], content, dialect);
          }
          assert.deepEqual(counted(), [3, 6], 'update and delete: a template each, filled twice');
          // Several events in one notification (a rest-hook batch) are rendered as they are.
          await check(one, [event(one, 7, 'p1', 2, 'update'), event(one, 8, 'p2', 1, 'create'), event(one, 9, 'p2', 2, 'delete')], content, dialect);
          assert.deepEqual(counted(), [3, 6]);
        });
      }
    }

    it('holds a template for a short while only', async () => {
      const sub = engine.registry.subscription('id-only-1')!;
      const events = [event(sub.id, 1, 'p1', 1, 'create')];
      clock += 1000; // what earlier tests made has had its time
      await renderNotificationText(ctx, sub, 'event-notification', events);
      const made = templateCounts.made;
      await renderNotificationText(ctx, sub, 'event-notification', events);
      await renderNotificationText(ctx, sub, 'event-notification', events);
      assert.equal(templateCounts.made, made + 1);
      clock += 1000;
      await renderNotificationText(ctx, sub, 'event-notification', events);
      await renderNotificationText(ctx, sub, 'event-notification', events);
      assert.equal(templateCounts.made, made + 2, 'past its time, the shape is seen afresh');
    });
  });
}
