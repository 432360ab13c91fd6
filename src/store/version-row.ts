import type { StoredVersion, WriteMethod } from './store.ts';

/** A `resources` row as every store selects it (`body` is null for a deletion). */
export interface VersionRow {
  type: string;
  id: string;
  vid: number;
  last_updated: string;
  method: string;
  body: string | null;
}

/** The row as the Store contract returns it; shared by the SQLite and PostgreSQL stores and search. */
export const toVersion = (r: VersionRow): StoredVersion => ({
  type: r.type,
  id: r.id,
  versionId: r.vid,
  lastUpdated: r.last_updated,
  method: r.method as WriteMethod,
  deleted: r.body === null,
  ...(r.body === null ? {} : { json: r.body }),
});
