import type { NotificationType, PayloadContent } from '../fhir/subscription-model.ts';
import { buildNotification } from '../fhir/notification.ts';
import { buildMedplumNotification } from '../fhir/notification-medplum.ts';
import type { Bundle, FhirVersion, Resource } from '../fhir/types.ts';
import { parseSearch } from '../search/parse.ts';
import type { Store, StoredEvent } from '../store/store.ts';
import type { SubscriptionEngine } from './engine.ts';
import type { ActiveSubscription } from './registry.ts';

/**
 * How notifications are written on a channel: `ig`, the version's own shape (backport IG on R4/R4B,
 * R5); `medplum`, the shape `@medplum/core`'s client reads (websocket path `/ws/subscriptions-r4`).
 */
export type Dialect = 'ig' | 'medplum';

export interface NotifyContext {
  engine: SubscriptionEngine;
  store: Store;
  baseUrl: string;
  now: () => Date;
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
  dialect: Dialect = 'ig',
): Promise<Bundle> {
  const fv = ctx.engine.version;
  const resources = new Map<string, Resource>();
  if (content === 'full-resource') {
    for (const e of events) {
      const r = await focusVersion(ctx.store, fv, e);
      // The parsed focus is shared by every subscription of the change: forOwner copies, never edits.
      if (r) resources.set(`${e.focus.type}/${e.focus.id}`, ctx.engine.forOwner(sub.id, r));
    }
  }
  const additionalByEvent = content === 'empty' ? undefined : await shapeContext(ctx, sub, events);
  // An event notification counts its own highest number (EN-2); only the others ask the log.
  const last = type === 'event-notification' ? Math.max(...events.map((e) => e.number)) : (await ctx.store.eventRange(fv, sub.id)).last;
  const lastError = sub.status === 'error' ? (await ctx.store.deliveryState(fv, sub.id)).lastError : undefined;
  const errors = [...(lastError ? [{ code: 'no-response', text: lastError }] : []), ...ctx.engine.registry.faults.statusErrors(sub.topicUrl)];
  const input = {
    baseUrl: ctx.baseUrl,
    subscriptionId: sub.id,
    ...(sub.spec.topic ? { topic: sub.spec.topic } : {}),
    status: sub.status,
    type,
    // EN-2: in an event notification the highest eventNumber is the count as of that notification.
    eventsSinceSubscriptionStart: last,
    content,
    events: events.map((e) => ({ eventNumber: e.number, timestamp: e.timestamp, focus: e.focus, interaction: e.interaction })),
    resources,
    ...(additionalByEvent ? { additionalByEvent } : {}),
    ...(errors.length > 0 ? { errors } : {}),
    timestamp: ctx.now().toISOString(),
  };
  return dialect === 'medplum' ? buildMedplumNotification(input) : buildNotification(ctx.engine.adapter, input);
}

/**
 * Bounds on notificationShape context (REQUIREMENTS D-20): `revInclude: *` on a busy focus would
 * otherwise put thousands of resources into every notification and every `$events` page.
 */
export const CONTEXT_LIMITS = {
  /** Context resources referenced by one event. */
  perEvent: 20,
  /** Distinct context resources in one notification Bundle (one `$events` page included). */
  perBundle: 100,
} as const;

/**
 * Focus resources as of their event's version, parsed once for every subscription that matched the
 * same change (a version never changes, so the cache needs no invalidation; it is bounded).
 */
const FOCUS_CACHE_SIZE = 1024;
const focusCache = new WeakMap<Store, Map<string, Resource | undefined>>();

async function focusVersion(store: Store, fv: FhirVersion, e: StoredEvent): Promise<Resource | undefined> {
  let cache = focusCache.get(store);
  if (!cache) focusCache.set(store, (cache = new Map()));
  const key = `${fv}|${e.focus.type}/${e.focus.id}/${e.focus.versionId}`;
  if (cache.has(key)) return cache.get(key);
  const v = await store.vread(fv, e.focus.type, e.focus.id, e.focus.versionId);
  const r = v?.json ? (JSON.parse(v.json) as Resource) : undefined;
  if (cache.size >= FOCUS_CACHE_SIZE) cache.delete(cache.keys().next().value!);
  cache.set(key, r);
  return r;
}

/**
 * Additional context per event from the topic's notificationShape (P-6): its `include` and
 * `revInclude` entries, evaluated by the store's own _include/_revinclude from the focus (current
 * versions). Entries Herald cannot parse are skipped rather than failing the notification, since
 * clients must expect context to be missing; so is context past CONTEXT_LIMITS. A focus is looked
 * up once per notification, however many of its events it holds.
 */
async function shapeContext(ctx: NotifyContext, sub: ActiveSubscription, events: StoredEvent[]): Promise<Map<number, Resource[]> | undefined> {
  const topic = ctx.engine.registry.topic(sub.topicUrl);
  if (!topic || topic.notificationShape.length === 0) return undefined;
  const out = new Map<number, Resource[]>();
  const byFocus = new Map<string, Resource[]>();
  const listed = new Set<string>();
  for (const e of events) {
    const shape = topic.notificationShape.find((s) => s.resource === e.focus.type);
    if (!shape || shape.include.length + shape.revInclude.length === 0 || e.interaction === 'delete') continue;
    const focus = `${e.focus.type}/${e.focus.id}`;
    let found = byFocus.get(focus);
    if (found === undefined) {
      if (listed.size >= CONTEXT_LIMITS.perBundle) continue;
      // D-22: included resources are filtered with the owner's recorded access, like the focus.
      found = (await included(ctx, e, shape.include, shape.revInclude)).filter((r) => ctx.engine.ownerMayRead(sub.id, r)).map((r) => ctx.engine.forOwner(sub.id, r));
      byFocus.set(focus, found);
    }
    const context = found.filter((r) => {
      const key = `${r.resourceType}/${r.id}`;
      if (listed.has(key)) return true;
      if (listed.size >= CONTEXT_LIMITS.perBundle) return false;
      listed.add(key);
      return true;
    });
    out.set(e.number, context);
  }
  return out;
}

/** The first CONTEXT_LIMITS.perEvent resources the shape's entries reach from an event's focus. */
async function included(ctx: NotifyContext, e: StoredEvent, include: string[], revInclude: string[]): Promise<Resource[]> {
  const query = new URLSearchParams({ _id: e.focus.id });
  for (const inc of include) query.append('_include', inc.split('&')[0]!);
  for (const rev of revInclude) query.append('_revinclude', rev.split('&')[0]!);
  try {
    const request = parseSearch(ctx.engine.search, [e.focus.type], query, { strict: false, defaultCount: 1, maxCount: 1, baseUrl: ctx.baseUrl });
    const page = await ctx.store.search(ctx.engine.version, { ...request, total: 'none' });
    return page.included.slice(0, CONTEXT_LIMITS.perEvent).map((v) => JSON.parse(v.json!) as Resource);
  } catch {
    // An unparsable shape entry: no context for this event.
    return [];
  }
}
