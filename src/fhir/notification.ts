/**
 * Notification Bundles (REQUIREMENTS §5), version-neutral: the version adapter supplies the status
 * resource, the Bundle type and profile; this module decides what goes in.
 *
 * Shape: entry[0] is the status, `fullUrl` `urn:uuid:<status id>`, request `GET …/$status`, response
 * `200` (NB-1, NB-2, NB-4). Then, by content level (P-2..P-5): `empty` nothing else, no focus and
 * no topic; `id-only` one entry per focus and context resource with fullUrl, request and response
 * but no resource; `full-resource` the same with the resource where there is one (a deletion or a
 * resource Herald cannot supply keeps request/response only, P-4). Each focus entry's request
 * replays the triggering interaction (NB-3); context resources show `GET Type/id` / `200`. All
 * URLs are absolute on the public base (D-15). Counters follow EN-1/EN-2: the caller passes them.
 */
import { randomUUID } from 'node:crypto';
import type { NotificationEvent, NotificationType, PayloadContent, StatusInfo, SubscriptionStatusCode } from './subscription-model.ts';
import type { Bundle, BundleEntry, Resource } from './types.ts';
import type { VersionAdapter } from './versions/index.ts';

export interface NotificationInput {
  /** Public base of the FHIR version, e.g. `https://host/fhir/R4` (a trailing `/` is ignored). */
  baseUrl: string;
  subscriptionId: string;
  topic?: string;
  status: SubscriptionStatusCode;
  type: NotificationType;
  eventsSinceSubscriptionStart: number;
  content: PayloadContent;
  events: NotificationEvent[];
  /**
   * Focus resources for `full-resource`, keyed `Type/id`; `Type/id/_history/vid` wins when present,
   * so a batch with two versions of one resource shows each.
   */
  resources: Map<string, Resource>;
  /** notificationShape include/revInclude context (P-6), already fetched; attached to every event. */
  additional?: Resource[];
  /** Context per event number, for batches where events have different context (wins over `additional`). */
  additionalByEvent?: Map<number, Resource[]>;
  errors?: { code?: string; text: string }[];
  /** Bundle.timestamp (ISO instant). */
  timestamp: string;
  /** Id of the status resource (and its `urn:uuid:` fullUrl); a fresh UUID when omitted. */
  statusId?: string;
  /** Id of the Bundle, in shapes that give it one (medplum); a fresh UUID when omitted. */
  bundleId?: string;
}

/** StatusInfo plus the id of the status resource, as `$status` lists them. */
export type StatusWithId = StatusInfo & { id: string };

/**
 * Builds a notification (handshake, heartbeat, event-notification, and the `$events` result with
 * type `query-event`). Throws when an event-notification or query-event has no events (NB-8 sst-1).
 */
export function buildNotification(adapter: VersionAdapter, input: NotificationInput): Bundle {
  if ((input.type === 'event-notification' || input.type === 'query-event') && input.events.length === 0) {
    throw new Error(`a ${input.type} notification needs at least one event (sst-1)`);
  }
  const base = input.baseUrl.replace(/\/+$/, '');
  const sub = adapter.subscriptions;
  const statusId = input.statusId ?? randomUUID();
  const info = statusInfo(base, input);
  const statusEntry: BundleEntry = {
    fullUrl: `urn:uuid:${statusId}`,
    resource: sub.statusResource(info, statusId),
    request: { method: 'GET', url: `${info.subscriptionUrl}/$status` },
    response: { status: '200' },
  };
  const bundle: Bundle = { resourceType: 'Bundle', type: sub.notificationBundleType, timestamp: input.timestamp };
  if (sub.notificationProfile !== undefined) bundle.meta = { profile: [sub.notificationProfile] };
  bundle.entry = [statusEntry, ...resourceEntries(base, input, sub.notificationBundleType === 'history')];
  return bundle;
}

/**
 * The topic is left out of `empty` notifications sent over a channel (P-2, SEC-7: the topic URL
 * may itself reveal something); `$status` / `$events` answers go to an authorized caller and keep
 * it (§5.4 recommends it there).
 */
function showsTopic(input: NotificationInput): boolean {
  return input.content !== 'empty' || input.type === 'query-status' || input.type === 'query-event';
}

