import type Database from 'better-sqlite3';
import type { DeliveryState, EventCursor, StoredEvent } from '../store.ts';
import type { PackedEvents } from './protocol.ts';

interface EventRow {
  number: number;
  change: number;
  ts: string;
  focus_type: string;
  focus_id: string;
  focus_vid: number;
  interaction: StoredEvent['interaction'];
}

const toEvent = (r: EventRow, subscription: string): StoredEvent => ({
  subscription,
  number: r.number,
  timestamp: r.ts,
  focus: { type: r.focus_type, id: r.focus_id, versionId: r.focus_vid },
  interaction: r.interaction,
});

/** Every MARK_EVERY-th number of a subscription is marked (event_marks), bounding a walk back. */
const MARK_EVERY = 64;
/** Events stored per INSERT in a batched append (4 variables each, far below SQLite's limit). */
const MEMBER_CHUNK = 250;
/** Events dropped by a size prune are read this many at a time. */
const PRUNE_CHUNK = 10_000;

/**
 * The subscription event log on SQLite (migrations 6 and 7). A change is stored once in
 * event_changes; each subscription has an integer key in subscription_keys holding its counter,
 * its head (the change of its newest event) and the oldest number still held. Its events are
 * (change, key, number, prev) rows in event_members, clustered by change, so one change's events
 * are appended together however many subscriptions it matched; prev links each event to the
 * subscription's one before. Appending bumps the counter and inserts the rows in the caller's
 * transaction, so numbers are gap-free and never reused.
 *
 * Reading a span [from, end] starts at the first mark at or above `end` (or the head) and walks
 * back through prev until `from`: at most MARK_EVERY - 1 events more than it returns.
 */
/** A subscription's log as subscription_keys describes it. */
interface Log {
  key: number;
  last_number: number;
  /** The oldest number still held (above last_number when none is). */
  first_number: number;
  /** The change of the newest event (null before the first, or when migrated without it). */
  last_change: number | null;
}
/** A log's head row, with its newest event when that is still held. */
type Head = Log & Partial<EventRow>;

