import { closeSync, fdatasync, openSync } from 'node:fs';
import { deserialize, serialize } from 'node:v8';
import type Database from 'better-sqlite3';
import type { IndexRows } from '../../search/types.ts';
import { createIndexWriter } from './index-writer.ts';

/**
 * The search index, written after the commit that acknowledges a version (migration 8).
 *
 * A version's index rows land on one leaf page per parameter and table, ~40 pages for a full
 * Patient against ~10 for the version itself, and writing and syncing those pages was most of a
 * lone create's commit. So a write appends its rows as one entry to `index_pending` (serialized by
 * v8, which keeps a date's infinite bounds), synced with the version: a crash loses nothing. The
 * writer thread moves pending entries into the sp_* tables, in order and in batches, in a
 * transaction of its own that is not synced at commit (a crash loses only the move: the entries
 * stay, and are moved when the store opens). See `createIndexMover` for when.
 *
 * Searches on the read threads wait until every commit the event loop has heard of has its rows
 * moved, and ask for the move (index.ts, `WriterLink.indexed`): no client sees a version that a
 * search then misses. A search on the writer's own connection (a conditional create, inside its
 * transaction) moves the entries first, in that transaction.
 */
export interface DeferredIndex {
  /** Holds the rows of a version's write (undefined: the resource has none, e.g. deleted). */
  defer(fv: string, type: string, id: string, rows: IndexRows | undefined, fresh: boolean): void;
  /**
   * Moves the pending entries into the index (the oldest `limit` of them; default every one),
   * inside the open transaction or else in one of its own; how many it moved.
   */
  apply(limit?: number): number;
  /**
   * Writes a version's rows at once, in the open transaction (an index rebuild's page, whose time
   * paces it: reindex.ts), after moving the entries pending: a first version's entry inserts its
   * rows without a delete, so it must not land on rows written here.
   */
  replaceNow(fv: string, type: string, id: string, rows: IndexRows): void;
  /** Whether no entry is pending (as this connection sees it). */
  empty(): boolean;
  /** Entries deferred and not moved since (rolled-back ones too: a hint, not a count). */
  readonly deferred: number;
}

/** Entries moved per statement round (a backlog left by a crash is read a chunk at a time). */
const CHUNK = 512;

export function createDeferredIndex(db: Database.Database): DeferredIndex {
  const index = createIndexWriter(db);
  const put = db.prepare('INSERT INTO index_pending (fv, type, id, fresh, rows) VALUES (?, ?, ?, ?, ?)');
  const take = db.prepare<[number], { seq: number; fv: string; type: string; id: string; fresh: number; rows: Buffer | null }>(
    'SELECT seq, fv, type, id, fresh, rows FROM index_pending ORDER BY seq LIMIT ?',
  );
  const drop = db.prepare('DELETE FROM index_pending WHERE seq <= ?');
  const any = db.prepare('SELECT 1 FROM index_pending LIMIT 1').pluck();
  let deferred = 0;
  return {
    defer(fv, type, id, rows, fresh) {
      put.run(fv, type, id, fresh ? 1 : 0, rows === undefined ? null : serialize(rows));
      deferred++;
    },
    replaceNow(fv, type, id, rows) {
      this.apply();
      index.replace(fv, type, id, rows, false);
    },
    empty: () => any.get() === undefined,
    get deferred() {
      return deferred;
    },
    apply(limit = Infinity) {
      if (any.get() === undefined) {
        deferred = 0;
        return 0;
      }
      const moved = db.inTransaction ? move(limit) : db.transaction(move)(limit);
      deferred = limit === Infinity ? 0 : Math.max(0, deferred - moved);
      return moved;
    },
  };

  function move(limit: number): number {
    let moved = 0;
    while (moved < limit) {
      const batch = take.all(Math.min(CHUNK, limit - moved));
      if (batch.length === 0) break;
      for (const e of batch) index.replace(e.fv, e.type, e.id, e.rows === null ? undefined : (deserialize(e.rows) as IndexRows), e.fresh === 1);
      drop.run(batch[batch.length - 1]!.seq);
      moved += batch.length;
    }
    return moved;
  }
}

export interface MoverOptions {
  /** The WAL file, flushed in the background once idle moves have moved everything (none for ':memory:'). */
  wal?: string;
  /** Told when a background flush of the WAL has ended (tests watch it). */
  flushed?: () => void;
  /** Told each time more groups have their rows in: every group up to `indexed`. */
  told: (indexed: number) => void;
  /** Whether the writer has no group running or queued. */
  idle: () => boolean;
  /** Entries pending that make the writer move them all before its next group (default 8). */
  batch?: number;
  /** Entries an idle step moves (default 1). */
  step?: number;
  /** The longest the entries wait without any being moved, in ms (default 10). */
  maxDelayMs?: number;
}

export interface IndexMover {
  /** Groups committed so far, and the last of them whose index rows are all in the index. */
  readonly group: number;
  readonly indexed: number;
  /** Before each group (outside its transaction). */
  beforeGroup(): void;
  /** After each group's commit. */
  committed(): void;
  /** When the writer goes idle after a group. */
  idle(): void;
  /** A search waits for the index: move now if idle, else before the next group. */
  ask(): void;
  stop(): void;
}

