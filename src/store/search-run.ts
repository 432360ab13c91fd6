import type { Include, SearchRequest } from '../search/types.ts';
import { type DateBounds, boundsOf, boundsQuery, hasDateCondition, sameBounds } from './date-bounds.ts';
import { countQuery, includeCanonicalQuery, includeQuery, pageQuery, revincludeCanonicalQuery, revincludeQuery } from './search-page.ts';
import type { Dialect, Sql } from './search-sql.ts';
import { INCLUDE_LIMITS, type SearchCursor, type SearchPage, type StoredVersion } from './store.ts';
import { type VersionRow, toVersion } from './version-row.ts';

/**
 * One FHIR search, driver-neutral: the steps (count, page, includes) as a generator that yields
 * each query and is resumed with its rows. SQLite runs it synchronously on a thread
 * (sqlite/search.ts), PostgreSQL with an await per query (postgres/search.ts); the SQL and the
 * paging rules are written once, here and in search-page.ts.
 */
export type SearchSteps = Generator<Sql, SearchPage, Record<string, unknown>[]>;

const CHUNK = 500;



/** Bounds read and searched with, again, before the search goes on without any. */
const BOUNDS_ATTEMPTS = 3;

/** `now` (epoch ms, the store's clock) is the instant `ap` on dates is measured from. */
export function* searchSteps(dialect: Dialect, fv: string, req: SearchRequest, now: number, cursor?: SearchCursor): SearchSteps {
  let found: Found | undefined;
  // Date conditions are narrowed by how far the parameter's values reach (date-bounds.ts). The
  // bounds are read before the count and the page, each a statement of its own, and a write in
  // between may have widened them (bounds only grow, and are committed with the rows that widen
  // them): read after the queries, bounds that have not changed were the bounds of every row the
  // queries saw. Otherwise search again with the new ones, and in the end without any.
  if (hasDateCondition(req.conditions)) {
    let bounds = boundsOf(yield boundsQuery(fv));
    for (let attempt = 1; attempt <= BOUNDS_ATTEMPTS && !found; attempt++) {
      const f: Found = yield* matchSteps(dialect, fv, req, now, cursor, bounds);
      const after = boundsOf(yield boundsQuery(fv));
      if (sameBounds(bounds, after)) found = f;
      else bounds = after;
    }
  }
  found ??= yield* matchSteps(dialect, fv, req, now, cursor, undefined);
  const { total, rows, keyCount } = found;
  if (req.summary === 'count') return { matches: [], included: [], ...(total !== undefined ? { total } : {}) };
  const more = rows.length > req.count;
  const page = more ? rows.slice(0, req.count) : rows;
  const backwards = cursor?.direction === 'previous';
  if (backwards) page.reverse();
  const keysOf = (row: Record<string, string | number>) => Array.from({ length: keyCount }, (_, i) => row[`k${i}`]!);
  const first = page[0];
  const last = page[page.length - 1];
  const next = last && (backwards || more) ? { direction: 'next' as const, keys: keysOf(last) } : undefined;
  const previous = first && (backwards ? more : cursor !== undefined) ? { direction: 'previous' as const, keys: keysOf(first) } : undefined;
  const matches = page.map(toVersion);
  const { added, cut } = yield* included(dialect, fv, req, matches);
  return {
    matches,
    included: added,
    ...(cut ? { includedCut: true } : {}),
    ...(total !== undefined ? { total } : {}),
    ...(next ? { next } : {}),
    ...(previous ? { previous } : {}),
  };
}

type Steps<T> = Generator<Sql, T, Record<string, unknown>[]>;

/** What the count and the page found (no page for `_summary=count`). */
interface Found {
  total: number | undefined;
  rows: (VersionRow & Record<string, string | number>)[];
  keyCount: number;
}

function* matchSteps(dialect: Dialect, fv: string, req: SearchRequest, now: number, cursor: SearchCursor | undefined, bounds: DateBounds | undefined): Steps<Found> {
  let total: number | undefined;
  if (req.total !== 'none') {
    const rows = yield countQuery(fv, req, dialect, now, bounds);
    total = Number(rows[0]!.n);
  }
  if (req.summary === 'count') return { total, rows: [], keyCount: 0 };
  const q = pageQuery(fv, req, dialect, now, req.count + 1, cursor, bounds);
  const rows = (yield { sql: q.sql, args: q.args }) as (VersionRow & Record<string, string | number>)[];
  return { total, rows, keyCount: q.keyCount };
}

