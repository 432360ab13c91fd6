import { FhirError, badRequest, notFound, shown } from '../fhir/errors.ts';
import type { Resource } from '../fhir/types.ts';
import { validateResource } from '../fhir/validate.ts';
import type { BaseContext } from './context.ts';

const ID = /^[A-Za-z0-9\-.]{1,64}$/;

export function assertId(id: string): void {
  if (!ID.test(id)) throw badRequest(`Invalid id '${id.slice(0, 80)}': 1-64 characters of A-Z a-z 0-9 - .`);
}

export function assertType(ctx: BaseContext, type: string): void {
  if (!ctx.defs.isResourceType(type)) {
    throw notFound(`Unknown resource type '${type.slice(0, 80)}' for FHIR ${ctx.adapter.fhirVersion}`);
  }
}

/** The body of a create/update must be a valid resource of the type the URL names. */
export function assertResourceBody(ctx: BaseContext, type: string, body: unknown): Resource {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequest('The request body must be a FHIR resource as a JSON object');
  }
  const resource = body as Resource;
  if (resource.resourceType !== type) {
    throw badRequest(
      `The resourceType of the body ('${shown(resource.resourceType)}') does not match the URL ('${type}')`,
      ['resourceType'],
    );
  }
  const issues = validateResource(ctx.defs, resource);
  const errors = issues.filter((i) => i.severity === 'error');
  if (errors.length > 0) {
    throw FhirError.withIssues(
      400,
      errors.map((i) => ({ severity: 'error', code: i.code, diagnostics: i.message, expression: [i.expression] })),
    );
  }
  return resource;
}

export const etagOf = (versionId: number) => `W/"${versionId}"`;

/**
 * An `If-Match` / `If-None-Match` value (RFC 9110 §13.1.1-2): `*`, or a list of entity tags, each
 * `W/"3"`, `"3"` (or a bare 3) for version 3. Other quoted tags are valid and match no version of
 * ours; anything unquoted that is not a version is a 400.
 */
export type EtagCondition = { any: true } | { any: false; versions: number[] };

export function parseEtags(value: string): EtagCondition {
  const items = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw badRequest(`Invalid ETag '${value.slice(0, 80)}': expected W/"<versionId>"`);
  if (items.includes('*')) return { any: true };
  const versions: number[] = [];
  for (const item of items) {
    const m = /^(?:W\/)?"?(\d{1,15})"?$/.exec(item);
    if (m) versions.push(Number(m[1]));
    else if (!/^(?:W\/)?"[^"]*"$/.test(item)) throw badRequest(`Invalid ETag '${item.slice(0, 80)}': expected W/"<versionId>"`);
  }
  return { any: false, versions };
}

/** Whether the condition holds for a resource at `versionId` (undefined: none current). */
export function etagHolds(condition: EtagCondition, versionId: number | undefined): boolean {
  if (versionId === undefined) return false;
  return condition.any || condition.versions.includes(versionId);
}
