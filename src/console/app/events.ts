/**
 * Event history of any subscription through `$events` (the recent events of a rest-hook one by
 * default): a range of event numbers, older/newer pages, each event's time, focus and payload, and
 * for a rest-hook which events were delivered and when the latest was (from `$status`).
 */
import { eventsOf, parseNotification } from '../../client/index.ts';
import { fhir } from './api.ts';
import { alertBox, field, fill, h, json } from './dom.ts';
import { readSubscription, shortRef } from './fhir.ts';
import type { View } from './main.ts';

const PAGE = 25;

export async function eventsView(view: View, id: string, params: URLSearchParams): Promise<void> {
  const path = `Subscription/${encodeURIComponent(id)}`;
  let since: number;
  let sub;
  let errors: string[] = [];
  let delivered: { through: number; at?: string } | undefined;
  try {
    sub = readSubscription(await fhir(view.base, 'GET', path));
    const status: any = await fhir(view.base, 'GET', `${path}/$status`);
    const n = parseNotification({ resourceType: 'Bundle', type: 'history', entry: [{ resource: status.entry[0].resource }] });
    since = n.eventsSinceSubscriptionStart ?? 0;
    errors = n.errors;
    delivered = n.delivered;
  } catch (err) {
    return fill(view.main, h('h1', {}, `Events of Subscription/${id}`), alertBox((err as Error).message));
  }
  const to = Math.min(since, Number(params.get('to') ?? since) || since);
  const from = Math.max(1, Number(params.get('from') ?? to - PAGE + 1) || 1);
  const go = (a: number, b: number) => view.go(`#/${view.version}/subscriptions/${encodeURIComponent(id)}/events?from=${a}&to=${b}`);
  const fromInput = h('input', { type: 'number', min: 1, value: from });
  const toInput = h('input', { type: 'number', min: 1, value: to });
  const payload = h('pre', { class: 'code', id: 'event-payload', tabindex: 0, 'aria-label': 'Payload of the selected event' }, 'Select an event to see it.');
  const body = h('tbody', { id: 'history-events' });
  const result = h('div', {}, h('p', { class: 'muted' }, since === 0 ? 'No events yet.' : 'Loading…'));
  fill(
    view.main,
    h('h1', {}, `Events of Subscription/${id}`),
    h(
      'p',
      {},
      sub ? [h('span', { class: `badge status-${sub.status}` }, sub.status), ` ${sub.channel}`, sub.endpoint ? ` → ${sub.endpoint}` : '', ' · '] : null,
      `eventsSinceSubscriptionStart: `,
      h('strong', { id: 'events-since' }, since),
      delivered
        ? [' · delivered through ', h('strong', { id: 'delivered-through' }, `#${delivered.through}`), delivered.at ? [' (latest at ', h('time', { datetime: delivered.at }, delivered.at), ')'] : null]
        : null,
      sub?.channel === 'websocket' ? [' · ', h('a', { href: `#/${view.version}/subscriptions/${encodeURIComponent(id)}/live` }, 'live')] : null,
    ),
    errors.length ? alertBox(`$status errors: ${errors.join('; ')}`) : null,
    h(
      'form',
      {
        class: 'range',
        onsubmit: (e: Event) => {
          e.preventDefault();
          go(Number(fromInput.value), Number(toInput.value));
        },
      },
      field('From event', fromInput),
      field('To event', toInput),
      h('button', { type: 'submit' }, 'Show'),
      h('button', { type: 'button', disabled: from <= 1, onclick: () => go(Math.max(1, from - PAGE), Math.max(1, from - 1)) }, 'Older'),
      h('button', { type: 'button', disabled: to >= since, onclick: () => go(to + 1, Math.min(since, to + PAGE)) }, 'Newer'),
    ),
    h('div', { class: 'two' }, result, h('section', { 'aria-label': 'Payload' }, h('h2', {}, 'Event'), payload)),
    h('p', { class: 'muted' }, `From GET ${view.base}/${path}/$status and GET ${view.base}/${path}/$events?eventsSinceNumber=…&eventsUntilNumber=…. "Happened at" is each event's timestamp. Delivered: a rest-hook's events up to "delivered through" (Herald's delivered-through and delivered-at extensions on eventsSinceSubscriptionStart in $status) have been sent and answered 2xx, in order; a websocket's go to whoever is bound at the time and are not recorded.`),
  );
  if (since === 0 || from > to) return;
  try {
    const bundle = await fhir(view.base, 'GET', `${path}/$events?eventsSinceNumber=${from}&eventsUntilNumber=${to}`);
    const events = eventsOf(parseNotification(bundle)).sort((a, b) => b.eventNumber - a.eventNumber);
    for (const e of events) {
      body.append(
        h(
          'tr',
          { 'data-event': e.eventNumber },
          h('th', { scope: 'row' }, h('button', { type: 'button', class: 'link', onclick: () => (payload.textContent = json({ eventNumber: e.eventNumber, timestamp: e.timestamp, focus: e.focus, additionalContext: e.additionalContext, resource: e.resource })), 'aria-label': `Show event ${e.eventNumber}` }, `#${e.eventNumber}`)),
          h('td', {}, e.timestamp ?? '–'),
          h('td', { class: 'wrap' }, shortRef(e.focus, view.base)),
          h('td', {}, e.interaction ?? '–'),
          delivered ? h('td', { class: 'delivered' }, e.eventNumber <= delivered.through ? 'delivered' : h('strong', {}, 'not yet')) : null,
        ),
      );
    }
    fill(result, h('div', { class: 'table-box' }, h('table', { class: 'events' }, h('caption', {}, `Events ${from}..${to} from $events (${events.length})`), h('thead', {}, h('tr', {}, ['#', 'Happened at', 'Focus', 'Interaction', ...(delivered ? ['Delivered'] : [])].map((c) => h('th', { scope: 'col' }, c)))), body)));
  } catch (err) {
    fill(result, alertBox((err as Error).message));
  }
}
