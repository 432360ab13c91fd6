/**
 * A FHIR search query string into a SearchRequest (search.html). Parsing happens once per
 * request (or once per subscription criterion, match.ts), so everything the evaluators need is
 * decided here: the parameter definitions, value ranges, normalised text. Both the store's search
 * and the in-memory matcher evaluate the result, which is why neither re-reads the query.
 *
 * Value conventions (beyond the comments in types.ts):
 * - string values are normalised (normalizeString) except under :exact, which keeps them as written;
 * - token :text values are `{ kind: 'string' }` holding normalised text;
 * - number/quantity `lo` is inclusive and `hi` exclusive (eq: lo <= v < hi); date ranges are inclusive;
 * - a reference `:[Type]` modifier is folded into the values' targetType (no condition modifier).
 */
import { badRequest } from '../fhir/errors.ts';
import { overBudget, SEARCH_BUDGET, shortName } from './budget.ts';
import type { SearchRegistry } from './parameters.ts';
import type { SearchRequest } from './types.ts';
import { parseCondition } from './parse/conditions.ts';
import { isResourceType, skip, type ParseContext } from './parse/context.ts';
import { applyResultParam, isResultParam } from './parse/results.ts';

export interface ParseOptions {
  /** Prefer: handling=strict (unknown parameters are a 400 instead of ignored; unknown modifiers always are). */
  strict: boolean;
  /** Page size without _count. */
  defaultCount: number;
  /** Upper bound for _count (larger values are clamped, not refused). */
  maxCount: number;
  /** This server's base URL for this version: absolute references into it are read as Type/id. */
  baseUrl?: string;
}

/** Total when the client does not ask: an exact count, as most clients expect Bundle.total. */
const DEFAULT_TOTAL: SearchRequest['total'] = 'accurate';

/**
 * Parses `query` for a search over `types` (one type for type-level search, none for system
 * search, where `_type` names them; without `_type` every resource type of the version). Throws
 * a 400 FhirError naming the parameter for malformed values and for modifiers it does not
 * evaluate, and a 400 `too-costly` for a query over SEARCH_BUDGET (budget.ts); unknown parameters
 * end up in `ignored`, or throw when `strict`.
 */
export function parseSearch(registry: SearchRegistry, types: string[], query: URLSearchParams, options: ParseOptions): SearchRequest {
  const ctx: ParseContext = { registry, strict: options.strict, baseUrl: options.baseUrl, ignored: [], values: 0, includes: 0, valueWeight: 1 };
  const req: SearchRequest = {
    // While parsing, none means all: parameters are looked up among those every resource has.
    types: searchTypes(ctx, types, query.getAll('_type')),
    conditions: [],
    sort: [],
    count: Math.min(options.defaultCount, options.maxCount),
    include: [],
    revinclude: [],
    total: DEFAULT_TOTAL,
    ignored: ctx.ignored,
  };
  let parameters = 0;
  for (const [name, raw] of query) {
    if (++parameters > SEARCH_BUDGET.parameters) {
      throw overBudget(name, `Too many search parameters: more than ${SEARCH_BUDGET.parameters} (at '${shortName(name)}')`);
    }
    if (isResultParam(name)) {
      applyResultParam(ctx, req, name, raw, options.maxCount);
      continue;
    }
    const condition = name === '' ? skip(ctx, name, 'Parameter without a name') : parseCondition(ctx, req.types, name, raw);
    if (condition !== undefined) req.conditions.push(condition);
  }
  if (req.count === 0 && req.summary === undefined) req.summary = 'count';
  if (req.types.length === 0) req.types = registry.definitions.resourceTypes;
  return req;
}

/**
 * The searched types: `types` at type level (where `_type` has no meaning and is skipped),
 * otherwise the union of the `_type` lists (search.html#_type), or none meaning all types. This
 * is the one place that reads `_type`.
 */
function searchTypes(ctx: ParseContext, types: string[], typeParams: string[]): string[] {
  if (typeParams.length === 0) return types;
  if (types.length > 0) {
    skip(ctx, '_type', '_type applies to system-level search only');
    return types;
  }
  const result = new Set<string>();
  for (const type of typeParams.flatMap((list) => list.split(','))) {
    if (!isResourceType(ctx, type)) throw badRequest(`Unknown resource type '${type.slice(0, 80)}' in _type`, ['_type']);
    result.add(type);
  }
  return [...result];
}
