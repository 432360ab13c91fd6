import type Database from 'better-sqlite3';
import type { FhirVersion } from '../../fhir/types.ts';
import type {
  BindingToken,
  DeliveryState,
  EventCursor,
  HistoryPage,
  HistoryQuery,
  IndexReplacement,
  IndexState,
  NewEvent,
  NewVersion,
  ResourceKey,
  SearchCursor,
  SearchPage,
  StoredEvent,
  StoredVersion,
  SubscriptionOwner,
} from '../store.ts';
import type { SearchRequest } from '../../search/types.ts';
import { createEventLog } from './events.ts';
import { type PackedEvents, packEvents } from './protocol.ts';
import type { DeferredIndex } from './deferred-index.ts';
import { MIGRATIONS } from './migrations.ts';
import { searchSqlite } from './search.ts';
import { createOwnerStore, createTokenStore } from './tokens.ts';
import { HISTORY_COLUMNS, type VersionRow, toHistoryVersion, toVersion } from '../version-row.ts';

/**
 * What one SQLite connection can do, as plain synchronous functions: the reads (on the main
 * thread's read-only connection and on the writer's) and the writes (on the writer thread only).
 */
export interface Reads {
  read(fv: FhirVersion, type: string, id: string): StoredVersion | undefined;
  vread(fv: FhirVersion, type: string, id: string, versionId: number): StoredVersion | undefined;
  /** `now`: the store's clock (epoch ms), passed as data since the writer thread may run it. */
  search(fv: FhirVersion, request: SearchRequest, cursor: SearchCursor | undefined, now: number): SearchPage;
  events(fv: FhirVersion, subscription: string, from: number, to: number, limit: number): StoredEvent[];
  eventRange(fv: FhirVersion, subscription: string): { last: number; first: number | undefined };
  eventsAfter(fv: FhirVersion, cursors: EventCursor[], limit: number): StoredEvent[];
  deliveryState(fv: FhirVersion, subscription: string): DeliveryState;
  bindingToken(hash: string): BindingToken | undefined;
  subscriptionOwners(fv: FhirVersion, subscription?: string): SubscriptionOwner[];
  history(fv: FhirVersion, query: HistoryQuery): HistoryPage;
  indexState(fv: FhirVersion): IndexState;
  currentVersions(fv: FhirVersion, after: ResourceKey | undefined, limit: number): StoredVersion[];
}

export interface Writes {
  write(fv: FhirVersion, version: NewVersion): void;
  /** Returns the events' numbers, in order. */
  appendEvents(fv: FhirVersion, events: NewEvent[]): number[];
  /** appendEvents as the event loop ships it to the writer thread (protocol.ts). */
  appendPacked(fv: FhirVersion, events: PackedEvents): number[];
  setDeliveryState(fv: FhirVersion, subscription: string, state: DeliveryState): void;
  putBindingToken(token: BindingToken): void;
  revokeBindingToken(hash: string): void;
  revokeBindingTokens(fv: FhirVersion, subscription: string): string[];
  putSubscriptionOwner(fv: FhirVersion, owner: SubscriptionOwner): void;
  prune(before: string, now: string, keepPerSubscription?: number): number;
  replaceIndex(fv: FhirVersion, entries: IndexReplacement[]): void;
  setIndexState(fv: FhirVersion, state: IndexState): void;
}



export function createReads(db: Database.Database): Reads {
  // Every read by id runs this: it returns the row as an array (better-sqlite3 builds an object
  // property by property, slower than the literal below) without the type and id asked for.
  const read = db
    .prepare<[string, string, string], [number, string, string, string | null]>(
      'SELECT vid, last_updated, method, body FROM resource_versions WHERE fv = ? AND type = ? AND id = ? ORDER BY vid DESC LIMIT 1',
    )
    .raw(true);
  const vread = db.prepare<[string, string, string, number], VersionRow>(
    'SELECT type, id, vid, last_updated, method, body FROM resource_versions WHERE fv = ? AND type = ? AND id = ? AND vid = ?',
  );
  const state = db.prepare<[string], string>('SELECT state FROM index_state WHERE fv = ?').pluck();
  // The current version's row is found through `resources` (its seq is the version's rowid).
  const current = `SELECT r.type, r.id, v.vid, v.last_updated, v.method, v.body FROM resources r JOIN resource_versions v ON v.seq = r.seq
    WHERE r.fv = ? AND r.deleted = 0`;
  const first = db.prepare<[string, number], VersionRow>(`${current} ORDER BY r.type, r.id LIMIT ?`);
  const after = db.prepare<[string, string, string, number], VersionRow>(`${current} AND (r.type, r.id) > (?, ?) ORDER BY r.type, r.id LIMIT ?`);
  const log = createEventLog(db);
  const tokens = createTokenStore(db);
  const owners = createOwnerStore(db);
  return {
    read: (fv, type, id) => {
      const row = read.get(fv, type, id);
      return row && toVersion({ type, id, vid: row[0], last_updated: row[1], method: row[2], body: row[3] });
    },
    vread: (fv, type, id, versionId) => {
      const row = vread.get(fv, type, id, versionId);
      return row && toVersion(row);
    },
    search: (fv, request, cursor, now) => searchSqlite(db, fv, request, now, cursor),
    events: (fv, sub, from, to, limit) => log.events(fv, sub, from, to, limit),
    eventRange: (fv, sub) => log.range(fv, sub),
    eventsAfter: (fv, cursors, limit) => log.eventsAfter(fv, cursors, limit),
    deliveryState: (fv, sub) => log.deliveryState(fv, sub),
    bindingToken: (hash) => tokens.get(hash),
    subscriptionOwners: (fv, subscription) => owners.all(fv, subscription),
    history: (fv, query) => history(db, fv, query),
    indexState: (fv) => {
      const text = state.get(fv);
      return text === undefined ? {} : (JSON.parse(text) as IndexState);
    },
    currentVersions: (fv, from, limit) => (from ? after.all(fv, from.type, from.id, limit) : first.all(fv, limit)).map(toVersion),
  };
}

