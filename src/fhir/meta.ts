import type { Resource } from './types.ts';

/**
 * A copy of the resource as stored in a new version: the server's id, versionId and lastUpdated in
 * meta; the client's other meta (profile, tag, security, source) kept. Used by every writer.
 */
export function stamp(resource: Resource, id: string, versionId: number, lastUpdated: string): Resource {
  const { resourceType, id: _ignored, meta, ...rest } = resource;
  return { resourceType, id, meta: { ...meta, versionId: String(versionId), lastUpdated }, ...rest };
}
