/**
 * What the three topic representations (R4B/R5 SubscriptionTopic, R4 Basic) share: the code lists
 * and the split of R4B-style `modifier` codes into modifiers and comparators (T-5: R4B's
 * `subscription-search-modifier` also lists `eq`, `gt`, …, which R5 moved to `comparator`).
 */
import type { CanFilterBy, Interaction, Topic } from '../../subscription-model.ts';

export const TOPIC_STATUSES: readonly Topic['status'][] = ['draft', 'active', 'retired', 'unknown'];
export const INTERACTIONS: readonly Interaction[] = ['create', 'update', 'delete'];
export const QUERY_RESULTS = ['test-passes', 'test-fails'] as const;

/** Search comparators (R5 search-comparator); `=` is R4B's spelling of `eq`. */
const COMPARATORS = new Set(['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap']);

/** Splits codes from R4B `modifier` (or R5 `comparator` + `modifier`) into the model's two lists. */
export function splitModifiers(comparatorCodes: string[], modifierCodes: string[]): Pick<CanFilterBy, 'modifiers' | 'comparators'> {
  const comparators = new Set<string>();
  const modifiers = new Set<string>();
  for (const code of comparatorCodes) comparators.add(code === '=' ? 'eq' : code);
  for (const code of modifierCodes) {
    if (code === '=' || COMPARATORS.has(code)) comparators.add(code === '=' ? 'eq' : code);
    else modifiers.add(code);
  }
  return { modifiers: [...modifiers], comparators: [...comparators] };
}

/** Drops undefined members (model objects: optional fields absent rather than undefined). */
export function compact<T extends object>(o: T): T {
  for (const key of Object.keys(o) as (keyof T)[]) if (o[key] === undefined) delete o[key];
  return o;
}

/** Drops undefined members and empty arrays: FHIR JSON allows neither (written resources). */
export function prune<T extends object>(o: T): T {
  for (const key of Object.keys(o) as (keyof T)[]) {
    const v = o[key];
    if (v === undefined || (Array.isArray(v) && v.length === 0)) delete o[key];
  }
  return o;
}

/** An optional list: undefined when empty. */
export const listOrUndefined = <T>(list: T[]): T[] | undefined => (list.length === 0 ? undefined : list);

/** `compact`, then undefined when nothing is left (FHIR JSON allows no empty objects). */
export function nonEmpty<T extends object>(o: T): T | undefined {
  const c = prune(o);
  return Object.keys(c).length === 0 ? undefined : c;
}
