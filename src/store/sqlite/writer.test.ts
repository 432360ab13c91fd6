import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { describe, it } from 'node:test';
import { createWriteQueue } from './writer.ts';

/** A real SQLite database and a flush the test releases by hand, to watch what waits for it. */
function setup() {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t (v INTEGER PRIMARY KEY)');
  const flushes: { release: () => void; fail: (e: Error) => void }[] = [];
  const flush = () => new Promise<void>((resolve, reject) => flushes.push({ release: resolve, fail: reject }));
  const queue = createWriteQueue(db, { flush });
  const insert = (v: number) => queue.run(async () => db.prepare('INSERT INTO t (v) VALUES (?)').run(v));
  const rows = () => db.prepare('SELECT v FROM t ORDER BY v').pluck().all();
  const tick = () => new Promise((r) => setImmediate(r));
  return { db, queue, flushes, insert, rows, tick };
}

describe('write queue: group commit with a flush before acknowledging', () => {
  it('settles a committed job, and runs its after-commit hooks, only once its flush is done', async () => {
    const { queue, flushes, rows, tick, db } = setup();
    const events: string[] = [];
    const job = queue.run(async (onCommit) => {
      db.prepare('INSERT INTO t (v) VALUES (1)').run();
      onCommit(() => events.push('hook'));
      return 'value';
    });
    void job.then(() => events.push('settled'));
    while (flushes.length === 0) await tick();
    assert.deepEqual(rows(), [1], 'committed before the flush');
    await tick();
    assert.deepEqual(events, [], 'nothing acknowledged while the flush runs');
    flushes[0]!.release();
    assert.equal(await job, 'value');
    assert.deepEqual(events, ['hook', 'settled']);
  });

  it('writes the next group while a flush is in flight, and covers it with the following flush', async () => {
    const { flushes, insert, rows, tick } = setup();
    const first = insert(1);
    while (flushes.length === 0) await tick();
    const second = insert(2);
    const third = insert(3);
    while (rows().length < 3) await tick();
    assert.equal(flushes.length, 1, 'groups committed during a flush wait for the next one');
    flushes[0]!.release();
    await first;
    while (flushes.length < 2) await tick();
    let settled = false;
    void Promise.all([second, third]).then(() => (settled = true));
    await tick();
    assert.equal(settled, false);
    flushes[1]!.release();
    await Promise.all([second, third]);
    assert.equal(flushes.length, 2, 'one flush for both later groups');
  });

  it('rolls back only the failing job of a group', async () => {
    const { queue, flushes, insert, rows, tick, db } = setup();
    const ok = insert(1);
    const bad = queue.run(async () => {
      db.prepare('INSERT INTO t (v) VALUES (2)').run();
      throw new Error('no');
    });
    const ok2 = insert(3);
    while (flushes.length === 0) await tick();
    flushes[0]!.release();
    await ok;
    await ok2;
    await assert.rejects(bad, /no/);
    assert.deepEqual(rows(), [1, 3]);
  });

  it('after a failed flush, rejects the jobs it covered and every later one', async () => {
    const { flushes, insert, tick } = setup();
    const first = insert(1);
    while (flushes.length === 0) await tick();
    flushes[0]!.fail(new Error('EIO: i/o error'));
    await assert.rejects(first, /could not make writes durable.*EIO/);
    await assert.rejects(insert(2), /could not make writes durable/);
  });

  it('drain() waits for the flush of what has been committed', async () => {
    const { queue, flushes, insert, tick } = setup();
    const job = insert(1);
    while (flushes.length === 0) await tick();
    let drained = false;
    const d = queue.drain().then(() => (drained = true));
    await tick();
    assert.equal(drained, false);
    flushes[0]!.release();
    await d;
    await job;
  });
});
