/**
 * Shared types of the Herald client. Nothing here depends on Node: the client runs in browsers
 * too, given a `fetch` and a `WebSocket` constructor.
 */

export type FhirVersion = 'R4' | 'R4B' | 'R5';
export type PayloadContent = 'empty' | 'id-only' | 'full-resource';
export type NotificationType = 'handshake' | 'heartbeat' | 'event-notification' | 'query-status' | 'query-event';

/** A FHIR resource, loosely typed: the client reads only the few elements it needs. */
export interface Resource {
  resourceType: string;
  id?: string;
  [key: string]: unknown;
}

export interface BundleEntry {
  fullUrl?: string;
  resource?: Resource;
  request?: { method?: string; url?: string };
  response?: { status?: string };
}

export interface Bundle extends Resource {
  resourceType: 'Bundle';
  type?: string;
  timestamp?: string;
  entry?: BundleEntry[];
}

/** One event of a subscription, as the consumer sees it. */
export interface SubscriptionEvent {
  subscriptionId: string;
  /** The event's position in the subscription's sequence (1, 2, 3, …). */
  eventNumber: number;
  /** When the event happened, if the server said so. */
  timestamp?: string;
  /** Reference to the resource the event is about (absent for `empty` content). */
  focus?: string;
  /** Other resources the server named for this event (`additionalContext`). */
  additionalContext: string[];
  /** `create`, `update` or `delete` when the notification's entry for the focus says so. */
  interaction?: 'create' | 'update' | 'delete';
  /** The focus resource itself, for `full-resource` subscriptions. */
  resource?: Resource;
  topic?: string;
  /** Which notification carried the event (`event-notification` normally, `query-event` after a catch-up via `$events`). */
  source: NotificationType;
  /** The whole notification Bundle the event came in. */
  bundle: Bundle;
}

/** Minimal structural view of a WebSocket: satisfied by the browser `WebSocket` and by the `ws` package. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open', listener: (event: unknown) => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { code?: number; reason?: string }) => void): void;
  addEventListener(type: 'error', listener: (event: unknown) => void): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;
