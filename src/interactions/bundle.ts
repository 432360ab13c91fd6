import { newResourceId } from '../fhir/ids.ts';
import { FhirError, asFhirError, badRequest, operationOutcome, outcomeOf, preconditionFailed } from '../fhir/errors.ts';
import type { Bundle, BundleEntry, Resource } from '../fhir/types.ts';
import type { ElementTable, Prop } from '../fhir/definitions/index.ts';
import { findMatches } from './conditional.ts';
import { type BaseContext, type Db, type FhirRequest, type FhirResponse, type Method, joined, preferredReturn } from './context.ts';
import { assertResourceBody, etagOf } from './resource.ts';
import { route } from './router.ts';

/**
 * batch and transaction Bundles (FHIR http.html#transaction). A batch runs each entry on its own;
 * a transaction runs all of them in one store transaction: one failing entry and nothing is stored.
 * In a transaction, `urn:uuid:` fullUrls of created resources are replaced in every reference.
 */
export async function processBundle(ctx: BaseContext, db: Db, body: unknown, prefer?: string): Promise<FhirResponse> {
  const bundle = assertBundleShell(ctx, body);
  if (bundle.type !== 'batch' && bundle.type !== 'transaction') {
    throw badRequest(`Only batch and transaction Bundles can be posted to the base, not '${bundle.type}'`, ['Bundle.type']);
  }
  const entries = bundle.entry ?? [];
  const requests = entries.map((e, i) => toRequest(e, i));
  const reads = requests.filter(isCostlyRead).length;
  if (reads > MAX_BUNDLE_SEARCHES) {
    throw new FhirError(400, 'too-costly', `A Bundle may hold at most ${MAX_BUNDLE_SEARCHES} searches and history reads (this one has ${reads}): send them in several Bundles`, ['Bundle.entry']);
  }
  const budget = readBudget();
  // The Bundle's Prefer: return=… applies to each entry that writes (http.html#ops).
  if (prefer) for (const r of requests) r.prefer ??= prefer;
  if (bundle.type === 'batch') return batch(ctx, db, requests, budget);
  return transaction(ctx, db, entries, requests, budget);
}

/** Searches and history reads one Bundle may hold (each has the search deadline of its own). */
export const MAX_BUNDLE_SEARCHES = 100;
/**
 * Resources (matches and includes) one Bundle's searches and history may return together: ten
 * pages at the largest page size. Each search pages, but a Bundle of many full pages answered in
 * one response was unbounded (700 of them: 487 MB, and the event loop held for 8.6 s to write it).
 */
export const MAX_BUNDLE_READ_RESOURCES = 10_000;

interface ReadBudget {
  /** Runs a costly read entry unless the Bundle's reads have returned their most already. */
  run(entry: () => Promise<BundleEntry>): Promise<BundleEntry>;
}

function readBudget(): ReadBudget {
  let spent = 0;
  return {
    async run(entry) {
      if (spent >= MAX_BUNDLE_READ_RESOURCES) {
        const e = new FhirError(422, 'too-costly', `This Bundle's searches and history have returned ${spent} resources, the most one Bundle may (${MAX_BUNDLE_READ_RESOURCES}): ask for the rest in another request`);
        return { response: { status: '422', outcome: operationOutcome(e.issues) } };
      }
      const out = await entry();
      spent += (out.resource as Bundle | undefined)?.entry?.length ?? 0;
      return out;
    },
  };
}

/**
 * Validates the Bundle itself; the resources of its entries are validated by the interaction each
 * entry runs, so one bad entry of a batch fails alone.
 */
function assertBundleShell(ctx: BaseContext, body: unknown): Bundle {
  const entries = (body as Bundle | undefined)?.entry;
  if (!Array.isArray(entries)) return assertResourceBody(ctx, 'Bundle', body) as Bundle;
  const shell = { ...(body as Bundle), entry: entries.map((e: unknown) => stripResource(e)) };
  assertResourceBody(ctx, 'Bundle', shell);
  return body as Bundle;
}

function stripResource(entry: unknown): unknown {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return entry;
  const { resource: _resource, ...rest } = entry as BundleEntry;
  return rest;
}

