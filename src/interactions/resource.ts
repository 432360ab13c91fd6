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

/** Parses `W/"3"`, `"3"` or `3` into 3; anything else is a 400. */
export function parseEtag(value: string): number {
  const m = /^(?:W\/)?"?(\d{1,15})"?$/.exec(value.trim());
  if (!m) throw badRequest(`Invalid ETag '${value.slice(0, 80)}': expected W/"<versionId>"`);
  return Number(m[1]);
}
