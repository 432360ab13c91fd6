import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createDatabase, dropDatabase } from '../../test/helpers/postgres.ts';
import { loadDefinitions } from '../fhir/definitions/index.ts';
import type { Resource } from '../fhir/types.ts';
import { extractIndex } from '../search/extract.ts';
import { searchRegistry } from '../search/parameters.ts';
import { parseSearch } from '../search/parse.ts';
import { emptyIndexRows } from '../search/types.ts';
import { openPostgresStore } from './postgres/index.ts';
import { type RebuildOptions, keepRebuilding, rebuildIndex, verdict } from './reindex.ts';
import { openSqliteStore } from './sqlite/index.ts';
import type { Store, Transaction } from './store.ts';

const registry = searchRegistry(loadDefinitions('R4'));
const BASE = 'http://h.test/fhir/R4';
const target = { generation: 2, base: BASE };
const quiet = { info() {}, warn() {} };

const dir = mkdtempSync(join(tmpdir(), 'herald-reindex-'));
const databases: string[] = [];
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  await Promise.all(databases.map(dropDatabase));
});

const patient = (id: string, family: string): Resource => ({ resourceType: 'Patient', id, identifier: [{ system: 'urn:mrn', value: id }], name: [{ family }] });

/** `count` Patients stored as an older Herald left them: the bodies, with no index rows at all. */
async function seed(store: Store, count: number): Promise<void> {
  await store.transaction(async (tx) => {
    for (let i = 0; i < count; i++) {
      const id = `p${String(i).padStart(3, '0')}`;
      const json = JSON.stringify({ ...patient(id, `Fam${i}`), meta: { versionId: '1', lastUpdated: '2024-01-01T00:00:00.000Z' } });
      await tx.write('R4', { type: 'Patient', id, versionId: 1, lastUpdated: '2024-01-01T00:00:00.000Z', method: 'POST', json, index: emptyIndexRows() });
    }
    await tx.setIndexState('R4', { built: { generation: 1, base: BASE } });
  });
}

/** This Herald's extraction, noting the id of each resource it extracts in `ids`. */
const recording = (ids: string[]) => (r: Resource) => (ids.push(r.id!), extractIndex(registry, r, { baseUrl: BASE }));

const found = async (store: Store, query: string): Promise<string[]> => {
  const req = parseSearch(registry, ['Patient'], new URLSearchParams(query), { strict: true, defaultCount: 1000, maxCount: 1000, baseUrl: BASE });
  return (await store.search('R4', req)).matches.map((m) => m.id).sort();
};

const stores: [string, () => Promise<Store>][] = [
  ['sqlite', async () => openSqliteStore({ path: join(dir, `${Math.random().toString(36).slice(2)}.db`) })],
  [
    'postgres',
    async () => {
      const url = await createDatabase();
      databases.push(url);
      return openPostgresStore({ url, poolSize: 4 });
    },
  ],
];

describe('search index rebuild: when', () => {
  it('rebuilds an index built by an older generation, for another base URL, or never recorded; leaves a newer one', () => {
    assert.equal(verdict({}, target), 'rebuild');
    assert.equal(verdict({ built: { generation: 1, base: BASE } }, target), 'rebuild');
    assert.equal(verdict({ built: { generation: 2, base: 'http://elsewhere/fhir/R4' } }, target), 'rebuild');
    assert.equal(verdict({ built: target }, target), 'current');
    assert.equal(verdict({ built: target, building: { generation: 2, base: 'http://elsewhere/fhir/R4' } }, target), 'rebuild');
    assert.equal(verdict({ built: { generation: 3, base: BASE } }, target), 'newer');
    assert.equal(verdict({ built: { generation: 1, base: BASE }, building: { generation: 3, base: BASE } }, target), 'newer');
  });
});

