import { badRequest } from '../fhir/errors.ts';
import { parseSearch } from '../search/parse.ts';
import { confine, demand } from './access.ts';
import type { BaseContext, Db } from './context.ts';

/**
 * Criteria of conditional interactions (If-None-Exist, conditional update) are FHIR search
 * queries, evaluated by the same search as GET [type]?… — but strictly: a parameter that is not
 * understood is a 400, never ignored, because an unevaluated condition could create duplicates.
 * They need the search scope, and see only what the caller may see.
 */
export async function findMatches(ctx: BaseContext, db: Db, type: string, criteria: URLSearchParams | string): Promise<string[]> {
  const query = typeof criteria === 'string' ? new URLSearchParams(criteria.replace(/^\?/, '')) : new URLSearchParams(criteria);
  for (const name of [...query.keys()]) if (name === '_format' || name === '_pretty') query.delete(name);
  if ([...query.keys()].length === 0) {
    throw badRequest('A conditional interaction needs search criteria (e.g. identifier=system|value)');
  }
  const r = demand(ctx, type, 's');
  const request = confine(ctx, parseSearch(ctx.registry, [type], query, { strict: true, defaultCount: 2, maxCount: 2, baseUrl: ctx.baseUrl }), type, r);
  // At most two: enough to tell none, one and several apart.
  const page = await db.search(ctx.version, { ...request, count: 2, total: 'none', sort: [], include: [], revinclude: [] });
  return page.matches.map((m) => m.id);
}
