import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { emptyIndexRows } from '../../search/types.ts';
import type { NewVersion } from '../store.ts';

// SQLite reads SQLITE_TMPDIR once, when it first opens a database in the process: set before the
// store is imported, so that any temporary file SQLite makes here is made (and seen) in this folder.
const dir = mkdtempSync(join(tmpdir(), 'herald-temp-'));
const temp = mkdtempSync(join(tmpdir(), 'herald-sqlite-tmp-'));
process.env.SQLITE_TMPDIR = temp;
const { openSqliteStore } = await import('./index.ts');
after(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(temp, { recursive: true, force: true });
});

const patient = (i: number, versionId: number): NewVersion => ({
  type: 'Patient',
  id: `t${i}`,
  versionId,
  lastUpdated: new Date().toISOString(),
  method: versionId === 1 ? 'POST' : 'PUT',
  json: `{"resourceType":"Patient","id":"t${i}","name":[{"family":"${'x'.repeat(200)}${versionId}"}]}`,
  index: { ...emptyIndexRows(), string: [{ code: 'family', norm: `f${(i * 7919) % 1000}v${versionId}`, exact: `F${i}`, grp: 0 }] },
});

describe('sqlite writer: no temporary files (issue 15)', () => {
  it('keeps a job\'s savepoint journal in memory: a job rewriting hundreds of existing pages creates no file', async () => {
    const store = await openSqliteStore({ path: join(dir, 'journal.db') });
    const made: string[] = [];
    const watcher = watch(temp, (_event, name) => made.push(String(name)));
    try {
      await store.transaction(async (tx) => {
        for (let i = 0; i < 400; i++) await tx.write('R4', patient(i, 1));
      });
      // Each job runs in a savepoint of its group's transaction, so SQLite keeps the original of
      // every page the job changes; with SQLite's default it spills past 64 KiB to a temporary file
      // (created and unlinked at once, for every such job).
      for (let round = 2; round <= 3; round++) {
        await store.transaction(async (tx) => {
          for (let i = 0; i < 400; i++) await tx.write('R4', patient(i, round));
        });
      }
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(made, []);
      assert.equal((await store.read('R4', 'Patient', 't399'))?.versionId, 3);
    } finally {
      watcher.close();
      await store.close();
    }
  });
});
