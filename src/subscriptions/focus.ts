import { parseJson } from '../fhir/json.ts';
import type { FhirVersion, Resource } from '../fhir/types.ts';
import type { Store, StoredEvent } from '../store/store.ts';

/** A focus version, parsed, and its JSON text (as stored: stringifyJson of the resource, fhir/json.ts). */
export interface Focus {
  resource: Resource;
  json: string;
}

/**
 * Focus resources as of their event's version, for notifications: parsed once for every
 * subscription that matched the same change (a version never changes, so the cache needs no
 * invalidation; it is bounded). A write that produced events puts its version here when it
 * commits (remember), so the live path neither reads nor parses what it has just written; a
 * backlog or `$events` reads from the store.
 */
const SIZE = 1024;
/** What the cached versions' JSON may add up to (a resource may be megabytes). */
const BYTES = 64 * 1024 * 1024;

interface Cache {
  entries: Map<string, { focus: Promise<Focus | undefined>; bytes: number }>;
  bytes: number;
}
const caches = new WeakMap<Store, Cache>();

function cacheOf(store: Store): Cache {
  let cache = caches.get(store);
  if (!cache) caches.set(store, (cache = { entries: new Map(), bytes: 0 }));
  return cache;
}

function drop(cache: Cache, key: string): void {
  const entry = cache.entries.get(key);
  if (!entry) return;
  cache.entries.delete(key);
  cache.bytes -= entry.bytes;
}

/** Holds a version, its JSON counted once known; the oldest go first past SIZE entries or BYTES. */
function put(cache: Cache, key: string, focus: Promise<Focus | undefined>, bytes: number): void {
  drop(cache, key);
  const entry = { focus, bytes };
  cache.entries.set(key, entry);
  cache.bytes += bytes;
  while (cache.entries.size > SIZE || (cache.bytes > BYTES && cache.entries.size > 1)) drop(cache, cache.entries.keys().next().value!);
}

const keyOf = (fv: FhirVersion, type: string, id: string, versionId: number) => `${fv}|${type}/${id}/${versionId}`;

/**
 * A committed version that matched subscriptions. The resource is shared with every notification
 * of the change: nobody may edit it (the engine's owner filter copies).
 */
export function rememberFocus(store: Store, fv: FhirVersion, type: string, id: string, versionId: number, resource: Resource, json: string): void {
  put(cacheOf(store), keyOf(fv, type, id, versionId), Promise.resolve({ resource, json }), json.length);
}

export function focusVersion(store: Store, fv: FhirVersion, e: StoredEvent): Promise<Focus | undefined> {
  const cache = cacheOf(store);
  const key = keyOf(fv, e.focus.type, e.focus.id, e.focus.versionId);
  const hit = cache.entries.get(key);
  if (hit) return hit.focus;
  // The read in flight is shared: every subscription a commit woke asks for its focus in the same turn.
  const read = store.vread(fv, e.focus.type, e.focus.id, e.focus.versionId).then((v) => (v?.json ? { resource: parseJson(v.json) as Resource, json: v.json } : undefined));
  put(cache, key, read, 0);
  read.then(
    (f) => {
      // Counted once its size is known (if it is still held).
      const entry = cache.entries.get(key);
      if (f && entry?.focus === read) put(cache, key, read, f.json.length);
    },
    // A failed read is not remembered: the next notification asks again.
    () => cache.entries.get(key)?.focus === read && drop(cache, key),
  );
  return read;
}