export function createEventLog(db: Database.Database) {
  const bump = db.prepare<[string, string, number], { key: number; last_number: number; prev_change: number | null }>(
    `INSERT INTO subscription_keys (fv, subscription, last_number, first_number, last_change) VALUES (?, ?, 1, 1, ?)
     ON CONFLICT (fv, subscription) DO UPDATE SET last_number = last_number + 1, prev_change = last_change, last_change = excluded.last_change
     RETURNING key, last_number, prev_change`,
  );
  const change = db.prepare('INSERT INTO event_changes (ts, focus_type, focus_id, focus_vid, interaction) VALUES (?, ?, ?, ?, ?)');
  const member = db.prepare('INSERT INTO event_members (change, key, number, prev) VALUES (?, ?, ?, ?)');
  const mark = db.prepare('INSERT INTO event_marks (key, number, change) VALUES (?, ?, ?)');
  // The same bump for many subscriptions that have a log (those without one are not returned).
  const bumpMany = db.prepare<[number, string, string], { subscription: string; key: number; last_number: number; prev_change: number | null }>(
    `UPDATE subscription_keys SET last_number = last_number + 1, prev_change = last_change, last_change = ?
     WHERE fv = ? AND subscription IN (SELECT value FROM json_each(?))
     RETURNING subscription, key, last_number, prev_change`,
  );
  const memberStatements = new Map<number, Database.Statement>();
  const membersOf = (n: number): Database.Statement => {
    let stmt = memberStatements.get(n);
    if (!stmt) {
      stmt = db.prepare(`INSERT INTO event_members (change, key, number, prev) VALUES ${Array(n).fill('(?, ?, ?, ?)').join(', ')}`);
      memberStatements.set(n, stmt);
    }
    return stmt;
  };
  // A subscription's head, with its newest event (the one a live reader asks for).
  const HEAD = `k.key, k.last_number, k.first_number, k.last_change, k.last_change AS change, k.last_number AS number,
       c.ts, c.focus_type, c.focus_id, c.focus_vid, c.interaction`;
  const head = db.prepare<[string, string], Head>(
    `SELECT ${HEAD} FROM subscription_keys AS k LEFT JOIN event_changes AS c ON c.seq = k.last_change WHERE k.fv = ? AND k.subscription = ?`,
  );
  const markAtOrAbove = db.prepare<[number, number], { change: number }>('SELECT change FROM event_marks WHERE key = ? AND number >= ? ORDER BY number LIMIT 1');
  // From the event in change `start` back through prev while above `lo`, every event numbered `lo`
  // or more, in number order. Each step goes to a lower number, so a damaged link cannot loop (not
  // to an older change: a log moved over by migration 6 may have two changes of one millisecond in
  // the other order).
  const walk = db.prepare<[{ start: number; key: number; lo: number }], EventRow>(
    `WITH RECURSIVE w (number, change, prev) AS (
       SELECT number, change, prev FROM event_members WHERE change = $start AND key = $key
       UNION ALL
       SELECT m.number, m.change, m.prev FROM w JOIN event_members m ON m.change = w.prev AND m.key = $key AND m.number < w.number WHERE w.number > $lo
     )
     SELECT w.number, w.change, c.ts, c.focus_type, c.focus_id, c.focus_vid, c.interaction
     FROM w JOIN event_changes c ON c.seq = w.change WHERE w.number >= $lo ORDER BY w.number`,
  );
  // Every cursor's head in one statement, with the change of its newest event: a live reader is
  // usually one event behind, and that event is the head itself. CROSS JOIN keeps the cursors
  // outermost, so each is one seek (a plain JOIN let the planner scan every key of the version).
  const heads = db.prepare<[string, string], Head & { i: number }>(
    `SELECT j.key AS i, ${HEAD}
     FROM json_each(?) AS j CROSS JOIN subscription_keys AS k ON k.fv = ? AND k.subscription = j.value
     LEFT JOIN event_changes AS c ON c.seq = k.last_change`,
  );
  const getState = db.prepare<[string, string], { delivered_through: number; attempts: number; failing_since: string | null; last_error: string | null; delivered_at: string | null; next_attempt_at: string | null }>(
    'SELECT delivered_through, attempts, failing_since, last_error, delivered_at, next_attempt_at FROM subscription_delivery WHERE fv = ? AND subscription = ?',
  );
  const putState = db.prepare(
    `INSERT INTO subscription_delivery (fv, subscription, delivered_through, attempts, failing_since, last_error, delivered_at, next_attempt_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (fv, subscription) DO UPDATE SET delivered_through = excluded.delivered_through, attempts = excluded.attempts,
       failing_since = excluded.failing_since, last_error = excluded.last_error, delivered_at = excluded.delivered_at,
       next_attempt_at = excluded.next_attempt_at`,
  );
  // Pruning by age: changes are in commit order, so the old ones are a prefix of event_changes,
  // and their events a prefix of event_members. Each subscription's numbers grow with the change,
  // so its oldest held number becomes one above the highest of its events dropped.
  const oldest = db.prepare<[string], { seq: number | null }>('SELECT max(seq) AS seq FROM event_changes WHERE ts < ?');
  const dropping = db.prepare<[number], { key: number; top: number }>('SELECT key, max(number) AS top FROM event_members WHERE change <= ? GROUP BY key');
  const raiseFirst = db.prepare('UPDATE subscription_keys SET first_number = max(first_number, ?) WHERE key = ?');
  const dropMarks = db.prepare('DELETE FROM event_marks WHERE key = ? AND number < ?');
  const pruneMembers = db.prepare('DELETE FROM event_members WHERE change <= ?');
  const pruneChanges = db.prepare('DELETE FROM event_changes WHERE seq <= ?');
  // Numbers have no gaps, so "beyond the newest `keep`" is "numbered below last - keep + 1",
  // found from the counters, then walked like a read.
  const crowded = db.prepare<[number], Log>(
    'SELECT key, last_number, first_number, last_change FROM subscription_keys WHERE last_number - first_number + 1 > ?',
  );
  const dropMember = db.prepare('DELETE FROM event_members WHERE change = ? AND key = ?');
  const orphan = db.prepare<[{ seq: number }]>('DELETE FROM event_changes WHERE seq = $seq AND NOT EXISTS (SELECT 1 FROM event_members WHERE change = $seq)');

  /**
   * A subscription's events numbered from..to, at most `limit`, oldest first. Each walk starts at
   * the first mark at or above the window's end (or the head) and returns everything held from
   * `lo` up to it; a log with holes (moved over from older schemas) goes on past them window by
   * window until `limit` events or `to`.
   */
  function span(log: Log, from: number, to: number, limit: number): EventRow[] {
    const { key, last_number: last, last_change: lastChange } = log;
    const top = Math.min(to, last);
    const out: EventRow[] = [];
    let lo = Math.max(from, log.first_number);
    while (lo <= top && out.length < limit && lastChange !== null) {
      const hi = Math.min(top, lo + Math.max(limit - out.length, MARK_EVERY) - 1);
      const start = hi + MARK_EVERY - 1 < last ? (markAtOrAbove.get(key, hi)?.change ?? lastChange) : lastChange;
      const rows = walk.all({ start, key, lo });
      if (rows.length === 0) break;
      for (const r of rows) {
        if (r.number > top || out.length >= limit) break;
        out.push(r);
      }
      lo = rows[rows.length - 1]!.number + 1;
    }
    return out;
  }

  /** The same from a head row: when the span is the newest event alone, that row holds it. */
  function spanFrom(h: Head, from: number, to: number, limit: number): EventRow[] {
    const lo = Math.max(from, h.first_number);
    if (lo === h.last_number && to >= lo && limit > 0 && h.ts != null) return [h as EventRow];
    return span(h, from, to, limit);
  }

  const storeChange = (e: PackedEvents['rests'][number]) =>
    Number(change.run(e.timestamp, e.focus.type, e.focus.id, e.focus.versionId, e.interaction).lastInsertRowid);

  /**
   * The usual append (every event of a different subscription, as the engine makes them): per
   * change, one UPDATE numbers every subscription that has a log already and one multi-row INSERT
   * stores its events, instead of two statements per subscription; a subscription's first event,
   * and a change's only one, bump its log by itself. The numbers and rows are those of the one-at-a-time path.
   */
  function appendDistinct(fv: string, events: PackedEvents): number[] {
    const numbers = new Array<number>(events.subscriptions.length);
    const byRest = new Map<number, number[]>();
    events.of.forEach((rest, i) => {
      const list = byRest.get(rest);
      if (list) list.push(i);
      else byRest.set(rest, [i]);
    });
    for (const [rest, indexes] of byRest) {
      const seq = storeChange(events.rests[rest]!);
      // One UPDATE for many; a lone event (the common case of one match) bumps its own log, which
      // costs a third less than going through json_each.
      const got = new Map<string, { key: number; last_number: number; prev_change: number | null }>();
      if (indexes.length > 1) for (const r of bumpMany.all(seq, fv, JSON.stringify(indexes.map((i) => events.subscriptions[i]!)))) got.set(r.subscription, r);
      const rows: (number | null)[] = [];
      for (const i of indexes) {
        const subscription = events.subscriptions[i]!;
        const k = got.get(subscription) ?? bump.get(fv, subscription, seq)!;
        rows.push(seq, k.key, k.last_number, k.prev_change);
        if (k.last_number % MARK_EVERY === 0) mark.run(k.key, k.last_number, seq);
        numbers[i] = k.last_number;
      }
      for (let at = 0; at < rows.length; at += 4 * MEMBER_CHUNK) {
        const chunk = rows.slice(at, at + 4 * MEMBER_CHUNK);
        membersOf(chunk.length / 4).run(chunk);
      }
    }
    return numbers;
  }

  function events(fv: string, subscription: string, from: number, to: number, limit: number): StoredEvent[] {
    const h = head.get(fv, subscription);
    if (!h || limit <= 0) return [];
    return spanFrom(h, from, to, limit).map((r) => toEvent(r, subscription));
  }

  return {
    /** Packed events (protocol.ts): each distinct change is stored once, then each subscription's event. Returns their numbers, in order. */
    append(fv: string, events: PackedEvents): number[] {
      if (new Set(events.subscriptions).size === events.subscriptions.length) return appendDistinct(fv, events);
      const numbers: number[] = [];
      // Changes are stored as their first event comes, so each subscription's events have rising
      // changes too. A change holds one event per subscription; a second (never made by the engine)
      // gets a copy of its own.
      const seqs: number[] = [];
      const store = (rest: number) => storeChange(events.rests[rest]!);
      const seen = new Set<string>();
      events.subscriptions.forEach((subscription, i) => {
        const rest = events.of[i]!;
        let seq: number;
        if (seen.has(`${rest} ${subscription}`)) seq = store(rest);
        else {
          seen.add(`${rest} ${subscription}`);
          seq = seqs[rest] ??= store(rest);
        }
        const k = bump.get(fv, subscription, seq)!;
        member.run(seq, k.key, k.last_number, k.prev_change);
        if (k.last_number % MARK_EVERY === 0) mark.run(k.key, k.last_number, seq);
        numbers.push(k.last_number);
      });
      return numbers;
    },
    events,
    eventsAfter(fv: string, cursors: EventCursor[], limit: number): StoredEvent[] {
      const found = new Map<number, ReturnType<typeof heads.all>[number]>();
      for (const h of heads.all(JSON.stringify(cursors.map((c) => c.subscription)), fv)) found.set(h.i, h);
      const out: StoredEvent[] = [];
      cursors.forEach((c, i) => {
        const h = found.get(i);
        if (!h || out.length >= limit || h.last_number <= c.after) return;
        for (const r of spanFrom(h, c.after + 1, Number.MAX_SAFE_INTEGER, limit - out.length)) out.push(toEvent(r, c.subscription));
      });
      return out;
    },
    range(fv: string, subscription: string): { last: number; first: number | undefined } {
      const r = head.get(fv, subscription);
      if (!r) return { last: 0, first: undefined };
      return { last: r.last_number, first: r.first_number <= r.last_number ? r.first_number : undefined };
    },
    deliveryState(fv: string, subscription: string): DeliveryState {
      const r = getState.get(fv, subscription);
      if (!r) return { deliveredThrough: 0, attempts: 0 };
      return {
        deliveredThrough: r.delivered_through,
        attempts: r.attempts,
        ...(r.failing_since ? { failingSince: r.failing_since } : {}),
        ...(r.last_error ? { lastError: r.last_error } : {}),
        ...(r.delivered_at ? { deliveredAt: r.delivered_at } : {}),
        ...(r.next_attempt_at ? { nextAttemptAt: r.next_attempt_at } : {}),
      };
    },
    setDeliveryState(fv: string, subscription: string, s: DeliveryState): void {
      putState.run(fv, subscription, s.deliveredThrough, s.attempts, s.failingSince ?? null, s.lastError ?? null, s.deliveredAt ?? null, s.nextAttemptAt ?? null);
    },
    /** Events older than `before`, and those beyond the newest `keep` of their subscription. */
    prune(before: string, keep?: number): number {
      let n = 0;
      const seq = oldest.get(before)?.seq;
      if (seq != null) {
        for (const d of dropping.all(seq)) {
          raiseFirst.run(d.top + 1, d.key);
          dropMarks.run(d.key, d.top + 1);
        }
        n += pruneMembers.run(seq).changes;
        pruneChanges.run(seq);
      }
      if (keep === undefined) return n;
      for (const c of crowded.all(keep)) {
        const first = c.last_number - keep + 1;
        // In chunks, so that a long backlog is never held in memory at once.
        for (let lo = c.first_number; lo < first; ) {
          const rows = span(c, lo, first - 1, PRUNE_CHUNK);
          if (rows.length === 0) break;
          for (const r of rows) n += dropMember.run(r.change, c.key).changes;
          for (const r of rows) orphan.run({ seq: r.change });
          lo = rows[rows.length - 1]!.number + 1;
        }
        raiseFirst.run(first, c.key);
        dropMarks.run(c.key, first);
      }
      return n;
    },
  };
}
