import { writtenNumber } from './json.ts';
import type { Resource } from './types.ts';

/**
 * A copy of the resource as stored in a new version: the server's id, versionId and lastUpdated in
 * meta; the client's other meta (profile, tag, security, source) kept. Used by every writer.
 */
export function stamp(resource: Resource, id: string, versionId: number, lastUpdated: string): Resource {
  const { resourceType, id: _ignored, meta, ...rest } = resource;
  return { resourceType, id, meta: { ...meta, versionId: String(versionId), lastUpdated }, ...rest };
}

/**
 * Two JSON values alike whatever their objects' key order (arrays in order); a member whose value
 * is `undefined` counts as absent, as JSON.stringify drops it. Numbers are alike when written
 * alike (`1.50` is not `1.5`: fhir/json.ts keeps the form).
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((_, i) => sameMember(a, b, String(i)));
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let defined = 0;
  for (const k in x) {
    if (x[k] === undefined) continue;
    defined++;
    if (!Object.hasOwn(y, k) || !sameMember(x, y, k)) return false;
  }
  for (const k in y) if (y[k] !== undefined) defined--;
  return defined === 0;
}

function sameMember(x: object, y: object, k: string): boolean {
  const a = (x as Record<string, unknown>)[k];
  const b = (y as Record<string, unknown>)[k];
  if (typeof a !== 'number' || typeof b !== 'number') return sameJson(a, b);
  return a === b && (writtenNumber(x, k) ?? String(a)) === (writtenNumber(y, k) ?? String(b));
}