async function batch(ctx: BaseContext, db: Db, requests: FhirRequest[], budget: ReadBudget): Promise<FhirResponse> {
  const out: BundleEntry[] = [];
  for (const req of requests) out.push(isCostlyRead(req) ? await budget.run(() => entryOf(ctx, db, req)) : await entryOf(ctx, db, req));
  return { status: 200, resource: { resourceType: 'Bundle', type: 'batch-response', entry: out } as Bundle };
}

/** One entry run on its own: its response, or its error as the entry's outcome. */
async function entryOf(ctx: BaseContext, db: Db, req: FhirRequest): Promise<BundleEntry> {
  try {
    return responseEntry(ctx, await route(ctx, db, req), req);
  } catch (err) {
    const e = asFhirError(err);
    return { response: { status: String(e.status), outcome: operationOutcome(e.issues) } };
  }
}

/** FHIR's processing order for transactions: deletes, creates, updates and patches, then reads. */
const ORDER: Record<Method, number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3 };

/**
 * GET entries whose cost the client decides: searches and history. They run after the
 * transaction has committed (FHIR processes reads last anyway), through the store's own reads, so
 * they see its writes but never hold up the writer. Reads by id stay inside the transaction.
 */
function isCostlyRead(req: FhirRequest): boolean {
  if (req.method !== 'GET') return false;
  const parts = req.path.split('/');
  return (parts.length === 1 && parts[0] !== 'metadata') || parts[parts.length - 1] === '_history';
}

/** Stands in for the store while a costly read entry is checked: every search and history is empty. */
const EMPTY: Db = {
  read: async () => undefined,
  vread: async () => undefined,
  search: async () => ({ matches: [], included: [] }),
  events: async () => [],
  eventRange: async () => ({ last: 0, first: undefined }),
  deliveryState: async () => ({ deliveredThrough: 0, attempts: 0 }),
  bindingToken: async () => undefined,
  subscriptionOwners: async () => [],
  history: async () => ({ versions: [], total: 0 }),
  transaction: () => Promise.reject(new Error('a read entry does not write')),
};

async function transaction(ctx: BaseContext, db: Db, entries: BundleEntry[], requests: FhirRequest[], budget: ReadBudget): Promise<FhirResponse> {
  assertUniqueFullUrls(entries);
  const order = requests.map((_, i) => i).sort((a, b) => ORDER[requests[a]!.method] - ORDER[requests[b]!.method] || a - b);
  const results = await db.transaction(async (tx) => {
    const inner = joined(tx, ctx.store);
    await resolveIdentities(ctx, inner, entries, requests);
    const out: (FhirResponse | undefined)[] = new Array(requests.length).fill(undefined);
    for (const i of order) {
      try {
        // A costly read that is wrong (unknown parameter, bad cursor) still fails the whole
        // transaction: it is checked here, against an empty store, and run after the commit.
        if (isCostlyRead(requests[i]!)) await route(ctx, EMPTY, requests[i]!);
        else out[i] = await route(ctx, inner, requests[i]!);
      } catch (err) {
        throw annotate(asFhirError(err), i);
      }
    }
    return out;
  });
  // The writes stand: a costly read that fails now (its deadline passed) fails alone, in its entry.
  const entry: BundleEntry[] = [];
  for (const [i, r] of results.entries()) entry.push(r ? responseEntry(ctx, r, requests[i]!) : await budget.run(() => entryOf(ctx, db, requests[i]!)));
  return { status: 200, resource: { resourceType: 'Bundle', type: 'transaction-response', entry } as Bundle };
}