/**
 * When pending entries are moved. While the writer is idle, a few at a time (`step`), each step a
 * short transaction of its own, with a turn of the event loop between steps: a step is never begun
 * once a job waits, so a job waits at most for the step under way, and a lone create's index rows
 * are moved in the gaps between creates instead of in front of one of them. When the writer is
 * never idle, all of them in one transaction before its next group, once `batch` are pending or
 * none has been moved for `maxDelayMs` (moving many at once shares the index pages among their
 * versions). When a search asks: at once if idle, else before the next group.
 */
export function createIndexMover(db: Database.Database, deferred: DeferredIndex, options: MoverOptions): IndexMover {
  const batch = options.batch ?? 8;
  const stepSize = options.step ?? 1;
  const maxDelayMs = options.maxDelayMs ?? 10;
  const sql = {
    normal: db.prepare('PRAGMA synchronous = NORMAL'),
    full: db.prepare('PRAGMA synchronous = FULL'),
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
  };
  let group = 0;
  let indexed = 0;
  let asked = false;
  let timer: NodeJS.Timeout | undefined;
  let stepping: NodeJS.Immediate | undefined;
  let stopped = false;
  let walFd: number | undefined;

  let flushing = false;
  let closeWhenFlushed = false;
  /**
   * Flushes the WAL to disk on a thread of libuv's pool, while this thread goes on: the next
   * commit's sync then has only its own pages to write. Idle moves commit without syncing, and
   * without this their frames (tens of pages per version) would be synced by the next client
   * write, in front of its acknowledgement: on this machine's disk, a lone create's COMMIT took
   * 0.8 ms (p50) with them and 0.4 ms without. A failed flush costs nothing: the next commit syncs.
   */
  const flushWal = () => {
    if (!options.wal || flushing || stopped) return;
    try {
      walFd ??= openSync(options.wal, 'r');
    } catch {
      return;
    }
    flushing = true;
    fdatasync(walFd, (err) => {
      flushing = false;
      // A descriptor that failed is opened afresh for the next flush.
      if (closeWhenFlushed || err) closeWal();
      options.flushed?.();
    });
  };
  const closeWal = () => {
    if (walFd !== undefined) closeSync(walFd);
    walFd = undefined;
  };

  /** Asks for a whole move in `ms` (replacing any ask already timed). */
  const askIn = (ms: number) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      ask();
    }, ms);
  };

  let retryMs = 0;
  /**
   * Moves `limit` entries (default: all) in a transaction of its own that is not synced at commit;
   * one that leaves none pending while the writer is idle (every move but the one before a group)
   * then has the WAL flushed in the background. A move that fails (a full disk) is tried again,
   * backing off to once a second; the entries stay pending meanwhile and searches wait for them
   * (ending in a 503 at their deadline, as writes do). Whether it moved without failing.
   */
  function move(limit = Infinity): boolean {
    const wasAsked = asked;
    if (limit === Infinity) asked = false;
    try {
      moveNow(limit);
      retryMs = 0;
      return true;
    } catch (err) {
      asked = wasAsked;
      retryMs = Math.min(1000, Math.max(50, retryMs * 2));
      askIn(retryMs);
      process.emitWarning(`moving search index rows failed (tried again in ${retryMs} ms): ${(err as Error).message}`);
      return false;
    }
  }

  function moveNow(limit: number): void {
    // Nothing pending (the writes counted were rolled back): apply() only clears the count.
    if (deferred.empty()) deferred.apply();
    else {
      sql.normal.run();
      try {
        sql.begin.run();
        try {
          deferred.apply(limit);
          sql.commit.run();
        } catch (err) {
          if (db.inTransaction) db.exec('ROLLBACK');
          throw err;
        }
      } finally {
        sql.full.run();
      }
      if (!deferred.empty()) {
        askIn(maxDelayMs);
        return;
      }
      if (options.idle()) flushWal();
    }
    clearTimeout(timer);
    timer = undefined;
    if (indexed < group) {
      indexed = group;
      options.told(indexed);
    }
  }

  /** One idle step, then the next on a later turn, until nothing is pending or a job waits. */
  function step(): void {
    stepping = undefined;
    if (!options.idle()) return;
    if (!move(stepSize)) return;
    if (!deferred.empty()) stepping = setImmediate(step);
  }

  function ask(): void {
    asked = true;
    if (!stopped && options.idle()) move();
  }
  return {
    get group() {
      return group;
    },
    get indexed() {
      return indexed;
    },
    beforeGroup() {
      if (asked || deferred.deferred >= batch) move();
    },
    committed() {
      group++;
      if (deferred.deferred === 0 && deferred.empty()) indexed = group;
      else if (!timer) askIn(maxDelayMs);
    },
    idle() {
      if (stopped) return;
      if (asked) move();
      else if (!stepping && deferred.deferred > 0) step();
    },
    ask,
    stop() {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
      clearImmediate(stepping);
      stepping = undefined;
      // A flush under way closes the file when it ends (its descriptor must not be reused meanwhile).
      if (flushing) closeWhenFlushed = true;
      else closeWal();
    },
  };
}
