import { unprocessable } from '../../fhir/errors.ts';
import type { CanFilterBy, Filter, Topic } from '../../fhir/subscription-model.ts';
import type { Resource } from '../../fhir/types.ts';
import { extractIndex } from '../../search/extract.ts';
import { compileMatcher, type Matcher } from '../../search/match.ts';
import type { SearchRegistry } from '../../search/parameters.ts';
import { parseSearch } from '../../search/parse.ts';
import type { SearchParam, SearchValue } from '../../search/types.ts';

/**
 * Subscription filters (filterBy / backport-filter-criteria) against the topic's canFilterBy
 * (REQUIREMENTS D-13, S-5): only the declared parameters, with the declared modifiers and
 * comparators; several filters are ANDed. A filter applies to focus resources of its type.
 */

/**
 * Rejects (422) any filter the topic does not allow or whose value does not parse; `pathOf` names
 * the element that holds filter `i` in the client's Subscription (R5 `filterBy[i]`, backport
 * `criteria.extension[k]`).
 */
export function checkFilters(topic: Topic, filters: Filter[], registry: SearchRegistry, now: () => number, pathOf: (i: number) => string): void {
  filters.forEach((f, i) => {
    const at = pathOf(i);
    const allowed = topic.canFilterBy.filter(
      (c) => c.filterParameter === f.filterParameter && (!f.resourceType || !c.resource || c.resource === f.resourceType),
    );
    if (allowed.length === 0) {
      throw unprocessable(`${at}: the topic ${topic.url} does not allow filtering by '${f.filterParameter}'`, [at]);
    }
    if (!allowed.some((c) => permits(c, f))) {
      const what = f.modifier ? `modifier ':${f.modifier}'` : `comparator '${f.comparator}'`;
      throw unprocessable(`${at}: the topic does not allow ${what} on '${f.filterParameter}'`, [at]);
    }
    const type = f.resourceType ?? allowed[0]!.resource;
    if (!type || !registry.param(type, f.filterParameter)) {
      throw unprocessable(`${at}: Herald cannot evaluate '${f.filterParameter}' on ${type ?? 'this resource'}`, [at]);
    }
    try {
      compileMatcher(registry, type, filterQuery([f]), { now });
    } catch (err) {
      throw unprocessable(`${at}: ${(err as Error).message}`, [at]);
    }
  });
}

/** R4B lists comparators among `modifier`; R5 has `comparator`. `=`/`eq` is always allowed. */
function permits(c: CanFilterBy, f: Filter): boolean {
  const listed = new Set([...c.modifiers, ...c.comparators]);
  if (f.modifier && !listed.has(f.modifier)) return false;
  if (f.comparator && f.comparator !== 'eq' && !listed.has(f.comparator)) return false;
  return true;
}

/** The resource type a filter applies to: its own, or that of the canFilterBy entry naming it. */
export function filterType(topic: Topic, f: Filter): string | undefined {
  return f.resourceType ?? topic.canFilterBy.find((c) => c.filterParameter === f.filterParameter && c.resource)?.resource;
}

export function filterQuery(filters: Filter[]): URLSearchParams {
  const q = new URLSearchParams();
  for (const f of filters) q.append(f.modifier ? `${f.filterParameter}:${f.modifier}` : f.filterParameter, `${f.comparator && f.comparator !== 'eq' ? f.comparator : ''}${f.value}`);
  return q;
}

/** One matcher per focus type: all filters of that type, ANDed. Throws 422 on unparsable values. */
export function compileFilters(topic: Topic, filters: Filter[], registry: SearchRegistry, now: () => number, baseUrl?: string): Map<string, Matcher> {
  const byType = new Map<string, Filter[]>();
  for (const f of filters) {
    const type = filterType(topic, f);
    if (type) byType.set(type, [...(byType.get(type) ?? []), f]);
  }
  const out = new Map<string, Matcher>();
  for (const [type, fs] of byType) {
    try {
      out.set(type, compileMatcher(registry, type, filterQuery(fs), { now, ...(baseUrl ? { baseUrl } : {}) }));
    } catch (err) {
      throw unprocessable(`filterBy: ${(err as Error).message}`, ['filterBy']);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Indexing: equality filters on token and reference parameters become hash keys, so that a
// change finds the few subscriptions whose filters can match without looking at the others.
// ---------------------------------------------------------------------------------------------

export interface FilterKey {
  type: string;
  param: SearchParam;
  keys: string[];
}

/**
 * The index keys of a subscription: those of one indexable filter (plain equality), if any. Never
 * throws: a filter whose value does not parse (checked against an earlier version of its topic,
 * where the parameter had another type) is not indexable, and its subscription is checked one by
 * one, where the failure is recorded against the topic (D-20).
 */
export function indexKeyOf(topic: Topic, filters: Filter[], registry: SearchRegistry, baseUrl?: string): FilterKey | undefined {
  for (const f of filters) {
    if (f.modifier || (f.comparator && f.comparator !== 'eq')) continue;
    const type = filterType(topic, f);
    const param = type ? registry.param(type, f.filterParameter) : undefined;
    if (!type || !param || (param.type !== 'token' && param.type !== 'reference')) continue;
    let req: ReturnType<typeof parseSearch>;
    try {
      req = parseSearch(registry, [type], filterQuery([f]), { strict: true, defaultCount: 0, maxCount: 0, ...(baseUrl ? { baseUrl } : {}) });
    } catch {
      continue;
    }
    const cond = req.conditions[0];
    if (!cond || cond.kind !== 'param') continue;
    const keys = cond.values.map(valueKey);
    if (keys.every((k): k is string => k !== undefined)) return { type, param, keys };
  }
  return undefined;
}

function valueKey(v: SearchValue): string | undefined {
  if (v.kind === 'token' && v.value !== undefined && !v.typeSystem) {
    // A `code` element's rows carry no system: `system|code` resolved so is filed under the code alone.
    if (v.system === undefined || v.orNoSystem) return `t:*|${v.value}`;
    return `t:${v.system ?? ''}|${v.value}`;
  }
  if (v.kind === 'reference' && v.identifierValue === undefined && v.version === undefined) {
    if (v.id !== undefined) return `r:${v.targetType ?? '*'}/${v.id}`;
    if (v.url !== undefined) return `u:${v.url}`;
  }
  return undefined;
}

/** Every key under which a subscription indexed on `param` could match this resource. */
export function resourceKeys(registry: SearchRegistry, resource: Resource, param: SearchParam, baseUrl?: string): string[] {
  const rows = extractIndex(registry, resource, { only: [param], ...(baseUrl ? { baseUrl } : {}) });
  const keys: string[] = [];
  for (const t of rows.token) {
    if (t.value === null) continue;
    keys.push(`t:*|${t.value}`, `t:${t.system ?? ''}|${t.value}`);
  }
  for (const r of rows.reference) {
    if (r.targetId !== null) keys.push(`r:*/${r.targetId}`, `r:${r.targetType}/${r.targetId}`);
    if (r.url !== null) keys.push(`u:${r.url}`);
  }
  return keys;
}