function toRequest(entry: BundleEntry, i: number): FhirRequest {
  const request = entry.request;
  if (!request) throw badRequest(`Bundle.entry[${i}] has no request`, [`Bundle.entry[${i}]`]);
  // HEAD is a GET whose entry carries no resource (Bundle.entry.request.method allows it).
  const head = request.method === 'HEAD';
  const method = (head ? 'GET' : request.method) as Method;
  if (!['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(method)) {
    throw badRequest(`Bundle.entry[${i}].request.method '${request.method}' is not supported`, [`Bundle.entry[${i}].request.method`]);
  }
  const [path = '', search = ''] = request.url.replace(/^\//, '').split('?', 2);
  if (path === '' || path.startsWith('http')) {
    throw badRequest(`Bundle.entry[${i}].request.url must be relative to the base, like 'Patient/123'`, [`Bundle.entry[${i}].request.url`]);
  }
  return {
    method,
    path,
    query: new URLSearchParams(search),
    body: method === 'PATCH' ? patchBody(entry, i) : entry.resource,
    contentType: method === 'PATCH' ? 'application/json-patch+json' : 'application/fhir+json',
    ...(request.ifMatch ? { ifMatch: request.ifMatch } : {}),
    ...(request.ifNoneMatch ? { ifNoneMatch: request.ifNoneMatch } : {}),
    ...(request.ifNoneExist ? { ifNoneExist: request.ifNoneExist } : {}),
    ...(head ? { head } : {}),
  };
}

/** In a Bundle, a JSON Patch travels as a Binary whose data is the base64 patch document. */
function patchBody(entry: BundleEntry, i: number): unknown {
  const r = entry.resource as { resourceType?: string; data?: string } | undefined;
  if (r?.resourceType !== 'Binary' || typeof r.data !== 'string') {
    throw badRequest(`Bundle.entry[${i}]: a PATCH entry needs a Binary resource carrying the JSON Patch`, [`Bundle.entry[${i}].resource`]);
  }
  try {
    return JSON.parse(Buffer.from(r.data, 'base64').toString('utf8'));
  } catch {
    throw badRequest(`Bundle.entry[${i}]: the Binary does not hold a JSON Patch document`, [`Bundle.entry[${i}].resource.data`]);
  }
}

/** Bundle invariant bdl-7: a fullUrl names one entry (versions of one resource aside, which a transaction does not carry). */
function assertUniqueFullUrls(entries: BundleEntry[]): void {
  const seen = new Map<string, number>();
  for (const [i, e] of entries.entries()) {
    if (!e.fullUrl) continue;
    const first = seen.get(e.fullUrl);
    if (first !== undefined) throw badRequest(`Bundle.entry[${first}] and Bundle.entry[${i}] have the same fullUrl '${e.fullUrl.slice(0, 200)}'`, [`Bundle.entry[${i}].fullUrl`]);
    seen.set(e.fullUrl, i);
  }
}

/**
 * Before any entry runs (FHIR http.html#trules): gives each write entry its identity (a create
 * its new id or the match of its If-None-Exist; a conditional update or delete the match of its
 * criteria, or the id an update will create), fails the transaction when two write entries have
 * one identity, replaces each entry's fullUrl by its identity in every reference of the Bundle
 * and in the entries' URLs, and resolves conditional references (`Patient?identifier=…`) to the
 * one resource they match. The entries keep their identity when they run (`assignedId`).
 */
async function resolveIdentities(ctx: BaseContext, db: Db, entries: BundleEntry[], requests: FhirRequest[]): Promise<void> {
  const owner = new Map<string, number>();
  const map = new Map<string, string>();
  for (const [i, req] of requests.entries()) {
    let identity: string | undefined;
    try {
      identity = await identityOf(ctx, db, req);
    } catch (err) {
      throw annotate(asFhirError(err), i);
    }
    if (identity === undefined) continue;
    const other = owner.get(identity);
    if (other !== undefined) {
      throw badRequest(`Bundle.entry[${other}] and Bundle.entry[${i}] both write ${identity}: a transaction may touch a resource once`, [`Bundle.entry[${i}]`]);
    }
    owner.set(identity, i);
    const fullUrl = entries[i]!.fullUrl;
    if (fullUrl && req.method !== 'DELETE') map.set(fullUrl, identity);
  }
  // Conditional references, each resolved once, then every reference replaced in one walk.
  for (const [i, req] of requests.entries()) {
    const found = new Set<string>();
    try {
      if (req.body !== undefined) collectConditional(req.body, found);
      for (const reference of found) if (!map.has(reference)) map.set(reference, await resolveConditional(ctx, db, reference));
    } catch (err) {
      throw annotate(asFhirError(err), i);
    }
  }
  if (map.size === 0) return;
  for (const req of requests) if (req.body !== undefined) req.body = req.method === 'PATCH' ? rewriteReferences(req.body, map, 0) : rewrite(ctx, req.body, map);
  for (const req of requests) {
    for (const [k, v] of [...req.query]) if (map.has(v)) req.query.set(k, map.get(v)!);
  }
}

/** The resource a write entry will write, as `Type/id`; undefined for reads and for criteria that match nothing to delete. */
async function identityOf(ctx: BaseContext, db: Db, req: FhirRequest): Promise<string | undefined> {
  if (req.method === 'GET' || req.path.includes('$')) return undefined; // reads, operations
  const [type = '', id] = req.path.split('/');
  if (id !== undefined) return req.path.split('/').length === 2 ? `${type}/${id}` : undefined;
  if (!ctx.defs.isResourceType(type)) return undefined; // the entry fails as it runs, with the usual 404
  if (req.method === 'POST') {
    const match = req.ifNoneExist ? await findMatches(ctx, db, type, req.ifNoneExist) : [];
    if (match.length > 1) return undefined; // the entry fails as it runs: 412
    if (match.length === 1) return `${type}/${match[0]}`;
    req.assignedId = newResourceId(ctx.now().getTime());
    return `${type}/${req.assignedId}`;
  }
  if (req.method === 'PUT' || req.method === 'DELETE') {
    const match = await findMatches(ctx, db, type, req.query);
    if (match.length > 1) return undefined; // 412 as it runs
    if (match.length === 1) {
      if (req.method === 'PUT') req.assignedId = match[0];
      return `${type}/${match[0]}`;
    }
    if (req.method === 'DELETE') return undefined;
    const bodyId = (req.body as { id?: unknown } | undefined)?.id;
    req.assignedId = typeof bodyId === 'string' ? bodyId : newResourceId(ctx.now().getTime());
    return `${type}/${req.assignedId}`;
  }
  return undefined;
}

/** Entry resources are not validated yet here, so the walk guards its own depth. */
const MAX_DEPTH = 64;

/** `Type?criteria` in a reference: a conditional reference (http.html#trules). */
const CONDITIONAL_REFERENCE = /^([A-Z][A-Za-z]{0,63})\?(.+)$/;

/** The conditional references in `value`'s `reference` elements. */
function collectConditional(value: unknown, found: Set<string>, depth = 0): void {
  if (value === null || typeof value !== 'object') return;
  if (depth > MAX_DEPTH) throw badRequest(`Bundle entry nested deeper than ${MAX_DEPTH} levels`);
  if (Array.isArray(value)) {
    for (const v of value) collectConditional(v, found, depth + 1);
    return;
  }
  for (const [k, v] of Object.entries(value)) {
    if (k === 'reference' && typeof v === 'string') {
      if (CONDITIONAL_REFERENCE.test(v)) found.add(v);
    } else collectConditional(v, found, depth + 1);
  }
}

/** Primitive types whose values name a resource, so hold a fullUrl to replace (http.html#trules). */
const URI_TYPES = new Set(['uri', 'url', 'canonical', 'oid', 'uuid']);
const NARRATIVE_LINK = /\b(href|src)(\s*=\s*)"([^"]*)"/g;

