import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Resource } from '../fhir/types.ts';
import { emptyIndexRows } from '../search/types.ts';
import { openSqliteStore } from '../store/sqlite/index.ts';
import type { Store, StoredEvent } from '../store/store.ts';
import { focusVersion, rememberFocus } from './focus.ts';

const event = (id: string, versionId = 1): StoredEvent => ({ subscription: 's', number: 1, timestamp: '2026-01-01T00:00:00.000Z', focus: { type: 'Patient', id, versionId }, interaction: 'create' });

describe('the focus cache of notifications (issue 15)', () => {
  let store: Store;
  // The real store, its version reads counted.
  let reads = 0;
  let counted: Store;
  before(async () => {
    store = await openSqliteStore({ path: ':memory:' });
    counted = Object.create(store, { vread: { value: (...a: Parameters<Store['vread']>) => ((reads += 1), store.vread(...a)) } }) as Store;
    const json = JSON.stringify({ resourceType: 'Patient', id: 'stored', meta: { versionId: '1' } });
    await store.transaction((tx) => tx.write('R4', { type: 'Patient', id: 'stored', versionId: 1, lastUpdated: '2026-01-01T00:00:00.000Z', method: 'PUT', json, index: emptyIndexRows() }));
  });
  after(() => store.close());

  it('serves a version remembered at commit without reading or parsing it, and reads the others once', async () => {
    const resource = { resourceType: 'Patient', id: 'fresh' } as Resource;
    rememberFocus(counted, 'R4', 'Patient', 'fresh', 1, resource, JSON.stringify(resource));
    reads = 0;
    const f = await focusVersion(counted, 'R4', event('fresh'));
    assert.equal(f?.resource, resource, 'the very object written');
    assert.equal(reads, 0);
    const [a, b] = await Promise.all([focusVersion(counted, 'R4', event('stored')), focusVersion(counted, 'R4', event('stored'))]);
    assert.equal(reads, 1, 'one read for the subscriptions that ask together');
    assert.equal(a, b);
    assert.equal(a?.json, JSON.stringify(a?.resource), 'the stored text, as JSON.stringify writes the resource');
  });

  it('holds at most 64 MB of JSON: the oldest versions go first', async () => {
    const big = 'x'.repeat(8 * 1024 * 1024);
    for (let v = 1; v <= 9; v++) rememberFocus(counted, 'R4', 'Patient', 'big', v, { resourceType: 'Patient', id: 'big' } as Resource, big);
    reads = 0;
    await focusVersion(counted, 'R4', event('big', 9));
    assert.equal(reads, 0, 'the newest is held');
    await focusVersion(counted, 'R4', event('big', 1));
    assert.equal(reads, 1, 'the oldest went (9 × 8 MB is over the bound): it is read again');
  });
});
