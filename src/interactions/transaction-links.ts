/**
 * A transaction's identities and links (FHIR http.html#trules), resolved before any entry runs:
 * which resource each entry writes, which entries would write one resource twice, and what every
 * `urn:uuid:` fullUrl and conditional reference in the Bundle stands for, replaced where the spec
 * says links are. bundle.ts runs the entries afterwards.
 */
import { keepWrittenNumbers } from '../fhir/json.ts';
import { newResourceId } from '../fhir/ids.ts';
import { FhirError, badRequest, asFhirError, preconditionFailed } from '../fhir/errors.ts';
import type { BundleEntry, Resource } from '../fhir/types.ts';
import type { ElementTable, Prop } from '../fhir/definitions/index.ts';
import { findMatches } from './conditional.ts';
import type { BaseContext, Db, FhirRequest } from './context.ts';

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
export async function resolveIdentities(ctx: BaseContext, db: Db, entries: BundleEntry[], requests: FhirRequest[]): Promise<void> {
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
  // All are collected (and counted) before any search runs.
  const searches = new Map<string, number>();
  for (const [i, req] of requests.entries()) {
    if (req.body === undefined || !rewritable(req)) continue;
    let found: Set<string>;
    try {
      found = conditionalReferencesOf(ctx, req.body, req.method === 'PATCH');
    } catch (err) {
      throw annotate(asFhirError(err), i);
    }
    for (const reference of found) {
      if (map.has(reference) || searches.has(reference)) continue;
      const [, type, criteria] = CONDITIONAL_REFERENCE.exec(reference)!;
      const own = byCriteria.get(criteriaKey(type!, criteria!));
      if (own !== undefined) map.set(reference, own);
      else searches.set(reference, i);
    }
  }
  if (searches.size > MAX_CONDITIONAL_SEARCHES_PER_BUNDLE) {
    throw new FhirError(400, 'too-costly', `The transaction's conditional references need ${searches.size} searches, more than the ${MAX_CONDITIONAL_SEARCHES_PER_BUNDLE} one transaction may run: send it in parts`);
  }
  for (const [reference, i] of searches) {
    try {
      map.set(reference, await resolveConditional(ctx, db, reference));
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
  if (depth > MAX_DEPTH) throw badRequest(`The resource is nested deeper than ${MAX_DEPTH} levels`);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(obj)) {
    const prop = table.props.get(key);
    if (!prop) out[key] = v;
    else if (Array.isArray(v)) out[key] = copied(v, v.map((item) => linkItem(ctx, prop, table, item, fn, depth)));
    else out[key] = linkItem(ctx, prop, table, v, fn, depth);
  }
  return copied(obj, out);
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

/** A copy keeps the forms its numbers were written in (`1.50`: fhir/json.ts). */
function copied<T extends object>(from: object, to: T): T {
  keepWrittenNumbers(from, to);
  return to;
}

/** For a JSON Patch and what the definitions do not know: every `reference` key, mapped through `fn`. */
function mapReferences(value: unknown, fn: (value: string) => string, depth: number): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth > MAX_DEPTH) throw badRequest(`The resource is nested deeper than ${MAX_DEPTH} levels`);
  if (Array.isArray(value)) return copied(value, value.map((v) => mapReferences(v, fn, depth + 1)));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = k === 'reference' && typeof v === 'string' ? fn(v) : mapReferences(v, fn, depth + 1);
  return copied(value, out);
}

/** Every conditional reference under a `reference` key anywhere in `value`, without copying it; depth counts objects, as linksOf does. */
function collectReferences(value: unknown, found: Set<string>, depth: number): void {
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (const v of value) collectReferences(v, found, depth);
    return;
  }
  if (depth > MAX_DEPTH) throw badRequest(`The resource is nested deeper than ${MAX_DEPTH} levels`);
  for (const k in value) {
    const v = (value as Record<string, unknown>)[k];
    if (k === 'reference' && typeof v === 'string') {
      if (CONDITIONAL_REFERENCE.test(v)) found.add(v);
    } else collectReferences(v, found, depth + 1);
  }
}

/**
 * The conditional references a write replaces in `body`: by the definitions (as replaceLinks
 * walks), or under any `reference` key of a JSON Patch; at most MAX_CONDITIONAL_REFERENCES.
 */
function conditionalReferencesOf(ctx: BaseContext, body: unknown, patch: boolean): Set<string> {
  const found = new Set<string>();
  if (patch) collectReferences(body, found, 0);
  else replaceLinks(ctx, body, (value, kind) => (kind === 'reference' && CONDITIONAL_REFERENCE.test(value) && found.add(value), value));
  checkConditionalCount(found.size);
  return found;
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

/**
 * Conditional references (`Patient?identifier=…`) in a resource written outside a transaction
 * (create, update, patch), each resolved inside the write to the one resource it matches (none or
 * several: 412), as a transaction resolves them. A resource without one costs a walk of its
 * `reference` keys.
 */
export async function resolveConditionalReferences(ctx: BaseContext, db: Db, resource: Resource): Promise<Resource> {
  // A Bundle stored as a resource (a document) keeps its links as written, as in a transaction.
  if (resource.resourceType === 'Bundle') return resource;
  // Most resources have none: a walk of their `reference` keys, copying nothing, says so.
  const anywhere = new Set<string>();
  collectReferences(resource, anywhere, 0);
  if (anywhere.size === 0) return resource;
  const found = conditionalReferencesOf(ctx, resource, false);
  if (found.size === 0) return resource;
  const map = new Map<string, string>();
  for (const reference of found) map.set(reference, await resolveConditional(ctx, db, reference));
  return replaceLinks(ctx, resource, (value) => mapped(value, map)) as Resource;
}

/**
 * The most distinct conditional references one resource may hold: each is a search run inside
 * the write (on SQLite, on the one writer thread, so every other write waits for them).
 */
export const MAX_CONDITIONAL_REFERENCES = 100;
/** The most searches a transaction's conditional references may run together (each distinct one once). */
export const MAX_CONDITIONAL_SEARCHES_PER_BUNDLE = 1_000;

function checkConditionalCount(n: number): void {
  if (n > MAX_CONDITIONAL_REFERENCES) {
    throw new FhirError(400, 'too-costly', `The resource holds ${n} different conditional references, more than the ${MAX_CONDITIONAL_REFERENCES} one write may resolve: resolve them first, or send the resource in parts`);
  }
}

/** Names the entry an error came from. */
export function annotate(err: FhirError, index: number): FhirError {
  for (const issue of err.issues) {
    issue.diagnostics = `Bundle.entry[${index}]: ${issue.diagnostics ?? ''}`;
  }
  return err;
}