for (const [name, open] of stores) {
  describe(`search index rebuild: ${name}`, () => {
    /** A fresh store of this kind for `fn`, closed afterwards. */
    const withStore = async (fn: (store: Store) => Promise<void>) => {
      const store = await open();
      try {
        await fn(store);
      } finally {
        await store.close();
      }
    };
    const options = (store: Store, extra: Partial<RebuildOptions> = {}): RebuildOptions => ({
      store,
      fv: 'R4',
      target,
      indexOf: (r) => extractIndex(registry, r, { baseUrl: BASE }),
      log: quiet,
      batch: 7,
      ...extra,
    });

    it('rebuilds every current resource from its stored body, page by page, writing no version', () =>
      withStore(async (store) => {
        await seed(store, 30);
        await store.transaction(async (tx) => {
          // A deleted resource is not indexed again.
          await tx.write('R4', { type: 'Patient', id: 'p005', versionId: 2, lastUpdated: '2024-01-02T00:00:00.000Z', method: 'DELETE' });
        });
        assert.deepEqual(await found(store, 'family=Fam3'), []);
        const extracted: string[] = [];
        const outcome = await rebuildIndex(options(store, { indexOf: recording(extracted) }));
        assert.equal(outcome, 'rebuilt');
        assert.equal(extracted.length, 29);
        assert.deepEqual(await found(store, 'family=Fam3'), ['p003']);
        assert.deepEqual(await found(store, 'identifier=urn:mrn|p029'), ['p029']);
        assert.deepEqual(await found(store, 'family=Fam5'), []);
        assert.equal((await found(store, 'family:contains=fam')).length, 29);
        assert.deepEqual(await store.indexState('R4'), { built: target });
        const history = await store.history('R4', { type: 'Patient', id: 'p003', count: 10 });
        assert.deepEqual(history.versions.map((v) => v.versionId), [1]);
        // Built as this Herald builds it: the next start does nothing.
        assert.equal(await rebuildIndex(options(store, { indexOf: () => assert.fail('extracted again') })), 'current');
      }));

    it('resumes after a stop where the last page ended', () =>
      withStore(async (store) => {
        await seed(store, 30);
        const stop = new AbortController();
        const first: string[] = [];
        const stopped = await rebuildIndex(
          options(store, {
            // Stopped while the second page is extracted: that page is still written.
            indexOf: (r) => (first.push(r.id!) === 10 && stop.abort(), extractIndex(registry, r, { baseUrl: BASE })),
            signal: stop.signal,
          }),
        );
        assert.equal(stopped, 'stopped');
        assert.equal(first.length, 14);
        const state = await store.indexState('R4');
        assert.deepEqual(state, { built: { generation: 1, base: BASE }, building: { ...target, after: { type: 'Patient', id: 'p013' }, full: true } });
        // Rebuilt so far: the first two pages.
        assert.deepEqual(await found(store, 'family=Fam13'), ['p013']);
        assert.deepEqual(await found(store, 'family=Fam14'), []);
        const second: string[] = [];
        assert.equal(await rebuildIndex(options(store, { indexOf: recording(second) })), 'rebuilt');
        assert.equal(second[0], 'p014');
        assert.equal(second.length, 16);
        assert.equal((await found(store, 'family:contains=fam')).length, 30);
      }));

    it('leaves alone a resource written while its page was being extracted (the write indexed it itself)', () =>
      withStore(async (store) => {
        await seed(store, 10);
        let wrote: Promise<void> | undefined;
        const outcome = await rebuildIndex(
          options(store, {
            indexOf: (r) => {
              if (r.id === 'p004') {
                // A client's update, as the write path stores it: version 2 with its own rows.
                const next = { ...patient('p004', 'Updated'), meta: { versionId: '2', lastUpdated: '2024-01-03T00:00:00.000Z' } };
                wrote = store.transaction((tx) =>
                  tx.write('R4', { type: 'Patient', id: 'p004', versionId: 2, lastUpdated: '2024-01-03T00:00:00.000Z', method: 'PUT', json: JSON.stringify(next), index: extractIndex(registry, next, { baseUrl: BASE }) }),
                );
              }
              return extractIndex(registry, r, { baseUrl: BASE });
            },
          }),
        );
        await wrote;
        assert.equal(outcome, 'rebuilt');
        assert.deepEqual(await found(store, 'family=Updated'), ['p004']);
        assert.deepEqual(await found(store, 'family=Fam4'), []);
        assert.deepEqual(await found(store, 'family=Fam3'), ['p003']);
      }));

    it('lets several rebuilds run at once (nodes starting together): each page written once, all of them in', async () => {
      let replaced = 0;
      /** The store, counting the replaceIndex calls of transactions that commit. */
      const counting = (s: Store): Store => ({
        ...s,
        transaction: (fn) =>
          s.transaction(async (tx) => {
            let n = 0;
            const counted = new Proxy(tx, {
              get(target, key) {
                if (key === 'replaceIndex') return (fv: Parameters<Transaction['replaceIndex']>[0], entries: Parameters<Transaction['replaceIndex']>[1]) => ((n += entries.length), target.replaceIndex(fv, entries));
                const value = Reflect.get(target, key) as unknown;
                return typeof value === 'function' ? value.bind(target) : value;
              },
            });
            const value = await fn(counted);
            tx.onCommit(() => (replaced += n));
            return value;
          }),
      });
      const store = await open();
      const other = name === 'postgres' ? await openPostgresStore({ url: databases[databases.length - 1]!, poolSize: 4 }) : store;
      try {
        await seed(store, 60);
        let extracted = 0;
        const count = (r: Resource) => (extracted++, extractIndex(registry, r, { baseUrl: BASE }));
        const outcomes = await Promise.all([rebuildIndex(options(counting(store), { indexOf: count })), rebuildIndex(options(counting(other), { indexOf: count }))]);
        assert.deepEqual(outcomes, ['rebuilt', 'rebuilt']);
        assert.equal((await found(store, 'family:contains=fam')).length, 60);
        assert.deepEqual(await store.indexState('R4'), { built: target });
        // Every resource's rows replaced once, by whichever process won its page; a process that
        // lost a page goes on from where the other got to, so none extracts a page twice.
        assert.equal(replaced, 60);
        assert.ok(extracted >= 60 && extracted <= 120, `extracted ${extracted}`);
      } finally {
        if (other !== store) await other.close();
        await store.close();
      }
    });

    it('for another base URL alone, extracts again only the bodies that name either base', () =>
      withStore(async (store) => {
        const OLD = 'http://old.test/fhir/R4';
        const write = (id: string, subject: string) => {
          const body = { resourceType: 'Observation', id, status: 'final', code: { text: 'x' }, subject: { reference: subject }, meta: { versionId: '1', lastUpdated: '2024-01-01T00:00:00.000Z' } };
          return { type: 'Observation', id, versionId: 1, lastUpdated: '2024-01-01T00:00:00.000Z', method: 'POST' as const, json: JSON.stringify(body), index: extractIndex(registry, body as Resource, { baseUrl: OLD }) };
        };
        await store.transaction(async (tx) => {
          await tx.write('R4', write('relative', 'Patient/p1'));
          await tx.write('R4', write('to-old', `${OLD}/Patient/p1`));
          await tx.write('R4', write('to-new', `${BASE}/Patient/p1`));
          await tx.write('R4', write('elsewhere', 'http://other.test/fhir/Patient/p1'));
          await tx.setIndexState('R4', { built: { generation: target.generation, base: OLD } });
        });
        const subjects = async (query: string) => {
          const req = parseSearch(registry, ['Observation'], new URLSearchParams(query), { strict: true, defaultCount: 100, maxCount: 100, baseUrl: BASE });
          return (await store.search('R4', req)).matches.map((m) => m.id).sort();
        };
        assert.deepEqual(await subjects('subject=Patient/p1'), ['relative', 'to-old']);
        const extracted: string[] = [];
        const outcome = await rebuildIndex(options(store, { indexOf: recording(extracted) }));
        assert.equal(outcome, 'rebuilt');
        assert.deepEqual(extracted.sort(), ['to-new', 'to-old']);
        assert.deepEqual(await subjects('subject=Patient/p1'), ['relative', 'to-new']);
        assert.deepEqual(await subjects(`subject=${OLD}/Patient/p1`), ['to-old']);
        assert.deepEqual(await store.indexState('R4'), { built: target });
      }));

    it('extracts every body when it starts over a rebuild for another base URL left part-way', () =>
      withStore(async (store) => {
        const OTHER = 'http://other.test/fhir/R4';
        const body = { resourceType: 'Observation', id: 'o', status: 'final', code: { text: 'x' }, subject: { reference: `${OTHER}/Patient/p1` }, meta: { versionId: '1', lastUpdated: '2024-01-01T00:00:00.000Z' } };
        await store.transaction(async (tx) => {
          // Indexed by a rebuild for OTHER that stopped after it: `Patient/p1`, which is wrong for BASE.
          await tx.write('R4', { type: 'Observation', id: 'o', versionId: 1, lastUpdated: '2024-01-01T00:00:00.000Z', method: 'POST', json: JSON.stringify(body), index: extractIndex(registry, body as Resource, { baseUrl: OTHER }) });
          await tx.setIndexState('R4', { built: target, building: { generation: target.generation, base: OTHER, after: { type: 'Observation', id: 'o' } } });
        });
        const extracted: string[] = [];
        assert.equal(await rebuildIndex(options(store, { indexOf: recording(extracted) })), 'rebuilt');
        // The body names neither BASE nor BASE's predecessor in `built`, yet its rows were OTHER's.
        assert.deepEqual(extracted, ['o']);
        const req = parseSearch(registry, ['Observation'], new URLSearchParams(`subject=${OTHER}/Patient/p1`), { strict: true, defaultCount: 10, maxCount: 10, baseUrl: BASE });
        assert.deepEqual((await store.search('R4', req)).matches.map((m) => m.id), ['o']);
      }));

    it('keeps rebuilding after a failure, from where it got to, and stops in its pause when told', () =>
      withStore(async (store) => {
        await seed(store, 20);
        // The walk fails on its second and third page (a read past its deadline, the database away).
        let reads = 0;
        const failing: Store = {
          ...store,
          currentVersions: (...a) => (++reads === 2 || reads === 3 ? Promise.reject(new Error(`read ${reads} failed`)) : store.currentVersions(...a)),
        };
        const errors: string[] = [];
        const extracted: string[] = [];
        const log = { ...quiet, error: (f: { err: Error }) => errors.push(f.err.message) };
        assert.equal(await keepRebuilding({ ...options(failing, { indexOf: recording(extracted) }), log, retryMs: 5 }), 'rebuilt');
        assert.deepEqual(errors, ['read 2 failed', 'read 3 failed']);
        // Each resource extracted once: the retries went on after the first page.
        assert.equal(extracted.length, 20);
        assert.equal((await found(store, 'family:contains=fam')).length, 20);
        // Told to stop while it waits to try again: it ends then, not after the pause.
        await store.transaction((tx) => tx.setIndexState('R4', { built: { generation: 1, base: BASE } }));
        const stop = new AbortController();
        const broken: Store = { ...store, currentVersions: () => Promise.reject(new Error('down')) };
        const since = performance.now();
        const ended = keepRebuilding({ ...options(broken), log: { ...quiet, error: () => stop.abort() }, retryMs: 60_000, signal: stop.signal });
        assert.equal(await ended, undefined);
        assert.ok(performance.now() - since < 5_000);
      }));

    it('leaves an index built by a newer Herald as it is', () =>
      withStore(async (store) => {
        await seed(store, 3);
        await store.transaction((tx) => tx.setIndexState('R4', { built: { generation: 3, base: BASE } }));
        const warned: string[] = [];
        const outcome = await rebuildIndex(options(store, { indexOf: () => assert.fail('extracted'), log: { info() {}, warn: (_f, m) => warned.push(m) } }));
        assert.equal(outcome, 'newer');
        assert.equal(warned.length, 1);
        assert.deepEqual(await store.indexState('R4'), { built: { generation: 3, base: BASE } });
      }));
  });
}
