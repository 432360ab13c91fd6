/**
 * Every canonical URL and code system of topic-based subscriptions that Herald reads or writes, in
 * one module: the backport IG's next major version moves its extensions to cross-version ones
 * (REQUIREMENTS §0), and that move should be an edit here, not a hunt through the code.
 * The values are the ones in shared/spec/artifacts.json (a test checks each against it).
 */

/** The Subscriptions R5 Backport IG canonical (§1). */
export const IG = 'http://hl7.org/fhir/uv/subscriptions-backport';
const SD = `${IG}/StructureDefinition`;
const OPD = `${IG}/OperationDefinition`;

export const IG_GUIDE = `${IG}/ImplementationGuide/hl7.fhir.uv.subscriptions-backport`;

/** Profiles (S-1, NB-1). */
export const PROFILE = {
  subscription: `${SD}/backport-subscription`,
  notificationR4: `${SD}/backport-subscription-notification-r4`,
  statusR4: `${SD}/backport-subscription-status-r4`,
  notificationR4B: `${SD}/backport-subscription-notification`,
} as const;

/** Backport extensions on the R4/R4B Subscription (S-3, S-7, S-9, S-10) and CapabilityStatement (T-8). */
export const EXT = {
  filterCriteria: `${SD}/backport-filter-criteria`,
  payloadContent: `${SD}/backport-payload-content`,
  channelType: `${SD}/backport-channel-type`,
  heartbeatPeriod: `${SD}/backport-heartbeat-period`,
  timeout: `${SD}/backport-timeout`,
  maxCount: `${SD}/backport-max-count`,
  topicCanonical: `${SD}/capabilitystatement-subscriptiontopic-canonical`,
} as const;

/** CapabilityStatements a server instantiates (CS-1; ISSUE-1: not `CapabilitySubscriptionServer`). */
export const CAPABILITY = {
  r4: `${IG}/CapabilityStatement/backport-subscription-server-r4`,
  r4b: `${IG}/CapabilityStatement/backport-subscription-server`,
} as const;

/** Operation canonicals (§7): backport (R4/R4B) and core R5. Names carry no `$` (ISSUE-10). */
export const OPERATION = {
  backport: {
    status: `${OPD}/backport-subscription-status`,
    events: `${OPD}/backport-subscription-events`,
    'get-ws-binding-token': `${OPD}/backport-subscription-get-ws-binding-token`,
  },
  r5: {
    status: 'http://hl7.org/fhir/OperationDefinition/Subscription-status',
    events: 'http://hl7.org/fhir/OperationDefinition/Subscription-events',
    'get-ws-binding-token': 'http://hl7.org/fhir/OperationDefinition/Subscription-get-ws-binding-token',
  },
} as const;

/** Code systems (§1). */
export const SYSTEM = {
  /** Basic.code of an R4 Basic-wrapped topic (T-2, D-12). */
  fhirTypes: 'http://hl7.org/fhir/fhir-types',
  subscriptionError: 'http://terminology.hl7.org/CodeSystem/subscription-error',
  /** R5 `Subscription.channelType` system. */
  channelTypeR5: 'http://terminology.hl7.org/CodeSystem/subscription-channel-type',
  /** R4/R4B `Subscription.channel.type` system (code, required binding). */
  channelTypeR4: 'http://hl7.org/fhir/subscription-channel-type',
} as const;

/** Basic.code coding of an R4 topic. */
export const TOPIC_CODE = 'SubscriptionTopic';

/**
 * Cross-version extension prefixes for R4 Basic-wrapped topics. Read: both (ISSUE-6, the IG example
 * mixes them). Written: `5.0` only, as fhir-candle (the reference server) does.
 */
export const XVER_TOPIC_PREFIXES = [
  'http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.',
  'http://hl7.org/fhir/4.3/StructureDefinition/extension-SubscriptionTopic.',
] as const;
export const XVER_TOPIC_WRITE_PREFIX = XVER_TOPIC_PREFIXES[0];

/** Core StructureDefinition prefix: a topic `resource` given as such a URL names the type after it. */
export const CORE_SD = 'http://hl7.org/fhir/StructureDefinition/';
