import { BACKPORT_PATHS, readBackportSubscription, backportWithState } from './backport.ts';
import { CAPABILITY, EXT, IG_GUIDE, OPERATION, PROFILE } from './constants.ts';
import type { CapabilityOperation, SubscriptionAdapter } from './adapter.ts';
import { r4StatusParameters } from './status.ts';
import { readBasicTopic, writeBasicTopic } from './topic-basic.ts';

/** The backport operations in CapabilityStatement order (CS-4). */
export const BACKPORT_OPERATIONS: CapabilityOperation[] = [
  { name: 'status', definition: OPERATION.backport.status },
  { name: 'events', definition: OPERATION.backport.events },
  { name: 'get-ws-binding-token', definition: OPERATION.backport['get-ws-binding-token'] },
];

/** R4 (4.0.1): backport profile, Basic-wrapped topics, Parameters status (NB-1, T-2). */
export const r4Subscriptions: SubscriptionAdapter = {
  topicResourceType: 'Basic',
  readTopic: readBasicTopic,
  writeTopic: writeBasicTopic,
  readSubscription: (resource) => readBackportSubscription(resource, ['requested', 'active', 'error', 'off']),
  paths: BACKPORT_PATHS,
  withState: backportWithState,
  statusResource: r4StatusParameters,
  notificationBundleType: 'history',
  notificationProfile: PROFILE.notificationR4,
  capability: {
    instantiates: CAPABILITY.r4,
    implementationGuide: IG_GUIDE,
    subscriptionProfile: PROFILE.subscription,
    operations: BACKPORT_OPERATIONS,
    topicCanonicalExtension: EXT.topicCanonical,
  },
};
