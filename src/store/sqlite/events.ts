import type Database from 'better-sqlite3';
import type { DeliveryState, EventCursor, StoredEvent } from '../store.ts';
import type { PackedEvents } from './protocol.ts';

interface EventRow {
  subscription: string;
  number: number;
  ts: string;
  focus_type: string;
  focus_id: string;
  focus_vid: number;
  interaction: StoredEvent['interaction'];
}

const toEvent = (r: EventRow): StoredEvent => ({
  subscription: r.subscription,
  number: r.number,
  timestamp: r.ts,
  focus: { type: r.focus_type, id: r.focus_id, versionId: r.focus_vid },
  interaction: r.interaction,
});

/**
 * The subscription event log on SQLite (migration 6). A change is stored once in event_changes;
 * each subscription has an integer key in subscription_keys that also holds its counter, and each
 * event is a (key, number, change) row. Appending bumps the counter and inserts the rows in the
 * caller's transaction, so numbers are gap-free and never reused.
 */
export function createEventLog(db: Database.Database) {
  const bump = db.prepare<[string, string], { key: number; last_number: number }>(
    `INSERT INTO subscription_keys (fv, subscription, last_number) VALUES (?, ?, 1)
     ON CONFLICT (fv, subscription) DO UPDATE SET last_number = last_number + 1 RETURNING key, last_number`,
  );
  const change = db.prepare('INSERT INTO event_changes (ts, focus_type, focus_id, focus_vid, interaction) VALUES (?, ?, ?, ?, ?)');
  const number = db.prepare('INSERT INTO event_numbers (key, number, change) VALUES (?, ?, ?)');
  const COLUMNS = 'k.subscription, n.number, c.ts, c.focus_type, c.focus_id, c.focus_vid, c.interaction';
  const select = db.prepare<[string, string, number, number, number], EventRow>(
    `SELECT ${COLUMNS} FROM subscription_keys k
     JOIN event_numbers n ON n.key = k.key JOIN event_changes c ON c.seq = n.change
     WHERE k.fv = ? AND k.subscription = ? AND n.number >= ? AND n.number <= ? ORDER BY n.number LIMIT ?`,
  );
  // Cursors as a JSON array of [subscription, after]: one statement seeks each subscription's log.
  const after = db.prepare<[string, string, number], EventRow>(
    `SELECT ${COLUMNS}
     FROM json_each(?) AS j CROSS JOIN subscription_keys AS k CROSS JOIN event_numbers AS n JOIN event_changes AS c ON c.seq = n.change
     WHERE k.fv = ? AND k.subscription = json_extract(j.value, '$[0]') AND n.key = k.key AND n.number > json_extract(j.value, '$[1]')
     ORDER BY j.key, n.number LIMIT ?`,
  );
  const range = db.prepare<[string, string], { last_number: number; first: number | null }>(
    `SELECT k.last_number, (SELECT min(n.number) FROM event_numbers n WHERE n.key = k.key) AS first
     FROM subscription_keys k WHERE k.fv = ? AND k.subscription = ?`,
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
  // Pruning by age: changes are in commit order, so the old ones are a prefix of event_changes;
  // their events go with them (found through event_numbers_change).
  const oldest = db.prepare<[string], { seq: number | null }>('SELECT max(seq) AS seq FROM event_changes WHERE ts < ?');
  const pruneNumbers = db.prepare('DELETE FROM event_numbers WHERE change <= ?');
  const pruneChanges = db.prepare('DELETE FROM event_changes WHERE seq <= ?');
  // Numbers have no gaps, so "beyond the newest `keep`" is "numbered at most last - keep": a range
  // of the primary key per subscription that has more, found from the counters, not a table scan.
  const crowded = db.prepare<[number], { key: number; last_number: number }>('SELECT key, last_number FROM subscription_keys WHERE last_number > ?');
  const trim = db.prepare('DELETE FROM event_numbers WHERE key = ? AND number <= ?');
  // A change no event refers to any more: everything below the oldest change still referred to.
  const orphans = db.prepare('DELETE FROM event_changes WHERE seq < coalesce((SELECT min(change) FROM event_numbers), (SELECT max(seq) + 1 FROM event_changes))');

  return {
    /** Packed events (protocol.ts): each distinct change is stored once, then each subscription's number. */
    append(fv: string, events: PackedEvents): void {
      const seqs = events.rests.map((e) => Number(change.run(e.timestamp, e.focus.type, e.focus.id, e.focus.versionId, e.interaction).lastInsertRowid));
      events.subscriptions.forEach((subscription, i) => {
        const k = bump.get(fv, subscription)!;
        number.run(k.key, k.last_number, seqs[events.of[i]!]);
      });
    },
    events(fv: string, subscription: string, from: number, to: number, limit: number): StoredEvent[] {
      return select.all(fv, subscription, from, to, limit).map(toEvent);
    },
    eventsAfter(fv: string, cursors: EventCursor[], limit: number): StoredEvent[] {
      return after.all(JSON.stringify(cursors.map((c) => [c.subscription, c.after])), fv, limit).map(toEvent);
    },
    range(fv: string, subscription: string): { last: number; first: number | undefined } {
      const r = range.get(fv, subscription);
      return { last: r?.last_number ?? 0, first: r?.first ?? undefined };
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
        n += pruneNumbers.run(seq).changes;
        pruneChanges.run(seq);
      }
      if (keep === undefined) return n;
      for (const c of crowded.all(keep)) n += trim.run(c.key, c.last_number - keep).changes;
      if (n > 0) orphans.run();
      return n;
    },
  };
}

