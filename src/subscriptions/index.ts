/** Topic-based subscriptions: the engine (match + record inside the write), delivery, operations data. */
export { SubscriptionEngine, type Log, type Notifier, type WriteChange } from './engine.ts';
export { type ActiveSubscription, LIVE_STATUSES, classicTopicUrl } from './registry.ts';
export { createRestHookDelivery, type RestHookDelivery, type RestHookOptions } from './channels/rest-hook/worker.ts';
export { DeliverySlots } from './channels/rest-hook/slots.ts';
export { renderNotification, type Dialect } from './notify.ts';
export type { SubscriptionPolicy, SubscriptionQuotas } from './policy.ts';
export { EndpointGuard, type EndpointRules } from './endpoints.ts';
export { WebsocketHub, type Peer } from './channels/websocket/hub.ts';
export { type Channel, Dispatcher } from './channels/channel.ts';
export { HeartbeatScheduler } from './channels/heartbeats.ts';
export { bindingTokenHash } from './channels/websocket/binding-token.ts';
