import type Database from 'better-sqlite3';
import type { SearchRequest } from '../../search/types.ts';
import { searchSteps } from '../search-run.ts';
import type { Dialect } from '../search-sql.ts';
import type { SearchCursor, SearchPage } from '../store.ts';

/** The shared search SQL (search-sql.ts) in SQLite's spelling. */
export const dialect: Dialect = { contains: (h, n) => `instr(${h}, ${n}) > 0` };

/**
 * FHIR search on SQLite: the shared steps (search-run.ts), each query run at once on this
 * connection. `now` (epoch ms, the store's clock) is the instant `ap` on dates is measured from.
 */
export function searchSqlite(db: Database.Database, fv: string, req: SearchRequest, now: number, cursor?: SearchCursor): SearchPage {
  const steps = searchSteps(dialect, fv, req, now, cursor);
  let step = steps.next();
  while (!step.done) {
    const { sql, args } = step.value;
    step = steps.next(db.prepare<unknown[], Record<string, unknown>>(sql).all(...args));
  }
  return step.value;
}
