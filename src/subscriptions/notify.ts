import type { NotificationType, PayloadContent } from '../fhir/subscription-model.ts';
import { buildNotification } from '../fhir/notification.ts';
import type { Bundle, Resource } from '../fhir/types.ts';
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
      if (v?.json) resources.set(`${e.focus.type}/${e.focus.id}`, JSON.parse(v.json) as Resource);
    }
  }
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
    ...(state.lastError && sub.status === 'error' ? { errors: [{ code: 'no-response', text: state.lastError }] } : {}),
    timestamp: (ctx.now?.() ?? new Date()).toISOString(),
  });
}