function statusInfo(base: string, input: NotificationInput): StatusInfo {
  const info: StatusInfo = {
    subscriptionUrl: `${base}/Subscription/${input.subscriptionId}`,
    status: input.status,
    type: input.type,
    eventsSinceSubscriptionStart: input.eventsSinceSubscriptionStart,
    events: input.events.map((e) => eventInfo(base, input, e)),
    errors: input.errors ?? [],
  };
  if (input.topic !== undefined && showsTopic(input)) info.topic = input.topic;
  return info;
}

function eventInfo(base: string, input: NotificationInput, e: NotificationEvent): StatusInfo['events'][number] {
  const out: StatusInfo['events'][number] = { eventNumber: e.eventNumber, timestamp: e.timestamp };
  if (input.content === 'empty') return out;
  out.focus = `${base}/${e.focus.type}/${e.focus.id}`;
  const context = contextOf(input, e).map((r) => `${base}/${keyOf(r)}`);
  if (context.length > 0) out.additionalContext = context;
  return out;
}

/** Context resources of an event that can be referenced (they need an id). */
function contextOf(input: NotificationInput, e: NotificationEvent): Resource[] {
  const list = input.additionalByEvent?.get(e.eventNumber) ?? input.additional ?? [];
  return list.filter((r) => typeof r.id === 'string' && r.id !== '');
}

const keyOf = (r: Resource) => `${r.resourceType}/${r.id}`;

/**
 * Focus entries in event order, each followed by its not-yet-listed context resources. A history
 * bundle may list one resource once per event; other bundles (R5) may not repeat a fullUrl at the
 * same version (bdl-7), so a repeated focus is listed once there.
 */
function resourceEntries(base: string, input: NotificationInput, history: boolean): BundleEntry[] {
  if (input.content === 'empty') return [];
  const listed = new Set(input.events.map((e) => `${e.focus.type}/${e.focus.id}`));
  const foci = new Set<string>();
  const out: BundleEntry[] = [];
  for (const e of input.events) {
    const entry = focusEntry(base, input, e);
    const key = `${entry.fullUrl}|${entry.resource?.meta?.versionId ?? ''}`;
    if (history || !foci.has(key)) out.push(entry);
    foci.add(key);
    for (const r of contextOf(input, e)) {
      const key = keyOf(r);
      if (listed.has(key)) continue;
      listed.add(key);
      const entry: BundleEntry = { fullUrl: `${base}/${key}` };
      if (input.content === 'full-resource') entry.resource = r;
      out.push({ ...entry, request: { method: 'GET', url: key }, response: { status: '200' } });
    }
  }
  return out;
}

/** Request and response replaying the interaction (NB-3): create POST/201, update PUT/200, delete DELETE/204. */
const INTERACTION = {
  create: (type: string) => ({ request: { method: 'POST', url: type }, response: { status: '201' } }),
  update: (type: string, id: string) => ({ request: { method: 'PUT', url: `${type}/${id}` }, response: { status: '200' } }),
  delete: (type: string, id: string) => ({ request: { method: 'DELETE', url: `${type}/${id}` }, response: { status: '204' } }),
} as const;

function focusEntry(base: string, input: NotificationInput, e: NotificationEvent): BundleEntry {
  const { type, id, versionId } = e.focus;
  const entry: BundleEntry = { fullUrl: `${base}/${type}/${id}` };
  if (input.content === 'full-resource' && e.interaction !== 'delete') {
    const resource = input.resources.get(`${type}/${id}/_history/${versionId}`) ?? input.resources.get(`${type}/${id}`);
    if (resource !== undefined) entry.resource = resource;
  }
  return { ...entry, ...INTERACTION[e.interaction](type, id) };
}

/**
 * The `$status` result (§7.1): a searchset with one status resource per subscription, each with
 * type `query-status` and its status filled in (NB-8 sst-2), as given by the caller. `self`: the
 * request as asked, e.g. `Subscription/a/$status` or `Subscription/$status?status=active`, relative
 * to the base (default: the type-level operation with no parameters).
 */
export function buildStatusBundle(adapter: VersionAdapter, baseUrl: string, statuses: StatusWithId[], timestamp: string, self = 'Subscription/$status'): Bundle {
  const base = baseUrl.replace(/\/+$/, '');
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'searchset',
    timestamp,
    total: statuses.length,
    link: [{ relation: 'self', url: `${base}/${self}` }],
  };
  if (statuses.length > 0) {
    bundle.entry = statuses.map(({ id, ...info }) => ({
      fullUrl: `urn:uuid:${id}`,
      resource: adapter.subscriptions.statusResource(info, id),
      search: { mode: 'match' },
    }));
  }
  return bundle;
}
