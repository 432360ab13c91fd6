import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { storeContract } from '../store.contract.ts';
import { openSqliteStore } from './index.ts';

const dir = mkdtempSync(join(tmpdir(), 'herald-sqlite-'));
after(() => rmSync(dir, { recursive: true, force: true }));

storeContract('sqlite :memory:', async () => openSqliteStore({ path: ':memory:' }));
storeContract('sqlite file (WAL)', async () => openSqliteStore({ path: join(dir, 'contract.db') }));

describe('sqlite store', () => {
  it('keeps committed data across close and reopen, and migrates only once', async () => {
    const path = join(dir, 'reopen.db');
    const a = openSqliteStore({ path });
    await a.transaction(async (tx) =>
      tx.write('R4', { type: 'Patient', id: 'p', versionId: 1, lastUpdated: '2024-01-01T00:00:00.000Z', method: 'POST', json: '{"resourceType":"Patient","id":"p"}' }),
    );
    await a.close();
    const b = openSqliteStore({ path });
    assert.equal((await b.read('R4', 'Patient', 'p'))?.versionId, 1);
    await b.close();
  });

  it('commits many concurrent transactions in groups, each settled after its commit', async () => {
    const store = openSqliteStore({ path: join(dir, 'group.db') });
    const n = 500;
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        store.transaction(async (tx) =>
          tx.write('R4', { type: 'Patient', id: `g${i}`, versionId: 1, lastUpdated: new Date().toISOString(), method: 'POST', json: '{}' }),
        ),
      ),
    );
    const page = await store.history('R4', { type: 'Patient', count: 1 });
    assert.equal(page.total, n);
    await store.close();
  });
});
