/**
 * Reading notification Bundles in each FHIR version's shape (REQUIREMENTS §5):
 *
 * - R4 (backport): Bundle `history`, entry[0] a `Parameters` (backport-subscription-status-r4)
 *   with `notification-event` parts (`event-number`, `timestamp`, `focus`, `additional-context`).
 * - R4B (backport): Bundle `history`, entry[0] a `SubscriptionStatus` whose `eventNumber` and
 *   `eventsSinceSubscriptionStart` are strings.
 * - R5: Bundle `subscription-notification`, entry[0] a `SubscriptionStatus` (integer64 values,
 *   written as JSON strings; numbers are accepted too).
 *
 * The shape is recognised from the status resource itself, so one parser serves every version.
 * Also: websocket frames (a Bundle, an OperationOutcome, `{"type":"pong"}`, `keepalive …`).
 */
import type { Bundle, BundleEntry, NotificationType, Resource, SubscriptionEvent } from './types.ts';

export interface NotificationEvent {
  eventNumber: number;
  timestamp?: string;
  focus?: string;
  additionalContext: string[];
}

export interface ParsedNotification {
  /** `parameters` for the R4 status shape, `subscription-status` for R4B and R5. */
  shape: 'parameters' | 'subscription-status';
  type: NotificationType;
  /** The subscription's status as the server saw it (`active`, `error`, …). */
  status?: string;
  subscriptionReference: string;
  subscriptionId: string;
  topic?: string;
  eventsSinceSubscriptionStart?: number;
  events: NotificationEvent[];
  /** Error codes/texts the status carries (`error` CodeableConcepts). */
  errors: string[];
  /** When a failing subscription's next delivery attempt is due (Herald's extension on the status code, `$status` only). */
  nextAttempt?: string;
  /** rest-hook (`$status` only): the events through `through` were delivered, the latest at `at` (Herald's extensions on the count). */
  delivered?: { through: number; at?: string };
  bundle: Bundle;
}

export class NotificationFormatError extends Error {
  override name = 'NotificationFormatError';
}

/**
 * Herald's extensions in a `$status` answer (the server's are in fhir/versions/subscriptions/
 * status.ts; the rest-hook e2e test reads one with the other): on the status code, the next
 * delivery attempt (valueInstant); on the event count, delivered through (valueString) and when.
 */
export const NEXT_ATTEMPT_EXTENSION = 'urn:herald:extension:next-delivery-attempt';
export const DELIVERED_THROUGH_EXTENSION = 'urn:herald:extension:delivered-through';
export const DELIVERED_AT_EXTENSION = 'urn:herald:extension:delivered-at';

const extensionOf = (element: unknown, url: string) => (isObject(element) ? arrayOf(element.extension).find((e) => e.url === url) : undefined);

function nextAttemptOf(element: unknown): { nextAttempt?: string } {
  return opt('nextAttempt', str(extensionOf(element, NEXT_ATTEMPT_EXTENSION)?.valueInstant));
}

function deliveredOf(element: unknown): { delivered?: { through: number; at?: string } } {
  const through = num(extensionOf(element, DELIVERED_THROUGH_EXTENSION)?.valueString);
  return through === undefined ? {} : { delivered: { through, ...opt('at', str(extensionOf(element, DELIVERED_AT_EXTENSION)?.valueInstant)) } };
}

const TYPES: readonly NotificationType[] = ['handshake', 'heartbeat', 'event-notification', 'query-status', 'query-event'];

/** Parses a notification Bundle of any version; throws NotificationFormatError when it is not one. */
export function parseNotification(bundle: unknown): ParsedNotification {
  if (!isObject(bundle) || bundle.resourceType !== 'Bundle') throw new NotificationFormatError('not a Bundle');
  const b = bundle as Bundle;
  const status = b.entry?.[0]?.resource;
  if (!status) throw new NotificationFormatError('the Bundle has no status entry');
  const parsed = status.resourceType === 'Parameters' ? fromParameters(status) : status.resourceType === 'SubscriptionStatus' ? fromSubscriptionStatus(status) : undefined;
  if (!parsed) throw new NotificationFormatError(`entry[0] is a ${String(status.resourceType)}, not a Parameters or SubscriptionStatus`);
  if (!TYPES.includes(parsed.type as NotificationType)) throw new NotificationFormatError(`unknown notification type '${String(parsed.type)}'`);
  if (!parsed.subscriptionReference) throw new NotificationFormatError('the status names no subscription');
  const subscriptionId = idFromReference(parsed.subscriptionReference, 'Subscription');
  if (!subscriptionId) throw new NotificationFormatError(`cannot read a Subscription id from '${parsed.subscriptionReference}'`);
  return { ...parsed, type: parsed.type as NotificationType, subscriptionId, bundle: b };
}

