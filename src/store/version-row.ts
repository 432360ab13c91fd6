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

/**
 * History's select list: a version's columns, and whether it is a PUT that made the resource
 * again after a deletion (its history entry answers 201, as the PUT did). `v` is the versions table.
 */
export const HISTORY_COLUMNS =
  "v.seq, v.type, v.id, v.vid, v.last_updated, v.method, v.body, CASE WHEN v.method = 'PUT' AND v.vid > 1 THEN " +
  '(SELECT p.body IS NULL FROM resource_versions p WHERE p.fv = v.fv AND p.type = v.type AND p.id = v.id AND p.vid = v.vid - 1) END AS after_deletion';

/** A history row as the Store contract returns it. */
export const toHistoryVersion = (r: VersionRow & { after_deletion: unknown }): StoredVersion => ({
  ...toVersion(r),
  ...(r.after_deletion === true || r.after_deletion === 1 ? { recreated: true } : {}),
});

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
