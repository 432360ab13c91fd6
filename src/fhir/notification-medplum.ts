/**
 * Notifications in the shape `@medplum/core`'s SubscriptionManager reads (issue 17), for sockets
 * opened on `/ws/subscriptions-r4` (the path that client uses). Medplum's own server sends these on
 * R4 too, though R4 has no SubscriptionStatus resource:
 *
 *   Bundle (history) { entry: [ { resource: SubscriptionStatus }, { fullUrl, resource }? ] }
 *
 * The client reads `entry[0].resource.type` (handshake, heartbeat, or else a notification) and
 * `resolveId(entry[0].resource.subscription)`, which splits `reference` on `/` and takes the
 * second part: so references here are relative (`Subscription/<id>`, `Patient/<id>`), unlike the
 * absolute ones of the IG shapes (D-15). Apps read the resource from `entry[1]`. Herald's real
 * event numbers are kept (Medplum's server writes `0`).
 */
import { randomUUID } from 'node:crypto';
import type { NotificationInput } from './notification.ts';
import type { Bundle, BundleEntry, Resource } from './types.ts';

export function buildMedplumNotification(input: NotificationInput): Bundle {
  const base = input.baseUrl.replace(/\/+$/, '');
  const withEvents = input.type === 'event-notification' || input.type === 'query-event';
  const status: Resource = {
    resourceType: 'SubscriptionStatus',
    id: input.statusId ?? randomUUID(),
    status: input.status,
    type: input.type,
    eventsSinceSubscriptionStart: String(input.eventsSinceSubscriptionStart),
    subscription: { reference: `Subscription/${input.subscriptionId}` },
    ...(input.topic !== undefined && input.content !== 'empty' ? { topic: input.topic } : {}),
    ...(withEvents
      ? {
          notificationEvent: input.events.map((e) => ({
            eventNumber: String(e.eventNumber),
            timestamp: e.timestamp,
            ...(input.content === 'empty' ? {} : { focus: { reference: `${e.focus.type}/${e.focus.id}` } }),
          })),
        }
      : {}),
    ...(input.errors?.length ? { error: input.errors.map((e) => ({ text: e.text })) } : {}),
  };
  const entries: BundleEntry[] = [{ resource: status }];
  if (input.content === 'full-resource') {
    for (const e of input.events) {
      if (e.interaction === 'delete') continue;
      const { type, id, versionId } = e.focus;
      const resource = input.resources.get(`${type}/${id}/_history/${versionId}`) ?? input.resources.get(`${type}/${id}`);
      if (resource) entries.push({ fullUrl: `${base}/${type}/${id}`, resource });
    }
  }
  return { resourceType: 'Bundle', id: input.bundleId ?? randomUUID(), type: 'history', timestamp: input.timestamp, entry: entries };
}
