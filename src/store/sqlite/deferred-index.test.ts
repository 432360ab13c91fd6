import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { type Condition, emptyIndexRows, type SearchParam, type SearchRequest } from '../../search/types.ts';
import type { NewVersion } from '../store.ts';
import { createWrites, migrate } from './connection.ts';
import { createDeferredIndex, createIndexMover } from './deferred-index.ts';
import { FhirError } from '../../fhir/errors.ts';
import { openSqliteStore } from './index.ts';
import { createWriteQueue } from './writer.ts';

// The search index written after the commit (issue 15, migration 8): acknowledged writes are
// always found by searches, nothing pending is lost by a crash, and a failed move is tried again.

const dir = mkdtempSync(join(tmpdir(), 'herald-deferred-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const identifier: SearchParam = { code: 'identifier', type: 'token', url: 'urn:test', targets: [] };
const byIdentifier = (value: string): SearchRequest => ({
  types: ['Patient'],
  conditions: [{ kind: 'param', param: identifier, values: [{ kind: 'token', system: 'urn:sys', value }] } as Condition],
  sort: [],
  count: 50,
  include: [],
  revinclude: [],
  total: 'none',
  ignored: [],
});
const patient = (id: string, value: string, versionId = 1): NewVersion => ({
  type: 'Patient',
  id,
  versionId,
  lastUpdated: new Date().toISOString(),
  method: versionId === 1 ? 'POST' : 'PUT',
  json: `{"resourceType":"Patient","id":"${id}"}`,
  index: { ...emptyIndexRows(), token: [{ code: 'identifier', system: 'urn:sys', value, text: null }] },
});
const tokenRows = (db: Database.Database) => db.prepare("SELECT count(*) FROM sp_token WHERE code = 'identifier'").pluck().get() as number;
const pending = (db: Database.Database) => db.prepare('SELECT count(*) FROM index_pending').pluck().get() as number;
/** One turn of the event loop: the mover's next idle step has run. */
const turn = () => new Promise<void>((r) => setImmediate(r));

/** A file database at the current schema, opened directly (what the writer thread does). */
function migrated(name: string): { path: string; db: Database.Database } {
  const path = join(dir, `${name}.db`);
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  migrate(db);
  return { path, db };
}

describe('deferred search index: searches', () => {
  it('finds every acknowledged create at once, under concurrent creates and searches on the read threads', async () => {
    const store = await openSqliteStore({ path: join(dir, 'concurrent.db') });
    const misses: string[] = [];
    try {
      // 8 clients, each creating a patient and searching for it the moment it is acknowledged,
      // while the others keep writing: no search may miss a write that was acknowledged before it.
      await Promise.all(
        Array.from({ length: 8 }, async (_, client) => {
          for (let i = 0; i < 40; i++) {
            const id = `c${client}-${i}`;
            await store.transaction(async (tx) => tx.write('R4', patient(id, id)));
            const found = await store.search('R4', byIdentifier(id));
            if (found.matches.map((m) => m.id).join() !== id) misses.push(id);
          }
        }),
      );
      assert.deepEqual(misses, []);
    } finally {
      await store.close();
    }
  });

  it('a search inside a transaction (a conditional create) sees the rows of writes not yet moved, its own included', async () => {
    const store = await openSqliteStore({ path: join(dir, 'in-tx.db') });
    await store.transaction(async (tx) => tx.write('R4', patient('a', 'one')));
    const seen = await store.transaction(async (tx) => {
      const before = (await tx.search('R4', byIdentifier('one'))).matches.map((m) => m.id);
      await tx.write('R4', patient('b', 'two'));
      const own = (await tx.search('R4', byIdentifier('two'))).matches.map((m) => m.id);
      return { before, own };
    });
    assert.deepEqual(seen, { before: ['a'], own: ['b'] });
    await store.close();
  });

  it('forgets the rows of a replaced or deleted version once it is moved', async () => {
    const store = await openSqliteStore({ path: join(dir, 'replace.db') });
    await store.transaction(async (tx) => tx.write('R4', patient('r', 'old')));
    await store.transaction(async (tx) => tx.write('R4', patient('r', 'new', 2)));
    assert.deepEqual((await store.search('R4', byIdentifier('old'))).matches, []);
    assert.deepEqual((await store.search('R4', byIdentifier('new'))).matches.map((m) => m.id), ['r']);
    await store.transaction(async (tx) => tx.write('R4', { ...patient('r', 'new', 3), method: 'DELETE', json: undefined }));
    assert.deepEqual((await store.search('R4', byIdentifier('new'))).matches, []);
    await store.close();
  });

  it('moves what a crash left pending into the index when the store opens, before any search', async () => {
    const { path, db } = migrated('crash');
    // Writes committed with their rows pending, then the process "dies": nothing moved them.
    const deferred = createDeferredIndex(db);
    const writes = createWrites(db, deferred);
    db.transaction(() => {
      writes.write('R4', patient('x1', 'left'));
      writes.write('R4', patient('x2', 'left'));
      writes.write('R4', patient('x1', 'later', 2));
    })();
    assert.equal(pending(db), 3);
    assert.equal(tokenRows(db), 0);
    db.close();
    const store = await openSqliteStore({ path });
    assert.deepEqual((await store.search('R4', byIdentifier('left'))).matches.map((m) => m.id), ['x2']);
    assert.deepEqual((await store.search('R4', byIdentifier('later'))).matches.map((m) => m.id), ['x1']);
    await store.close();
    const after = new Database(path, { readonly: true });
    assert.equal(pending(after), 0);
    assert.equal(tokenRows(after), 2);
    after.close();
  });

  it('answers a search with a 503 (transient) when the index cannot catch up by its deadline, and finds the write once it has', async () => {
    const path = join(dir, 'stuck.db');
    const store = await openSqliteStore({ path, readTimeoutMs: 300 });
    // Another connection takes the token table away: the writer's moves fail (and are retried),
    // while commits still succeed, as when the index pages cannot be written but the log can.
    const other = new Database(path);
    other.pragma('busy_timeout = 5000');
    try {
      await store.search('R4', byIdentifier('none')); // the read threads are up
      other.exec('ALTER TABLE sp_token RENAME TO sp_token_away');
      await store.transaction(async (tx) => tx.write('R4', patient('s1', 'stuck')));
      await assert.rejects(store.search('R4', byIdentifier('stuck')), (err: FhirError) => {
        assert.equal(err.status, 503);
        assert.equal(err.issues[0]?.code, 'transient');
        assert.match(err.message, /search index has not caught up/);
        return true;
      });
      // By now the writer retries its failing move only every 0.8 s or so: the next search must
      // ask again itself rather than count on the one that gave up.
      await new Promise((r) => setTimeout(r, 500));
      other.exec('ALTER TABLE sp_token_away RENAME TO sp_token');
      assert.deepEqual((await store.search('R4', byIdentifier('stuck'))).matches.map((m) => m.id), ['s1']);
    } finally {
      other.close();
      await store.close();
    }
  });

  it('leaves nothing pending when the store closes', async () => {
    const path = join(dir, 'close.db');
    const store = await openSqliteStore({ path });
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.transaction(async (tx) => tx.write('R4', patient(`k${i}`, 'k')))));
    await store.close();
    const db = new Database(path, { readonly: true });
    assert.equal(pending(db), 0);
    assert.equal(tokenRows(db), 20);
    db.close();
  });
});

