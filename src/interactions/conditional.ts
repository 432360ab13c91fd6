import { badRequest } from '../fhir/errors.ts';
import { parseSearch } from '../search/parse.ts';
import { confine, demand } from './access.ts';
import { isResultParam } from '../search/parse/results.ts';
import type { Condition } from '../search/types.ts';
import type { BaseContext, Db } from './context.ts';

/**
 * Criteria of conditional interactions (If-None-Exist, conditional update) are FHIR search
 * queries, evaluated by the same search as GET [type]?… — but strictly: a parameter that is not
 * understood is a 400, never ignored, because an unevaluated condition could create duplicates.
 * They need the search scope, and see only what the caller may see.
 *
 * They must be atomic with the write, so they run inside its transaction, on the store's writer,
 * where no deadline can stop them: they are kept to conditions that select. Result parameters
 * (`_sort`, `_count`, `_include`, …: meaningless for a condition), reverse chains (`_has`) and
 * chains of more than one link are a 400 naming the parameter.
 */
export async function findMatches(ctx: BaseContext, db: Db, type: string, criteria: URLSearchParams | string): Promise<string[]> {
  const query = typeof criteria === 'string' ? new URLSearchParams(criteria.replace(/^\?/, '')) : new URLSearchParams(criteria);
  for (const name of [...query.keys()]) if (name === '_format' || name === '_pretty') query.delete(name);
  if ([...query.keys()].length === 0) {
    throw badRequest('A conditional interaction needs search criteria (e.g. identifier=system|value)');
  }
  const r = demand(ctx, type, 's');
  const names = [...query.keys()].map((name) => name.slice(0, 80));
  for (const name of names) {
    if (isResultParam(name)) throw badRequest(`Conditional criteria select resources; '${name}' has no place in them`, [name]);
  }
  // Strict: every parameter is a condition, in the order of the query.
  const parsed = parseSearch(ctx.registry, [type], query, { strict: true, defaultCount: 2, maxCount: 2, baseUrl: ctx.baseUrl });
  for (const [i, condition] of parsed.conditions.entries()) {
    const why = tooCostly(condition);
    if (why) throw badRequest(`Conditional criteria may not use ${why} ('${names[i]}')`, [names[i]!]);
  }
  const request = confine(ctx, parsed, type, r);
  // At most two: enough to tell none, one and several apart.
  const page = await db.search(ctx.version, { ...request, count: 2, total: 'none' });
  return page.matches.map((m) => m.id);
}

/** Why a condition costs too much to run on the writer, if it does. */
function tooCostly(condition: Condition): string | undefined {
  if (condition.kind === 'has') return 'a reverse chain (_has)';
  if (condition.kind === 'chain' && condition.inner.kind !== 'param') return 'a chain of more than one link';
  return undefined;
}
