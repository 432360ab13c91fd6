/**
 * What every part of query parsing shares: the registry, the handling mode and the list of
 * parameters left unevaluated. Unknown things are tolerated (recorded) unless the client asked
 * for strict handling; malformed values never are.
 */
import { badRequest } from '../../fhir/errors.ts';
import type { SearchRegistry } from '../parameters.ts';
import type { SearchParam } from '../types.ts';

export interface ParseContext {
  registry: SearchRegistry;
  /** Prefer: handling=strict: unknown parameters are errors instead of ignored (unknown modifiers always are). */
  strict: boolean;
  baseUrl?: string;
  ignored: { name: string; reason: string }[];
  /** OR values (weighted) and include parameters read so far, against SEARCH_BUDGET (budget.ts). */
  values: number;
  includes: number;
  /** What one OR value of the parameter being read counts: doubled per chain link. */
  valueWeight: number;
}

/** Records `name` as not evaluated, or fails the search under strict handling. Returns undefined. */
export function skip(ctx: ParseContext, name: string, reason: string): undefined {
  if (ctx.strict) throw badRequest(reason, [name]);
  ctx.ignored.push({ name, reason });
  return undefined;
}

/** A concrete resource type of the version (abstract ones cannot be searched). */
export function isResourceType(ctx: ParseContext, type: string): boolean {
  return ctx.registry.definitions.isResourceType(type);
}

/**
 * The parameter `code` as it applies to all `types`: for several types (system search) it must
 * exist on each with the same type, and the first type's definition stands for all (evaluation
 * goes by code). With no types, only the parameters every resource has.
 */
export function lookupParam(ctx: ParseContext, types: readonly string[], code: string): SearchParam | undefined {
  if (types.length === 0) return resourceLevelParam(ctx, code);
  const first = ctx.registry.param(types[0], code);
  if (first === undefined) return undefined;
  for (const type of types) {
    if (ctx.registry.param(type, code)?.type !== first.type) return undefined;
  }
  return first;
}

/** `Patient` or `Patient, Group` for messages. */
export function typesLabel(types: readonly string[]): string {
  return types.length === 0 ? 'all resource types' : types.join(', ');
}

/** A parameter defined on Resource or DomainResource (any type has it; the first type stands for all). */
function resourceLevelParam(ctx: ParseContext, code: string): SearchParam | undefined {
  const some = ctx.registry.definitions.resourceTypes[0];
  const param = some === undefined ? undefined : ctx.registry.param(some, code);
  return param !== undefined && RESOURCE_LEVEL.test(param.url) ? param : undefined;
}

const RESOURCE_LEVEL = /\/SearchParameter\/(Domain)?Resource-/;
