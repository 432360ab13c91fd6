/**
 * The writer thread: owns the store's only read-write SQLite connection and runs every
 * transaction's writes, in groups (writer.ts), while the event loop goes on serving HTTP. Started
 * by index.ts; see protocol.ts for the conversation.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { startCheckpointer } from './checkpointer.ts';
import { createReads, createWrites, migrate } from './connection.ts';
import { createDeferredIndex, createIndexMover } from './deferred-index.ts';
import { type Call, type Done, type FromThread, type Target, type ToThread, toWire } from './protocol.ts';
import { createWriteQueue } from './writer.ts';

const port = parentPort!;
const { path } = workerData as { path: string };
const post = (m: FromThread) => port.postMessage(m);

/** The messages of one job, in arrival order, for the job's run in the write queue to take. */
class Inbox {
  #items: ToThread[] = [];
  #waiting: ((m: ToThread) => void) | undefined;
  push(m: ToThread): void {
    const w = this.#waiting;
    if (w) {
      this.#waiting = undefined;
      w(m);
    } else this.#items.push(m);
  }
  next(): Promise<ToThread> {
    const m = this.#items.shift();
    return m ? Promise.resolve(m) : new Promise((resolve) => (this.#waiting = resolve));
  }
  /** Hands every message, queued and to come, to `fn` (the job will never run to read them). */
  divert(fn: (m: ToThread) => void): void {
    this.push = fn;
    for (const m of this.#items.splice(0)) fn(m);
  }
}

const ABORTED = new Error('transaction aborted');

function start(): void {
  const memory = path === ':memory:';
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  // Each group's COMMIT syncs the WAL before it returns, and before the commit becomes visible to
  // any reader: nothing is seen or acknowledged before it is on disk. This thread waits for the
  // disk, not the event loop; the jobs that arrive meanwhile form the next group.
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  // A larger page cache keeps the index B-trees in memory while writing (64 MiB).
  db.pragma('cache_size = -65536');
  db.pragma('busy_timeout = 5000');
  // Each job runs in a savepoint of its group's transaction, so SQLite keeps the original of every
  // page the job changes; past 64 KiB it would spill that to a temporary file, created and deleted
  // for every such job (a lone create of a full Patient did: a file per create). In memory instead:
  // a job's pages are bounded by what one request writes (HERALD_BODY_LIMIT), and most are in the
  // page cache anyway.
  db.pragma('temp_store = MEMORY');
  // After a checkpoint has emptied it, the WAL file is cut back to this size instead of keeping
  // the largest size it ever reached (64 MiB).
  db.pragma('journal_size_limit = 67108864');
  migrate(db);
  // A database that opens but cannot be written (a read-only file or file system) would answer
  // reads and fail every write: a real write, committed, proves it can before Herald says ready.
  if (!memory) db.exec('CREATE TABLE IF NOT EXISTS write_probe (at TEXT); DELETE FROM write_probe; INSERT INTO write_probe VALUES (datetime())');
  // File databases checkpoint on a thread of their own (checkpointer.ts), not inside commits.
  const checkpointer = memory ? undefined : startCheckpointer(path);
  if (checkpointer) db.pragma('wal_autocheckpoint = 0');
  const deferred = createDeferredIndex(db);
  // What a crash left pending goes into the index before anything is read.
  deferred.apply();
  const mover = createIndexMover(db, deferred, {
    ...(memory ? {} : { wal: `${path}-wal` }),
    told: (indexed) => post({ t: 'indexed', indexed }),
    idle: () => queue.idle,
  });
  // The jobs a group commit settles are told in one message (they settle in one turn), with how
  // far the index has got.
  let dones: Done[] = [];
  const done = (d: Done) => {
    if (dones.length === 0) queueMicrotask(() => {
      const jobs = dones;
      dones = [];
      post({ t: 'done', jobs, group: mover.group, indexed: mover.indexed });
    });
    dones.push(d);
  };
  const queue = createWriteQueue(db, 256, {
    beforeGroup: () => mover.beforeGroup(),
    committed: () => mover.committed(),
    idle: () => mover.idle(),
  });
  const reads = createReads(db);
  const target: Target = {
    ...reads,
    ...createWrites(db, deferred),
    // A search here (inside a transaction, or any read of a ':memory:' store) sees every write before it.
    search(...args) {
      deferred.apply();
      return reads.search(...args);
    },
  };
  const apply = (name: keyof Target, args: unknown[]): unknown => (target[name] as (...a: unknown[]) => unknown)(...args);
  const answer = (call: Call, failed?: unknown): void => {
    if (failed !== undefined) return post({ t: 'reply', id: call.id, error: toWire(failed) });
    try {
      post({ t: 'reply', id: call.id, value: apply(call.name, call.args) });
    } catch (err) {
      post({ t: 'reply', id: call.id, error: toWire(err) });
    }
  };

  /**
   * One transaction: its ops and calls as they come, until it ends (commit) or aborts (roll back).
   * The numbers its appended events got go into `numbers`, in order, for its `done`.
   */
  async function runJob(inbox: Inbox, numbers: number[]): Promise<void> {
    // A failed op fails the job: later calls answer its error and the job rolls back at its end.
    let failed: unknown;
    for (;;) {
      const m = await inbox.next();
      if (m.t === 'abort') throw failed ?? ABORTED;
      if (m.t !== 'step' && m.t !== 'end') continue;
      if (failed === undefined) {
        try {
          for (const op of m.ops) {
            const value = apply(op.name, op.args);
            if (op.name === 'appendPacked') for (const n of value as number[]) numbers.push(n);
          }
        } catch (err) {
          failed = err;
        }
      }
      if (m.t === 'end') {
        if (failed !== undefined) throw failed;
        return;
      }
      answer(m.call, failed);
    }
  }

  const inboxes = new Map<number, Inbox>();
  function inboxFor(job: number): Inbox {
    let inbox = inboxes.get(job);
    if (!inbox) {
      const created = new Inbox();
      inbox = created;
      inboxes.set(job, created);
      let ran = false;
      const numbers: number[] = [];
      queue
        .run(async () => {
          ran = true;
          try {
            await runJob(created, numbers);
          } finally {
            inboxes.delete(job);
          }
        })
        .then(
          () => done(numbers.length > 0 ? { job, numbers } : { job }),
          (err: unknown) => {
            if (ran) return done({ job, error: toWire(err) });
            // A job whose group failed before it ran (no transaction could begin) still has a
            // function running on the event loop: each of its calls, then its end, gets the failure.
            created.divert((m) => {
              if (m.t === 'step') return answer(m.call, err);
              inboxes.delete(job);
              if (m.t === 'end') done({ job, error: toWire(err) });
            });
          },
        );
    }
    return inbox;
  }

  async function close(): Promise<void> {
    await queue.drain();
    mover.stop();
    deferred.apply();
    await checkpointer?.stop();
    if (checkpointer) db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    post({ t: 'closed' });
    port.close();
  }

  port.on('message', (m: ToThread) => {
    switch (m.t) {
      case 'step':
      case 'end':
      case 'abort':
        inboxFor(m.job).push(m);
        break;
      case 'call':
        answer(m.call);
        break;
      case 'index':
        mover.ask();
        break;
      case 'close':
        void close();
        break;
    }
  });
  post({ t: 'ready' });
}

try {
  start();
} catch (err) {
  post({ t: 'failed', error: toWire(err) });
  port.close();
}
