/**
 * Status resources (NB-1, NB-5, NB-6, §5.2): R4 `Parameters` with the backport-subscription-status-r4
 * parameter names in the IG's output order, R4B/R5 `SubscriptionStatus`. 64-bit counters are JSON
 * strings everywhere (R4 valueString, R4B string, R5 integer64).
 */
import type { StatusInfo } from '../../subscription-model.ts';
import type { Resource } from '../../types.ts';
import { PROFILE, SYSTEM } from './constants.ts';
import type { Json } from './json.ts';

type StatusError = StatusInfo['errors'][number];

/**
 * Herald's own extensions (no IG defines any) in a `$status` answer, on primitives:
 * - on the status code, when the next delivery attempt of a failing subscription is due
 *   (`valueInstant`);
 * - on eventsSinceSubscriptionStart of a rest-hook subscription, the number through which its
 *   events have been delivered (`valueString`, a 64-bit counter as the IG writes them) and when the
 *   latest of them was (`valueInstant`).
 */
export const NEXT_ATTEMPT_EXTENSION = 'urn:herald:extension:next-delivery-attempt';
export const DELIVERED_THROUGH_EXTENSION = 'urn:herald:extension:delivered-through';
export const DELIVERED_AT_EXTENSION = 'urn:herald:extension:delivered-at';

/** The primitive extension of the status code, when a next attempt is known. */
function statusExtension(info: StatusInfo): Json | undefined {
  return info.nextAttempt === undefined ? undefined : { extension: [{ url: NEXT_ATTEMPT_EXTENSION, valueInstant: info.nextAttempt }] };
}

/** The primitive extensions of eventsSinceSubscriptionStart, when delivery is recorded. */
function countExtension(info: StatusInfo): Json | undefined {
  const d = info.delivered;
  if (d === undefined) return undefined;
  return {
    extension: [
      { url: DELIVERED_THROUGH_EXTENSION, valueString: String(d.through) },
      ...(d.at === undefined ? [] : [{ url: DELIVERED_AT_EXTENSION, valueInstant: d.at }]),
    ],
  };
}

/** An error as CodeableConcept: the subscription-error coding when coded, the text always (ST-8). */
function errorConcept(e: StatusError): Json {
  return e.code === undefined ? { text: e.text } : { coding: [{ system: SYSTEM.subscriptionError, code: e.code }], text: e.text };
}

const reference = (url: string) => ({ reference: url });

/** R4: `Parameters` conforming to backport-subscription-status-r4. */
export function r4StatusParameters(info: StatusInfo, id: string): Resource {
  const ext = statusExtension(info);
  const count = countExtension(info);
  const parameter: Json[] = [
    { name: 'subscription', valueReference: reference(info.subscriptionUrl) },
    ...(info.topic === undefined ? [] : [{ name: 'topic', valueCanonical: info.topic }]),
    { name: 'status', valueCode: info.status, ...(ext ? { _valueCode: ext } : {}) },
    { name: 'type', valueCode: info.type },
    { name: 'events-since-subscription-start', valueString: String(info.eventsSinceSubscriptionStart), ...(count ? { _valueString: count } : {}) },
    ...info.events.map((e) => ({ name: 'notification-event', part: eventParts(e) })),
    ...info.errors.map((e) => ({ name: 'error', valueCodeableConcept: errorConcept(e) })),
  ];
  return { resourceType: 'Parameters', id, meta: { profile: [PROFILE.statusR4] }, parameter };
}

function eventParts(e: StatusInfo['events'][number]): Json[] {
  return [
    { name: 'event-number', valueString: String(e.eventNumber) },
    ...(e.timestamp === undefined ? [] : [{ name: 'timestamp', valueInstant: e.timestamp }]),
    ...(e.focus === undefined ? [] : [{ name: 'focus', valueReference: reference(e.focus) }]),
    ...(e.additionalContext ?? []).map((url) => ({ name: 'additional-context', valueReference: reference(url) })),
  ];
}

/** R4B and R5: `SubscriptionStatus` (same JSON: R4B string and R5 integer64 are both JSON strings). */
export function subscriptionStatus(info: StatusInfo, id: string): Resource {
  const ext = statusExtension(info);
  const count = countExtension(info);
  const out: Json = {
    resourceType: 'SubscriptionStatus',
    id,
    status: info.status,
    ...(ext ? { _status: ext } : {}),
    type: info.type,
    eventsSinceSubscriptionStart: String(info.eventsSinceSubscriptionStart),
    ...(count ? { _eventsSinceSubscriptionStart: count } : {}),
  };
  if (info.events.length > 0) out.notificationEvent = info.events.map(notificationEvent);
  out.subscription = reference(info.subscriptionUrl);
  if (info.topic !== undefined) out.topic = info.topic;
  if (info.errors.length > 0) out.error = info.errors.map(errorConcept);
  return out as Resource;
}

function notificationEvent(e: StatusInfo['events'][number]): Json {
  const out: Json = { eventNumber: String(e.eventNumber) };
  if (e.timestamp !== undefined) out.timestamp = e.timestamp;
  if (e.focus !== undefined) out.focus = reference(e.focus);
  if (e.additionalContext !== undefined && e.additionalContext.length > 0) out.additionalContext = e.additionalContext.map(reference);
  return out;
}
