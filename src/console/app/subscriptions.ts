/**
 * The subscriptions of a base: status, topic, channel, endpoint, content, filters, the event count
 * last error and next retry from `$status`; search, sort, and the actions off / back to requested / delete.
 * Subscriptions in `error` stand out (a marked row and an error badge with the reason).
 */
import { parseNotification, type Resource } from '../../client/index.ts';
import { fhir, searchAll } from './api.ts';
import { alertBox, fill, h } from './dom.ts';
import { readSubscription, type SubscriptionRow } from './fhir.ts';
import type { View } from './main.ts';

interface Row extends SubscriptionRow {
  events?: number;
  errors: string[];
  nextAttempt?: string;
}

type Key = 'id' | 'status' | 'topic' | 'channel' | 'endpoint' | 'content' | 'filters' | 'events' | 'error' | 'retry';
const COLUMNS: [Key, string][] = [
  ['id', 'Id'],
  ['status', 'Status'],
  ['topic', 'Topic'],
  ['channel', 'Channel'],
  ['endpoint', 'Endpoint'],
  ['content', 'Content'],
  ['filters', 'Filters'],
  ['events', 'Events'],
  ['error', 'Last error'],
  ['retry', 'Next retry'],
];

/** Search and sort survive a reload of the list (after an action) within the page's life. */
const state = { query: '', sort: 'id' as Key, descending: false };

export async function subscriptionsView(view: View): Promise<void> {
  let rows: Row[];
  let statusFailed: string | undefined;
  try {
    ({ rows, statusFailed } = await load(view));
  } catch (err) {
    return fill(view.main, h('h1', {}, `Subscriptions on ${view.version}`), alertBox((err as Error).message));
  }
  const message = h('div', { 'aria-live': 'polite' });
  const search = h('input', { type: 'search', id: 'sub-search', value: state.query, placeholder: 'id, topic, endpoint, status, error…' });
  const tableBox = h('div', { class: 'table-box' });
  const draw = () => fill(tableBox, table(view, sorted(filtered(rows)), rows.length, message, draw));
  search.addEventListener('input', () => {
    state.query = search.value;
    draw();
  });
  const inError = rows.filter((r) => r.status === 'error').length;
  fill(
    view.main,
    h('h1', {}, `Subscriptions on ${view.version}`),
    h('p', {}, `${rows.length} subscription${rows.length === 1 ? '' : 's'}`, inError ? h('strong', { class: 'error-text' }, `, ${inError} in error`) : null, '. ', h('button', { type: 'button', onclick: () => void subscriptionsView(view) }, 'Refresh')),
    h('div', { class: 'field inline' }, h('label', { for: 'sub-search' }, 'Search '), search),
    statusFailed ? alertBox(`Some rows have no event counts: ${statusFailed}`) : null,
    message,
    tableBox,
    h('p', { class: 'muted' }, `From GET ${view.base}/Subscription?_count=100 (every page) and GET ${view.base}/Subscription/$status?id=… (40 ids at a time). Events = eventsSinceSubscriptionStart, Last error and Next retry from $status (Next retry: Herald's next-delivery-attempt extension on the status code). A failing rest-hook is retried with backoff until the failure window passes, then goes off.`),
  );
  draw();
}

/** The rows, and why $status failed for some of them (those rows then have no numbers from it). */
async function load(view: View): Promise<{ rows: Row[]; statusFailed?: string }> {
  const resources = await searchAll(view.base, 'Subscription?_count=100');
  // $status for the ids found, 40 at a time (a type-level $status lists at most 1,000), 4 asks at once.
  const ids = resources.map((r) => r.id).filter((id): id is string => typeof id === 'string');
  const chunks: string[][] = [];
  for (let i = 0; i < ids.length; i += 40) chunks.push(ids.slice(i, i + 40));
  const entries: any[] = [];
  let statusFailed: string | undefined;
  for (let i = 0; i < chunks.length; i += 4) {
    const asked = chunks.slice(i, i + 4).map((c) => fhir<any>(view.base, 'GET', `Subscription/$status?${c.map((id) => `id=${encodeURIComponent(id)}`).join('&')}`));
    for (const r of await Promise.allSettled(asked)) {
      if (r.status === 'fulfilled') entries.push(...(r.value?.entry ?? []));
      else statusFailed ??= `$status failed (${(r.reason as Error).message})`;
    }
  }
  const status = new Map<string, { events?: number; errors: string[]; status?: string; nextAttempt?: string }>();
  for (const e of entries) {
    try {
      const n = parseNotification({ resourceType: 'Bundle', type: 'history', entry: [{ resource: e.resource as Resource }] });
      status.set(n.subscriptionId, { ...(n.eventsSinceSubscriptionStart !== undefined ? { events: n.eventsSinceSubscriptionStart } : {}), errors: n.errors, ...(n.status ? { status: n.status } : {}), ...(n.nextAttempt ? { nextAttempt: n.nextAttempt } : {}) });
    } catch {
      // not a status resource: leave the row without $status numbers
    }
  }
  const rows = resources
    .map((r) => readSubscription(r))
    .filter((r): r is SubscriptionRow => r !== undefined)
    .map((r) => {
      const s = status.get(r.id);
      return {
        ...r,
        ...(s?.events !== undefined ? { events: s.events } : {}),
        errors: s?.errors.length ? s.errors : r.error ? [r.error] : [],
        ...(s?.nextAttempt ? { nextAttempt: s.nextAttempt } : {}),
      };
    });
  return { rows, ...(statusFailed ? { statusFailed } : {}) };
}

