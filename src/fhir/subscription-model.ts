/**
 * The canonical, version-free model of topic-based subscriptions (the R5 shape, REQUIREMENTS T-4,
 * R5-4). Each version adapter (fhir/versions/*) converts its resources to and from these types;
 * everything else in Herald works on these types only. Plain data, no logic.
 */

export type SubscriptionStatusCode = 'requested' | 'active' | 'error' | 'off' | 'entered-in-error';
export type PayloadContent = 'empty' | 'id-only' | 'full-resource';
export type NotificationType = 'handshake' | 'heartbeat' | 'event-notification' | 'query-status' | 'query-event';
export type Interaction = 'create' | 'update' | 'delete';

export interface QueryCriteria {
  previous?: string;
  current?: string;
  resultForCreate?: 'test-passes' | 'test-fails';
  resultForDelete?: 'test-passes' | 'test-fails';
  requireBoth?: boolean;
}

export interface ResourceTrigger {
  /** Human text; kept so topics rendered by writeTopic stay searchable (`trigger-description`, T-7). */
  description?: string;
  /** Resource type name (a canonical URL of a StructureDefinition is reduced to its type). */
  resource: string;
  /** Empty means every interaction. */
  supportedInteraction: Interaction[];
  queryCriteria?: QueryCriteria;
  fhirPathCriteria?: string;
}

export interface CanFilterBy {
  /** Human text explaining the filter (kept for writeTopic). */
  description?: string;
  resource?: string;
  filterParameter: string;
  /** Allowed modifiers (R4B `modifier` may hold comparators too: eq, gt, …; both kept here). */
  modifiers: string[];
  comparators: string[];
}

export interface NotificationShape {
  resource: string;
  include: string[];
  revInclude: string[];
}

export interface Topic {
  url: string;
  version?: string;
  title?: string;
  /** R5 `name` (R4 Basic: cross-version extension; R4B has no such element and drops it). */
  name?: string;
  /** Topics this one derives from (`derived-or-self` search, T-7). */
  derivedFrom?: string[];
  date?: string;
  description?: string;
  status: 'draft' | 'active' | 'retired' | 'unknown';
  resourceTriggers: ResourceTrigger[];
  canFilterBy: CanFilterBy[];
  notificationShape: NotificationShape[];
}

export interface Filter {
  /** Resource type the filter applies to (optional in every syntax). */
  resourceType?: string;
  filterParameter: string;
  /** Search prefix (eq, gt, …) when given as an R5 comparator or a backport value prefix. */
  comparator?: string;
  modifier?: string;
  value: string;
}

/**
 * A standard channel code as it is (`rest-hook`, …; R4 `sms` too). A custom channel (backport
 * `backport-channel-type`, R5 Coding from another system) is written `system#code`, e.g.
 * `http://example.org/subscription-channel-type#zulip`, so it cannot be taken for a standard one.
 */
export type ChannelType = 'rest-hook' | 'websocket' | 'email' | 'message' | string;

export interface Channel {
  type: ChannelType;
  endpoint?: string;
  /** HTTP headers for rest-hook (R4 `Name: value` strings, R5 parameter name/value). */
  headers: { name: string; value: string }[];
  /** Seconds; undefined = no heartbeats. */
  heartbeatPeriod?: number;
  /** Seconds per delivery attempt. */
  timeout?: number;
  maxCount?: number;
  /** MIME type of notifications, e.g. `application/fhir+json` (may carry fhirVersion=). */
  contentType: string;
  content: PayloadContent;
}

/** A Subscription as Herald understands it, whatever the FHIR version it was written in. */
export interface SubscriptionSpec {
  /** Topic canonical URL (R4/R4B `criteria`, R5 `topic`); for R4 classic subscriptions, undefined. */
  topic?: string;
  /** R4 classic (pre-topic) subscriptions: the search criteria, e.g. `Observation?code=…`. */
  classicCriteria?: string;
  status: SubscriptionStatusCode;
  /** ISO instant after which the subscription is off (REQUIREMENTS D-17). */
  end?: string;
  filters: Filter[];
  channel: Channel;
}

/** One event of one subscription's log. */
export interface NotificationEvent {
  eventNumber: number;
  /** ISO instant of the change. */
  timestamp: string;
  /** `Type/id` of the focus resource, and the version that the event is about. */
  focus: { type: string; id: string; versionId: number };
  /** The interaction that caused it (drives entry.request in notifications). */
  interaction: Interaction;
}

/** What a status resource (R4 Parameters, SubscriptionStatus) says. */
export interface StatusInfo {
  /** Absolute URL of the Subscription. */
  subscriptionUrl: string;
  topic?: string;
  status: SubscriptionStatusCode;
  type: NotificationType;
  eventsSinceSubscriptionStart: number;
  events: {
    eventNumber: number;
    timestamp?: string;
    /** Absolute URL of the focus (omitted for `empty` content). */
    focus?: string;
    additionalContext?: string[];
  }[];
  /** Errors, as text (rendered as CodeableConcept.text with the subscription-error code when known). */
  errors: { code?: string; text: string }[];
  /**
   * ISO instant of the next delivery attempt of a failing subscription (`$status` only), rendered
   * as Herald's NEXT_ATTEMPT_EXTENSION on the status code.
   */
  nextAttempt?: string;
  /**
   * rest-hook (`$status` only): the events through `through` have been delivered, the latest at
   * `at`; rendered as Herald's DELIVERED_* extensions on eventsSinceSubscriptionStart.
   */
  delivered?: { through: number; at?: string };
}