/**
 * Replaces what `map` knows (fullUrls, conditional references) wherever FHIR says a transaction
 * replaces them: `Reference.reference`, elements of type uri, url, canonical, oid and uuid, and
 * `href` / `src` in the narrative; not in other strings (an Identifier's value may be a urn:uuid
 * that is not a reference). Walked by the version's definitions; what they do not know (an
 * invalid entry, which then fails) is walked for `reference` keys alone.
 */
function rewrite(ctx: BaseContext, value: unknown, map: Map<string, string>): unknown {
  const resourceType = (value as { resourceType?: unknown } | null)?.resourceType;
  const table = typeof resourceType === 'string' && ctx.defs.isResourceType(resourceType) ? ctx.defs.types.get(resourceType)?.root : undefined;
  return table ? rewriteTyped(ctx, value as Record<string, unknown>, table, map, 0) : rewriteReferences(value, map, 0);
}

function rewriteTyped(ctx: BaseContext, obj: Record<string, unknown>, table: ElementTable, map: Map<string, string>, depth: number): unknown {
  if (depth > MAX_DEPTH) throw badRequest(`Bundle entry nested deeper than ${MAX_DEPTH} levels`);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(obj)) {
    const prop = table.props.get(key);
    if (!prop) out[key] = v;
    else if (Array.isArray(v)) out[key] = v.map((item) => rewriteItem(ctx, prop, table, item, map, depth));
    else out[key] = rewriteItem(ctx, prop, table, v, map, depth);
  }
  return out;
}