const cell = (r: Row, k: Key): string | number => (k === 'filters' ? r.filters.join(' ') : k === 'error' ? r.errors.join('; ') : k === 'events' ? (r.events ?? -1) : k === 'retry' ? (r.nextAttempt ?? '') : (r[k] ?? ''));

/** "in 4 s" (or "due" once passed), as of when the table was drawn; the exact instant is in the title. */
function inSeconds(iso: string): string {
  const s = Math.round((Date.parse(iso) - Date.now()) / 1000);
  return s > 0 ? `${new Date(iso).toLocaleTimeString()} (in ${s} s)` : `${new Date(iso).toLocaleTimeString()} (due)`;
}

function filtered(rows: Row[]): Row[] {
  const q = state.query.trim().toLowerCase();
  if (!q) return rows;
  return rows.filter((r) => COLUMNS.some(([k]) => String(cell(r, k)).toLowerCase().includes(q)));
}

function sorted(rows: Row[]): Row[] {
  const dir = state.descending ? -1 : 1;
  return [...rows].sort((a, b) => {
    const x = cell(a, state.sort);
    const y = cell(b, state.sort);
    return (typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))) * dir;
  });
}

function table(view: View, rows: Row[], total: number, message: HTMLElement, redraw: () => void): HTMLElement {
  const header = COLUMNS.map(([k, label]) =>
    h(
      'th',
      { scope: 'col', 'aria-sort': state.sort === k ? (state.descending ? 'descending' : 'ascending') : 'none' },
      h(
        'button',
        {
          type: 'button',
          class: 'sort',
          'data-sort': k,
          onclick: () => {
            state.descending = state.sort === k ? !state.descending : false;
            state.sort = k;
            redraw();
            // the table is redrawn: keep the keyboard on the same column's button
            document.querySelector<HTMLButtonElement>(`table.subscriptions button[data-sort="${k}"]`)?.focus();
          },
        },
        label,
        state.sort === k ? (state.descending ? ' ▼' : ' ▲') : '',
      ),
    ),
  );
  return h(
    'table',
    { class: 'subscriptions' },
    h('caption', {}, `${rows.length} of ${total} shown, sorted by ${state.sort}${state.descending ? ' (descending)' : ''}`),
    h('thead', {}, h('tr', {}, header, h('th', { scope: 'col' }, 'Actions'))),
    h(
      'tbody',
      {},
      rows.map((r) =>
        h(
          'tr',
          { class: r.status === 'error' ? 'row-error' : '', 'data-id': r.id },
          h('th', { scope: 'row' }, h('code', {}, r.id)),
          h('td', {}, h('span', { class: `badge status-${r.status}` }, r.status)),
          h('td', { class: 'topic' }, h('code', {}, r.topic)),
          h('td', {}, r.channel),
          h('td', { class: 'wrap' }, r.endpoint ?? '–'),
          h('td', {}, r.content),
          h('td', { class: 'filters' }, r.filters.length ? r.filters.map((f) => h('code', { class: 'filter' }, f)) : '–'),
          h('td', { class: 'num' }, r.events ?? '–'),
          h('td', { class: 'wrap error-cell' }, r.errors.join('; ') || '–'),
          h('td', { class: 'retry' }, r.nextAttempt ? h('time', { datetime: r.nextAttempt, title: r.nextAttempt }, inSeconds(r.nextAttempt)) : '–'),
          h('td', {}, h('div', { class: 'actions' }, actions(view, r, message))),
        ),
      ),
    ),
  );
}

function actions(view: View, r: Row, message: HTMLElement): (HTMLElement | null)[] {
  const act = (label: string, run: () => Promise<unknown>) =>
    h(
      'button',
      {
        type: 'button',
        'aria-label': `${label} Subscription/${r.id}`,
        onclick: async () => {
          try {
            await run();
            await subscriptionsView(view);
            view.main.focus(); // the row is redrawn: the keyboard starts again at the top of the view
          } catch (err) {
            fill(message, alertBox(`${label} Subscription/${r.id}: ${(err as Error).message}`));
          }
        },
      },
      label,
    );
  const setStatus = async (status: string) => {
    const current = await fhir<Record<string, unknown>>(view.base, 'GET', `Subscription/${encodeURIComponent(r.id)}`);
    await fhir(view.base, 'PUT', `Subscription/${encodeURIComponent(r.id)}`, { ...current, status });
  };
  return [
    r.channel === 'websocket' ? h('a', { href: `#/${view.version}/subscriptions/${encodeURIComponent(r.id)}/live` }, 'Live') : null,
    h('a', { href: `#/${view.version}/subscriptions/${encodeURIComponent(r.id)}/events` }, 'Events'),
    r.status !== 'off' ? act('Turn off', () => setStatus('off')) : null,
    r.status === 'off' || r.status === 'error' ? act('Back to requested', () => setStatus('requested')) : null,
    act('Delete', async () => {
      if (!confirm(`Delete Subscription/${r.id}?`)) return;
      await fhir(view.base, 'DELETE', `Subscription/${encodeURIComponent(r.id)}`);
    }),
  ];
}
