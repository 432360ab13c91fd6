/** Topics of a base: triggers, interactions, query and FHIRPath criteria, canFilterBy, shapes; and a new-topic editor. */
import { ApiError, fhir, searchAll } from './api.ts';
import { alertBox, field, fill, h, json } from './dom.ts';
import { type TopicView, readTopic, topicSearch, topicTemplate } from './fhir.ts';
import type { View } from './main.ts';

export async function topicsView(view: View, editing: boolean): Promise<void> {
  let topics: TopicView[];
  try {
    topics = (await searchAll(view.base, topicSearch(view.version))).map((r) => readTopic(r)).filter((t): t is TopicView => t !== undefined);
  } catch (err) {
    return fill(view.main, h('h1', {}, `Topics on ${view.version}`), alertBox((err as Error).message));
  }
  fill(
    view.main,
    h('h1', {}, `Topics on ${view.version}`),
    h('p', {}, `${topics.length} topic${topics.length === 1 ? '' : 's'} (${view.version === 'R4' ? 'Basic resources wrapping SubscriptionTopic, backport IG' : 'SubscriptionTopic resources'}). `, editing ? null : h('a', { href: `#/${view.version}/topics/new` }, 'New topic…')),
    editing ? editor(view) : null,
    topics.length === 0 ? h('p', { class: 'muted' }, 'No topics on this base yet.') : h('div', { class: 'topics' }, topics.map((t) => topicCard(view, t))),
    h('p', { class: 'muted' }, `From GET ${view.base}/${topicSearch(view.version)}.`),
  );
}

function topicCard(view: View, t: TopicView): HTMLElement {
  return h(
    'article',
    { class: 'card topic', 'aria-label': `Topic ${t.title ?? t.url}` },
    h('h2', {}, t.title ?? t.url),
    h('p', {}, h('code', {}, t.url), ' ', h('span', { class: `badge status-${t.status ?? 'unknown'}` }, t.status ?? 'no status'), ' ', h('span', { class: 'muted' }, `${t.resourceType}/${t.id}`)),
    t.description ? h('p', {}, t.description) : null,
    h('h3', {}, 'Triggers'),
    t.triggers.length
      ? h(
          'ul',
          {},
          t.triggers.map((tr) =>
            h(
              'li',
              {},
              h('strong', {}, tr.resource),
              ` on ${tr.interactions.join(', ') || 'any interaction'}`,
              tr.description ? ` — ${tr.description}` : '',
              tr.queryCriteria
                ? h(
                    'dl',
                    { class: 'inline' },
                    tr.queryCriteria.previous ? [h('dt', {}, 'previous'), h('dd', {}, h('code', {}, tr.queryCriteria.previous))] : null,
                    tr.queryCriteria.current ? [h('dt', {}, 'current'), h('dd', {}, h('code', {}, tr.queryCriteria.current))] : null,
                    tr.queryCriteria.resultForCreate ? [h('dt', {}, 'resultForCreate'), h('dd', {}, tr.queryCriteria.resultForCreate)] : null,
                    tr.queryCriteria.resultForDelete ? [h('dt', {}, 'resultForDelete'), h('dd', {}, tr.queryCriteria.resultForDelete)] : null,
                    tr.queryCriteria.requireBoth !== undefined ? [h('dt', {}, 'requireBoth'), h('dd', {}, String(tr.queryCriteria.requireBoth))] : null,
                  )
                : null,
              tr.fhirPathCriteria ? h('dl', { class: 'inline' }, h('dt', {}, 'FHIRPath'), h('dd', {}, h('code', {}, tr.fhirPathCriteria))) : null,
            ),
          ),
        )
      : h('p', { class: 'muted' }, 'No resource triggers.'),
    t.eventTriggers.length ? [h('h3', {}, 'Event triggers'), h('ul', {}, t.eventTriggers.map((e) => h('li', {}, e)))] : null,
    h('h3', {}, 'Can filter by'),
    t.canFilterBy.length
      ? h(
          'table',
          {},
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Resource'), h('th', { scope: 'col' }, 'Parameter'), h('th', { scope: 'col' }, 'Comparators'), h('th', { scope: 'col' }, 'Modifiers'))),
          h(
            'tbody',
            {},
            t.canFilterBy.map((c) => h('tr', {}, h('td', {}, c.resource ?? '–'), h('td', {}, h('code', {}, c.filterParameter), c.description ? h('small', {}, ` ${c.description}`) : null), h('td', {}, c.comparators.join(' ') || '='), h('td', {}, c.modifiers.join(' ') || '–'))),
          ),
        )
      : h('p', { class: 'muted' }, 'No filters offered.'),
    h('h3', {}, 'Notification shapes'),
    t.shapes.length
      ? h('ul', {}, t.shapes.map((s) => h('li', {}, h('strong', {}, s.resource), s.include.length ? ` include ${s.include.join(', ')}` : '', s.revInclude.length ? ` revInclude ${s.revInclude.join(', ')}` : '', !s.include.length && !s.revInclude.length ? ' (focus only)' : '')))
      : h('p', { class: 'muted' }, 'None (the focus only).'),
    h('p', {}, h('a', { class: 'button', href: `#/${view.version}/subscriptions/new?topic=${encodeURIComponent(t.url)}` }, 'Subscribe to this topic…')),
  );
}

/** A JSON editor for a new topic, started from a template in the base's shape; POSTs it. */
function editor(view: View): HTMLElement {
  const resourceType = view.version === 'R4' ? 'Basic' : 'SubscriptionTopic';
  const text = h('textarea', { rows: 18, spellcheck: 'false', class: 'code' });
  text.value = json(topicTemplate(view.version));
  const status = h('div', { 'aria-live': 'polite' });
  return h(
    'form',
    {
      class: 'card',
      'aria-label': 'New topic',
      onsubmit: async (e: Event) => {
        e.preventDefault();
        let body: unknown;
        try {
          body = JSON.parse(text.value);
        } catch (err) {
          return fill(status, alertBox(`Not JSON: ${(err as Error).message}`));
        }
        try {
          await fhir(view.base, 'POST', resourceType, body);
          view.go(`#/${view.version}/topics`);
        } catch (err) {
          fill(status, alertBox(err instanceof ApiError ? `The server refused the topic: ${err.message}` : (err as Error).message));
        }
      },
    },
    h('h2', {}, 'New topic'),
    h('p', {}, `POST ${view.base}/${resourceType}`),
    field(`${resourceType} (JSON)`, text),
    status,
    h('button', { type: 'submit' }, 'Create topic'),
    ' ',
    h('a', { href: `#/${view.version}/topics` }, 'Cancel'),
  );
}
