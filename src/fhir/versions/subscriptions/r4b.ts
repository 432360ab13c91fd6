import { BACKPORT_PATHS, readBackportSubscription, backportWithState } from './backport.ts';
import { CAPABILITY, EXT, IG_GUIDE, PROFILE } from './constants.ts';
import type { SubscriptionAdapter } from './adapter.ts';
import { BACKPORT_OPERATIONS } from './r4.ts';
import { subscriptionStatus } from './status.ts';
import { readTopicResource, writeTopicResource } from './topic-resource.ts';

/** R4B (4.3.0): backport profile, SubscriptionTopic resources, SubscriptionStatus (NB-1, T-1). */
export const r4bSubscriptions: SubscriptionAdapter = {
  topicResourceType: 'SubscriptionTopic',
  readTopic: readTopicResource,
  writeTopic: (topic, id) => writeTopicResource(topic, id, false),
  readSubscription: (resource) => readBackportSubscription(resource, ['requested', 'active', 'error', 'off', 'entered-in-error']),
  paths: BACKPORT_PATHS,
  withState: backportWithState,
  statusResource: subscriptionStatus,
  notificationBundleType: 'history',
  notificationProfile: PROFILE.notificationR4B,
  capability: {
    instantiates: CAPABILITY.r4b,
    implementationGuide: IG_GUIDE,
    subscriptionProfile: PROFILE.subscription,
    operations: BACKPORT_OPERATIONS,
    // CS-6: a MAY on R4B (topics are searchable as SubscriptionTopic, T-7); cheap for R4-minded clients.
    topicCanonicalExtension: EXT.topicCanonical,
  },
};
