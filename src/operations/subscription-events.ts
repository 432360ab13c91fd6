import { FhirError, notFound } from '../fhir/errors.ts';
import type { PayloadContent } from '../fhir/subscription-model.ts';
import { renderNotification } from '../subscriptions/index.ts';
import type { OperationDescriptor } from './context.ts';
import { integerParam } from './params.ts';

/** The most events one $events call returns; a client pages with eventsSinceNumber. */
const MAX_EVENTS = 1000;
const LEVEL: Record<PayloadContent, number> = { empty: 0, 'id-only': 1, 'full-resource': 2 };

/**
 * Subscription/$events (REQUIREMENTS §7.2, OP-E1, OP-E2, D-9): the events of the durable log in
 * a notification Bundle of type query-event. Without bounds: the most recent events (up to
 * 1,000). Numbers that retention has dropped answer 410 naming the oldest number still held.
 * `content` may ask for less detail than the subscription's, never more.
 */
export const subscriptionEvents: OperationDescriptor = {
  name: 'events',
  type: 'Subscription',
  levels: ['instance'],
  async run(ctx, req) {
    const id = req.id!;
    const sub = ctx.subscriptions.registry.subscription(id) ?? (await storedSubscription(ctx, id));
    if (!sub) throw notFound(`Subscription/${id} is not known`);
    const since = integerParam(req.params, 'eventsSinceNumber');
    const until = integerParam(req.params, 'eventsUntilNumber');
    const { first, last } = await ctx.store.eventRange(ctx.version, id);
    const to = Math.min(until ?? last, last);
    const from = since ?? Math.max(1, to - MAX_EVENTS + 1);
    const oldest = first ?? last + 1;
    if (from < oldest && last > 0 && from <= to) {
      throw new FhirError(410, 'deleted', `Events before ${oldest} are no longer held: the oldest event still held is ${oldest}`);
    }
    const events = from <= to ? await ctx.store.events(ctx.version, id, from, to, MAX_EVENTS) : [];
    const asked = req.params.get('content')?.[0] as PayloadContent | undefined;
    if (asked !== undefined && !(asked in LEVEL)) throw new FhirError(400, 'invalid', `content must be empty, id-only or full-resource, not '${asked}'`, ['content']);
    const own = sub.spec.channel.content;
    const content = asked !== undefined && LEVEL[asked] < LEVEL[own] ? asked : own;
    const bundle = await renderNotification({ engine: ctx.subscriptions, store: ctx.store, baseUrl: ctx.baseUrl, now: ctx.now }, sub, 'query-event', events, content);
    return { status: 200, resource: bundle };
  },
};

/** A subscription that is not live (off, or not loadable) still has its log. */
async function storedSubscription(ctx: Parameters<OperationDescriptor['run']>[0], id: string) {
  const stored = await ctx.store.read(ctx.version, 'Subscription', id);
  if (!stored?.json) return undefined;
  const spec = ctx.subscriptions.adapter.subscriptions.readSubscription(JSON.parse(stored.json));
  return { id, spec, topicUrl: spec.topic ?? `classic:${id}`, status: spec.status, filters: new Map() };
}