describe('deferred search index: the mover', () => {
  /** A migrated database, its deferred index and a mover whose idleness the test decides. */
  function setup(name: string, options: { batch?: number; maxDelayMs?: number; wal?: boolean; flushed?: () => void } = {}) {
    const { db, path } = migrated(name);
    const deferred = createDeferredIndex(db);
    const writes = createWrites(db, deferred);
    const told: number[] = [];
    let idle = true;
    const { wal, ...rest } = options;
    const mover = createIndexMover(db, deferred, { told: (n) => told.push(n), idle: () => idle, ...rest, ...(wal ? { wal: `${path}-wal` } : {}) });
    let n = 0;
    /** One committed group of `count` writes, as the write queue runs it. */
    const group = (count: number) => {
      mover.beforeGroup();
      db.transaction(() => {
        for (let i = 0; i < count; i++) writes.write('R4', patient(`m${n++}`, 'm'));
      })();
      mover.committed();
    };
    return { db, deferred, writes, mover, told, group, setIdle: (v: boolean) => (idle = v) };
  }

  it('moves the pending entries a step at a time while the writer is idle, a turn of the event loop apart, and tells which groups are in', async () => {
    const { db, mover, told, group } = setup('steps', { batch: 100, maxDelayMs: 60_000 });
    group(2);
    group(1);
    mover.idle();
    assert.equal(tokenRows(db), 1, 'the first step at once, one entry');
    assert.deepEqual(told, []);
    await turn();
    assert.equal(tokenRows(db), 2);
    await turn();
    assert.equal(tokenRows(db), 3);
    assert.equal(pending(db), 0);
    assert.deepEqual(told, [2]);
    assert.equal(mover.indexed, mover.group);
    mover.stop();
    db.close();
  });

  it('flushes the WAL in the background once idle steps have moved everything, and not before (issue 15)', async () => {
    let flushes = 0;
    let flushed = () => {};
    const { db, mover, group, setIdle } = setup('flush', { batch: 100, maxDelayMs: 60_000, wal: true, flushed: () => (flushes++, flushed()) });
    group(3);
    mover.idle();
    await turn();
    assert.equal(tokenRows(db), 2);
    setIdle(false); // a job has come: the steps pause with one entry pending
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(flushes, 0, 'no flush while entries are pending');
    setIdle(true);
    const done = new Promise<void>((r) => (flushed = r));
    mover.idle();
    assert.equal(pending(db), 0);
    await done;
    assert.equal(flushes, 1);
    // Stopped while a flush is under way: the WAL's descriptor is closed once the flush has ended.
    group(1);
    mover.idle();
    const again = new Promise<void>((r) => (flushed = r));
    mover.stop();
    await again;
    assert.equal(flushes, 2);
    db.close();
  });

  it('does not flush the WAL after the move made before a group (the writer is busy: its commit syncs)', async () => {
    let flushes = 0;
    const { db, mover, group, setIdle } = setup('busy-flush', { batch: 1, maxDelayMs: 60_000, wal: true, flushed: () => flushes++ });
    setIdle(false);
    group(1);
    group(1); // beforeGroup moved the first group's entry
    assert.equal(tokenRows(db), 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(flushes, 0);
    mover.stop();
    db.close();
  });

  it('takes no step once a job waits: the job goes first, the steps go on when the writer is idle again', async () => {
    const { db, mover, told, group, setIdle } = setup('yield', { batch: 100, maxDelayMs: 60_000 });
    group(4);
    mover.idle();
    assert.equal(tokenRows(db), 1);
    setIdle(false); // a job has come: the step scheduled for the next turn does nothing
    await turn();
    await turn();
    assert.equal(tokenRows(db), 1);
    group(1); // below a batch: the group does not wait for a move either
    assert.equal(tokenRows(db), 1);
    assert.equal(pending(db), 4);
    setIdle(true);
    mover.idle();
    for (let i = 0; i < 6; i++) await turn();
    assert.equal(tokenRows(db), 5);
    assert.equal(pending(db), 0);
    assert.deepEqual(told, [2]);
    mover.stop();
    db.close();
  });

  it('moves before the next group when the writer is never idle, and at once when a search asks', () => {
    const { db, mover, told, group, setIdle } = setup('busy', { batch: 2, maxDelayMs: 60_000 });
    setIdle(false);
    group(3);
    assert.equal(tokenRows(db), 0);
    group(1); // beforeGroup moved the first group's 3 rows, then this group deferred 1
    assert.equal(tokenRows(db), 3);
    assert.deepEqual(told, [1]);
    mover.ask(); // busy: remembered for the next group or idle turn
    assert.equal(tokenRows(db), 3);
    setIdle(true);
    mover.idle();
    assert.equal(tokenRows(db), 4);
    assert.deepEqual(told, [1, 2]);
    group(1);
    mover.ask(); // idle: at once, even below a batch
    assert.equal(tokenRows(db), 5);
    assert.deepEqual(told, [1, 2, 3]);
    mover.stop();
    db.close();
  });

  it('when the writer is never idle, moves the entries before the next group once none has moved for maxDelayMs', async () => {
    const { db, mover, group, setIdle } = setup('delay', { batch: 100, maxDelayMs: 20 });
    setIdle(false);
    group(1);
    group(1);
    assert.equal(tokenRows(db), 0, 'below a batch and not yet overdue');
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(tokenRows(db), 0, 'overdue, but the writer is busy: not in the middle of its work');
    group(1);
    assert.equal(tokenRows(db), 2, 'moved before the next group');
    mover.stop();
    db.close();
  });

  it('a group rolled back leaves nothing to move: the next idle turn clears its count and tells the group in', () => {
    const { db, deferred, writes, mover, told } = setup('rolled-back', { batch: 100, maxDelayMs: 60_000 });
    mover.beforeGroup();
    assert.throws(() => db.transaction(() => {
      writes.write('R4', patient('gone', 'm'));
      throw new Error('rolled back');
    })(), /rolled back/);
    mover.committed();
    assert.equal(deferred.deferred, 1, 'counted, though rolled back');
    assert.equal(pending(db), 0);
    mover.idle();
    assert.equal(deferred.deferred, 0, 'the count is cleared');
    assert.deepEqual(told, [1]);
    assert.equal(mover.indexed, mover.group);
    mover.stop();
    db.close();
  });

  it('once stopped (the store closing), moves nothing by itself: closing moves what is left', () => {
    const { db, mover, group } = setup('stopped', { batch: 100, maxDelayMs: 60_000 });
    group(1);
    mover.stop();
    mover.idle();
    mover.ask();
    assert.equal(tokenRows(db), 0);
    assert.equal(pending(db), 1);
    db.close();
  });

  it('keeps the entries pending when a move fails, warns, and moves them once it can', async () => {
    const { db, mover, told, group } = setup('fail', { batch: 1, maxDelayMs: 60_000 });
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      // A real failure of the move's statements: the token table is gone for a while.
      db.exec('ALTER TABLE sp_token RENAME TO sp_token_away');
      group(1);
      assert.doesNotThrow(() => mover.idle());
      assert.equal(pending(db), 1, 'the failed move rolled back: its entry is still pending');
      assert.deepEqual(told, []);
      db.exec('ALTER TABLE sp_token_away RENAME TO sp_token');
      // The retry (after 50 ms) moves it without anyone asking again.
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(pending(db), 0);
      assert.equal(tokenRows(db), 1);
      assert.deepEqual(told, [1]);
      assert.match(warnings.join('\n'), /moving search index rows failed/);
    } finally {
      process.off('warning', onWarning);
      mover.stop();
      db.close();
    }
  });

  // The index rows are written by multi-row INSERT OR FAIL statements (index-writer.ts),
  // which keep no statement journal: one that fails halfway leaves its first rows in place, and
  // the move's transaction or the job's savepoint around it must take them back.
  it('leaves none of the rows of a statement that failed halfway, in a move and in a job', async () => {
    const { db } = migrated('halfway');
    const deferred = createDeferredIndex(db);
    const writes = createWrites(db, deferred);
    const three: NewVersion = {
      ...patient('h', 'a'),
      index: { ...emptyIndexRows(), token: ['a', 'b', 'c'].map((value) => ({ code: 'identifier', system: 'urn:sys', value, text: null })) },
    };
    const rows = () => db.prepare("SELECT n, value FROM sp_token WHERE id = 'h' ORDER BY n").raw().all();
    db.transaction(() => writes.write('R4', three))();
    // A row in the way of the second of the three (a stray row: Herald never writes one), so the
    // statement inserts row 0 and then fails.
    db.prepare("INSERT INTO sp_token (fv, type, id, code, n, grp, system, value) VALUES ('R4', 'Patient', 'h', 'identifier', 1, 0, 'urn:sys', 'stray')").run();
    // Inside a transaction the failed statement's first row is still there (OR FAIL) ...
    db.exec('BEGIN');
    assert.throws(() => deferred.apply(), /UNIQUE constraint failed/);
    assert.deepEqual(rows(), [[0, 'a'], [1, 'stray']]);
    db.exec('ROLLBACK');
    // ... and a move, in a transaction of its own, rolls it back whole.
    assert.throws(() => deferred.apply(), /UNIQUE constraint failed/);
    assert.equal(db.inTransaction, false);
    assert.deepEqual(rows(), [[1, 'stray']], 'the move rolled back: no row 0');
    assert.equal(pending(db), 1);

    // The same statement inside a job (a search on the writer's connection moves first): the job's
    // savepoint takes its rows back, and the group's other jobs commit.
    const queue = createWriteQueue(db);
    db.exec('CREATE TABLE t (v INTEGER)');
    const failing = queue.run(async () => {
      db.prepare('INSERT INTO t VALUES (1)').run();
      deferred.apply();
    });
    const other = queue.run(async () => db.prepare('INSERT INTO t VALUES (2)').run());
    await assert.rejects(failing, /UNIQUE constraint failed/);
    await other;
    assert.deepEqual(rows(), [[1, 'stray']]);
    assert.deepEqual(db.prepare('SELECT v FROM t').pluck().all(), [2]);
    assert.equal(pending(db), 1);
    db.close();
  });
});

describe('write queue: the writer\'s own hooks around groups', () => {
  it('runs beforeGroup before each group, committed after its commit and before its jobs settle, idle once the queue is empty', async () => {
    const { db } = migrated('hooks');
    db.exec('CREATE TABLE t (v INTEGER)');
    const seen: string[] = [];
    const queue = createWriteQueue(db, 256, {
      beforeGroup: () => seen.push(`before in-tx=${db.inTransaction}`),
      committed: () => seen.push(`committed in-tx=${db.inTransaction}`),
      idle: () => seen.push('idle'),
    });
    await Promise.all([1, 2].map((v) => queue.run(async () => db.prepare('INSERT INTO t VALUES (?)').run(v)).then(() => seen.push(`settled ${v}`))));
    assert.equal(queue.idle, true);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(seen, ['before in-tx=false', 'committed in-tx=false', 'settled 1', 'settled 2', 'idle']);
    db.close();
  });
});
