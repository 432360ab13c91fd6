import { badRequest } from '../fhir/errors.ts';
import { parseJson, storedResource } from '../fhir/json.ts';
import type { Bundle, BundleEntry, OperationOutcome, Resource } from '../fhir/types.ts';
import { parseSearch } from '../search/parse.ts';
import type { SearchRequest } from '../search/types.ts';
import { INCLUDE_LIMITS, type SearchCursor, type StoredVersion } from '../store/store.ts';
import type { BaseContext, Db, FhirResponse } from './context.ts';
import { subset, subsets } from './summary.ts';
import { reach, type Reach } from '../auth/index.ts';
import { confine, demand, present, presentResource, sees } from './access.ts';

/**
 * Type-level and system-level search (GET, or POST to _search): parse the query with the
 * version's search parameters, let the store find one page, and build the searchset Bundle with
 * paging links that carry the store's keyset cursor.
 */
export async function search(
  ctx: BaseContext,
  db: Db,
  query: URLSearchParams,
  options: { type?: string; strict: boolean },
): Promise<FhirResponse> {
  const parsed0 = parseSearch(ctx.registry, options.type ? [options.type] : [], query, {
    strict: options.strict,
    defaultCount: ctx.defaultPageSize,
    maxCount: ctx.maxPageSize,
    baseUrl: ctx.baseUrl,
  });
  // The parser owns `_type` (no types: every type of the version); the caller searches only the
  // types it may (REQUIREMENTS §10), which narrows a system search.
  const reaches = new Map<string, Reach>(
    options.type ? [[options.type, demand(ctx, options.type, 's')]] : readableTypes(ctx, parsed0.types.length ? parsed0.types : [...ctx.defs.resourceTypes]),
  );
  const types = [...reaches.keys()];
  const parsed = !options.type && ctx.principal ? { ...parsed0, types } : parsed0;
  // One type is confined in the query itself; a system search over types the caller sees only in
  // part is filtered afterwards (pages may then come out shorter, and no total is given).
  const afterwards = types.length > 1 && types.some((t) => !seesAll(ctx, t, reaches.get(t)!));
  const request = types.length === 1 ? confine(ctx, parsed, types[0]!, reaches.get(types[0]!)!) : afterwards ? { ...parsed, total: 'none' as const } : parsed;
  const cursor = decodeCursor(query.get('_cursor'));
  const page = await db.search(ctx.version, request, cursor);
  const matches = afterwards ? page.matches.filter((v) => sees(ctx, JSON.parse(v.json!) as Resource, reaches.get(v.type)!)) : page.matches;
  const included = page.included.filter((v) => mayInclude(ctx, v));
  const path = options.type ?? '';
  // self is the page asked for (its cursor included); first is the same search without a cursor.
  const link = [{ relation: 'self', url: pageUrl(ctx, path, query, cursor) }, { relation: 'first', url: pageUrl(ctx, path, query) }];
  if (page.previous) link.push({ relation: 'previous', url: pageUrl(ctx, path, query, page.previous) });
  if (page.next) link.push({ relation: 'next', url: pageUrl(ctx, path, query, page.next) });
  const entry: BundleEntry[] = [
    ...matches.map((v) => entryOf(ctx, request, v, 'match')),
    ...included.map((v) => entryOf(ctx, request, v, 'include')),
  ];
  const outcome = searchOutcome(request, page.includedCut === true);
  if (outcome) entry.push({ resource: outcome, search: { mode: 'outcome' } });
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'searchset',
    timestamp: ctx.now().toISOString(),
    ...(page.total !== undefined ? { total: page.total } : {}),
    link,
    ...(entry.length ? { entry } : {}),
  };
  return { status: 200, resource: bundle };
}

/** System search covers the types the caller may search (`_type` narrowed to them); none is a 403. */
function readableTypes(ctx: BaseContext, types: readonly string[]): [string, Reach][] {
  const p = ctx.principal;
  if (!p) return types.map((t) => [t, 'all']);
  const out = types.map((t): [string, Reach] => [t, reach(p, t, 's')]).filter(([, r]) => r !== 'none');
  if (out.length === 0) demand(ctx, types.length === 1 ? types[0]! : 'any of the types asked for', 's');
  return out;
}

