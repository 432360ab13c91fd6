import type Database from 'better-sqlite3';
import type { Include, SearchRequest } from '../../search/types.ts';
import { countQuery, includeQuery, pageQuery, revincludeQuery } from '../search-page.ts';
import type { Dialect } from '../search-sql.ts';
import type { SearchCursor, SearchPage, StoredVersion, WriteMethod } from '../store.ts';

const dialect: Dialect = { contains: (h, n) => `instr(${h}, ${n}) > 0` };

/** How far `_include:iterate` / `_revinclude:iterate` follow references, and how much they add. */
const MAX_ITERATIONS = 4;
const MAX_INCLUDED = 1000;
const CHUNK = 500;

interface PageRow {
  type: string;
  id: string;
  vid: number;
  last_updated: string;
  method: string;
  body: string;
  [key: `k${number}`]: string | number;
}

const toVersion = (r: { type: string; id: string; vid: number; last_updated: string; method: string; body: string }): StoredVersion => ({
  type: r.type,
  id: r.id,
  versionId: r.vid,
  lastUpdated: r.last_updated,
  method: r.method as WriteMethod,
  deleted: false,
  json: r.body,
});

/**
 * FHIR search on SQLite: one page of matches, the total, and the included resources. `now` (epoch
 * ms, the store's clock) is the instant `ap` on dates is measured from.
 */
export function searchSqlite(db: Database.Database, fv: string, req: SearchRequest, now: number, cursor?: SearchCursor): SearchPage {
  const total = req.total === 'none' ? undefined : count(db, fv, req, now);
  if (req.summary === 'count') return { matches: [], included: [], ...(total !== undefined ? { total } : {}) };
  const q = pageQuery(fv, req, dialect, now, cursor);
  const rows = db.prepare<unknown[], PageRow>(q.sql).all(...q.args, req.count + 1);
  const more = rows.length > req.count;
  const page = more ? rows.slice(0, req.count) : rows;
  const backwards = cursor?.direction === 'previous';
  if (backwards) page.reverse();
  const keysOf = (row: PageRow) => Array.from({ length: q.keyCount }, (_, i) => row[`k${i}`]);
  const first = page[0];
  const last = page[page.length - 1];
  const next = last && (backwards || more) ? { direction: 'next' as const, keys: keysOf(last) } : undefined;
  const previous = first && (backwards ? more : cursor !== undefined) ? { direction: 'previous' as const, keys: keysOf(first) } : undefined;
  const matches = page.map(toVersion);
  return {
    matches,
    included: included(db, fv, req, matches),
    ...(total !== undefined ? { total } : {}),
    ...(next ? { next } : {}),
    ...(previous ? { previous } : {}),
  };
}

function count(db: Database.Database, fv: string, req: SearchRequest, now: number): number {
  const q = countQuery(fv, req, dialect, now);
  return db.prepare<unknown[], { n: number }>(q.sql).get(...q.args)!.n;
}

/** _include and _revinclude, following :iterate ones over what was added, within bounds. */
function included(db: Database.Database, fv: string, req: SearchRequest, matches: StoredVersion[]): StoredVersion[] {
  if (req.include.length === 0 && req.revinclude.length === 0) return [];
  const seen = new Set(matches.map((m) => `${m.type}/${m.id}`));
  const out: StoredVersion[] = [];
  let frontier = matches;
  for (let round = 0; round < MAX_ITERATIONS && frontier.length > 0 && out.length < MAX_INCLUDED; round++) {
    const refs: { type: string; id: string }[] = [];
    for (const inc of req.include) if (round === 0 || inc.iterate) refs.push(...follow(db, fv, inc, frontier, false));
    for (const inc of req.revinclude) if (round === 0 || inc.iterate) refs.push(...follow(db, fv, inc, frontier, true));
    const fresh = refs.filter((r) => !seen.has(`${r.type}/${r.id}`) && seen.add(`${r.type}/${r.id}`));
    frontier = readCurrent(db, fv, fresh.slice(0, MAX_INCLUDED - out.length));
    out.push(...frontier);
  }
  return out;
}

/** References out of (include) or into (revinclude) `from`. A sourceType of `*` means any type. */
function follow(db: Database.Database, fv: string, inc: Include, from: StoredVersion[], reverse: boolean): { type: string; id: string }[] {
  const out: { type: string; id: string }[] = [];
  const run = (q: { sql: string; args: unknown[] }) => out.push(...db.prepare<unknown[], { type: string; id: string }>(q.sql).all(...q.args));
  for (const [type, ids] of groupByType(from)) {
    for (let i = 0; i < ids.length; i += CHUNK) {
      const chunk = ids.slice(i, i + CHUNK);
      if (!reverse) {
        if (inc.sourceType === '*' || inc.sourceType === type) run(includeQuery(fv, type, chunk, inc.param?.code, inc.targetType));
      } else if (!inc.targetType || inc.targetType === type) {
        run(revincludeQuery(fv, inc.sourceType === '*' ? undefined : inc.sourceType, type, chunk, inc.param?.code));
      }
    }
  }
  return out;
}

function groupByType(versions: StoredVersion[]): Map<string, string[]> {
  const byType = new Map<string, string[]>();
  for (const v of versions) {
    const ids = byType.get(v.type);
    if (ids) ids.push(v.id);
    else byType.set(v.type, [v.id]);
  }
  return byType;
}

function readCurrent(db: Database.Database, fv: string, refs: { type: string; id: string }[]): StoredVersion[] {
  const stmt = db.prepare<unknown[], { type: string; id: string; vid: number; last_updated: string; method: string; body: string }>(
    `SELECT v.type, v.id, v.vid, v.last_updated, v.method, v.body FROM resources r
     JOIN resource_versions v ON v.fv = r.fv AND v.type = r.type AND v.id = r.id AND v.vid = r.vid
     WHERE r.fv = ? AND r.type = ? AND r.id = ? AND r.deleted = 0`,
  );
  const out: StoredVersion[] = [];
  for (const ref of refs) {
    const row = stmt.get(fv, ref.type, ref.id);
    if (row) out.push(toVersion(row));
  }
  return out;
}
