import type Database from 'better-sqlite3';
import { runSafely } from '../run-safely.ts';

/**
 * Group commit for SQLite's single writer (run on the writer thread, thread.ts). Write jobs queue
 * up; the writer opens one transaction, runs every queued job in its own savepoint (a failing job
 * rolls back alone), commits once (one fsync for the whole group) and only then settles the jobs'
 * promises. Under load this turns N fsyncs into one without weakening durability: nothing is
 * acknowledged before its commit.
 */
/** Registers a callback to run after the job's transaction has committed. */
export type OnCommit = (fn: () => void) => void;

export interface WriteQueue {
  run<T>(job: (onCommit: OnCommit) => Promise<T>): Promise<T>;
  /** Resolves when every queued job has been committed or rejected. */
  drain(): Promise<void>;
  /** No group is running and none is queued. */
  readonly idle: boolean;
}

interface Pending {
  job: (onCommit: OnCommit) => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * The writer's own work around the groups (the deferred search index, deferred-index.ts), each
 * run outside any transaction; a failure is reported as a warning and stops nothing.
 * `beforeGroup` runs before each group begins; `committed` after each group's commit, before its
 * after-commit hooks; `idle` once the queue has stayed empty for a turn of the event loop after
 * a group.
 */
export interface GroupHooks {
  beforeGroup?: () => void;
  committed?: () => void;
  idle?: () => void;
}

export function createWriteQueue(db: Database.Database, maxGroup = 256, hooks: GroupHooks = {}): WriteQueue {
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

  async function runGroup(): Promise<void> {
    while (queue.length > 0) {
      if (hooks.beforeGroup) runSafely(hooks.beforeGroup, 'the writer\'s work before a group');
      const group = queue.splice(0, maxGroup);
      try {
        sql.begin.run();
      } catch (err) {
        // No transaction (the database is locked, read-only, …): nothing of this group ran.
        for (const p of group) p.reject(err);
        continue;
      }
      const ran: { p: Pending; settle: () => void; hooks: (() => void)[] }[] = [];
      let lost: unknown;
      let next = 0;
      while (next < group.length) {
        const p = group[next++]!;
        // Jobs that arrive while this group runs join the next one.
        const hooks: (() => void)[] = [];
        try {
          sql.savepoint.run();
          const value = await p.job((fn) => hooks.push(fn));
          sql.release.run();
          ran.push({ p, settle: () => p.resolve(value), hooks });
        } catch (err) {
          p.reject(err);
          if (!undoJob()) {
            lost = err;
            break;
          }
        }
      }
      if (lost === undefined) {
        try {
          sql.commit.run();
        } catch (err) {
          lost = err;
          rollbackQuietly();
        }
      }
      if (lost !== undefined) {
        // The whole group's transaction is gone (a failed COMMIT, or SQLite rolled it back itself
        // on SQLITE_FULL / SQLITE_IOERR): the jobs that had run fail with the cause, the jobs that
        // had not run yet go first into the next group. The writer itself carries on.
        for (const r of ran) r.p.reject(lost);
        queue.unshift(...group.slice(next));
        continue;
      }
      if (hooks.committed) runSafely(hooks.committed, 'the writer\'s work after a commit');
      // After-commit work (e.g. waking delivery) runs before the writers hear back.
      for (const r of ran) for (const fn of r.hooks) runSafely(fn);
      for (const r of ran) r.settle();
    }
  }

  /** Rolls back the failed job's savepoint; false when the group's transaction itself is gone. */
  function undoJob(): boolean {
    // On some errors (disk full, I/O errors) SQLite has already rolled back the whole transaction,
    // and with it every savepoint: then there is nothing to roll back to.
    if (!db.inTransaction) return false;
    try {
      sql.rollbackTo.run();
      sql.release.run();
      return true;
    } catch {
      rollbackQuietly();
      return false;
    }
  }

  function rollbackQuietly(): void {
    try {
      if (db.inTransaction) db.exec('ROLLBACK');
    } catch {
      // The connection rolls back by itself when it cannot; the next group begins afresh.
    }
  }

  function kick(): void {
    if (running) return;
    // Start on the next turn of the event loop, so every request read in this turn joins the group.
    running = new Promise<void>((resolve) => setImmediate(resolve)).then(runGroup).finally(() => {
      running = undefined;
      if (queue.length > 0) kick();
      else if (hooks.idle) setImmediate(whenIdle);
    });
  }

  const isIdle = () => !running && queue.length === 0;

  function whenIdle(): void {
    if (isIdle()) runSafely(hooks.idle!, 'the writer\'s idle work');
  }

  return {
    run<T>(job: (onCommit: OnCommit) => Promise<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        queue.push({ job, resolve: resolve as (v: unknown) => void, reject });
        kick();
      });
    },
    async drain(): Promise<void> {
      while (running) await running;
    },
    get idle() {
      return isIdle();
    },
  };
}
