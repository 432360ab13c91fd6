/**
 * Result parameters (search.html#_sort, #_count, #_include, #_total, #_summary, #_elements): they
 * shape the response rather than select resources. Malformed values are errors, and so is any
 * modifier other than `:iterate` on the include parameters, whatever the handling.
 */
import { badRequest, FhirError } from '../../fhir/errors.ts';
import { overBudget, SEARCH_BUDGET } from '../budget.ts';
import type { Include, SearchRequest } from '../types.ts';
import { isResourceType, lookupParam, typesLabel, type ParseContext } from './context.ts';

/** Parameters read by other layers (paging, formats): accepted here and otherwise left alone. */
const PASSED_THROUGH: ReadonlySet<string> = new Set(['_format', '_pretty', '_cursor']);
const RESULT_PARAMS: ReadonlySet<string> = new Set(['_sort', '_count', '_include', '_revinclude', '_total', '_summary', '_elements', '_type']);
const TOTALS: readonly SearchRequest['total'][] = ['none', 'estimate', 'accurate'];
const SUMMARIES: readonly NonNullable<SearchRequest['summary']>[] = ['true', 'count', 'text', 'data', 'false'];
const ELEMENT = /^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$/;

/** True for parameters that are not search conditions (the part before any `:` decides). */
export function isResultParam(name: string): boolean {
  const base = name.split(':', 1)[0];
  return RESULT_PARAMS.has(base) || PASSED_THROUGH.has(base);
}

/** Applies one result parameter to the request being built. `_type` is read before (parse.ts). */
export function applyResultParam(ctx: ParseContext, req: SearchRequest, name: string, raw: string, maxCount: number): void {
  const [base, modifier] = name.split(/:(.*)/s, 2) as [string, string | undefined];
  if (PASSED_THROUGH.has(base)) return;
  if (base === '_include' || base === '_revinclude') return applyInclude(ctx, req, name, base, modifier, raw);
  if (modifier !== undefined) throw unknownModifier(name, base, modifier);
  switch (base) {
    case '_type':
      return; // read before (parse.ts)
    case '_sort':
      return applySort(ctx, req, raw);
    case '_count':
      req.count = Math.min(parseCount(raw), maxCount);
      return;
    case '_total':
      req.total = oneOf(TOTALS, raw, '_total');
      return;
    case '_summary':
      req.summary = parseSummary(raw);
      return;
    case '_elements':
      req.elements = parseElements(raw);
      return;
  }
}

function unknownModifier(name: string, base: string, modifier: string): FhirError {
  return badRequest(`Unknown modifier ':${modifier}' on '${base}'`, [name]);
}

function oneOf<T extends string>(allowed: readonly T[], raw: string, name: string): T {
  if (!(allowed as readonly string[]).includes(raw)) throw badRequest(`Invalid ${name} '${raw}' (expected ${allowed.join(', ')})`, [name]);
  return raw as T;
}

/** `_summary`; a read has nothing to count, so it may not take `count`. */
export function parseSummary(raw: string, count = true): NonNullable<SearchRequest['summary']> {
  return oneOf(count ? SUMMARIES : SUMMARIES.filter((s) => s !== 'count'), raw, '_summary');
}

/** `_count` (search and history alike): any non-negative integer; past the largest page it is clamped, however long. */
export function parseCount(raw: string): number {
  if (!/^\d+$/.test(raw)) throw badRequest(`Invalid _count '${raw.slice(0, 40)}' (expected a non-negative integer)`, ['_count']);
  return raw.length > 9 ? Number.MAX_SAFE_INTEGER : Number(raw);
}

/** `_elements`: element names, comma-separated (search and read alike). */
export function parseElements(raw: string): string[] {
  const names = raw.split(',').map((s) => s.trim());
  const bad = names.find((n) => !ELEMENT.test(n));
  if (bad !== undefined) throw badRequest(`Invalid element name '${bad}' in _elements`, ['_elements']);
  return names;
}

/** `_sort=a,-b`: each key a known parameter of the searched types; `-` sorts descending. */
function applySort(ctx: ParseContext, req: SearchRequest, raw: string): void {
  for (const item of raw.split(',')) {
    if (req.sort.length === SEARCH_BUDGET.sortKeys) throw overBudget('_sort', `Too many sort keys in _sort: more than ${SEARCH_BUDGET.sortKeys}`);
    const descending = item.startsWith('-');
    const code = descending ? item.slice(1) : item;
    if (code === '') throw badRequest(`Empty sort key in _sort '${raw}'`, ['_sort']);
    const param = lookupParam(ctx, req.types, code);
    if (param === undefined) throw badRequest(`Unknown sort parameter '${code}' for ${typesLabel(req.types)}`, ['_sort']);
    // A composite or special parameter has no single value to order by (search.html#sort leaves them to the server).
    if (param.type === 'composite' || param.type === 'special') {
      throw new FhirError(400, 'not-supported', `Cannot sort by '${code}': a ${param.type} parameter has no single value to order by`, ['_sort']);
    }
    req.sort.push({ param, descending });
  }
}

/**
 * `_include[:iterate]=Type:param[:targetType]`, `Type:*` or `*` (`:recurse` is R4's older name for
 * iterate). An Include with sourceType `*` means any type; without param, every reference parameter.
 */
function applyInclude(ctx: ParseContext, req: SearchRequest, name: string, base: string, modifier: string | undefined, raw: string): void {
  if (modifier !== undefined && modifier !== 'iterate' && modifier !== 'recurse') throw unknownModifier(name, base, modifier);
  if (++ctx.includes > SEARCH_BUDGET.includes) {
    throw overBudget(name, `Too many _include and _revinclude parameters: more than ${SEARCH_BUDGET.includes} (at '${name}')`);
  }
  const iterate = modifier !== undefined;
  const list = base === '_include' ? req.include : req.revinclude;
  if (raw === '*') {
    // _include=*: every reference of the searched types; _revinclude=*: whatever refers to them.
    const sources = req.types.length === 0 || base === '_revinclude' ? ['*'] : req.types;
    for (const sourceType of sources) list.push({ sourceType, iterate });
    return;
  }
  const include = parseInclude(ctx, name, raw, iterate);
  if (base === '_include' && !iterate && req.types.length > 0 && !req.types.includes(include.sourceType)) {
    throw badRequest(`_include '${raw}' must start from a searched type (${typesLabel(req.types)})`, [name]);
  }
  list.push(include);
}

function parseInclude(ctx: ParseContext, name: string, raw: string, iterate: boolean): Include {
  const parts = raw.split(':');
  const [sourceType, code, targetType] = parts;
  const bad = (why: string) => badRequest(`Invalid ${name} '${raw}': ${why}`, [name]);
  if (parts.length < 2 || parts.length > 3 || code === '') throw bad('expected Type:parameter[:targetType]');
  if (!isResourceType(ctx, sourceType)) throw bad(`unknown resource type '${sourceType}'`);
  if (targetType !== undefined && !isResourceType(ctx, targetType)) throw bad(`unknown resource type '${targetType}'`);
  if (code === '*') return targetType === undefined ? { sourceType, iterate } : { sourceType, targetType, iterate };
  const param = ctx.registry.param(sourceType, code);
  if (param === undefined || param.type !== 'reference') throw bad(`'${code}' is not a reference parameter of ${sourceType}`);
  if (targetType === undefined) return { sourceType, param, iterate };
  if (param.targets.length > 0 && !param.targets.includes(targetType)) throw bad(`'${code}' cannot refer to ${targetType}`);
  return { sourceType, param, targetType, iterate };
}
