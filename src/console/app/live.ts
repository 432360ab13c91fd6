/**
 * Live events of a websocket subscription through the client library (the code `herald listen`
 * runs): binding token, bind-with-token, ordering by event number, gaps filled with `$events`.
 * Shows each event's number, time, focus and how it came (live or filled), its payload on
 * demand, the listener's status, and an events-per-second chart.
 */
import { createListener, parseNotification, type SubscriptionEvent } from '../../client/index.ts';
import { authHeaders, fhir } from './api.ts';
import { rateChart } from './chart.ts';
import { alertBox, fill, h, json } from './dom.ts';
import { readSubscription, shortRef } from './fhir.ts';
import type { View } from './main.ts';

/** On opening, events up to this many before "now" are fetched with $events, so the page is not empty. */
const BACKLOG = 20;

export async function liveView(view: View, id: string): Promise<void> {
  let sub;
  let since = 0;
  try {
    sub = readSubscription(await fhir(view.base, 'GET', `Subscription/${encodeURIComponent(id)}`));
    const status: any = await fhir(view.base, 'GET', `Subscription/${encodeURIComponent(id)}/$status`);
    since = parseNotification({ resourceType: 'Bundle', type: 'history', entry: [{ resource: status.entry[0].resource }] }).eventsSinceSubscriptionStart ?? 0;
  } catch (err) {
    return fill(view.main, h('h1', {}, `Live: Subscription/${id}`), alertBox((err as Error).message));
  }
  if (!sub) return fill(view.main, alertBox(`Subscription/${id} could not be read`));
  if (sub.channel !== 'websocket') {
    return fill(view.main, h('h1', {}, `Subscription/${id}`), h('p', {}, `This is a ${sub.channel} subscription: `, h('a', { href: `#/${view.version}/subscriptions/${encodeURIComponent(id)}/events` }, 'see its recent events ($events)'), '.'));
  }
  const state = h('p', { id: 'listener-state', role: 'status' }, 'connecting…');
  const log = h('ol', { class: 'log', 'aria-label': 'Listener log' });
  const rows = h('tbody', { id: 'live-events' });
  const payload = h('pre', { class: 'code', id: 'payload', tabindex: 0, 'aria-label': 'Payload of the selected event' }, 'Select an event to see its notification.');
  const count = h('span', { id: 'live-count' }, '0');
  const last = h('span', { id: 'live-last' }, '–');
  const chart = rateChart('Events per second');
  let received = 0;
  const note = (text: string, error = false) => {
    log.prepend(h('li', { class: error ? 'error-text' : '' }, `${new Date().toLocaleTimeString()} ${text}`));
    while (log.children.length > 50) log.lastChild?.remove();
  };
  const onEvent = (e: SubscriptionEvent) => {
    received++;
    count.textContent = String(received);
    last.textContent = String(e.eventNumber);
    chart.add();
    const show = () => {
      payload.textContent = json(e.bundle);
    };
    rows.prepend(
      h(
        'tr',
        { 'data-event': e.eventNumber },
        h('th', { scope: 'row' }, h('button', { type: 'button', class: 'link', onclick: show, 'aria-label': `Show event ${e.eventNumber}` }, `#${e.eventNumber}`)),
        h('td', {}, e.timestamp ?? '–'),
        h('td', { class: 'wrap' }, shortRef(e.focus, view.base)),
        h('td', {}, e.interaction ?? '–'),
        h('td', {}, e.source === 'event-notification' ? 'live' : `filled with $events (${e.source})`),
      ),
    );
    while (rows.children.length > 500) rows.lastChild?.remove();
  };
  const listener = createListener({
    baseUrl: `${location.origin}${view.base}`,
    fhirVersion: view.version,
    subscriptionIds: [id],
    resumeAfter: { [id]: Math.max(0, since - BACKLOG) },
    headers: authHeaders(),
    fetch: (input, init) => window.fetch(input, init),
    WebSocket: window.WebSocket,
    onEvent,
    onStatus: (s) => {
      if (s.type === 'bound') state.textContent = `listening: ${s.message}`;
      else if (s.type === 'disconnected' || s.type === 'reconnecting') state.textContent = s.message;
      note(s.type === 'catching-up' ? `gap detected: ${s.message}` : s.message);
    },
    onError: (err) => note(err.message, true),
  });
  listener.ready.catch((err: Error) => {
    state.textContent = `not listening: ${err.message}`;
  });
  const timer = setInterval(() => chart.draw(), 1000);
  view.onLeave(() => {
    clearInterval(timer);
    void listener.close();
  });
  fill(
    view.main,
    h('h1', {}, `Live: Subscription/${id}`),
    h('p', {}, h('span', { class: `badge status-${sub.status}` }, sub.status), ' topic ', h('code', {}, sub.topic), ` · content ${sub.content}`, sub.filters.length ? ` · filters ${sub.filters.join(', ')}` : '', ' · ', h('a', { href: `#/${view.version}/subscriptions/${encodeURIComponent(id)}/events` }, 'event history')),
    state,
    h('p', {}, 'Events shown: ', count, ' · last event number: ', last, ` · eventsSinceSubscriptionStart when opened: ${since}`),
    h('figure', {}, chart.element, h('figcaption', {}, 'Events per second, last 60 s')),
    h(
      'div',
      { class: 'two' },
      h('div', { class: 'table-box' }, h('table', { class: 'events' }, h('caption', {}, 'Events, newest first'), h('thead', {}, h('tr', {}, ['#', 'Time', 'Focus', 'Interaction', 'How'].map((c) => h('th', { scope: 'col' }, c)))), rows)),
      h('section', { 'aria-label': 'Payload' }, h('h2', {}, 'Payload'), payload),
    ),
    h('h2', {}, 'Listener log'),
    log,
    h('p', { class: 'muted' }, `From GET ${view.base}/Subscription/${id}/$get-ws-binding-token, the websocket it names (bind-with-token) and, for earlier events and gaps, GET ${view.base}/Subscription/${id}/$events: the client library of \`herald listen\`.`),
  );
}
