import type { NotificationType, PayloadContent } from '../fhir/subscription-model.ts';
import { buildNotification } from '../fhir/notification.ts';
import type { Bundle, Resource } from '../fhir/types.ts';
import { parseSearch } from '../search/parse.ts';
import type { Store, StoredEvent } from '../store/store.ts';
import type { SubscriptionEngine } from './engine.ts';
import type { ActiveSubscription } from './registry.ts';

export interface NotifyContext {
  engine: SubscriptionEngine;
  store: Store;
  baseUrl: string;
  now?: () => Date;
}

/**
 * A notification Bundle for a subscription in its version's shape (REQUIREMENTS §5): the status
 * first, then per event the focus resource at the version that triggered it (full-resource) or
 * its reference (id-only), or nothing (empty). Focus versions come from history, so a backlog
 * sent late still shows each event's own version.
 */
export async function renderNotification(
  ctx: NotifyContext,
  sub: ActiveSubscription,
  type: NotificationType,
  events: StoredEvent[],
  content: PayloadContent = sub.spec.channel.content,
): Promise<Bundle> {
  const fv = ctx.engine.version;
  const resources = new Map<string, Resource>();
  if (content === 'full-resource') {
    for (const e of events) {
      const v = await ctx.store.vread(fv, e.focus.type, e.focus.id, e.focus.versionId);
      if (v?.json) resources.set(`${e.focus.type}/${e.focus.id}`, ctx.engine.forOwner(sub.id, JSON.parse(v.json) as Resource));
    }
  }
  const additionalByEvent = content === 'empty' ? undefined : await shapeContext(ctx, sub, events);
  const { last } = await ctx.store.eventRange(fv, sub.id);
  const state = await ctx.store.deliveryState(fv, sub.id);
  return buildNotification(ctx.engine.adapter, {
    baseUrl: ctx.baseUrl,
    subscriptionId: sub.id,
    ...(sub.spec.topic ? { topic: sub.spec.topic } : {}),
    status: sub.status,
    type,
    // EN-2: in an event notification the highest eventNumber is the count as of that notification.
    eventsSinceSubscriptionStart: type === 'event-notification' ? Math.max(...events.map((e) => e.number)) : last,
    content,
    events: events.map((e) => ({ eventNumber: e.number, timestamp: e.timestamp, focus: e.focus, interaction: e.interaction })),
    resources,
    ...(additionalByEvent ? { additionalByEvent } : {}),
    ...(state.lastError && sub.status === 'error' ? { errors: [{ code: 'no-response', text: state.lastError }] } : {}),
    timestamp: (ctx.now?.() ?? new Date()).toISOString(),
  });
}

/**
 * Additional context per event from the topic's notificationShape (P-6): its `include` and
 * `revInclude` entries, evaluated by the store's own _include/_revinclude from the focus (current
 * versions). Entries Herald cannot parse are skipped rather than failing the notification, since
 * clients must expect context to be missing.
 */
async function shapeContext(ctx: NotifyContext, sub: ActiveSubscription, events: StoredEvent[]): Promise<Map<number, Resource[]> | undefined> {
  const topic = ctx.engine.registry.topic(sub.topicUrl);
  if (!topic || topic.notificationShape.length === 0) return undefined;
  const out = new Map<number, Resource[]>();
  for (const e of events) {
    const shape = topic.notificationShape.find((s) => s.resource === e.focus.type);
    if (!shape || shape.include.length + shape.revInclude.length === 0 || e.interaction === 'delete') continue;
    const query = new URLSearchParams({ _id: e.focus.id });
    for (const inc of shape.include) query.append('_include', inc.split('&')[0]!);
    for (const rev of shape.revInclude) query.append('_revinclude', rev.split('&')[0]!);
    try {
      const request = parseSearch(ctx.engine.search, [e.focus.type], query, { strict: false, defaultCount: 1, maxCount: 1, baseUrl: ctx.baseUrl });
      const page = await ctx.store.search(ctx.engine.version, { ...request, total: 'none' });
      // D-22: included resources are filtered with the owner's recorded access, like the focus.
      const included = page.included.map((v) => JSON.parse(v.json!) as Resource).filter((r) => ctx.engine.ownerMayRead(sub.id, r));
      out.set(e.number, included.map((r) => ctx.engine.forOwner(sub.id, r)));
    } catch {
      // An unparsable shape entry: no context for this event.
    }
  }
  return out;
}
