import { newResourceId } from '../fhir/ids.ts';
import jsonpatch from 'fast-json-patch';
import { badRequest, conflict, gone, notFound, outcomeOf, preconditionFailed, unprocessable } from '../fhir/errors.ts';
import { forgetWrittenNumbers, parseJson, setWrittenNumber, stringifyJson, writtenNumber } from '../fhir/json.ts';
import { sameJson, stamp } from '../fhir/meta.ts';
import type { Resource } from '../fhir/types.ts';
import type { Reach } from '../auth/index.ts';
import type { StoredVersion, Transaction, WriteMethod } from '../store/store.ts';
import { assertWithin, demand, hidden, present, presentResource, seesVersion } from './access.ts';
import { findMatches } from './conditional.ts';
import { resolveConditionalReferences } from './transaction-links.ts';
import { type BaseContext, type Db, type FhirResponse, joined } from './context.ts';
import { type Summary, subset } from './summary.ts';
import { parseElements, parseSummary } from '../search/parse/results.ts';
import { assertId, assertResourceBody, type EtagCondition, etagHolds, parseEtags } from './resource.ts';

/**
 * create, read, vread, update, patch and delete as HTTP-free functions. Every write runs inside one
 * store transaction: read the current version, check preconditions, write the next version.
 */

export async function read(ctx: BaseContext, db: Db, type: string, id: string, ifNoneMatch?: string, query?: URLSearchParams): Promise<FhirResponse> {
  assertId(id);
  const shape = subsetAsked(query);
  const r = demand(ctx, type, 'r');
  const current = await db.read(ctx.version, type, id);
  if (!current || !(await seesVersion(ctx, db, current, r))) throw hidden(type, id);
  if (current.deleted) throw gone(`${type}/${id} was deleted (version ${current.versionId})`);
  // If-None-Match: any listed tag (or `*`) matching the current version is a 304.
  if (ifNoneMatch !== undefined && etagHolds(parseEtags(ifNoneMatch), current.versionId)) {
    return { status: 304, versionId: current.versionId, lastUpdated: current.lastUpdated };
  }
  return found(ctx, current, shape);
}

export async function vread(ctx: BaseContext, db: Db, type: string, id: string, vid: string, query?: URLSearchParams): Promise<FhirResponse> {
  assertId(id);
  const shape = subsetAsked(query);
  const r = demand(ctx, type, 'r');
  if (!/^[1-9]\d{0,14}$/.test(vid)) throw notFound(`${type}/${id} has no version '${vid.slice(0, 20)}'`);
  const version = await db.vread(ctx.version, type, id, Number(vid));
  if (!version || !(await seesVersion(ctx, db, version, r))) throw notFound(`${type}/${id} has no version ${vid}`);
  if (version.deleted) throw gone(`Version ${vid} of ${type}/${id} is a deletion`);
  return found(ctx, version, shape);
}

/** `_summary` / `_elements` on a read (http.html: they apply to every interaction that returns a resource). */
interface Shape {
  summary?: Summary;
  elements?: string[];
}

function subsetAsked(query: URLSearchParams | undefined): Shape | undefined {
  const summary = query?.get('_summary') ?? undefined;
  const elements = query?.get('_elements') ?? undefined;
  if (summary === undefined && elements === undefined) return undefined;
  return {
    ...(summary !== undefined ? { summary: parseSummary(summary, false) } : {}),
    ...(elements !== undefined ? { elements: parseElements(elements) } : {}),
  };
}

function found(ctx: BaseContext, v: StoredVersion, shape?: Shape): FhirResponse {
  const base = { status: 200, versionId: v.versionId, lastUpdated: v.lastUpdated };
  if (!shape) return { ...base, json: present(ctx, v)! };
  return { ...base, resource: subset(ctx.defs, presentResource(ctx, parseJson(v.json!) as Resource), shape.summary, shape.elements) };
}

export async function create(
  ctx: BaseContext,
  db: Db,
  type: string,
  body: unknown,
  ifNoneExist?: string,
  assignedId?: string,
): Promise<FhirResponse> {
  const r = demand(ctx, type, 'c');
  const resource = assertResourceBody(ctx, type, body);
  return db.transaction(async (tx) => {
    if (ifNoneExist !== undefined) {
      const ids = await findMatches(ctx, joined(tx, ctx.store), type, ifNoneExist);
      if (ids.length > 1) throw preconditionFailed(`If-None-Exist '${ifNoneExist}' matches more than one ${type}`);
      // In a transaction the entry was promised a new id because nothing matched before any entry
      // ran: a match now was written by an earlier entry, and references to this one would dangle.
      if (ids.length === 1 && assignedId !== undefined) throw sameResource(`${type}/${ids[0]}`);
      if (ids.length === 1) {
        // The match, with its Location: `Prefer: return=…` applies to it as to a create.
        const existing = (await tx.read(ctx.version, type, ids[0]!))!;
        const location = versionLocation(ctx, type, existing.id, existing.versionId);
        return { ...found(ctx, existing), location, outcome: informational(`Found ${location} by If-None-Exist; nothing written`) };
      }
    }
    const id = assignedId ?? newResourceId(ctx.now().getTime());
    return writeVersion(ctx, tx, resource, id, undefined, 'POST', r);
  });
}

