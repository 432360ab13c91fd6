import { LETTER_NAMES, type Letter, type Reach, forbidden, maskSubscriptionSecrets, reach } from '../auth/index.ts';
import { notFound } from '../fhir/errors.ts';
import type { Resource } from '../fhir/types.ts';
import type { Condition, SearchRequest } from '../search/types.ts';
import type { StoredVersion } from '../store/store.ts';
import type { BaseContext, Db } from './context.ts';

/**
 * Authorization of the interactions (REQUIREMENTS §10, D-22), from the request's Principal. In
 * open mode (no principal) everything is allowed and nothing is hidden or masked.
 *
 * - A type needs the interaction's letter in some scope (c create, r read/vread/history, u
 *   update/patch, d delete, s search), else 403.
 * - A `patient/` scope reaches only the patient's compartment: anything else reads as 404 and is
 *   left out of searches, histories and includes.
 * - A Subscription exists only for its owner (and the admin); its secrets only for its owner.
 */

/** The caller's reach for `type` and `letter`; a 403 when it has none. */
export function demand(ctx: BaseContext, type: string, letter: Letter): Reach {
  const p = ctx.principal;
  if (!p) return 'all';
  const r = reach(p, type, letter);
  if (r === 'none') throw forbidden(`The token's scopes do not allow ${LETTER_NAMES[letter]} on ${type}`);
  return r;
}

/** Whether the caller may see this resource, given its reach for the type. */
export function sees(ctx: BaseContext, resource: Resource, r: Reach): boolean {
  const p = ctx.principal;
  if (!p) return true;
  if (resource.resourceType === 'Subscription') return ctx.subscriptions.canManage(p, resource.id!);
  return r !== 'patient' || ctx.compartments.contains(resource, p.patient!);
}

/** The same for a stored version; a deletion is judged by the version before it. */
export async function seesVersion(ctx: BaseContext, db: Db, v: StoredVersion, r: Reach): Promise<boolean> {
  if (!ctx.principal) return true;
  if (v.type === 'Subscription') return ctx.subscriptions.canManage(ctx.principal, v.id);
  if (r === 'all') return true;
  const live = v.json ? v : v.versionId > 1 ? await db.vread(ctx.version, v.type, v.id, v.versionId - 1) : undefined;
  return live?.json !== undefined && sees(ctx, JSON.parse(live.json) as Resource, r);
}

/** A 404 for what the caller may not see, worded like any unknown resource. */
export const hidden = (type: string, id: string) => notFound(`${type}/${id} is not known`);

/** A resource the caller writes must stay within its reach (a patient's compartment). */
export function assertWithin(ctx: BaseContext, resource: Resource, r: Reach): void {
  if (r === 'patient' && !sees(ctx, resource, r)) {
    throw forbidden(`${resource.resourceType} would not be in the compartment of Patient/${ctx.principal!.patient}, which the token is confined to`);
  }
}

/**
 * Confines a search of one type to what the caller may see: the patient's compartment, or the
 * caller's own Subscriptions (by id: an owner has at most HERALD_MAX_SUBSCRIPTIONS_PER_OWNER).
 */
export function confine(ctx: BaseContext, request: SearchRequest, type: string, r: Reach): SearchRequest {
  const p = ctx.principal;
  if (!p) return request;
  const extra: Condition[] = [];
  if (type === 'Subscription' && !p.admin) {
    const param = ctx.registry.param('Subscription', '_id')!;
    const own = ctx.subscriptions.ownedBy(p.id);
    extra.push({ kind: 'param', param, values: own.length ? own.map((id) => ({ kind: 'token' as const, value: id })) : [{ kind: 'missing', missing: true }] });
  } else if (type !== 'Subscription' && r === 'patient') {
    extra.push(ctx.compartments.condition(p.patient!));
  }
  return extra.length ? { ...request, conditions: [...request.conditions, ...extra] } : request;
}

/** The JSON a caller receives for a stored version: a Subscription's secrets masked unless it is the owner's. */
export function present(ctx: BaseContext, v: { type: string; id: string; json?: string }): string | undefined {
  if (!v.json || v.type !== 'Subscription' || !ctx.principal || ctx.subscriptions.ownerIdOf(v.id) === ctx.principal.id) return v.json;
  return JSON.stringify(maskSubscriptionSecrets(JSON.parse(v.json) as Resource));
}

/** The same for a parsed resource. */
export function presentResource(ctx: BaseContext, resource: Resource): Resource {
  if (resource.resourceType !== 'Subscription' || !ctx.principal || ctx.subscriptions.ownerIdOf(resource.id!) === ctx.principal.id) return resource;
  return maskSubscriptionSecrets(resource);
}