/** Whether the caller sees every resource of a type it reaches so far. */
const seesAll = (ctx: BaseContext, type: string, r: Reach) => !ctx.principal || (type === 'Subscription' ? ctx.principal.admin : r === 'all');

/** _include/_revinclude leave out what the caller may not read (REQUIREMENTS §10). */
function mayInclude(ctx: BaseContext, v: StoredVersion): boolean {
  const p = ctx.principal;
  if (!p) return true;
  const r = reach(p, v.type, 'r');
  return r !== 'none' && sees(ctx, JSON.parse(v.json!) as Resource, r);
}


/** `_elements` applies to the matches only ("does not apply to included resources", search.html#elements); `_summary` to every entry. */
function entryOf(ctx: BaseContext, request: SearchRequest, v: StoredVersion, mode: 'match' | 'include'): BundleEntry {
  const elements = mode === 'match' ? request.elements : undefined;
  // Given whole, the stored text is written into the answer as it is (no parse, no serialization).
  const resource = subsets(request.summary, elements)
    ? subset(ctx.defs, presentResource(ctx, parseJson(v.json!) as Resource), request.summary, elements)
    : storedResource(present(ctx, v)!, { resourceType: v.type, id: v.id });
  return { fullUrl: `${ctx.baseUrl}/${v.type}/${v.id}`, resource, search: { mode } };
}

/**
 * What the searcher should know besides the entries: parameters ignored (lenient handling), and
 * _include/_revinclude cut at their bounds (the page's includes are then not all there are).
 */
function searchOutcome(request: SearchRequest, includedCut: boolean): OperationOutcome | undefined {
  const issue: OperationOutcome['issue'] = request.ignored.map((i) => ({
    severity: 'warning',
    code: 'not-supported',
    diagnostics: `Parameter '${i.name}' was ignored: ${i.reason}`,
    expression: [i.name],
  }));
  if (includedCut) {
    issue.push({
      severity: 'warning',
      code: 'too-costly',
      diagnostics: `_include/_revinclude added the first ${INCLUDE_LIMITS.resources.toLocaleString('en-US')} resources found (following :iterate at most ${INCLUDE_LIMITS.iterations} times), and more are referenced: ask for fewer matches per page (_count) or search for the rest directly`,
    });
  }
  return issue.length ? { resourceType: 'OperationOutcome', issue } : undefined;
}

function pageUrl(ctx: BaseContext, path: string, query: URLSearchParams, cursor?: SearchCursor): string {
  const q = new URLSearchParams(query);
  q.delete('_cursor');
  if (cursor) q.set('_cursor', encodeCursor(cursor));
  const qs = q.toString();
  return `${ctx.baseUrl}${path ? `/${path}` : ''}${qs ? `?${qs}` : ''}`;
}

/** Cursors travel as base64url JSON; infinite sort sentinels are written as strings. */
function encodeCursor(c: SearchCursor): string {
  const keys = c.keys.map((k) => (typeof k === 'number' && !Number.isFinite(k) ? { n: String(k) } : k));
  return Buffer.from(JSON.stringify({ d: c.direction === 'next' ? 'n' : 'p', k: keys })).toString('base64url');
}

function decodeCursor(raw: string | null): SearchCursor | undefined {
  if (raw === null) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as { d: string; k: unknown[] };
    if ((parsed.d !== 'n' && parsed.d !== 'p') || !Array.isArray(parsed.k)) throw new Error('shape');
    const keys = parsed.k.map((k) => {
      if (typeof k === 'string' || typeof k === 'number') return k;
      const n = (k as { n?: string }).n;
      if (n === 'Infinity' || n === '-Infinity') return Number(n);
      throw new Error('key');
    });
    return { direction: parsed.d === 'n' ? 'next' : 'previous', keys };
  } catch {
    throw badRequest('Invalid paging cursor: follow the next/previous links as given', ['_cursor']);
  }
}
