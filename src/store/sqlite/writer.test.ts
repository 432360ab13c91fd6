import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createWriteQueue } from './writer.ts';

const dir = mkdtempSync(join(tmpdir(), 'herald-writer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A real WAL database, its writer's queue, and a second connection that sees only commits. */
function setup(name: string) {
  const path = join(dir, `${name}.db`);
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (v INTEGER PRIMARY KEY)');
  const reader = new Database(path, { readonly: true });
  const queue = createWriteQueue(db);
  const insert = (v: number) => queue.run(async () => db.prepare('INSERT INTO t (v) VALUES (?)').run(v));
  const committed = () => reader.prepare('SELECT v FROM t ORDER BY v').pluck().all();
  return { db, queue, insert, committed };
}

describe('write queue: group commit', () => {
  it('settles each job only once its group has committed, and commits the jobs of one turn together', async () => {
    const { insert, committed } = setup('group');
    const seen: number[][] = [];
    await Promise.all([1, 2, 3].map((v) => insert(v).then(() => seen.push(committed() as number[]))));
    // Every job, when it settled, could already be read back by another connection: all three.
    assert.deepEqual(seen, [[1, 2, 3], [1, 2, 3], [1, 2, 3]]);
  });

  it('rolls back only the failing job of a group; after-commit hooks run for the others, before they settle', async () => {
    const { queue, insert, committed, db } = setup('rollback');
    const events: string[] = [];
    const ok = queue.run(async (onCommit) => {
      db.prepare('INSERT INTO t (v) VALUES (1)').run();
      onCommit(() => events.push('hook 1'));
    });
    const bad = queue.run(async (onCommit) => {
      db.prepare('INSERT INTO t (v) VALUES (2)').run();
      onCommit(() => events.push('hook 2'));
      throw new Error('no');
    });
    const ok2 = insert(3).then(() => events.push('settled 3'));
    await ok;
    await ok2;
    await assert.rejects(bad, /no/);
    assert.deepEqual(committed(), [1, 3]);
    assert.deepEqual(events, ['hook 1', 'settled 3']);
  });

  it('rejects every job of a group whose COMMIT fails, and goes on with the next group', async () => {
    const { queue, insert, committed, db } = setup('commitfail');
    db.exec('CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE child (p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)');
    db.pragma('foreign_keys = ON');
    // A deferred foreign key is checked at COMMIT: this group cannot commit.
    const a = insert(1);
    const b = queue.run(async () => db.prepare('INSERT INTO child (p) VALUES (42)').run());
    await assert.rejects(a, /FOREIGN KEY constraint failed/);
    await assert.rejects(b, /FOREIGN KEY constraint failed/);
    await insert(2);
    assert.deepEqual(committed(), [2]);
  });

  it('survives a job after which SQLite has rolled back the whole transaction (disk full): the jobs that ran fail with the cause, the rest commit in the next group', async () => {
    const { queue, insert, committed, db } = setup('lost');
    const a = insert(1);
    // What SQLite does on SQLITE_FULL or an I/O error in mid-statement: the transaction, and every
    // savepoint in it, is gone when the job's error reaches the writer.
    const b = queue.run(async () => {
      db.exec('ROLLBACK');
      throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    });
    const c = insert(3);
    await assert.rejects(a, /disk is full/);
    await assert.rejects(b, /disk is full/);
    await c;
    await insert(4);
    assert.deepEqual(committed(), [3, 4]);
  });

  it('rejects a whole group that cannot begin (the database is locked by another connection) and recovers', async () => {
    const { insert, committed, db } = setup('locked');
    db.pragma('busy_timeout = 0');
    const other = new Database(db.name);
    other.exec('BEGIN IMMEDIATE');
    const jobs = [insert(1), insert(2)];
    for (const j of jobs) await assert.rejects(j, (err: { code?: string }) => err.code === 'SQLITE_BUSY');
    other.exec('ROLLBACK');
    other.close();
    await insert(5);
    assert.deepEqual(committed(), [5]);
  });

  it('drain() resolves once everything queued has been committed', async () => {
    const { queue, insert, committed } = setup('drain');
    void insert(1);
    void insert(2);
    await queue.drain();
    assert.deepEqual(committed(), [1, 2]);
  });
});
