/** Topic-based subscriptions: the engine (match + record inside the write), delivery, operations data. */
export { SubscriptionEngine, type Log, type Notifier, type WriteChange } from './engine.ts';
export type { ActiveSubscription } from './registry.ts';
export { createRestHookDelivery, type RestHookDelivery, type RestHookOptions } from './channels/rest-hook/worker.ts';
export { renderNotification } from './notify.ts';
export type { SubscriptionPolicy } from './policy.ts';
export { WebsocketHub, type Peer } from './channels/websocket/hub.ts';
