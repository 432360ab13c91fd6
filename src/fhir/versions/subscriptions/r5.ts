import type { SubscriptionAdapter } from './adapter.ts';
import { OPERATION } from './constants.ts';
import { R5_PATHS, r5WithState, readR5Subscription } from './r5-subscription.ts';
import { subscriptionStatus } from './status.ts';
import { readTopicResource, writeTopicResource } from './topic-resource.ts';

/** R5 (5.0.0): native Subscription, SubscriptionTopic, subscription-notification bundles (§12). */
export const r5Subscriptions: SubscriptionAdapter = {
  topicResourceType: 'SubscriptionTopic',
  readTopic: readTopicResource,
  writeTopic: (topic, id) => writeTopicResource(topic, id, true),
  readSubscription: readR5Subscription,
  paths: R5_PATHS,
  withState: r5WithState,
  statusResource: subscriptionStatus,
  notificationBundleType: 'subscription-notification',
  capability: {
    operations: [
      { name: 'status', definition: OPERATION.r5.status },
      { name: 'events', definition: OPERATION.r5.events },
      { name: 'get-ws-binding-token', definition: OPERATION.r5['get-ws-binding-token'] },
    ],
  },
};