function rewriteItem(ctx: BaseContext, prop: Prop, table: ElementTable, value: unknown, map: Map<string, string>, depth: number): unknown {
  if (value === null || value === undefined) return value;
  if (prop.kind === 'primitive') {
    if (typeof value !== 'string') return value;
    const type = prop.primitive?.name;
    if (type === 'xhtml') return value.replace(NARRATIVE_LINK, (all, attr: string, eq: string, url: string) => (map.has(url) ? `${attr}${eq}"${map.get(url)}"` : all));
    const holdsReference = URI_TYPES.has(type ?? '') || (table.path === 'Reference' && prop.key === 'reference');
    return holdsReference && map.has(value) ? map.get(value) : value;
  }
  if (typeof value !== 'object' || Array.isArray(value)) return value;
  if (prop.kind === 'resource') return rewrite(ctx, value, map);
  if (prop.kind === 'complex' && prop.table) return rewriteTyped(ctx, value as Record<string, unknown>, prop.table, map, depth + 1);
  return value;
}

/** For what the definitions do not know: every `reference` that `map` knows. */
function rewriteReferences(value: unknown, map: Map<string, string>, depth: number): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth > MAX_DEPTH) throw badRequest(`Bundle entry nested deeper than ${MAX_DEPTH} levels`);
  if (Array.isArray(value)) return value.map((v) => rewriteReferences(v, map, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = k === 'reference' && typeof v === 'string' && map.has(v) ? map.get(v) : rewriteReferences(v, map, depth + 1);
  }
  return out;
}

async function resolveConditional(ctx: BaseContext, db: Db, reference: string): Promise<string> {
  const [, type, criteria] = CONDITIONAL_REFERENCE.exec(reference)!;
  if (!ctx.defs.isResourceType(type!)) throw badRequest(`The conditional reference '${reference.slice(0, 200)}' names no resource type of FHIR ${ctx.adapter.fhirVersion}`);
  const ids = await findMatches(ctx, db, type!, criteria!);
  if (ids.length !== 1) {
    throw preconditionFailed(`The conditional reference '${reference.slice(0, 200)}' matches ${ids.length === 0 ? 'no' : 'more than one'} ${type}: it must match exactly one`);
  }
  return `${type}/${ids[0]}`;
}

function annotate(err: FhirError, index: number): FhirError {
  for (const issue of err.issues) {
    issue.diagnostics = `Bundle.entry[${index}]: ${issue.diagnostics ?? ''}`;
  }
  return err;
}

const REASONS: Record<number, string> = { 200: 'OK', 201: 'Created', 204: 'No Content', 304: 'Not Modified' };

/** An entry's response; a HEAD's without the resource, a write's as its `Prefer: return=…` asks. */
function responseEntry(ctx: BaseContext, r: FhirResponse, req: FhirRequest): BundleEntry {
  const resource = r.resource ?? (r.json ? (JSON.parse(r.json) as Resource) : undefined);
  const wanted = r.location !== undefined ? preferredReturn(req.prefer) : undefined;
  const shown = !req.head && wanted !== 'minimal' && wanted !== 'operationoutcome';
  return {
    ...(resource?.id ? { fullUrl: `${ctx.baseUrl}/${resource.resourceType}/${resource.id}` } : {}),
    ...(resource && shown ? { resource } : {}),
    response: {
      status: `${r.status} ${REASONS[r.status] ?? ''}`.trim(),
      ...(r.location ? { location: r.location } : {}),
      ...(r.versionId !== undefined ? { etag: etagOf(r.versionId) } : {}),
      ...(r.lastUpdated ? { lastModified: r.lastUpdated } : {}),
      ...(wanted === 'operationoutcome' ? { outcome: outcomeOf('information', 'informational', `${r.status === 201 ? 'Created' : 'Updated'} ${r.location}`) } : {}),
    },
  };
}
