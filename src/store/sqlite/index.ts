import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { FhirVersion } from '../../fhir/types.ts';
import type {
  BindingToken,
  DeliveryState,
  HistoryPage,
  NewEvent,
  HistoryQuery,
  NewVersion,
  Store,
  StoreReader,
  StoredVersion,
  Transaction,
  WriteMethod,
} from '../store.ts';
import { startCheckpointer } from './checkpointer.ts';
import { createEventLog } from './events.ts';
import { createTokenStore } from './tokens.ts';
import { createIndexWriter } from './index-writer.ts';
import { MIGRATIONS } from './migrations.ts';
import { searchSqlite } from './search.ts';
import { createWriteQueue } from './writer.ts';

export interface SqliteOptions {
  /** A file path, or ':memory:'. */
  path: string;
}

interface Row {
  type: string;
  id: string;
  vid: number;
  last_updated: string;
  method: string;
  body: string | null;
}

const toVersion = (r: Row): StoredVersion => ({
  type: r.type,
  id: r.id,
  versionId: r.vid,
  lastUpdated: r.last_updated,
  method: r.method as WriteMethod,
  deleted: r.body === null,
  ...(r.body === null ? {} : { json: r.body }),
});

/**
 * The embedded default store: better-sqlite3 in WAL mode with synchronous=FULL, so a commit is on
 * disk before it returns. All writes go through one group-commit queue (writer.ts).
 */
export function openSqliteStore(options: SqliteOptions): Store {
  if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
  const db = new Database(options.path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  // A larger page cache keeps the index B-trees in memory while writing (64 MiB).
  db.pragma('cache_size = -65536');
  // File databases checkpoint on their own thread (checkpointer.ts), not inside commits.
  const checkpointer = options.path === ':memory:' ? undefined : startCheckpointer(options.path);
  if (checkpointer) db.pragma('wal_autocheckpoint = 0');
  db.pragma('busy_timeout = 5000');
  migrate(db);

  // Reads outside a transaction use their own connection: in WAL mode it sees only committed data,
  // never the open group of the writer. (':memory:' databases cannot be shared, so there one
  // connection serves both.)
  const readDb = options.path === ':memory:' ? db : new Database(options.path, { readonly: true });
  readDb.pragma('busy_timeout = 5000');
  const reader = createReader(readDb);
  const txReader = readDb === db ? reader : createReader(db);
  const insert = db.prepare(
    'INSERT INTO resource_versions (fv, type, id, vid, last_updated, method, body) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const upsertCurrent = db.prepare(
    `INSERT INTO resources (fv, type, id, vid, seq, last_updated, deleted) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (fv, type, id) DO UPDATE SET vid = excluded.vid, seq = excluded.seq,
       last_updated = excluded.last_updated, deleted = excluded.deleted`,
  );
  const index = createIndexWriter(db);
  const queue = createWriteQueue(db);
  const log = createEventLog(db);
  const tokens = createTokenStore(db);
  const eventReads = (l: ReturnType<typeof createEventLog>) => ({
    async events(fv: FhirVersion, sub: string, from: number, to: number, limit: number) {
      return l.events(fv, sub, from, to, limit);
    },
    async eventRange(fv: FhirVersion, sub: string) {
      return l.range(fv, sub);
    },
    async deliveryState(fv: FhirVersion, sub: string) {
      return l.deliveryState(fv, sub);
    },
    async bindingToken(hash: string) {
      return tokens.get(hash);
    },
  });
  const readLog = readDb === db ? log : createEventLog(readDb);

  const txBase = {
    ...txReader,
    ...eventReads(log),
    async write(fv: FhirVersion, v: NewVersion) {
      const { lastInsertRowid } = insert.run(fv, v.type, v.id, v.versionId, v.lastUpdated, v.method, v.json ?? null);
      upsertCurrent.run(fv, v.type, v.id, v.versionId, lastInsertRowid, v.lastUpdated, v.json === undefined ? 1 : 0);
      index.replace(fv, v.type, v.id, v.json === undefined ? undefined : v.index, v.versionId === 1);
    },
    async appendEvents(fv: FhirVersion, events: NewEvent[]) {
      return log.append(fv, events);
    },
    async setDeliveryState(fv: FhirVersion, sub: string, state: DeliveryState) {
      log.setDeliveryState(fv, sub, state);
    },
    async putBindingToken(token: BindingToken) {
      tokens.put(token);
    },
    async revokeBindingTokens(fv: FhirVersion, sub: string) {
      return tokens.revokeFor(fv, sub);
    },
  };

  return {
    kind: 'sqlite',
    ...reader,
    ...eventReads(readLog),
    transaction: (fn) => queue.run((onCommit) => fn({ ...txBase, onCommit } as Transaction)),
    async pruneEvents(before: string) {
      return queue.run(async () => {
        tokens.prune(new Date().toISOString());
        return log.prune(before);
      });
    },
    async history(fv, query) {
      return history(readDb, fv, query);
    },
    async close() {
      await queue.drain();
      await checkpointer?.stop();
      if (readDb !== db) readDb.close();
      if (checkpointer) db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
    },
  };
}

function createReader(db: Database.Database): Pick<StoreReader, 'read' | 'vread' | 'search'> {
  const read = db.prepare<[string, string, string], Row>(
    'SELECT type, id, vid, last_updated, method, body FROM resource_versions WHERE fv = ? AND type = ? AND id = ? ORDER BY vid DESC LIMIT 1',
  );
  const vread = db.prepare<[string, string, string, number], Row>(
    'SELECT type, id, vid, last_updated, method, body FROM resource_versions WHERE fv = ? AND type = ? AND id = ? AND vid = ?',
  );
  return {
    async read(fv, type, id) {
      const row = read.get(fv, type, id);
      return row && toVersion(row);
    },
    async vread(fv, type, id, versionId) {
      const row = vread.get(fv, type, id, versionId);
      return row && toVersion(row);
    },
    async search(fv, request, cursor) {
      return searchSqlite(db, fv, request, cursor);
    },
  };
}

function migrate(db: Database.Database): void {
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
    .prepare<unknown[], Row & { seq: number }>(
      `SELECT seq, type, id, vid, last_updated, method, body FROM resource_versions WHERE ${pageConds} ORDER BY seq DESC LIMIT ?`,
    )
    .all(...pageArgs, q.count + 1);
  const more = rows.length > q.count;
  const page = more ? rows.slice(0, q.count) : rows;
  return {
    versions: page.map(toVersion),
    total,
    ...(more ? { next: page[page.length - 1]!.seq } : {}),
  };
}
