import { FhirError, asFhirError, badRequest, operationOutcome } from '../fhir/errors.ts';
import { parseJson } from '../fhir/json.ts';
import type { Bundle, BundleEntry, Resource } from '../fhir/types.ts';
import { type BaseContext, type Db, type FhirRequest, type FhirResponse, type Method, joined, preferredReturn } from './context.ts';
import { assertResourceBody, etagOf } from './resource.ts';
import { route } from './router.ts';
import { annotate, resolveIdentities } from './transaction-links.ts';

/**
 * batch and transaction Bundles (FHIR http.html#transaction). A batch runs each entry on its own;
 * a transaction runs all of them in one store transaction: one failing entry and nothing is stored.
 * Before a transaction's entries run, their identities and links are resolved (transaction-links.ts).
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
  // The Bundle's Prefer applies to its entries: return=… to those that write (http.html#ops),
  // handling=… to its searches, as to a search of its own.
  if (prefer) for (const r of requests) r.prefer = prefer;
  if (bundle.type === 'batch') return batch(ctx, db, requests, budget);
  return transaction(ctx, db, entries, requests, budget);
}

/** Searches and history reads one Bundle may hold (each has the search deadline of its own). */
const MAX_BUNDLE_SEARCHES = 100;
/**
 * Resources (matches and includes) one Bundle's searches and history may return together: ten
 * pages at the largest page size. Each search pages, but a Bundle of many full pages answered in
 * one response was unbounded (700 of them: 487 MB, and the event loop held for 8.6 s to write it).
 */
const MAX_BUNDLE_READ_RESOURCES = 10_000;

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

/**
 * Stands in for the store while a costly read entry is checked: every search and history is empty;
 * reads by id are the transaction's (an instance history first looks whether its resource exists).
 */
const checkingDb = (inner: Db): Db => ({
  read: (...a) => inner.read(...a),
  vread: (...a) => inner.vread(...a),
  search: async () => ({ matches: [], included: [] }),
  events: async () => [],
  eventRange: async () => ({ last: 0, first: undefined }),
  deliveryState: async () => ({ deliveredThrough: 0, attempts: 0 }),
  bindingToken: async () => undefined,
  subscriptionOwners: async () => [],
  history: async () => ({ versions: [], total: 0 }),
  transaction: () => Promise.reject(new Error('a read entry does not write')),
});

async function transaction(ctx: BaseContext, db: Db, entries: BundleEntry[], requests: FhirRequest[], budget: ReadBudget): Promise<FhirResponse> {
  assertUniqueFullUrls(entries);
  const order = requests.map((_, i) => i).sort((a, b) => ORDER[requests[a]!.method] - ORDER[requests[b]!.method] || a - b);
  const results = await db.transaction(async (tx) => {
    const inner = joined(tx, ctx.store);
    const checking = checkingDb(inner);
    await resolveIdentities(ctx, inner, entries, requests);
    const out: (FhirResponse | undefined)[] = new Array(requests.length).fill(undefined);
    for (const i of order) {
      try {
        // A costly read that is wrong (unknown parameter, bad cursor) still fails the whole
        // transaction: it is checked here, against empty searches and history, and run after the commit.
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
    return parseJson(Buffer.from(r.data, 'base64').toString('utf8'));
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

const REASONS: Record<number, string> = { 200: 'OK', 201: 'Created', 204: 'No Content', 304: 'Not Modified' };

/** An entry's response; a HEAD's without the resource, a write's as its `Prefer: return=…` asks. */
function responseEntry(ctx: BaseContext, r: FhirResponse, req: FhirRequest): BundleEntry {
  const resource = r.resource ?? (r.json ? (parseJson(r.json) as Resource) : undefined);
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
      ...(wanted === 'operationoutcome' && r.outcome ? { outcome: r.outcome } : {}),
    },
  };
}
