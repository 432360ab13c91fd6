import { FhirError, notFound } from '../fhir/errors.ts';
import { buildStatusBundle } from '../fhir/notification.ts';
import type { StatusInfo, SubscriptionStatusCode } from '../fhir/subscription-model.ts';
import { classicTopicUrl } from '../subscriptions/index.ts';
import { type OperationContext, type OperationDescriptor, readStoredSubscription } from './context.ts';

const STATUSES: readonly SubscriptionStatusCode[] = ['requested', 'active', 'error', 'off', 'entered-in-error'];

/**
 * Subscription/$status (REQUIREMENTS §7.1, OP-S1, OP-S2): a searchset with one status resource
 * (type query-status) per subscription. Instance level: that subscription or 404. Type level:
 * the `id`s given (unknown ids are left out) or every subscription, filtered by `status`; in auth
 * mode only the caller's own (D-22); at most MAX_LISTED of them (else 422 too-costly: each costs
 * three store reads and about 650 bytes of answer, and 10,000 held the event loop for 0.3 s).
 */
export const subscriptionStatus: OperationDescriptor = {
  name: 'status',
  type: 'Subscription',
  levels: ['type', 'instance'],
  parameters: [
    { name: 'id', type: 'id', max: '*' },
    { name: 'status', type: 'code', max: '*', codes: STATUSES },
  ],
  async run(ctx, req) {
    // Ids asked for, each once. More than MAX_LISTED is the request's shape: 400.
    const asked = req.id === undefined && req.params.has('id') ? [...new Set(req.params.get('id'))] : undefined;
    if (asked && asked.length > MAX_LISTED) {
      throw new FhirError(400, 'too-costly', `$status answers for at most ${MAX_LISTED} ids at once (${asked.length} asked): ask in smaller sets`, ['id']);
    }
    let ids = (req.id !== undefined ? [req.id] : (asked ?? allIds(ctx))).filter((id) => ctx.subscriptions.canManage(req.principal, id));
    const wanted = req.id !== undefined ? undefined : req.params.get('status');
    // Every subscription, too many of them: those whose status is not wanted are left out first,
    // by the status this node's registry holds (the stored status decides below; on PostgreSQL a
    // change made on another node reaches the registry a moment later).
    if (ids.length > MAX_LISTED && wanted) {
      ids = ids.filter((id) => {
        const status = ctx.subscriptions.registry.subscription(id)?.status;
        return status === undefined || wanted.includes(status);
      });
    }
    // Still too many: what this server holds decides, so 422.
    if (ids.length > MAX_LISTED) {
      throw new FhirError(
        422,
        'too-costly',
        `This $status would list ${ids.length} subscriptions, more than ${MAX_LISTED} at once: ask for some by id (id=…, repeated; a Subscription search pages through their ids)${wanted ? '' : ' or by status'}`,
      );
    }
    const statuses: (StatusInfo & { id: string })[] = [];
    for (const id of ids) {
      const info = await statusOf(ctx, id);
      if (!info) {
        if (req.id !== undefined) throw notFound(`Subscription/${id} is not known`);
        continue;
      }
      if (!wanted || wanted.includes(info.status)) statuses.push(info);
    }
    return { status: 200, resource: buildStatusBundle(ctx.subscriptions.adapter, ctx.baseUrl, statuses, ctx.now().toISOString(), selfOf(req)) };
  },
};

/**
 * The request as asked (a POST's Parameters as the query that asks the same), for the answer's
 * `self` link; a query too long for a URL (many ids) leaves it at the bare operation.
 */
function selfOf(req: { id?: string; params: Map<string, string[]> }): string {
  if (req.id !== undefined) return `Subscription/${encodeURIComponent(req.id)}/$status`;
  const query = new URLSearchParams();
  for (const name of ['id', 'status']) for (const value of new Set(req.params.get(name) ?? [])) query.append(name, value);
  const q = query.toString();
  return `Subscription/$status${q && q.length <= MAX_SELF_QUERY ? `?${q}` : ''}`;
}

/** The longest query a `self` link repeats (far below the 16 KB a request line and headers may take). */
const MAX_SELF_QUERY = 2048;

/** Subscriptions one type-level $status lists at most. */
const MAX_LISTED = 1000;

function allIds(ctx: OperationContext): string[] {
  return ctx.subscriptions.registry.allSubscriptions().map((s) => s.id);
}

/** The status of a stored subscription as of now, from its resource and its event log. */
export async function statusOf(ctx: OperationContext, id: string): Promise<(StatusInfo & { id: string }) | undefined> {
  const spec = await readStoredSubscription(ctx, id);
  if (!spec) return undefined;
  const { last } = await ctx.store.eventRange(ctx.version, id);
  const delivery = await ctx.store.deliveryState(ctx.version, id);
  const failing = spec.status === 'error' || spec.status === 'off';
  return {
    id,
    subscriptionUrl: `${ctx.baseUrl}/Subscription/${id}`,
    ...(spec.topic ? { topic: spec.topic } : {}),
    status: spec.status,
    type: 'query-status',
    eventsSinceSubscriptionStart: last,
    events: [],
    errors: [
      ...(failing && delivery.lastError ? [{ code: 'no-response', text: delivery.lastError }] : []),
      // D-20: criteria of its topic that could not be evaluated.
      ...ctx.subscriptions.registry.faults.statusErrors(spec.topic ?? classicTopicUrl(id)),
    ],
    // A failing rest-hook's scheduled retry (Herald's extension on the status code).
    ...(spec.status === 'error' && delivery.nextAttemptAt ? { nextAttempt: delivery.nextAttemptAt } : {}),
    // What a rest-hook has delivered, and when (websocket delivery keeps no durable cursor).
    ...(spec.channel.type === 'rest-hook' ? { delivered: { through: delivery.deliveredThrough, ...(delivery.deliveredAt ? { at: delivery.deliveredAt } : {}) } } : {}),
  };
}