type Partial_ = Omit<ParsedNotification, 'subscriptionId' | 'bundle' | 'type'> & { type: string };

function fromParameters(p: Resource): Partial_ {
  const params = arrayOf(p.parameter);
  const named = (name: string, list = params) => list.filter((x) => x.name === name);
  const first = (name: string, list = params) => named(name, list)[0];
  return {
    shape: 'parameters',
    type: String(first('type')?.valueCode ?? ''),
    ...opt('status', str(first('status')?.valueCode)),
    ...nextAttemptOf(first('status')?._valueCode),
    subscriptionReference: str(refOf(first('subscription')?.valueReference)) ?? '',
    ...opt('topic', str(first('topic')?.valueCanonical ?? first('topic')?.valueUri)),
    ...opt('eventsSinceSubscriptionStart', num(first('events-since-subscription-start')?.valueString ?? first('events-since-subscription-start')?.valueInteger64)),
    ...deliveredOf(first('events-since-subscription-start')?._valueString),
    events: named('notification-event').map((e) => {
      const parts = arrayOf(e.part);
      const eventNumber = num(first('event-number', parts)?.valueString ?? first('event-number', parts)?.valueInteger64);
      if (eventNumber === undefined) throw new NotificationFormatError('a notification-event has no event-number');
      return {
        eventNumber,
        ...opt('timestamp', str(first('timestamp', parts)?.valueInstant)),
        ...opt('focus', refOf(first('focus', parts)?.valueReference)),
        additionalContext: named('additional-context', parts).map((x) => refOf(x.valueReference)).filter((x): x is string => !!x),
      };
    }),
    errors: named('error').flatMap((x) => conceptText(x.valueCodeableConcept)),
  };
}

function fromSubscriptionStatus(s: Resource): Partial_ {
  return {
    shape: 'subscription-status',
    type: String(s.type ?? ''),
    ...opt('status', str(s.status)),
    ...nextAttemptOf(s._status),
    subscriptionReference: refOf(s.subscription) ?? '',
    ...opt('topic', str(s.topic)),
    ...opt('eventsSinceSubscriptionStart', num(s.eventsSinceSubscriptionStart)),
    ...deliveredOf(s._eventsSinceSubscriptionStart),
    events: arrayOf(s.notificationEvent).map((e) => {
      const eventNumber = num(e.eventNumber);
      if (eventNumber === undefined) throw new NotificationFormatError('a notificationEvent has no eventNumber');
      return {
        eventNumber,
        ...opt('timestamp', str(e.timestamp)),
        ...opt('focus', refOf(e.focus)),
        additionalContext: arrayOf(e.additionalContext).map(refOf).filter((x): x is string => !!x),
      };
    }),
    errors: arrayOf(s.error).flatMap(conceptText),
  };
}

/** The consumer-facing events of a parsed notification, with the focus resource and interaction looked up in the Bundle. */
export function eventsOf(n: ParsedNotification): SubscriptionEvent[] {
  const entries = (n.bundle.entry ?? []).slice(1);
  return n.events.map((e) => {
    const entry = e.focus ? findEntry(entries, e.focus) : undefined;
    const interaction = interactionOf(entry);
    return {
      subscriptionId: n.subscriptionId,
      eventNumber: e.eventNumber,
      ...opt('timestamp', e.timestamp),
      ...opt('focus', e.focus),
      additionalContext: e.additionalContext,
      ...opt('interaction', interaction),
      ...opt('resource', entry?.resource),
      ...opt('topic', n.topic),
      source: n.type,
      bundle: n.bundle,
    };
  });
}

