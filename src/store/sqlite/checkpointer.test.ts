import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { startCheckpointer } from './checkpointer.ts';

const dir = mkdtempSync(join(tmpdir(), 'herald-ckpt-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('checkpointer', () => {
  it('keeps the WAL bounded under a steady stream of commits (it restarts the WAL past the limit)', async () => {
    const path = join(dir, 'steady.db');
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('wal_autocheckpoint = 0');
    db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)');
    const restartPages = 64;
    const checkpointer = startCheckpointer(path, 10, restartPages);
    await new Promise((r) => setTimeout(r, 300)); // the checkpointer's thread is up and ticking
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    const page = Buffer.alloc(4000, 7);
    let written = 0;
    let largest = 0;
    // A fixed amount of writing (40 restarts' worth), however slow a loaded machine makes it.
    const target = 40 * restartPages;
    const until = Date.now() + 20_000;
    while (written < target && Date.now() < until) {
      // Commits back to back, as under load, with a millisecond for other threads in between.
      db.transaction(() => {
        for (let i = 0; i < 8; i++) insert.run(page);
      })();
      written += 8;
      largest = Math.max(largest, statSync(`${path}-wal`).size);
      await new Promise((r) => setTimeout(r, 1));
    }
    await checkpointer.stop();
    db.close();
    const writtenBytes = written * 4096;
    assert.ok(written > 20 * 64, `wrote enough to need restarts (${written} pages)`);
    // Without restarts the WAL holds everything written (ratio ≥ 1); with them it stays well below,
    // even when a loaded machine starves the checkpointer's thread for a while.
    assert.ok(largest < writtenBytes * 0.75, `WAL peaked at ${largest} bytes for ${writtenBytes} written`);
  });
});
