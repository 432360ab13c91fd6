import { FhirError, badRequest } from '../fhir/errors.ts';
import { storedResource } from '../fhir/json.ts';
import type { Bundle, BundleEntry } from '../fhir/types.ts';
import type { StoredVersion } from '../store/store.ts';
import type { BaseContext, Db, FhirResponse } from './context.ts';
import { assertId, etagOf } from './resource.ts';
import { parseCount } from '../search/parse/results.ts';
import { reach } from '../auth/index.ts';
import { demand, hidden, present, seesVersion } from './access.ts';

/**
 * Instance, type and system history, newest first. Pages are cut by the store's write sequence, so
 * a `next` link keeps returning exactly the older versions even while new writes arrive.
 */
export async function history(
  ctx: BaseContext,
  db: Db,
  query: URLSearchParams,
  type?: string,
  id?: string,
): Promise<FhirResponse> {
  if (id !== undefined) assertId(id);
  if (type !== undefined) demand(ctx, type, 'r');
  if (type !== undefined && id !== undefined) {
    // A resource that never existed has no history to list: 404, as its read (a deleted one keeps its history).
    const current = await db.read(ctx.version, type, id);
    if (!current || !(await seesVersion(ctx, db, current, demand(ctx, type, 'r')))) throw hidden(type, id);
  }
  // History parameters FHIR defines that Herald does not evaluate: an answer without them would mislead.
  for (const name of UNSUPPORTED) {
    if (query.has(name)) throw new FhirError(400, 'not-supported', `History does not support ${name} here (only _since, _count)`, [name]);
  }
  const countRaw = query.get('_count');
  const asked = countRaw === null ? ctx.defaultPageSize : Math.min(parseCount(countRaw), ctx.maxPageSize);
  // _count=0: the total alone, as for a search.
  const count = Math.max(asked, 1);
  const since = parseSince(query.get('_since'));
  const before = parseCursor(query.get('_cursor'));
  const page = await db.history(ctx.version, {
    count,
    ...(type ? { type } : {}),
    ...(id ? { id } : {}),
    ...(since ? { since } : {}),
    ...(before !== undefined ? { before } : {}),
  });
  const path = [type, id, '_history'].filter(Boolean).join('/');
  const self = new URLSearchParams();
  if (since) self.set('_since', query.get('_since')!);
  self.set('_count', String(asked));
  const link = [
    { relation: 'self', url: `${ctx.baseUrl}/${path}?${query.toString()}`.replace(/\?$/, '') },
    // The newest page of the same history: `_since` and `_count` without a cursor.
    { relation: 'first', url: `${ctx.baseUrl}/${path}?${self.toString()}` },
  ];
  if (page.next !== undefined && asked > 0) {
    const next = new URLSearchParams(self);
    next.set('_cursor', String(page.next));
    link.push({ relation: 'next', url: `${ctx.baseUrl}/${path}?${next.toString()}` });
  }
  // Type and system history leave out what the caller may not see (and then give no total).
  const versions: StoredVersion[] = [];
  for (const v of page.versions) if (await visible(ctx, db, v)) versions.push(v);
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'history',
    timestamp: ctx.now().toISOString(),
    ...(versions.length === page.versions.length ? { total: page.total } : {}),
    link,
    // No entries, no `entry`: FHIR JSON has no empty arrays.
    ...(asked > 0 && versions.length > 0 ? { entry: versions.map((v) => historyEntry(ctx, v)) } : {}),
  };
  return { status: 200, resource: bundle };
}

async function visible(ctx: BaseContext, db: Db, v: StoredVersion): Promise<boolean> {
  if (!ctx.principal) return true;
  const r = reach(ctx.principal, v.type, 'r');
  return r !== 'none' && seesVersion(ctx, db, v, r);
}

const STATUS: Record<string, string> = { POST: '201 Created', PUT: '200 OK', PATCH: '200 OK', DELETE: '204 No Content' };

function historyEntry(ctx: BaseContext, v: StoredVersion): BundleEntry {
  const url = `${v.type}/${v.id}`;
  return {
    fullUrl: `${ctx.baseUrl}/${url}`,
    ...(v.json ? { resource: storedResource(present(ctx, v)!, { resourceType: v.type, id: v.id }) } : {}),
    request: { method: v.method, url: v.method === 'POST' ? v.type : url },
    response: {
      status: v.method === 'PUT' && (v.versionId === 1 || v.recreated) ? '201 Created' : STATUS[v.method]!,
      etag: etagOf(v.versionId),
      lastModified: v.lastUpdated,
    },
  };
}

const UNSUPPORTED = ['_at', '_list'];



const INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** `_since` is an instant; a bare date is accepted as its first moment in UTC. Returns UTC ISO text. */
function parseSince(raw: string | null): string | undefined {
  if (raw === null) return undefined;
  const d = new Date(raw);
  if (!INSTANT.test(raw) || Number.isNaN(d.getTime())) {
    throw badRequest(`_since must be an instant such as 2024-01-31T12:00:00Z, not '${raw.slice(0, 40)}'`, ['_since']);
  }
  return d.toISOString();
}

function parseCursor(raw: string | null): number | undefined {
  if (raw === null) return undefined;
  if (!/^\d{1,15}$/.test(raw)) throw badRequest(`Invalid paging cursor '${raw.slice(0, 40)}'`, ['_cursor']);
  return Number(raw);
}
