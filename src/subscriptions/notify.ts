import { parseJson, storedResource, stringifyJson } from '../fhir/json.ts';
import { randomBytes, randomUUID } from 'node:crypto';
import type { NotificationType, PayloadContent } from '../fhir/subscription-model.ts';
import { buildNotification } from '../fhir/notification.ts';
import { buildMedplumNotification } from '../fhir/notification-medplum.ts';
import type { Bundle, Resource } from '../fhir/types.ts';
import { parseSearch } from '../search/parse.ts';
import type { Store, StoredEvent } from '../store/store.ts';
import type { SubscriptionEngine } from './engine.ts';
import { type Focus, focusVersion } from './focus.ts';
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
  return render(ctx, sub, type, events, content, dialect, (_focus, owned) => owned);
}

/**
 * The same notification as JSON text, for the channels. A focus resource the subscription's
 * owner receives unchanged (forOwner) is serialized once per version, however many subscriptions
 * and sockets it goes to, and spliced into each subscription's own small envelope (its status
 * differs: id, counters, errors). The text equals stringifyJson(renderNotification(…)).
 */
export async function renderNotificationText(
  ctx: NotifyContext,
  sub: ActiveSubscription,
  type: NotificationType,
  events: StoredEvent[],
  content: PayloadContent = sub.spec.channel.content,
  dialect: Dialect = 'ig',
): Promise<string> {
  if (type === 'event-notification' && events.length > 0) {
    const shared = await fromTemplate(ctx, sub, events, content, dialect);
    if (shared !== undefined) return shared;
  }
  const bundle = await render(ctx, sub, type, events, content, dialect, (focus, owned) => (owned === focus.resource ? storedResource(focus.json, owned) : owned));
  return stringifyJson(bundle);
}

/**
 * A template's marker (see fromTemplate): a stand-in for the focus reads as the resource (builders
 * may look at its meta) but serializes as a marker string. The marker holds a control character (which JSON.stringify always
 * escapes) and a per-process random nonce, so no string of a client's can serialize to it.
 */
const SPLICE = `\u0001herald-splice-${randomBytes(8).toString('hex')}-`;
// As JSON writes it (the control character escaped): a stand-in resource is the whole string
// `"<SPLICE><n>"`; a template's slot is `<SPLICE><letter>` inside a string.
const ESCAPED = JSON.stringify(SPLICE).slice(1, -1).replaceAll('\\', '\\\\');
const MARKS = new RegExp(`"${ESCAPED}(\\d+)"|${ESCAPED}([sbunftw])`, 'g');

function standIn(resource: Resource): Resource {
  return Object.create(resource, { toJSON: { value: () => `${SPLICE}0` } }) as Resource;
}

/**
 * Event notifications from a shared template (issue 15). A notification of one event differs
 * from another of the same shape (dialect, content level, status, topic, focus type, interaction,
 * whether the focus is at hand) only in the subscription's id, the event's number, focus id and
 * time, the focus resource itself and the fresh ids of the status resource and Bundle, as long as
 * the owner receives the focus unchanged, the subscription shows no error and the topic adds no
 * context. The envelope is then rendered once, with markers in those places (SPLICE + a letter,
 * inside JSON strings: every builder writes them as text, 64-bit counters included), cut at the
 * markers, and filled in per notification: a change matching 100 subscriptions renders nothing
 * 100 times, and neither do successive changes. The Bundle's timestamp is a slot too (the time of
 * the filling). A template serves for TEMPLATE_TTL_MS, which bounds how long a shape seen once is
 * held. The filled text equals the rendered one (notify.test.ts). Notifications of several events
 * (a rest-hook batch) are rendered each.
 */
const TEMPLATE_TTL_MS = 100;
const TEMPLATES_HELD = 64;
type Slot = { k: 'focus' | 'focusId' | 'time' | 'number' | 'subscription' | 'status' | 'bundle' | 'now' };
/** Templates made and notifications filled from one (read by notify.test.ts). */
export const templateCounts = { made: 0, filled: 0 };
type Template = (string | Slot)[];
const templates = new WeakMap<SubscriptionEngine, Map<string, { at: number; template?: Promise<Template> }>>();
const SLOT: Record<string, Slot['k']> = { s: 'subscription', b: 'bundle', u: 'status', n: 'number', f: 'focusId', t: 'time', w: 'now' };
const mark = (what: string) => `${SPLICE}${what}`;