/**
 * _include and _revinclude, following :iterate ones over what was added, within bounds: at most
 * INCLUDE_LIMITS.resources resources over INCLUDE_LIMITS.iterations rounds, the first ones found. `cut` when references
 * to resources not yet in the page were left unfollowed for either bound (one that names a
 * deleted resource counts). Each query reads at most what the round can still add plus what it
 * may find again (the matches and what was added), so a match referenced by a million resources
 * costs a bounded read, not the million.
 */
function* included(dialect: Dialect, fv: string, req: SearchRequest, matches: StoredVersion[]): Steps<{ added: StoredVersion[]; cut: boolean }> {
  if (req.include.length === 0 && req.revinclude.length === 0) return { added: [], cut: false };
  const seen = new Set(matches.map((m) => `${m.type}/${m.id}`));
  const added: StoredVersion[] = [];
  const iterates = [...req.include, ...req.revinclude].some((i) => i.iterate);
  let frontier = matches;
  for (let round = 0; frontier.length > 0; round++) {
    // A round past the last only looks whether :iterate had anything new left to follow.
    const probe = round === INCLUDE_LIMITS.iterations;
    if (probe && !iterates) break;
    const room = probe ? 0 : INCLUDE_LIMITS.resources - added.length;
    // One more than can be new: a query that fills its limit shows that more are left.
    const limit = room + seen.size + 1;
    const refs: { type: string; id: string }[] = [];
    for (const inc of req.include) if (round === 0 || inc.iterate) refs.push(...(yield* follow(dialect, fv, inc, frontier, false, limit)));
    for (const inc of req.revinclude) if (round === 0 || inc.iterate) refs.push(...(yield* follow(dialect, fv, inc, frontier, true, limit)));
    const fresh = refs.filter((r) => !seen.has(`${r.type}/${r.id}`) && seen.add(`${r.type}/${r.id}`));
    frontier = yield* readCurrent(fv, fresh.slice(0, room));
    added.push(...frontier);
    if (fresh.length > room) return { added, cut: true };
  }
  return { added, cut: false };
}

/** References out of (include) or into (revinclude) `from`, at most `limit` a query. A sourceType of `*` means any type. */
function* follow(dialect: Dialect, fv: string, inc: Include, from: StoredVersion[], reverse: boolean, limit: number): Steps<{ type: string; id: string }[]> {
  const out: { type: string; id: string }[] = [];
  for (const [type, ids] of groupByType(from)) {
    for (let i = 0; i < ids.length; i += CHUNK) {
      const chunk = ids.slice(i, i + CHUNK);
      const queries: Sql[] = [];
      if (!reverse) {
        if (inc.sourceType === '*' || inc.sourceType === type) queries.push(includeQuery(fv, type, chunk, limit, inc.param?.code, inc.targetType));
        // A parameter that holds canonicals names its targets by URL too (SearchParam.canonical).
        const named = inc.param?.canonical?.filter((t) => !inc.targetType || t === inc.targetType) ?? [];
        if (inc.param && inc.sourceType === type && named.length > 0) queries.push(includeCanonicalQuery(dialect, fv, type, chunk, limit, inc.param.code, named));
      } else if (!inc.targetType || inc.targetType === type) {
        queries.push(revincludeQuery(fv, inc.sourceType === '*' ? undefined : inc.sourceType, type, chunk, limit, inc.param?.code));
        if (inc.param?.canonical?.includes(type) && inc.sourceType !== '*') queries.push(revincludeCanonicalQuery(dialect, fv, inc.sourceType, type, chunk, limit, inc.param.code));
      }
      for (const q of queries) out.push(...((yield q) as { type: string; id: string }[]));
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

/** The current, live versions of `refs`, in their order (one query per chunk). */
function* readCurrent(fv: string, refs: { type: string; id: string }[]): Steps<StoredVersion[]> {
  const found = new Map<string, StoredVersion>();
  for (let i = 0; i < refs.length; i += CHUNK) {
    const chunk = refs.slice(i, i + CHUNK);
    const rows = (yield {
      sql: `SELECT v.type, v.id, v.vid, v.last_updated, v.method, v.body FROM resources r
        JOIN resource_versions v ON v.fv = r.fv AND v.type = r.type AND v.id = r.id AND v.vid = r.vid
        WHERE r.fv = ? AND (r.type, r.id) IN (VALUES ${chunk.map(() => '(?, ?)').join(', ')}) AND r.deleted = 0`,
      args: [fv, ...chunk.flatMap((r) => [r.type, r.id])],
    }) as unknown as VersionRow[];
    for (const row of rows) found.set(`${row.type}/${row.id}`, toVersion(row));
  }
  return refs.map((r) => found.get(`${r.type}/${r.id}`)).filter((v): v is StoredVersion => v !== undefined);
}