/** `deferred`: where a write's index rows go, to be moved into the index after the commit (deferred-index.ts). */
export function createWrites(db: Database.Database, deferred: DeferredIndex): Writes {
  const insert = db.prepare(
    'INSERT INTO resource_versions (fv, type, id, vid, last_updated, method, body) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const upsertCurrent = db.prepare(
    `INSERT INTO resources (fv, type, id, vid, seq, last_updated, deleted) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (fv, type, id) DO UPDATE SET vid = excluded.vid, seq = excluded.seq,
       last_updated = excluded.last_updated, deleted = excluded.deleted`,
  );
  const live = db.prepare<[string, string, string], { vid: number; deleted: number }>('SELECT vid, deleted FROM resources WHERE fv = ? AND type = ? AND id = ?');
  const putState = db.prepare('INSERT INTO index_state (fv, state) VALUES (?, ?) ON CONFLICT (fv) DO UPDATE SET state = excluded.state');
  const log = createEventLog(db);
  const tokens = createTokenStore(db);
  const owners = createOwnerStore(db);
  return {
    write(fv, v) {
      const { lastInsertRowid } = insert.run(fv, v.type, v.id, v.versionId, v.lastUpdated, v.method, v.json ?? null);
      upsertCurrent.run(fv, v.type, v.id, v.versionId, lastInsertRowid, v.lastUpdated, v.json === undefined ? 1 : 0);
      deferred.defer(fv, v.type, v.id, v.json === undefined ? undefined : v.index, v.versionId === 1);
    },
    appendEvents: (fv, events) => log.append(fv, packEvents(events)),
    appendPacked: (fv, events) => log.append(fv, events),
    setDeliveryState: (fv, sub, state) => log.setDeliveryState(fv, sub, state),
    putBindingToken: (token) => tokens.put(token),
    revokeBindingToken: (hash) => tokens.revoke(hash),
    revokeBindingTokens: (fv, sub) => tokens.revokeFor(fv, sub),
    putSubscriptionOwner: (fv, owner) => owners.put(fv, owner),
    prune(before, now, keep) {
      tokens.prune(now);
      return log.prune(before, keep);
    },
    replaceIndex(fv, entries) {
      for (const { type, id, versionId, index } of entries) {
        const row = live.get(fv, type, id);
        if (row?.vid === versionId && row.deleted === 0) deferred.replaceNow(fv, type, id, index);
      }
    },
    setIndexState: (fv, s) => void putState.run(fv, JSON.stringify(s)),
  };
}

export function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
  const row = db.prepare<[], { v: number | null }>('SELECT max(version) AS v FROM schema_migrations').get();
  const current = row?.v ?? 0;
  if (current > MIGRATIONS.length) {
    throw new Error(`database schema version ${current} is newer than this Herald (${MIGRATIONS.length})`);
  }
  const apply = db.transaction(() => {
    for (let v = current + 1; v <= MIGRATIONS.length; v++) {
      db.exec(MIGRATIONS[v - 1]!);
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(v, new Date().toISOString());
    }
  });
  apply.immediate();
}

function history(db: Database.Database, fv: string, q: HistoryQuery): HistoryPage {
  const conds = ['fv = ?'];
  const args: unknown[] = [fv];
  if (q.type !== undefined) {
    conds.push('type = ?');
    args.push(q.type);
  }
  if (q.id !== undefined) {
    conds.push('id = ?');
    args.push(q.id);
  }
  if (q.since !== undefined) {
    conds.push('last_updated >= ?');
    args.push(q.since);
  }
  const where = conds.join(' AND ');
  const total = db.prepare<unknown[], { n: number }>(`SELECT count(*) AS n FROM resource_versions WHERE ${where}`).get(...args)!.n;
  const pageConds = q.before === undefined ? where : `${where} AND seq < ?`;
  const pageArgs = q.before === undefined ? args : [...args, q.before];
  const rows = db
    .prepare<unknown[], VersionRow & { seq: number; after_deletion: unknown }>(`SELECT ${HISTORY_COLUMNS} FROM resource_versions v WHERE ${pageConds} ORDER BY seq DESC LIMIT ?`)
    .all(...pageArgs, q.count + 1);
  const more = rows.length > q.count;
  const page = more ? rows.slice(0, q.count) : rows;
  return {
    versions: page.map(toHistoryVersion),
    total,
    ...(more ? { next: page[page.length - 1]!.seq } : {}),
  };
}
