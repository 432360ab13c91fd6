import type Database from 'better-sqlite3';
import type { DeliveryState, EventCursor, NewEvent, StoredEvent } from '../store.ts';

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
 * The subscription event log on SQLite. Appending bumps the subscription's counter and inserts
 * the event in the caller's transaction, so numbers are gap-free and never reused.
 */
export function createEventLog(db: Database.Database) {
  const bump = db.prepare<[string, string], { last_number: number }>(
    `INSERT INTO subscription_counters (fv, subscription, last_number) VALUES (?, ?, 1)
     ON CONFLICT (fv, subscription) DO UPDATE SET last_number = last_number + 1 RETURNING last_number`,
  );
  const insert = db.prepare(
    'INSERT INTO subscription_events (fv, subscription, number, ts, focus_type, focus_id, focus_vid, interaction) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const select = db.prepare<[string, string, number, number, number], EventRow>(
    `SELECT subscription, number, ts, focus_type, focus_id, focus_vid, interaction FROM subscription_events
     WHERE fv = ? AND subscription = ? AND number >= ? AND number <= ? ORDER BY number LIMIT ?`,
  );
  // Cursors as a JSON array of [subscription, after]: one statement seeks each subscription's log.
  const after = db.prepare<[string, string, number], EventRow>(
    `SELECT e.subscription, e.number, e.ts, e.focus_type, e.focus_id, e.focus_vid, e.interaction
     FROM json_each(?) AS c CROSS JOIN subscription_events AS e
     WHERE e.fv = ? AND e.subscription = json_extract(c.value, '$[0]') AND e.number > json_extract(c.value, '$[1]')
     ORDER BY c.key, e.number LIMIT ?`,
  );
  const last = db.prepare<[string, string], { last_number: number }>('SELECT last_number FROM subscription_counters WHERE fv = ? AND subscription = ?');
  const first = db.prepare<[string, string], { n: number | null }>('SELECT min(number) AS n FROM subscription_events WHERE fv = ? AND subscription = ?');
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
  const prune = db.prepare('DELETE FROM subscription_events WHERE ts < ?');
  // Numbers have no gaps, so "beyond the newest `keep`" is "numbered at most last - keep": a range
  // of the primary key per subscription that has more, found from the counters, not a table scan.
  const crowded = db.prepare<[number], { fv: string; subscription: string; last_number: number }>(
    'SELECT fv, subscription, last_number FROM subscription_counters WHERE last_number > ?',
  );
  const trim = db.prepare('DELETE FROM subscription_events WHERE fv = ? AND subscription = ? AND number <= ?');

  return {
    append(fv: string, events: NewEvent[]): void {
      for (const e of events) {
        const number = bump.get(fv, e.subscription)!.last_number;
        insert.run(fv, e.subscription, number, e.timestamp, e.focus.type, e.focus.id, e.focus.versionId, e.interaction);
      }
    },
    events(fv: string, subscription: string, from: number, to: number, limit: number): StoredEvent[] {
      return select.all(fv, subscription, from, to, limit).map(toEvent);
    },
    eventsAfter(fv: string, cursors: EventCursor[], limit: number): StoredEvent[] {
      return after.all(JSON.stringify(cursors.map((c) => [c.subscription, c.after])), fv, limit).map(toEvent);
    },
    range(fv: string, subscription: string): { last: number; first: number | undefined } {
      const n = first.get(fv, subscription)?.n;
      return { last: last.get(fv, subscription)?.last_number ?? 0, first: n ?? undefined };
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
      let n = prune.run(before).changes;
      if (keep === undefined) return n;
      for (const c of crowded.all(keep)) n += trim.run(c.fv, c.subscription, c.last_number - keep).changes;
      return n;
    },
  };
}