export async function update(
  ctx: BaseContext,
  db: Db,
  type: string,
  id: string,
  body: unknown,
  ifMatch?: string,
  ifNoneMatch?: string,
): Promise<FhirResponse> {
  assertId(id);
  const resource = assertResourceBody(ctx, type, body);
  if (resource.id === undefined) throw badRequest('The resource in an update must have an id', ['id']);
  if (resource.id !== id) throw badRequest(`The resource id '${resource.id}' does not match the URL id '${id}'`, ['id']);
  const expected = ifMatch === undefined ? undefined : parseEtags(ifMatch);
  const refused = ifNoneMatch === undefined ? undefined : parseEtags(ifNoneMatch);
  const r = demand(ctx, type, 'u');
  return db.transaction(async (tx) => {
    const current = await tx.read(ctx.version, type, id);
    await assertWritable(ctx, joined(tx, ctx.store), type, id, current, r);
    checkIfMatch(type, id, current, expected);
    checkIfNoneMatch(type, id, current, refused);
    return writeVersion(ctx, tx, resource, id, current, 'PUT', r);
  });
}

/**
 * An update or patch may change only what the caller sees (else 404, as for any unknown resource);
 * one that creates needs the create letter too.
 */
export async function assertWritable(ctx: BaseContext, db: Db, type: string, id: string, current: StoredVersion | undefined, r: Reach): Promise<void> {
  if (current && !(await seesVersion(ctx, db, current, r))) throw hidden(type, id);
  if (!current || current.deleted) demand(ctx, type, 'c');
}

/**
 * PUT [type]?criteria (FHIR http.html#cond-update): one match is updated; none creates, under the
 * body's id if it has one (update as create) or a new one; several are a 412. No match with an id
 * that names a live resource is a 409: the criteria did not select it, so it is not overwritten
 * (R4B/R5 say so; R4 says only "create", and a create never overwrites either). If-Match applies
 * to what the criteria found: with no match there is no version to match, a 412.
 */
export async function conditionalUpdate(
  ctx: BaseContext,
  db: Db,
  type: string,
  query: URLSearchParams,
  body: unknown,
  ifMatch?: string,
  assignedId?: string,
): Promise<FhirResponse> {
  const r = demand(ctx, type, 'u');
  const resource = assertResourceBody(ctx, type, body);
  const expected = ifMatch === undefined ? undefined : parseEtags(ifMatch);
  return db.transaction(async (tx) => {
    const ids = await findMatches(ctx, joined(tx, ctx.store), type, query);
    if (ids.length > 1) throw preconditionFailed(`The criteria match more than one ${type}`);
    // In a transaction: resolved before any entry ran; a different answer now is an earlier entry's doing.
    if (assignedId !== undefined && ids.length === 1 && ids[0] !== assignedId) throw sameResource(`${type}/${ids[0]}`);
    const id = ids[0] ?? assignedId ?? resource.id ?? newResourceId(ctx.now().getTime());
    if (resource.id !== undefined && resource.id !== id) {
      throw badRequest(`The resource id '${resource.id}' does not match the resource found (${type}/${id})`, ['id']);
    }
    assertId(id);
    const current = await tx.read(ctx.version, type, id);
    await assertWritable(ctx, joined(tx, ctx.store), type, id, current, r);
    if (ids.length === 0 && current && !current.deleted) {
      throw conflict(`No ${type} matches the criteria, and ${type}/${id} exists: a conditional update does not overwrite a resource its criteria did not select`);
    }
    checkIfMatch(type, id, current, expected);
    return writeVersion(ctx, tx, resource, id, current, 'PUT', r);
  });
}

export async function patch(
  ctx: BaseContext,
  db: Db,
  type: string,
  id: string,
  body: unknown,
  ifMatch?: string,
): Promise<FhirResponse> {
  assertId(id);
  if (!Array.isArray(body)) throw badRequest('A JSON Patch body must be an array of operations (RFC 6902)');
  const expected = ifMatch === undefined ? undefined : parseEtags(ifMatch);
  const r = demand(ctx, type, 'u');
  return db.transaction(async (tx) => {
    const current = await tx.read(ctx.version, type, id);
    if (!current || !(await seesVersion(ctx, joined(tx, ctx.store), current, r))) throw hidden(type, id);
    if (current.deleted) throw gone(`${type}/${id} was deleted`);
    checkIfMatch(type, id, current, expected);
    const patched = applyJsonPatch(parseJson(current.json!) as Resource, body);
    if (patched.resourceType !== type || patched.id !== id) {
      throw unprocessable('A patch may not change the resourceType or id');
    }
    return writeVersion(ctx, tx, assertResourceBody(ctx, type, patched), id, current, 'PATCH', r);
  });
}

