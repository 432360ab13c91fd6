/**
 * Herald client: listen to FHIR topic-based Subscriptions over websockets (R4 / R4B backport, R5).
 * Runs in Node and browsers; pass `fetch` and `WebSocket` where the globals are missing.
 */
export { createListener, EventsLostError, ServerOutcomeError } from './listener.ts';
export type { Listener, ListenerOptions, ListenerStatus, ListenerStatusType } from './listener.ts';
export { eventsOf, idFromReference, DELIVERED_AT_EXTENSION, DELIVERED_THROUGH_EXTENSION, NEXT_ATTEMPT_EXTENSION, NotificationFormatError, outcomeMessage, parseFrame, parseNotification } from './notifications.ts';
export type { Frame, NotificationEvent, ParsedNotification } from './notifications.ts';
export { EventSequencer } from './ordering.ts';
export type { Gap, Numbered, OfferResult } from './ordering.ts';
export { FhirHttpError, FhirRestClient, versionFromBaseUrl, versionFromFhirVersion } from './rest.ts';
export type { BindingToken, RestOptions } from './rest.ts';
export { isReusable, parseFilter, summarizeSubscription, websocketSubscription } from './subscriptions.ts';
export type { FilterParts, SubscriptionSummary, WebsocketSubscriptionRequest } from './subscriptions.ts';
export { backoffDelay } from './backoff.ts';
export type { BackoffOptions } from './backoff.ts';
export type * from './types.ts';