function findEntry(entries: BundleEntry[], reference: string): BundleEntry | undefined {
  const exact = entries.find((e) => e.fullUrl === reference);
  if (exact) return exact;
  const tail = /([A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(reference)?.[1];
  if (!tail) return undefined;
  return entries.find(
    (e) => (e.fullUrl !== undefined && (e.fullUrl === tail || e.fullUrl.endsWith(`/${tail}`))) || (e.resource && `${e.resource.resourceType}/${e.resource.id}` === tail),
  );
}

function interactionOf(entry: BundleEntry | undefined): SubscriptionEvent['interaction'] {
  switch (entry?.request?.method?.toUpperCase()) {
    case 'POST':
      return 'create';
    case 'PUT':
    case 'PATCH':
      return 'update';
    case 'DELETE':
      return 'delete';
    default:
      return undefined;
  }
}

/** The logical id in a reference such as `https://x/fhir/Subscription/abc` or `Subscription/abc/_history/2`. */
export function idFromReference(reference: string, type: string): string | undefined {
  const m = new RegExp(`(?:^|/)${type}/([A-Za-z0-9\\-.]{1,64})(?:/_history/[^/]*)?$`).exec(reference);
  return m?.[1];
}

// ---- websocket frames ----

export type Frame =
  | { kind: 'notification'; notification: ParsedNotification }
  | { kind: 'outcome'; outcome: Resource; message: string }
  | { kind: 'pong' }
  | { kind: 'keepalive' }
  | { kind: 'unknown'; text: string; reason: string };

/** Classifies one text frame from the server. Never throws. */
export function parseFrame(text: string): Frame {
  const trimmed = text.trim();
  if (trimmed.startsWith('keepalive')) return { kind: 'keepalive' };
  let json: unknown;
  try {
    json = JSON.parse(trimmed);
  } catch {
    return { kind: 'unknown', text, reason: 'not JSON' };
  }
  if (!isObject(json)) return { kind: 'unknown', text, reason: 'not a JSON object' };
  if (json.type === 'pong') return { kind: 'pong' };
  if (json.resourceType === 'OperationOutcome') return { kind: 'outcome', outcome: json as Resource, message: outcomeMessage(json as Resource) };
  if (json.resourceType === 'Bundle') {
    try {
      return { kind: 'notification', notification: parseNotification(json) };
    } catch (err) {
      return { kind: 'unknown', text, reason: (err as Error).message };
    }
  }
  return { kind: 'unknown', text, reason: `unexpected ${String(json.resourceType ?? json.type ?? 'JSON')}` };
}

/** The human text of an OperationOutcome: each issue's diagnostics or details. */
export function outcomeMessage(outcome: Resource): string {
  const issues = arrayOf(outcome.issue);
  const texts = issues.map((i) => str(i.diagnostics) ?? conceptText(i.details)[0] ?? str(i.code) ?? 'error');
  return texts.join('; ') || 'OperationOutcome without issues';
}

// ---- small JSON helpers ----

type Obj = Record<string, any>;

function isObject(x: unknown): x is Obj {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function arrayOf(x: unknown): Obj[] {
  return Array.isArray(x) ? x.filter(isObject) : [];
}

function str(x: unknown): string | undefined {
  return typeof x === 'string' && x !== '' ? x : undefined;
}

/** A number from a JSON number or a (64-bit) numeric string. */
function num(x: unknown): number | undefined {
  if (typeof x === 'number' && Number.isFinite(x)) return x;
  if (typeof x === 'string' && /^-?\d+$/.test(x.trim())) return Number(x.trim());
  return undefined;
}

function refOf(x: unknown): string | undefined {
  if (!isObject(x)) return undefined;
  return str(x.reference) ?? (isObject(x.identifier) ? str(x.identifier.value) : undefined);
}

function conceptText(x: unknown): string[] {
  if (!isObject(x)) return [];
  const text = str(x.text);
  if (text) return [text];
  return arrayOf(x.coding).map((c) => str(c.display) ?? str(c.code) ?? '').filter((s) => s !== '');
}

/** `{ key: value }` when value is defined, `{}` otherwise (for exactOptionalPropertyTypes-friendly spreads). */
function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
