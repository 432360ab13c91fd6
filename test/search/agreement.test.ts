import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadDefinitions } from '../../src/fhir/definitions/index.ts';
import { SEARCH_CASES } from '../../src/search/cases.ts';
import { extractIndex } from '../../src/search/extract.ts';
import { compileMatcher } from '../../src/search/match.ts';
import { searchRegistry } from '../../src/search/parameters.ts';
import { parseSearch } from '../../src/search/parse.ts';
import { openPostgresStore } from '../../src/store/postgres/index.ts';
import { openSqliteStore } from '../../src/store/sqlite/index.ts';
import type { Store } from '../../src/store/store.ts';
import { usePostgresDatabase } from '../helpers/postgres.ts';

/**
 * The one table of search cases (src/search/cases.ts), run through the store's search on real
 * SQLite and real PostgreSQL: index rows extracted on write, SQL on read. match.test.ts runs the
 * same table through the in-memory matcher; here both are also compared case by case.
 */
const pgDatabase = usePostgresDatabase();
const STORES: [string, () => Promise<Store>][] = [
  ['sqlite', () => openSqliteStore({ path: ':memory:' })],
  ['postgres', async () => openPostgresStore({ url: await pgDatabase, poolSize: 2, searchPoolSize: 1 })],
];
for (const [storeName, open] of STORES) {
  for (const set of SEARCH_CASES) {
    describe(`search agreement on ${set.version} (${storeName}): store search = in-memory matcher = expected`, () => {
      const registry = searchRegistry(loadDefinitions(set.version));
      let store: Store;
      before(async () => {
        store = await open();
        await store.transaction(async (tx) => {
          for (const r of set.resources) {
            await tx.write(set.version, {
              type: r.resourceType,
              id: r.id!,
              versionId: 1,
              lastUpdated: '2024-01-01T00:00:00.000Z',
              method: 'PUT',
              json: JSON.stringify(r),
              index: extractIndex(registry, r),
            });
          }
        });
      });
      after(() => store.close());

      for (const c of set.cases) {
        it(`${c.type}?${c.query}`, async () => {
          const query = new URLSearchParams(c.query);
          const request = parseSearch(registry, [c.type], query, { strict: true, defaultCount: 1000, maxCount: 1000 });
          const page = await store.search(set.version, request);
          const fromStore = page.matches.map((m) => m.id).sort();
          assert.deepEqual(fromStore, [...c.expect].sort(), 'store search');
          const matcher = compileMatcher(registry, c.type, c.query, { now: Date.now });
          const inMemory = set.resources.filter((r) => r.resourceType === c.type && matcher.matches(r)).map((r) => r.id!).sort();
          assert.deepEqual(inMemory, fromStore, 'matcher vs store');
        });
      }
    });
  }
}

describe('search: `ap` on dates is measured from the injected clock', () => {
  const set = SEARCH_CASES[0]!;
  const registry = searchRegistry(loadDefinitions(set.version));
  // From 2200 the tolerance of ap2010-06-01 is 19 years: every observation of the cases is near.
  const far = new Date('2200-01-01T00:00:00Z');

  it('the store (given its clock) and the matcher (given the same) agree, and differ from today', async () => {
    const store = await openSqliteStore({ path: ':memory:', now: () => far });
    const today = await openSqliteStore({ path: ':memory:' });
    try {
      for (const s of [store, today]) {
        await s.transaction(async (tx) => {
          for (const r of set.resources) {
            const index = extractIndex(registry, r);
            await tx.write(set.version, { type: r.resourceType, id: r.id!, versionId: 1, lastUpdated: '2024-01-01T00:00:00.000Z', method: 'PUT', json: JSON.stringify(r), index });
          }
        });
      }
      const query = 'date=ap2010-06-01';
      const request = parseSearch(registry, ['Observation'], new URLSearchParams(query), { strict: true, defaultCount: 1000, maxCount: 1000 });
      const ids = async (s: Store) => (await s.search(set.version, request)).matches.map((m) => m.id).sort();
      const matcher = compileMatcher(registry, 'Observation', query, { now: () => far.getTime() });
      const expected = set.resources.filter((r) => r.resourceType === 'Observation' && matcher.matches(r)).map((r) => r.id!).sort();
      assert.deepEqual(await ids(store), expected);
      assert.ok(expected.length > (await ids(today)).length, 'the clock widened the match');
    } finally {
      await store.close();
      await today.close();
    }
  });
});