async function fromTemplate(ctx: NotifyContext, sub: ActiveSubscription, events: StoredEvent[], content: PayloadContent, dialect: Dialect): Promise<string | undefined> {
  const { engine } = ctx;
  const e = events[0]!;
  if (events.length !== 1 || sub.status === 'error' || engine.registry.faults.statusErrors(sub.topicUrl).length > 0) return undefined;
  if (content !== 'empty' && (engine.registry.topic(sub.topicUrl)?.notificationShape.length ?? 0) > 0) return undefined;
  const focus = content === 'full-resource' ? await focusVersion(ctx.store, engine.version, e) : undefined;
  if (focus && engine.forOwner(sub.id, focus.resource) !== focus.resource) return undefined;
  const key = `${dialect}|${content}|${sub.status}|${sub.spec.topic ?? ''}|${e.focus.type}|${e.interaction}|${focus ? 'focus' : ''}`;
  let held = templates.get(engine);
  if (!held) templates.set(engine, (held = new Map()));
  const now = ctx.now().getTime();
  // The first notification of a shape is rendered on its own (a shape seen once gains nothing from
  // a template); the second makes the template, and the subscriptions a commit woke, rendering in
  // the same turn, share it while it is being made.
  const made = held.get(key);
  if (!made || now - made.at > TEMPLATE_TTL_MS || now < made.at) {
    held.delete(key);
    if (held.size >= TEMPLATES_HELD) held.delete(held.keys().next().value!);
    held.set(key, { at: now });
    return undefined;
  }
  if (!made.template) {
    made.template = template(ctx, sub, e, focus, content, dialect);
    // A failed rendering is not kept: the next notification tries again.
    made.template.catch(() => held.get(key) === made && held.delete(key));
  }
  const t = await made.template;
  templateCounts.filled += 1;
  // The status resource's id is written twice (its id and its urn:uuid: fullUrl): one per notification.
  const status = randomUUID();
  let bundle: string | undefined;
  let out = '';
  for (const p of t) {
    if (typeof p === 'string') out += p;
    else if (p.k === 'focus') out += focus!.json;
    else if (p.k === 'focusId') out += e.focus.id;
    else if (p.k === 'time') out += e.timestamp;
    else if (p.k === 'number') out += e.number;
    else if (p.k === 'subscription') out += sub.id;
    else if (p.k === 'status') out += status;
    else if (p.k === 'now') out += ctx.now().toISOString();
    else out += bundle ??= randomUUID();
  }
  return out;
}

async function template(ctx: NotifyContext, sub: ActiveSubscription, e: StoredEvent, focus: Focus | undefined, content: PayloadContent, dialect: Dialect): Promise<Template> {
  templateCounts.made += 1;
  const marked: Marked = { subscriptionId: mark('s'), statusId: mark('u'), bundleId: mark('b'), number: mark('n'), timestamp: mark('w'), focus };
  const event: StoredEvent = { ...e, timestamp: mark('t'), focus: { type: e.focus.type, id: mark('f'), versionId: e.focus.versionId } };
  const bundle = await render(ctx, sub, 'event-notification', [event], content, dialect, (f) => standIn(f.resource), marked);
  const text = JSON.stringify(bundle);
  const parts: Template = [];
  let from = 0;
  for (const m of text.matchAll(MARKS)) {
    parts.push(text.slice(from, m.index));
    from = m.index + m[0].length;
    parts.push({ k: m[1] !== undefined ? 'focus' : SLOT[m[2]!]! });
  }
  parts.push(text.slice(from));
  return parts;
}

/**
 * Markers in place of a notification's own values, for a template (strings where numbers go:
 * builders write them as text), and the focus to render it with.
 */
interface Marked {
  subscriptionId: string;
  statusId: string;
  bundleId: string;
  number: string;
  timestamp: string;
  focus: Focus | undefined;
}

type Place = (focus: Focus, owned: Resource) => Resource;

async function render(
  ctx: NotifyContext,
  sub: ActiveSubscription,
  type: NotificationType,
  events: StoredEvent[],
  content: PayloadContent,
  dialect: Dialect,
  place: Place,
  marked?: Marked,
): Promise<Bundle> {
  const fv = ctx.engine.version;
  const resources = new Map<string, Resource>();
  if (content === 'full-resource') {
    for (const e of events) {
      const f = marked ? marked.focus : await focusVersion(ctx.store, fv, e);
      // The parsed focus is shared by every subscription of the change: forOwner copies, never edits.
      if (f) resources.set(`${e.focus.type}/${e.focus.id}`, place(f, ctx.engine.forOwner(sub.id, f.resource)));
    }
  }
  const additionalByEvent = content === 'empty' ? undefined : await shapeContext(ctx, sub, events);
  // An event notification counts its own highest number (EN-2); only the others ask the log.
  const last = type === 'event-notification' ? Math.max(...events.map((e) => e.number)) : (await ctx.store.eventRange(fv, sub.id)).last;
  const lastError = sub.status === 'error' ? (await ctx.store.deliveryState(fv, sub.id)).lastError : undefined;
  const errors = [...(lastError ? [{ code: 'no-response', text: lastError }] : []), ...ctx.engine.registry.faults.statusErrors(sub.topicUrl)];
  // A template's markers stand where numbers go; every builder writes those as text (String(n)).
  const asNumber = (marker: string) => marker as unknown as number;
  const input = {
    baseUrl: ctx.baseUrl,
    subscriptionId: marked?.subscriptionId ?? sub.id,
    ...(marked ? { statusId: marked.statusId, bundleId: marked.bundleId } : {}),
    ...(sub.spec.topic ? { topic: sub.spec.topic } : {}),
    status: sub.status,
    type,
    // EN-2: in an event notification the highest eventNumber is the count as of that notification.
    eventsSinceSubscriptionStart: marked ? asNumber(marked.number) : last,
    content,
    events: events.map((e) => ({ eventNumber: marked ? asNumber(marked.number) : e.number, timestamp: e.timestamp, focus: e.focus, interaction: e.interaction })),
    resources,
    ...(additionalByEvent ? { additionalByEvent } : {}),
    ...(errors.length > 0 ? { errors } : {}),
    timestamp: marked?.timestamp ?? ctx.now().toISOString(),
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
    return page.included.slice(0, CONTEXT_LIMITS.perEvent).map((v) => parseJson(v.json!) as Resource);
  } catch {
    // An unparsable shape entry: no context for this event.
    return [];
  }
}