/** RFC 6902's operations; fast-json-patch also runs its own (`_get`), which a client may not send. */
const PATCH_OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

function applyJsonPatch(doc: Resource, ops: unknown[]): Resource {
  const unknown = ops.findIndex((op) => typeof op !== 'object' || op === null || !PATCH_OPS.has((op as { op?: unknown }).op as string));
  if (unknown >= 0) throw badRequest(`Invalid JSON Patch: operation ${unknown} is not one of ${[...PATCH_OPS].join(', ')} (RFC 6902)`);
  let patched: unknown;
  try {
    const error = jsonpatch.validate(ops as jsonpatch.Operation[], doc);
    if (error) throw error;
    patched = jsonpatch.applyPatch(doc, ops as jsonpatch.Operation[], false, true).newDocument;
  } catch (err) {
    // The library's own errors, and the TypeErrors some paths (`/__proto__/…`) raise in its validator.
    const e = err as { name?: string; message?: string; index?: number };
    if (e.name === 'TEST_OPERATION_FAILED') throw unprocessable('JSON Patch test operation failed');
    throw badRequest(`Invalid JSON Patch: ${e.index !== undefined ? `${e.name} at operation ${e.index}: ` : ''}${(e.message ?? String(err)).split('\n')[0]}`);
  }
  // Operations on the whole document ("path": "") may leave anything, or nothing, in its place.
  if (typeof patched !== 'object' || patched === null || Array.isArray(patched)) {
    throw unprocessable('A patch must leave a resource (a JSON object) in place of the document');
  }
  keepPatchedNumbers(patched, ops);
  return patched as Resource;
}

/**
 * After a patch, the forms numbers were written in (fhir/json.ts) follow it: a number an add or
 * replace sets has the patch's form; a member removed, replaced, moved away or copied over, and
 * the items of an array that gained or lost one, keep none of the old ones.
 */
function keepPatchedNumbers(doc: object, ops: unknown[]): void {
  for (const op of ops as { op: string; path: string; from?: string; value?: unknown }[]) {
    if (op.op === 'test') continue;
    for (const [path, sets] of [[op.path, op.op === 'add' || op.op === 'replace'], [op.op === 'move' ? op.from : undefined, false]] as const) {
      if (path === undefined) continue;
      const at = parentOf(doc, path);
      if (at === undefined) continue;
      const [holder, key] = at;
      if (Array.isArray(holder) && op.op !== 'replace') forgetWrittenNumbers(holder);
      const value = (holder as Record<string, unknown>)[key];
      const written = sets && typeof op.value === 'number' && value === op.value ? writtenNumber(op, 'value') : undefined;
      setWrittenNumber(holder, key, written);
    }
  }
}

/** The object or array a JSON Pointer's last step is in, and that step (`-`: the last item). */
function parentOf(doc: object, pointer: string): [object, string] | undefined {
  const keys = pointer.split('/').slice(1).map((k) => k.replaceAll('~1', '/').replaceAll('~0', '~'));
  if (keys.length === 0) return undefined;
  let holder: unknown = doc;
  for (const k of keys.slice(0, -1)) holder = typeof holder === 'object' && holder !== null ? (holder as Record<string, unknown>)[k] : undefined;
  if (typeof holder !== 'object' || holder === null) return undefined;
  const last = keys.at(-1)!;
  return [holder, Array.isArray(holder) && last === '-' ? String(holder.length - 1) : last];
}

export async function remove(ctx: BaseContext, db: Db, type: string, id: string, ifMatch?: string): Promise<FhirResponse> {
  assertId(id);
  const expected = ifMatch === undefined ? undefined : parseEtags(ifMatch);
  const r = demand(ctx, type, 'd');
  return db.transaction(async (tx) => {
    const current = await tx.read(ctx.version, type, id);
    if (current && !(await seesVersion(ctx, joined(tx, ctx.store), current, r))) throw hidden(type, id);
    checkIfMatch(type, id, current, expected);
    // Deleting what does not exist (any more) changes nothing and succeeds (FHIR http.html#delete).
    if (!current || current.deleted) return { status: 204 };
    const { versionId, lastUpdated } = await ctx.subscriptions.writeVersion(tx, type, id, undefined, current, 'DELETE', ctx.principal);
    return { status: 204, versionId, lastUpdated };
  });
}

