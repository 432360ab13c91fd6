/**
 * The subscription part of a VersionAdapter: everything about topic-based subscriptions that
 * differs between R4 (backport, Basic topics, Parameters status), R4B (backport,
 * SubscriptionTopic, SubscriptionStatus) and R5 (native). Code outside fhir/versions/ works on the
 * canonical model (subscription-model.ts) and asks this record for the version's representation.
 */
import type { StatusInfo, SubscriptionSpec, SubscriptionStatusCode, Topic } from '../../subscription-model.ts';
import type { Resource } from '../../types.ts';

/** Server-managed fields of a stored Subscription (ST-1, ST-8). */
export interface SubscriptionState {
  status: SubscriptionStatusCode;
  /** Last error, shown in R4/R4B `Subscription.error`; undefined clears it. R5 has no such element. */
  error?: string;
}

/** An operation as the CapabilityStatement lists it: name without `$` (ISSUE-10) and its canonical. */
export interface CapabilityOperation {
  name: 'status' | 'events' | 'get-ws-binding-token';
  definition: string;
}

/** What the CapabilityStatement needs to declare subscription support (§11). */
export interface SubscriptionCapability {
  /** `CapabilityStatement.instantiates` (CS-1, ISSUE-1); none on R5. */
  instantiates?: string;
  /** `CapabilityStatement.implementationGuide` (the backport IG); none on R5. */
  implementationGuide?: string;
  /** `rest.resource[type=Subscription].supportedProfile` (CS-2); none on R5. */
  subscriptionProfile?: string;
  /** `rest.resource[type=Subscription].operation`, in this order: $status SHALL, the others MAY (CS-4). */
  operations: CapabilityOperation[];
  /**
   * Extension URL to repeat on `rest.resource[type=Subscription]`, one `valueCanonical` per
   * supported topic (T-8 R4 SHOULD; CS-6 MAY elsewhere). Undefined where clients search topics.
   */
  topicCanonicalExtension?: string;
}

/**
 * Where the elements of a SubscriptionSpec are written in this version's Subscription (FHIRPath,
 * as OperationOutcome.expression takes it), so that checks made on the spec name the element the
 * client wrote: R4/R4B `criteria` and backport extensions, R5 `topic`, `filterBy`, `channelType`, ….
 */
export interface SubscriptionPaths {
  topic: string;
  end: string;
  channelType: string;
  endpoint: string;
  contentType: string;
  heartbeatPeriod: string;
  timeout: string;
  maxCount: string;
  /** The element that holds filter `index` of `readSubscription(resource).filters`. */
  filter(resource: Resource, index: number): string;
}

export interface SubscriptionAdapter {
  /** Where topics live: `SubscriptionTopic` (R4B, R5) or `Basic` (R4, T-2). */
  topicResourceType: 'SubscriptionTopic' | 'Basic';
  /**
   * The topic a resource defines; undefined when it is no topic (another type, or a Basic without
   * the SubscriptionTopic code). Throws 422 naming the element when it is a topic Herald cannot use.
   */
  readTopic(resource: Resource): Topic | undefined;
  /** The version's representation of a topic (topics loaded from a folder, D-12). */
  writeTopic(topic: Topic, id: string): Resource;
  /**
   * A Subscription as the canonical spec. Throws 422 naming the element for anything malformed;
   * semantic checks (topic known, filters allowed, channel supported) are the engine's (N-2).
   */
  readSubscription(resource: Resource): SubscriptionSpec;
  paths: SubscriptionPaths;
  /** A copy with the server-managed fields set, and the content level made explicit (D-16). */
  withState(resource: Resource, state: SubscriptionState): Resource;
  /** The status resource for a notification or `$status` (NB-1, NB-5, §5.2, §5.3). */
  statusResource(info: StatusInfo, id: string): Resource;
  /** `Bundle.type` of notifications (NB-1, R5-2). */
  notificationBundleType: 'history' | 'subscription-notification';
  /** `Bundle.meta.profile` of notifications (NB-4); none on R5. */
  notificationProfile?: string;
  capability: SubscriptionCapability;
}
