import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadDefinitions } from '../../src/fhir/definitions/index.ts';
import { SEARCH_CASES } from '../../src/search/cases.ts';
import { extractIndex } from '../../src/search/extract.ts';
import { compileMatcher } from '../../src/search/match.ts';
import { searchRegistry } from '../../src/search/parameters.ts';
import { parseSearch } from '../../src/search/parse.ts';
import { openSqliteStore } from '../../src/store/sqlite/index.ts';
import type { Store } from '../../src/store/store.ts';

/**
 * The one table of search cases (src/search/cases.ts), run through the store's search on real
 * SQLite: index rows extracted on write, SQL on read. match.test.ts runs the same table through
 * the in-memory matcher; here both are also compared case by case.
 */
for (const set of SEARCH_CASES) {
  describe(`search agreement on ${set.version}: store search = in-memory matcher = expected`, () => {
    const registry = searchRegistry(loadDefinitions(set.version));
    let store: Store;
    before(async () => {
      store = await openSqliteStore({ path: ':memory:' });
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
        const matcher = compileMatcher(registry, c.type, c.query);
        const inMemory = set.resources.filter((r) => r.resourceType === c.type && matcher.matches(r)).map((r) => r.id!).sort();
        assert.deepEqual(inMemory, fromStore, 'matcher vs store');
      });
    }
  });
}
