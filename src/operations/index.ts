import { type Principal, forbidden, reach } from '../auth/index.ts';
import { methodNotAllowed, notFound } from '../fhir/errors.ts';
import type { OperationContext, OperationDescriptor, OperationResult } from './context.ts';
import { getWsBindingToken } from './get-ws-binding-token.ts';
import { operationParams } from './params.ts';
import { revokeWsBindingToken } from './revoke-ws-binding-token.ts';
import { subscriptionEvents } from './subscription-events.ts';
import { subscriptionStatus } from './subscription-status.ts';

export type { OperationContext, OperationDescriptor } from './context.ts';

/** Every operation Herald offers: a table, listed in the CapabilityStatement as it stands. */
export const OPERATIONS: readonly OperationDescriptor[] = [subscriptionStatus, subscriptionEvents, getWsBindingToken, revokeWsBindingToken];

/**
 * Runs `[type]/$name` or `[type]/[id]/$name`, by GET (query parameters) or POST (Parameters).
 * Unknown operations are a 404; an operation at a level it does not support a 405.
 */
export async function invokeOperation(
  ctx: OperationContext,
  req: { method: string; type?: string; id?: string; name: string; query: URLSearchParams; body: unknown; principal?: Principal },
): Promise<OperationResult> {
  const op = OPERATIONS.find((o) => o.name === req.name && o.type === req.type);
  if (!op) throw notFound(`Unknown operation $${req.name.slice(0, 60)}${req.type ? ` on ${req.type}` : ''}`);
  const level = req.id === undefined ? 'type' : 'instance';
  // Not at this level by any method: an empty Allow (RFC 9110 §10.2.1).
  if (!op.levels.includes(level)) throw methodNotAllowed(`$${op.name} is not available at ${level} level`, []);
  const allow = op.affectsState ? ['POST'] : ['GET', 'POST'];
  if (req.method !== 'GET' && req.method !== 'POST') throw methodNotAllowed(`$${op.name} takes ${allow.join(' or ')}`, allow);
  if (op.affectsState && req.method !== 'POST') throw methodNotAllowed(`$${op.name} changes state: use POST with a Parameters body`, allow);
  // Every operation here reads Subscriptions: it needs the read scope, and sees only the caller's own.
  if (req.principal && reach(req.principal, op.type, 'r') === 'none') throw forbidden(`$${op.name} needs read access to ${op.type}`);
  if (req.id !== undefined && !ctx.subscriptions.canManage(req.principal, req.id)) throw notFound(`${op.type}/${req.id} is not known`);
  const params = operationParams(op.name, op.parameters, req.query, req.method === 'POST' ? req.body : undefined);
  return op.run(ctx, {
    ...(req.type ? { type: req.type } : {}),
    ...(req.id ? { id: req.id } : {}),
    params,
    ...(req.principal ? { principal: req.principal } : {}),
  });
}
