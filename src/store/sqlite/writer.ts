import type Database from 'better-sqlite3';

/**
 * Group commit for SQLite's single writer. Write jobs queue up; the writer opens one transaction,
 * runs every queued job in its own savepoint (a failing job rolls back alone) and commits once.
 * Then the group waits for `flush` (for a file database: an fsync of the WAL on a libuv thread,
 * see index.ts) and only then are its after-commit hooks run and its jobs' promises settled:
 * nothing is acknowledged before it is on disk.
 *
 * The flush runs off the event loop, so while one group's fsync is in flight the next group is
 * already being written; groups that commit during a flush share the next one. Under load this
 * turns N fsyncs into one and keeps them off the thread that does everything else.
 */
/** Registers a callback to run after the job's transaction has committed (and been flushed). */
export type OnCommit = (fn: () => void) => void;

export interface WriteQueue {
  run<T>(job: (onCommit: OnCommit) => Promise<T>): Promise<T>;
  /** Resolves when every queued job has been committed and flushed, or rejected. */
  drain(): Promise<void>;
}

export interface WriteQueueOptions {
  /** Makes every commit made so far durable. Absent: a commit is final when COMMIT returns. */
  flush?: () => Promise<void>;
  /** Most jobs in one transaction. */
  maxGroup?: number;
}

interface Pending {
  job: (onCommit: OnCommit) => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** A committed group waiting for its flush: hooks to run, then outcomes to deliver. */
interface Committed {
  hooks: (() => void)[];
  settle: (() => void)[];
  fail: (err: unknown) => void;
}

export function createWriteQueue(db: Database.Database, options: WriteQueueOptions = {}): WriteQueue {
  const { flush, maxGroup = 256 } = options;
  const queue: Pending[] = [];
  // Prepared once: transaction control runs for every job, so it must not be parsed every time.
  const sql = {
    begin: db.prepare('BEGIN IMMEDIATE'),
    savepoint: db.prepare('SAVEPOINT job'),
    release: db.prepare('RELEASE job'),
    rollbackTo: db.prepare('ROLLBACK TO job'),
    commit: db.prepare('COMMIT'),
  };
  let running: Promise<void> | undefined;
  let unflushed: Committed[] = [];
  let flushing: Promise<void> | undefined;
  // Once a flush has failed, committed data may be visible yet not on disk, and the kernel may have
  // dropped the pages it could not write: no later write can be promised durable until a restart
  // recovers from what the disk holds (as PostgreSQL does on a failed fsync).
  let broken: Error | undefined;

  async function runGroup(): Promise<void> {
    while (queue.length > 0) {
      const group = queue.splice(0, maxGroup);
      if (broken) {
        for (const p of group) p.reject(broken);
        continue;
      }
      const done: Committed = { hooks: [], settle: [], fail: (err) => group.forEach((p) => p.reject(err)) };
      sql.begin.run();
      for (const p of group) {
        // Jobs that arrive while this group runs join the next one.
        sql.savepoint.run();
        const hooks: (() => void)[] = [];
        try {
          const value = await p.job((fn) => hooks.push(fn));
          sql.release.run();
          done.hooks.push(...hooks);
          done.settle.push(() => p.resolve(value));
        } catch (err) {
          sql.rollbackTo.run();
          sql.release.run();
          done.settle.push(() => p.reject(err));
        }
      }
      try {
        sql.commit.run();
      } catch (err) {
        if (db.inTransaction) db.exec('ROLLBACK');
        done.fail(err);
        continue;
      }
      if (flush) {
        unflushed.push(done);
        startFlush();
      } else {
        finish(done);
      }
    }
  }

  function startFlush(): void {
    if (flushing || unflushed.length === 0 || !flush) return;
    // This flush covers exactly the groups committed before it starts; later ones wait for the next.
    const covered = unflushed;
    unflushed = [];
    flushing = flush()
      .then(
        () => covered.forEach(finish),
        (err: unknown) => {
          broken = new Error(`the store could not make writes durable and accepts no more until restarted: ${(err as Error).message}`);
          for (const g of [...covered, ...unflushed]) g.fail(broken);
          unflushed = [];
        },
      )
      .finally(() => {
        flushing = undefined;
        startFlush();
      });
  }

  function kick(): void {
    if (running) return;
    // Start on the next turn of the event loop, so every request read in this turn joins the group.
    running = new Promise<void>((resolve) => setImmediate(resolve)).then(runGroup).finally(() => {
      running = undefined;
      if (queue.length > 0) kick();
    });
  }

  return {
    run<T>(job: (onCommit: OnCommit) => Promise<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        queue.push({ job, resolve: resolve as (v: unknown) => void, reject });
        kick();
      });
    },
    async drain(): Promise<void> {
      while (running || flushing) await (running ?? flushing);
    },
  };
}

/** After-commit work (e.g. waking delivery) runs before the writers hear back. */
function finish(group: Committed): void {
  for (const fn of group.hooks) runSafely(fn);
  for (const s of group.settle) s();
}

function runSafely(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    // A failing after-commit hook must not undo the commit nor block the other writers.
    process.emitWarning(`after-commit hook failed: ${(err as Error).message}`);
  }
}
