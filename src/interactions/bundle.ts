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

/** Stands in for the store while a costly read entry is checked: every search and history is empty (reads by id come from the transaction). */
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
    // Costly reads are checked against empty searches and history, but reads by id as they are
    // (an instance history first looks whether its resource exists).
    const checking: Db = { ...EMPTY, read: (...a) => inner.read(...a), vread: (...a) => inner.vread(...a) };
    await resolveIdentities(ctx, inner, entries, requests);
    const out: (FhirResponse | undefined)[] = new Array(requests.length).fill(undefined);
    for (const i of order) {
      try {
        // A costly read that is wrong (unknown parameter, bad cursor) still fails the whole
        // transaction: it is checked here, against an empty store, and run after the commit.
        if (isCostlyRead(requests[i]!)) await route(ctx, checking, requests[i]!);
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
 * Before any entry runs (FHIR http.html#trules): gives each entry that writes its identity (a
 * create its new id; a conditional update or delete the match of its criteria, or the id an update
 * will create), fails the transaction when two of them have one identity, replaces each entry's
 * `urn:uuid:` / `urn:oid:` fullUrl by its identity wherever the spec says (`replaceLinks`) and in
 * the entries' criteria, and resolves conditional references (`Patient?identifier=…`): to the
 * entry of this transaction with the same criteria, else to the one resource they match. A
 * conditional create that matches an existing resource writes nothing: its fullUrl names the
 * match, and it counts as no write. The entries keep their identity when they run (`assignedId`).
 * Operations (`$…`) and searches (`_search`) are left as written.
 */
async function resolveIdentities(ctx: BaseContext, db: Db, entries: BundleEntry[], requests: FhirRequest[]): Promise<void> {
  const owner = new Map<string, number>();
  const map = new Map<string, string>();
  /** Criteria (`Type?query`, normalised) of the entries that create or update by them, to their identity. */
  const byCriteria = new Map<string, string>();
  const resolve = async (i: number) => {
    const req = requests[i]!;
    let found: Identity | undefined;
    try {
      found = await identityOf(ctx, db, req);
    } catch (err) {
      throw annotate(asFhirError(err), i);
    }
    if (found === undefined) return;
    if (found.writes) {
      const other = owner.get(found.identity);
      if (other !== undefined) {
        throw badRequest(`Bundle.entry[${other}] and Bundle.entry[${i}] both write ${found.identity}: a transaction may touch a resource once`, [`Bundle.entry[${i}]`]);
      }
      owner.set(found.identity, i);
    }
    if (found.criteria) byCriteria.set(found.criteria, found.identity);
    const fullUrl = entries[i]!.fullUrl;
    if (fullUrl && LOCAL_FULL_URL.test(fullUrl) && req.method !== 'DELETE') map.set(fullUrl, found.identity);
  };
  // Literal identities and plain creates first: conditional criteria may name their fullUrls.
  const conditional = (req: FhirRequest) => (req.method === 'POST' && req.ifNoneExist !== undefined) || ((req.method === 'PUT' || req.method === 'DELETE') && !req.path.includes('/'));
  for (const i of requests.keys()) if (!conditional(requests[i]!)) await resolve(i);
  for (const req of requests) replaceInCriteria(req, map);
  for (const i of requests.keys()) if (conditional(requests[i]!)) await resolve(i);
  for (const req of requests) replaceInCriteria(req, map);
  // Conditional references: an entry's own criteria first, else a search; each resolved once.
  for (const [i, req] of requests.entries()) {
    if (req.body === undefined || !rewritable(req)) continue;
    const found = new Set<string>();
    try {
      if (req.method === 'PATCH') collectReferences(req.body, found, 0);
      else replaceLinks(ctx, req.body, (value, kind) => (kind === 'reference' && CONDITIONAL_REFERENCE.test(value) && found.add(value), value));
      for (const reference of found) {
        if (map.has(reference)) continue;
        const [, type, criteria] = CONDITIONAL_REFERENCE.exec(reference)!;
        map.set(reference, byCriteria.get(criteriaKey(type!, criteria!)) ?? (await resolveConditional(ctx, db, reference)));
      }
    } catch (err) {
      throw annotate(asFhirError(err), i);
    }
  }
  if (map.size === 0) return;
  for (const req of requests) {
    if (req.body === undefined || !rewritable(req)) continue;
    req.body = req.method === 'PATCH' ? rewriteReferences(req.body, map, 0) : replaceLinks(ctx, req.body, (value) => mapped(value, map));
  }
}

/** fullUrls a transaction gives an identity to; an absolute URL already is one (and may be a canonical). */
const LOCAL_FULL_URL = /^urn:(uuid|oid):/;

/**
 * Entries whose bodies are resources of this transaction: not an operation's input, not a search
 * form, and not a Bundle stored as a resource (a document: its links are its own, and may be signed).
 */
const rewritable = (req: FhirRequest) =>
  !req.path.includes('$') && !req.path.endsWith('_search') && (req.body as { resourceType?: unknown } | undefined)?.resourceType !== 'Bundle';

/** `Type?query` with its parameters in a stable order, so two spellings of one criteria compare equal. */
function criteriaKey(type: string, query: string | URLSearchParams): string {
  const q = new URLSearchParams(query);
  q.sort();
  return `${type}?${q.toString()}`;
}

/** An entry's criteria (conditional update/delete query, If-None-Exist) with the fullUrls `map` knows replaced. */
function replaceInCriteria(req: FhirRequest, map: Map<string, string>): void {
  if (map.size === 0) return;
  for (const [k, v] of [...req.query]) if (map.has(v)) req.query.set(k, map.get(v)!);
  if (req.ifNoneExist !== undefined) {
    const q = new URLSearchParams(req.ifNoneExist.replace(/^\?/, ''));
    let changed = false;
    for (const [k, v] of [...q]) if (map.has(v)) (q.set(k, map.get(v)!), (changed = true));
    if (changed) req.ifNoneExist = q.toString();
  }
}

/** A write entry's identity; `writes` false for a conditional create that matched (it writes nothing). */
interface Identity {
  identity: string;
  writes: boolean;
  /** The criteria it creates or updates by, for conditional references to name it. */
  criteria?: string;
}

/** The resource an entry will write, as `Type/id`; undefined for reads, operations, and criteria that match nothing to delete or several. */
async function identityOf(ctx: BaseContext, db: Db, req: FhirRequest): Promise<Identity | undefined> {
  if (req.method === 'GET' || req.path.includes('$')) return undefined; // reads, operations
  const parts = req.path.split('/');
  const [type = '', id] = parts;
  if (id !== undefined) return parts.length === 2 && !id.startsWith('_') ? { identity: `${type}/${id}`, writes: true } : undefined;
  if (!ctx.defs.isResourceType(type)) return undefined; // the entry fails as it runs, with the usual 404
  if (req.method === 'POST') {
    const criteria = req.ifNoneExist !== undefined ? criteriaKey(type, req.ifNoneExist.replace(/^\?/, '')) : undefined;
    const match = req.ifNoneExist !== undefined ? await findMatches(ctx, db, type, req.ifNoneExist) : [];
    if (match.length > 1) return undefined; // the entry fails as it runs: 412
    if (match.length === 1) return { identity: `${type}/${match[0]}`, writes: false, ...(criteria ? { criteria } : {}) };
    req.assignedId = newResourceId(ctx.now().getTime());
    return { identity: `${type}/${req.assignedId}`, writes: true, ...(criteria ? { criteria } : {}) };
  }
  if (req.method === 'PUT' || req.method === 'DELETE') {
    const match = await findMatches(ctx, db, type, req.query);
    if (match.length > 1) return undefined; // 412 as it runs
    const criteria = req.method === 'PUT' ? { criteria: criteriaKey(type, req.query) } : {};
    if (match.length === 1) {
      if (req.method === 'PUT') req.assignedId = match[0];
      return { identity: `${type}/${match[0]}`, writes: true, ...criteria };
    }
    if (req.method === 'DELETE') return undefined;
    const bodyId = (req.body as { id?: unknown } | undefined)?.id;
    req.assignedId = typeof bodyId === 'string' ? bodyId : newResourceId(ctx.now().getTime());
    return { identity: `${type}/${req.assignedId}`, writes: true, ...criteria };
  }
  return undefined;
}

/** Entry resources are not validated yet here, so the walks guard their own depth. */
const MAX_DEPTH = 64;

/** `Type?criteria` in a reference: a conditional reference (http.html#trules). */
const CONDITIONAL_REFERENCE = /^([A-Z][A-Za-z]{0,63})\?(.+)$/;

/** What `map` makes of a link: itself, or (a version-specific `…/_history/n` keeping its version) its identity. */
function mapped(value: string, map: Map<string, string>): string {
  const to = map.get(value);
  if (to !== undefined) return to;
  const at = value.indexOf('/_history/');
  if (at > 0 && map.has(value.slice(0, at)) && !CONDITIONAL_REFERENCE.test(value)) return `${map.get(value.slice(0, at))}${value.slice(at)}`;
  return value;
}

/** Primitive types whose values name a resource, and so are replaced (http.html#trules; canonicals are not). */
const URI_TYPES = new Set(['uri', 'url', 'oid', 'uuid']);
const NARRATIVE_LINK = /\b(href|src)(\s*=\s*)(["'])(.*?)\3/g;

type LinkKind = 'reference' | 'uri' | 'narrative';

/**
 * Maps every link of a resource through `fn`, where FHIR says a transaction replaces them:
 * `Reference.reference`, elements of type uri, url, oid and uuid, and `href` / `src` in the
 * narrative; not canonicals, and not other strings (an Identifier's value may be a urn:uuid that is
 * no reference). Walked by the version's definitions, into contained resources but not into other
 * resources a resource holds (a Bundle's entries, a Parameters' resource: their links are theirs).
 * What the definitions do not know (an invalid entry, which then fails) is walked for `reference`
 * keys alone.
 */
function replaceLinks(ctx: BaseContext, value: unknown, fn: (value: string, kind: LinkKind) => string): unknown {
  const resourceType = (value as { resourceType?: unknown } | null)?.resourceType;
  const table = typeof resourceType === 'string' && ctx.defs.isResourceType(resourceType) ? ctx.defs.types.get(resourceType)?.root : undefined;
  if (!table) return mapReferences(value, (v) => fn(v, 'reference'), 0);
  return linksOf(ctx, value as Record<string, unknown>, table, fn, 0);
}

function linksOf(ctx: BaseContext, obj: Record<string, unknown>, table: ElementTable, fn: (value: string, kind: LinkKind) => string, depth: number): unknown {
  if (depth > MAX_DEPTH) throw badRequest(`Bundle entry nested deeper than ${MAX_DEPTH} levels`);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(obj)) {
    const prop = table.props.get(key);
    if (!prop) out[key] = v;
    else if (Array.isArray(v)) out[key] = v.map((item) => linkItem(ctx, prop, table, item, fn, depth));
    else out[key] = linkItem(ctx, prop, table, v, fn, depth);
  }
  return out;
}

function linkItem(ctx: BaseContext, prop: Prop, table: ElementTable, value: unknown, fn: (value: string, kind: LinkKind) => string, depth: number): unknown {
  if (value === null || value === undefined) return value;
  if (prop.kind === 'primitive') {
    if (typeof value !== 'string') return value;
    const type = prop.primitive?.name;
    if (type === 'xhtml') return value.replace(NARRATIVE_LINK, (all, attr: string, eq: string, quote: string, url: string) => `${attr}${eq}${quote}${fn(url, 'narrative')}${quote}`);
    if (table.path === 'Reference' && prop.key === 'reference') return fn(value, 'reference');
    return URI_TYPES.has(type ?? '') ? fn(value, 'uri') : value;
  }
  if (typeof value !== 'object' || Array.isArray(value)) return value;
  if (prop.kind === 'resource') return prop.element.name === 'contained' ? replaceLinks(ctx, value, fn) : value;
  if (prop.table) return linksOf(ctx, value as Record<string, unknown>, prop.table, fn, depth + 1); // complex, and primitive extensions (`_status`)
  return value;
}

/** For a JSON Patch and what the definitions do not know: every `reference` key, mapped through `fn`. */
function mapReferences(value: unknown, fn: (value: string) => string, depth: number): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth > MAX_DEPTH) throw badRequest(`Bundle entry nested deeper than ${MAX_DEPTH} levels`);
  if (Array.isArray(value)) return value.map((v) => mapReferences(v, fn, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = k === 'reference' && typeof v === 'string' ? fn(v) : mapReferences(v, fn, depth + 1);
  return out;
}

function collectReferences(value: unknown, found: Set<string>, depth: number): void {
  mapReferences(value, (v) => (CONDITIONAL_REFERENCE.test(v) && found.add(v), v), depth);
}

function rewriteReferences(value: unknown, map: Map<string, string>, depth: number): unknown {
  return mapReferences(value, (v) => mapped(v, map), depth);
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
