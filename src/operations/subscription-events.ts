import { FhirError, badRequest, notFound } from '../fhir/errors.ts';
import type { PayloadContent } from '../fhir/subscription-model.ts';
import { type ActiveSubscription, classicTopicUrl, renderNotification } from '../subscriptions/index.ts';
import { type OperationContext, type OperationDescriptor, readStoredSubscription } from './context.ts';
import { numberParam } from './params.ts';

/** The most events one $events call returns; a client pages with eventsSinceNumber. */
const MAX_EVENTS = 1000;
const LEVEL: Record<PayloadContent, number> = { empty: 0, 'id-only': 1, 'full-resource': 2 };

/**
 * Subscription/$events (REQUIREMENTS §7.2, OP-E1, OP-E2, D-9, D-21): the events of the durable
 * log in a notification Bundle of type query-event. Without bounds: the most recent events still
 * held (up to 1,000). Event numbers start at 1 (EN-1), so `eventsSinceNumber=0` is a lower bound
 * below the first, not a number that was lost. A range that retention has emptied in part answers
 * 410 naming the oldest number still held. A range with nothing in it (a fresh subscription, a
 * poller one past the last event) is not an error: the bundle's status is then `query-status`,
 * since sst-1 forbids a `query-event` without events (D-21). `content` may ask for less detail
 * than the subscription's, never more.
 */
export const subscriptionEvents: OperationDescriptor = {
  name: 'events',
  type: 'Subscription',
  levels: ['instance'],
  parameters: [
    { name: 'eventsSinceNumber', type: 'event-number', max: 1 },
    { name: 'eventsUntilNumber', type: 'event-number', max: 1 },
    { name: 'content', type: 'code', max: 1, codes: Object.keys(LEVEL) },
  ],
  async run(ctx, req) {
    const id = req.id!;
    const sub = ctx.subscriptions.registry.subscription(id) ?? (await storedSubscription(ctx, id));
    if (!sub) throw notFound(`Subscription/${id} is not known`);
    const since = numberParam(req.params, 'eventsSinceNumber');
    const until = numberParam(req.params, 'eventsUntilNumber');
    if (since !== undefined && until !== undefined && until < since) {
      throw badRequest(`eventsUntilNumber (${until}) is below eventsSinceNumber (${since})`, ['eventsUntilNumber']);
    }
    const { first, last } = await ctx.store.eventRange(ctx.version, id);
    const oldest = first ?? last + 1;
    const to = Math.min(until ?? last, last);
    // Without bounds: the latest events still held. A bound asks for those numbers, held or not.
    const from = since !== undefined ? Math.max(since, 1) : Math.max(to - MAX_EVENTS + 1, until === undefined ? oldest : 1);
    if (from < oldest && from <= to) {
      throw new FhirError(410, 'deleted', `Events before ${oldest} are no longer held: the oldest event still held is ${oldest}`);
    }
    const events = from <= to ? await ctx.store.events(ctx.version, id, from, to, MAX_EVENTS) : [];
    const asked = req.params.get('content')?.[0] as PayloadContent | undefined;
    const own = sub.spec.channel.content;
    const content = asked !== undefined && LEVEL[asked] < LEVEL[own] ? asked : own;
    const type = events.length > 0 ? 'query-event' : 'query-status';
    const bundle = await renderNotification({ engine: ctx.subscriptions, store: ctx.store, baseUrl: ctx.baseUrl, now: ctx.now }, sub, type, events, content);
    return { status: 200, resource: bundle };
  },
};

/** A subscription that is not live (off, or not loadable) still has its log. */
async function storedSubscription(ctx: OperationContext, id: string): Promise<ActiveSubscription | undefined> {
  const spec = await readStoredSubscription(ctx, id);
  return spec && { id, spec, topicUrl: spec.topic ?? classicTopicUrl(id), status: spec.status, filters: new Map(), endsAt: undefined };
}
