import { resolveConditionalReferences } from './transaction-links.ts';
import { FhirError, asFhirError, badRequest, methodNotAllowed, operationOutcome, shown } from '../fhir/errors.ts';
import type { OperationOutcomeIssue, Resource } from '../fhir/types.ts';
import { extractIndex } from '../search/extract.ts';
import { assertWithin, demand, hidden, seesVersion } from './access.ts';
import type { BaseContext, Db, FhirRequest, FhirResponse } from './context.ts';
import { assertWritable, checkIfMatch } from './crud.ts';
import { assertId, assertResourceBody, parseEtags } from './resource.ts';

/** The OperationDefinition Herald implements, as the CapabilityStatement names it. */
export const VALIDATE_DEFINITION = 'http://hl7.org/fhir/OperationDefinition/Resource-validate';

type Mode = 'general' | 'create' | 'update' | 'delete';
const MODES = new Set(['create', 'update', 'delete']);

interface ValidateInput {
  resource: unknown;
  mode: Mode;
}

/**
 * `[type]/$validate` and `[type]/[id]/$validate` (FHIR Resource-validate): the checks a create,
 * update or delete would make (structure, required bindings, Subscription and topic rules, the
 * caller's compartment, If-Match, the index-row budget), with nothing written. The answer is a 200
 * OperationOutcome whether or not the resource is valid, holding the issues the write would have
 * answered; a 4xx means the validation itself could not be done (bad input, no scope).
 */
export async function validateOperation(ctx: BaseContext, db: Db, req: FhirRequest, type: string, id: string | undefined): Promise<FhirResponse> {
  if (req.method !== 'POST' && req.method !== 'GET') throw methodNotAllowed('$validate takes POST (or GET for mode=delete)', ['GET', 'POST']);
  if (id !== undefined) assertId(id);
  const input = readInput(req, type);
  if ((input.mode === 'update' || input.mode === 'delete') && id === undefined) {
    throw badRequest(`$validate mode=${input.mode} names a resource: use [type]/[id]/$validate`, ['mode']);
  }
  if (input.mode !== 'delete' && input.resource === undefined) throw badRequest('$validate needs the resource: as the body, or a Parameters with a `resource` parameter', ['resource']);
  const demanded = demand(ctx, type, input.mode === 'delete' ? 'd' : input.mode === 'update' ? 'u' : 'c');
  const issues: OperationOutcomeIssue[] = [];
  try {
    if (input.mode === 'delete') await checkDelete(ctx, db, type, id!, req.ifMatch, issues);
    else await checkContent(ctx, db, type, id, input, req.ifMatch, demanded);
  } catch (err) {
    const e = asFhirError(err);
    if (e.status >= 500) throw err;
    issues.push(...e.issues);
  }
  if (issues.length === 0) issues.push({ severity: 'information', code: 'informational', diagnostics: `No issues: the ${input.mode === 'general' ? 'resource is valid' : `${input.mode} would be accepted`}` });
  return { status: 200, resource: operationOutcome(issues) as unknown as Resource };
}

/** Structure and bindings, then what create or update add: ids, scopes, If-Match, Subscription rules, index budget. */
async function checkContent(ctx: BaseContext, db: Db, type: string, id: string | undefined, input: ValidateInput, ifMatch: string | undefined, r: ReturnType<typeof demand>): Promise<void> {
  const resource = assertResourceBody(ctx, type, input.resource);
  await ctx.subscriptions.screenEndpoints(resource);
  let previousJson: string | undefined;
  if (input.mode === 'update') {
    if (resource.id === undefined) throw badRequest('The resource in an update must have an id', ['id']);
    if (resource.id !== id) throw badRequest(`The resource id '${resource.id}' does not match the URL id '${id}'`, ['id']);
    const current = await db.read(ctx.version, type, id);
    await assertWritable(ctx, db, type, id, current, r);
    checkIfMatch(type, id, current, ifMatch === undefined ? undefined : parseEtags(ifMatch));
    previousJson = current && !current.deleted ? current.json : undefined;
  }
  // As the write would: conditional references resolved first (a 412 when one matches none or several).
  const linked = input.mode === 'general' ? resource : await resolveConditionalReferences(ctx, db, resource);
  const withId = { ...linked, id: input.mode === 'update' ? id! : (linked.id ?? 'validate') };
  if (input.mode !== 'general') assertWithin(ctx, withId, r);
  const prepared = ctx.subscriptions.prepareWrite(input.mode === 'update' ? withId : { ...linked, id: undefined }, previousJson, ctx.principal);
  // The write's index rows, for the budget on them (a 422 too-costly past it).
  extractIndex(ctx.registry, { ...prepared, id: withId.id, meta: { ...prepared.meta, versionId: '1', lastUpdated: ctx.now().toISOString() } }, { baseUrl: ctx.baseUrl });
}