/**
 * DELETE [type]?criteria (FHIR http.html#cdelete, single mode): no match is a 204 (nothing to
 * delete), one match is deleted as by DELETE [type]/[id] (a deletion version, its events), more
 * than one is a 412. The criteria are strict and run inside the delete, as for conditional update.
 */
export async function conditionalDelete(ctx: BaseContext, db: Db, type: string, query: URLSearchParams, ifMatch?: string): Promise<FhirResponse> {
  const r = demand(ctx, type, 'd');
  const expected = ifMatch === undefined ? undefined : parseEtags(ifMatch);
  return db.transaction(async (tx) => {
    const ids = await findMatches(ctx, joined(tx, ctx.store), type, query);
    if (ids.length > 1) throw preconditionFailed(`The criteria match more than one ${type}: a conditional delete deletes one at most`);
    if (ids.length === 0) return { status: 204 };
    const id = ids[0]!;
    const current = await tx.read(ctx.version, type, id);
    if (current && !(await seesVersion(ctx, joined(tx, ctx.store), current, r))) throw hidden(type, id);
    checkIfMatch(type, id, current, expected);
    if (!current || current.deleted) return { status: 204 };
    const { versionId, lastUpdated } = await ctx.subscriptions.writeVersion(tx, type, id, undefined, current, 'DELETE', ctx.principal);
    return { status: 204, versionId, lastUpdated };
  });
}

/** If-None-Match on a write (RFC 9110 §13.1.2): `*` creates only; a listed tag refuses that version. */
function checkIfNoneMatch(type: string, id: string, current: StoredVersion | undefined, refused: EtagCondition | undefined): void {
  const live = current && !current.deleted ? current.versionId : undefined;
  if (refused && etagHolds(refused, live)) throw preconditionFailed(`If-None-Match: ${type}/${id} exists at version ${live}`);
}

/** Two entries of one transaction that turn out, as they run, to be one resource. */
const sameResource = (ref: string) =>
  badRequest(`The criteria now match ${ref}, which an earlier entry of this transaction wrote: two entries may not resolve to one resource`);

export function checkIfMatch(type: string, id: string, current: StoredVersion | undefined, expected: EtagCondition | undefined): void {
  if (expected === undefined) return;
  const live = current && !current.deleted ? current.versionId : undefined;
  if (live === undefined) throw preconditionFailed(`If-Match: ${type}/${id} has no current version`);
  if (!etagHolds(expected, live)) {
    throw preconditionFailed(`If-Match: ${type}/${id} is at version ${live}, not ${expected.any ? 'any' : expected.versions.join(' or ') || 'the one named'}`);
  }
}

async function writeVersion(
  ctx: BaseContext,
  tx: Transaction,
  resource: Resource,
  id: string,
  current: StoredVersion | undefined,
  method: WriteMethod,
  r: Reach,
): Promise<FhirResponse> {
  const live = current && !current.deleted ? current : undefined;
  // Conditional references are resolved first: what the caller may write is judged on what is stored.
  const linked = await resolveConditionalReferences(ctx, joined(tx, ctx.store), resource);
  assertWithin(ctx, { ...linked, id }, r);
  const prepared = ctx.subscriptions.prepareWrite({ ...linked, id }, live?.json, ctx.principal);
  const type = prepared.resourceType;
  if (live && sameJson(stamp(prepared, id, live.versionId, live.lastUpdated), parseJson(live.json!))) return unchanged(ctx, live);
  const written = await ctx.subscriptions.writeVersion(tx, type, id, prepared, current, method, ctx.principal);
  const { versionId, lastUpdated } = written;
  const stored = written.stored!;
  // A create is by the owner; an update may be the admin's, who sees a Subscription's secrets masked.
  const shown = live ? presentResource(ctx, stored) : stored;
  const location = versionLocation(ctx, type, id, versionId);
  return {
    status: written.created ? 201 : 200,
    resource: shown,
    json: shown === stored ? written.json! : stringifyJson(shown),
    location,
    versionId,
    lastUpdated,
    outcome: informational(`${written.created ? 'Created' : 'Updated'} ${location}`),
  };
}

/**
 * An update, conditional update or patch whose result is the current version's content (key order
 * aside; meta.versionId and meta.lastUpdated are the server's) writes nothing: no version, no
 * history entry, no event. It answers 200 with the current version, as a read would.
 */
function unchanged(ctx: BaseContext, live: StoredVersion): FhirResponse {
  const location = versionLocation(ctx, live.type, live.id, live.versionId);
  return { ...found(ctx, live), location, outcome: informational(`${location} already holds this content; nothing written`) };
}

const versionLocation = (ctx: BaseContext, type: string, id: string, versionId: number) => `${ctx.baseUrl}/${type}/${id}/_history/${versionId}`;
const informational = (text: string) => outcomeOf('information', 'informational', text);
