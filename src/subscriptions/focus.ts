import type { FhirVersion, Resource } from '../fhir/types.ts';
import type { Store, StoredEvent } from '../store/store.ts';

/** A focus version, parsed, and its JSON text (as stored, which is JSON.stringify of the resource). */
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
const caches = new WeakMap<Store, Map<string, Promise<Focus | undefined>>>();

function cacheOf(store: Store): Map<string, Promise<Focus | undefined>> {
  let cache = caches.get(store);
  if (!cache) caches.set(store, (cache = new Map()));
  return cache;
}

function put(cache: Map<string, Promise<Focus | undefined>>, key: string, value: Promise<Focus | undefined>): void {
  if (cache.size >= SIZE) cache.delete(cache.keys().next().value!);
  cache.set(key, value);
}

const keyOf = (fv: FhirVersion, type: string, id: string, versionId: number) => `${fv}|${type}/${id}/${versionId}`;

/**
 * A committed version that matched subscriptions. The resource is shared with every notification
 * of the change: nobody may edit it (the engine's owner filter copies).
 */
export function rememberFocus(store: Store, fv: FhirVersion, type: string, id: string, versionId: number, resource: Resource, json: string): void {
  put(cacheOf(store), keyOf(fv, type, id, versionId), Promise.resolve({ resource, json }));
}

export function focusVersion(store: Store, fv: FhirVersion, e: StoredEvent): Promise<Focus | undefined> {
  const cache = cacheOf(store);
  const key = keyOf(fv, e.focus.type, e.focus.id, e.focus.versionId);
  const hit = cache.get(key);
  if (hit) return hit;
  // The read in flight is shared: every subscription a commit woke asks for its focus in the same turn.
  const read = store.vread(fv, e.focus.type, e.focus.id, e.focus.versionId).then((v) => (v?.json ? { resource: JSON.parse(v.json) as Resource, json: v.json } : undefined));
  put(cache, key, read);
  // A failed read is not remembered: the next notification asks again.
  read.catch(() => cache.get(key) === read && cache.delete(key));
  return read;
}