/** A delete checks the scope, that the caller sees the resource, and If-Match; deleting nothing is no error (204). */
async function checkDelete(ctx: BaseContext, db: Db, type: string, id: string, ifMatch: string | undefined, issues: OperationOutcomeIssue[]): Promise<void> {
  const current = await db.read(ctx.version, type, id);
  if (current && !(await seesVersion(ctx, db, current, demand(ctx, type, 'd')))) throw hidden(type, id);
  checkIfMatch(type, id, current, ifMatch === undefined ? undefined : parseEtags(ifMatch));
  if (!current || current.deleted) issues.push({ severity: 'information', code: 'informational', diagnostics: `${type}/${id} does not exist (any more): a delete would change nothing` });
}

/**
 * The resource and mode: a Parameters body (`resource`, `mode`, `profile`) or the resource itself
 * as the body, and `mode`/`profile` in the query. A profile other than the type's base
 * StructureDefinition cannot be validated against, which the operation says is an error.
 */
function readInput(req: FhirRequest, type: string): ValidateInput {
  const params = new Map<string, { value: unknown; where: string }>();
  const put = (name: string, value: unknown, where: string) => {
    if (!['resource', 'mode', 'profile'].includes(name)) throw badRequest(`$validate has no parameter '${name.slice(0, 60)}': it takes resource, mode, profile`, [where]);
    if (params.has(name)) throw badRequest(`$validate parameter '${name}' may be given once`, [where]);
    params.set(name, { value, where });
  };
  for (const [name, value] of req.query) if (!name.startsWith('_')) put(name, value, name);
  const body = req.body as Record<string, unknown> | undefined;
  if (body !== undefined && (typeof body !== 'object' || body === null || Array.isArray(body))) throw badRequest('The body of $validate must be a resource or a Parameters resource');
  if (body?.resourceType === 'Parameters' && type !== 'Parameters') {
    const list = body.parameter ?? [];
    if (!Array.isArray(list)) throw badRequest('Parameters.parameter must be an array', ['Parameters.parameter']);
    for (const [i, p] of list.entries()) {
      const where = `Parameters.parameter[${i}]`;
      if (typeof p !== 'object' || p === null || typeof p.name !== 'string') throw badRequest(`${where} must be an object with a name`, [where]);
      const value = p.name === 'resource' ? p.resource : (p.valueCode ?? p.valueString ?? p.valueUri ?? p.valueCanonical);
      if (value === undefined) throw badRequest(`$validate parameter '${String(p.name).slice(0, 60)}' has no value of the right type`, [where]);
      put(p.name, value, where);
    }
  } else if (body !== undefined) {
    put('resource', body, 'resource');
  }
  const mode = params.get('mode');
  if (mode !== undefined && (typeof mode.value !== 'string' || !MODES.has(mode.value))) {
    throw badRequest(`$validate mode must be create, update or delete, not '${shown(mode.value, 40)}'`, [mode.where]);
  }
  const profile = params.get('profile');
  if (profile !== undefined) {
    const { value, where } = profile;
    if (typeof value !== 'string') throw badRequest(`$validate profile must be a canonical URL (a JSON string), not '${shown(value)}'`, [where]);
    if (value.split('|')[0] !== `http://hl7.org/fhir/StructureDefinition/${type}`) {
      throw new FhirError(400, 'not-supported', `$validate checks the base definition of ${type} only, not the profile '${shown(value, 100)}'`, [where]);
    }
  }
  return { resource: params.get('resource')?.value, mode: (mode?.value as Mode | undefined) ?? 'general' };
}
