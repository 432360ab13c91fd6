import { apDateTolerance } from '../search/compare.ts';
import type { Condition, DateRow, SearchValue } from '../search/types.ts';
import type { Sql } from './search-sql.ts';

/**
 * How far a date parameter's values reach, per resource type (table date_bounds, on both
 * stores): the longest span (hi - lo) of any one value, infinite once a value is open at either
 * end, and whether any resource has several values for the parameter. Written with the index rows
 * (only ever widened: a deletion leaves them as they were, which keeps them true bounds).
 *
 * A date search row is indexed by (lo, hi), and most prefixes test hi (`ge`: hi > X or within X).
 * Knowing that no value spans more than S, every prefix bounds lo as well (hi > X implies
 * lo > X - S), so the index seeks a range instead of reading every row of the parameter. And when
 * no resource holds two values of the parameter (Observation.date is effective[x], one value),
 * `date=ge2024-03-01&date=lt2024-04-01` holds of one row: the two conditions become one, a month
 * of rows instead of every row before April probed for one after March.
 *
 * The windows also need every value to end no earlier than it starts (lo <= hi): `eb` (hi before
 * X) bounds lo only through it. Extraction indexes a Period whose end precedes its start as the
 * range between the two (extract/values.ts); a row stored otherwise (before that rule) counts as
 * an infinite span, which turns the windows off for its parameter on its type.
 *
 * The bounds are read in a statement of their own, before the queries that use them (the count
 * and the page), so a write can widen them in between: search-run.ts reads them again afterwards
 * and searches again when they have changed.
 */
export interface DateBound {
  span: number;
  multi: boolean;
}

/** Bounds by `${type}|${code}`. */
export type DateBounds = ReadonlyMap<string, DateBound>;

export const boundKey = (type: string, code: string) => `${type}|${code}`;

/** Per date parameter of one resource's rows: the longest span of its values and whether it has several (1) or one (0). */
export function rowBounds(rows: readonly DateRow[]): { code: string; span: number; multi: number }[] {
  const byCode = new Map<string, { code: string; span: number; multi: number }>();
  for (const r of rows) {
    const d = r.hi - r.lo;
    // Both ends infinite on the same side (never written, but the bound must stay a bound), or a
    // value that ends before it starts (see above): no window can be trusted.
    const span = Number.isNaN(d) || d < 0 ? Infinity : d;
    const b = byCode.get(r.code);
    if (!b) byCode.set(r.code, { code: r.code, span, multi: 0 });
    else {
      b.span = Math.max(b.span, span);
      b.multi = 1;
    }
  }
  return [...byCode.values()];
}

/** The bounds of every date parameter of `fv` (one row per type and parameter that has values). */
export function boundsQuery(fv: string): Sql {
  return { sql: 'SELECT type, code, span, multi FROM date_bounds WHERE fv = ?', args: [fv] };
}

export function boundsOf(rows: Record<string, unknown>[]): DateBounds {
  return new Map(rows.map((r) => [boundKey(String(r.type), String(r.code)), { span: Number(r.span), multi: Number(r.multi) !== 0 }]));
}

/** Whether two readings of the bounds agree (the later one can only have grown). */
export function sameBounds(a: DateBounds, b: DateBounds): boolean {
  if (a.size !== b.size) return false;
  for (const [key, x] of a) {
    const y = b.get(key);
    if (!y || y.span !== x.span || y.multi !== x.multi) return false;
  }
  return true;
}

/** Whether a search has a date condition (at any depth) that bounds could narrow. */
export function hasDateCondition(conditions: readonly Condition[]): boolean {
  return conditions.some((c) => (c.kind === 'param' ? c.param.type === 'date' : hasDateCondition([c.inner])));
}

/** A closed range of lo; an end left out is unbounded. */
export interface LoWindow {
  from?: number;
  to?: number;
}

/**
 * The lo of a row matching `v` lies in this window when no value of the parameter spans more
 * than `span` (see compare.ts, dateMatches, for each prefix's test). Undefined: no bound at all.
 */
function valueWindow(v: SearchValue, span: number, now: number): LoWindow | undefined {
  if (v.kind !== 'date') return undefined;
  switch (v.prefix) {
    case 'eq':
      return { from: v.lo, to: v.hi };
    case 'gt': // hi > v.hi
      return { from: v.hi - span };
    case 'ge': // hi > v.hi, or within v (then hi >= lo >= v.lo)
      return { from: v.lo - span };
    case 'lt': // lo < v.lo
    case 'eb': // hi < v.lo
      return { to: v.lo };
    case 'le': // lo < v.lo, or within v
      return { to: v.hi };
    case 'sa': // lo > v.hi
      return { from: v.hi };
    case 'ap': {
      const tolerance = apDateTolerance(v, now);
      return { from: v.lo - tolerance - span, to: v.hi + tolerance };
    }
    default: // ne: anything outside one range
      return undefined;
  }
}

/**
 * The window of one condition's values (ORed: the hull of theirs), or undefined when it bounds
 * nothing. `span` must be finite.
 */
export function conditionWindow(values: readonly SearchValue[], span: number, now: number): LoWindow | undefined {
  let from = Infinity;
  let to = -Infinity;
  for (const v of values) {
    const w = valueWindow(v, span, now);
    if (!w) return undefined;
    from = Math.min(from, w.from ?? -Infinity);
    to = Math.max(to, w.to ?? Infinity);
  }
  if (from === -Infinity && to === Infinity) return undefined;
  return { ...(from > -Infinity ? { from } : {}), ...(to < Infinity ? { to } : {}) };
}

/** Both windows at once (conditions ANDed on one row). */
export function intersect(a: LoWindow | undefined, b: LoWindow | undefined): LoWindow | undefined {
  if (!a) return b;
  if (!b) return a;
  const from = Math.max(a.from ?? -Infinity, b.from ?? -Infinity);
  const to = Math.min(a.to ?? Infinity, b.to ?? Infinity);
  return { ...(from > -Infinity ? { from } : {}), ...(to < Infinity ? { to } : {}) };
}
