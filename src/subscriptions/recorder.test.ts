import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createDatabase, dropDatabase } from '../../test/helpers/postgres.ts';
import { loadDefinitions } from '../fhir/definitions/index.ts';
import type { Interaction, Topic } from '../fhir/subscription-model.ts';
import type { Resource } from '../fhir/types.ts';
import { searchRegistry } from '../search/parameters.ts';
import { openPostgresStore } from '../store/postgres/index.ts';
import { openSqliteStore } from '../store/sqlite/index.ts';
import type { Store } from '../store/store.ts';
import type { ResourceChange } from './matching/trigger.ts';
import { EventRecorder } from './recorder.ts';
import { SubscriptionRegistry } from './registry.ts';

/**
 * The recorder inside real transactions of both stores (D-18): events are numbered per
 * subscription where the write is applied, gap-free; a transaction that rolls back uses no number;
 * many matches of one change are one append; a change the owner may not read is no event (D-22).
 */

const search = searchRegistry(loadDefinitions('R5'));
const topic: Topic = {
  url: 'http://example.org/topics/patient',
  status: 'active',
  resourceTriggers: [{ resource: 'Patient', supportedInteraction: ['create', 'update', 'delete'] }],
  canFilterBy: [{ resource: 'Patient', filterParameter: 'gender', modifiers: [], comparators: [] }],
  notificationShape: [],
};

function registry(n: number): SubscriptionRegistry {
  const r = new SubscriptionRegistry('R5', search, 'http://h.test/fhir/R5', Date.now);
  r.putTopic(topic);
  for (let i = 0; i < n; i++) {
    const filters = i === 0 ? [{ filterParameter: 'gender', value: 'female' }] : [];
    r.putSubscription(
      r.compileSubscription(
        `s${i}`,
        { topic: topic.url, status: 'active', filters, channel: { type: 'websocket', headers: [], contentType: 'application/fhir+json', content: 'id-only' } },
        topic,
      ),
    );
  }
  return r;
}

function change(id: string, versionId: number, gender: string, interaction: Interaction = 'create'): ResourceChange {
  const current = { resourceType: 'Patient', id, gender } as Resource;
  return { type: 'Patient', id, versionId, interaction, current, timestamp: new Date().toISOString() };
}

const numbers = async (store: Store, sub: string) => (await store.events('R5', sub, 1, Number.MAX_SAFE_INTEGER, 10_000)).map((e) => e.number);

const stores: [string, () => Promise<{ store: Store; drop?: () => Promise<void> }>][] = [
  ['SQLite', async () => ({ store: await openSqliteStore({ path: ':memory:' }) })],
  [
    'PostgreSQL',
    async () => {
      const url = await createDatabase();
      return { store: await openPostgresStore({ url, poolSize: 4 }), drop: () => dropDatabase(url) };
    },
  ],
];

for (const [name, open] of stores) {
  describe(`EventRecorder on ${name}`, () => {
    let store: Store;
    let drop: (() => Promise<void>) | undefined;
    before(async () => ({ store, drop } = await open()));
    after(async () => {
      await store.close();
      await drop?.();
    });

    it('numbers each subscription\'s events 1, 2, 3… in commit order, only for the subscriptions that match', async () => {
      const recorder = new EventRecorder('R5', registry(3), () => true);
      const { matched } = await store.transaction((tx) => recorder.record(tx, change('a', 1, 'male')));
      assert.deepEqual(matched.map((s) => s.id).sort(), ['s1', 's2'], 's0 filters on gender=female');
      await Promise.all(['b', 'c', 'd', 'e'].map((id) => store.transaction((tx) => recorder.record(tx, change(id, 1, 'female')))));
      assert.deepEqual(await numbers(store, 's0'), [1, 2, 3, 4]);
      assert.deepEqual(await numbers(store, 's1'), [1, 2, 3, 4, 5]);
      const focuses = (await store.events('R5', 's1', 1, 5, 10)).map((e) => e.focus.id);
      assert.equal(focuses[0], 'a');
      assert.deepEqual([...focuses.slice(1)].sort(), ['b', 'c', 'd', 'e']);
    });

    it('a transaction that rolls back uses no number: the next event follows without a gap', async () => {
      const recorder = new EventRecorder('R5', registry(3), () => true);
      const before = await numbers(store, 's2');
      await assert.rejects(
        store.transaction(async (tx) => {
          await recorder.record(tx, change('f', 1, 'male'));
          throw new Error('the write failed after matching');
        }),
        /the write failed/,
      );
      assert.deepEqual(await numbers(store, 's2'), before);
      await store.transaction((tx) => recorder.record(tx, change('f', 1, 'male')));
      const after = await numbers(store, 's2');
      assert.deepEqual(after, [...before, before.length + 1]);
    });

    it('one change matching 200 subscriptions records one event for each, numbered from 1', async () => {
      const recorder = new EventRecorder('R5', registry(200), () => true);
      const fresh = new EventRecorder('R5', registry(0), () => true);
      assert.deepEqual((await store.transaction((tx) => fresh.record(tx, change('g', 1, 'male')))).matched, [], 'no subscription: nothing written');
      const { matched } = await store.transaction((tx) => recorder.record(tx, change('g', 1, 'female')));
      assert.equal(matched.length, 200);
      // s0..s2 had events from the tests above; every other subscription starts at 1.
      const fresh197 = matched.filter((s) => !['s0', 's1', 's2'].includes(s.id));
      const last = await Promise.all(fresh197.map(async (s) => (await store.eventRange('R5', s.id)).last));
      assert.deepEqual(last, new Array(197).fill(1));
    });

    it('a change the owner may not read is no event for that subscription (D-22)', async () => {
      const recorder = new EventRecorder('R5', registry(3), (sub, focus) => !(sub === 's1' && focus.id === 'secret'));
      const before = (await store.eventRange('R5', 's1')).last;
      const { matched } = await store.transaction((tx) => recorder.record(tx, change('secret', 1, 'male')));
      assert.deepEqual(matched.map((s) => s.id), ['s2']);
      assert.equal((await store.eventRange('R5', 's1')).last, before);
    });
  });
}
