/**
 * Create a subscription from a topic: one row per canFilterBy entry with the comparators and
 * modifiers the topic allows, one free row for anything else (the server judges it), channel
 * (rest-hook with endpoint and headers, or websocket), payload content and heartbeat. The request
 * it will send is shown as it is edited; the server's refusal is shown as it came.
 */
import { fhir, searchAll } from './api.ts';
import { alertBox, field, fill, h, json } from './dom.ts';
import { buildSubscription, type FilterInput, readTopic, type SubscriptionInput, topicSearch, type TopicView } from './fhir.ts';
import type { View } from './main.ts';

export async function createView(view: View, topicUrl: string): Promise<void> {
  let topics: TopicView[];
  try {
    topics = (await searchAll(view.base, topicSearch(view.version))).map((r) => readTopic(r)).filter((t): t is TopicView => t !== undefined);
  } catch (err) {
    return fill(view.main, h('h1', {}, 'New subscription'), alertBox((err as Error).message));
  }
  if (topics.length === 0) {
    return fill(view.main, h('h1', {}, 'New subscription'), h('p', {}, 'This base has no topics yet. ', h('a', { href: `#/${view.version}/topics/new` }, 'Create a topic first.')));
  }
  const topic = topics.find((t) => t.url === topicUrl) ?? topics[0]!;
  const topicSelect = h(
    'select',
    { onchange: () => view.go(`#/${view.version}/subscriptions/new?topic=${encodeURIComponent(topicSelect.value)}`) },
    topics.map((t) => h('option', { value: t.url, selected: t.url === topic.url }, `${t.title ?? t.url}${t.title ? ` (${t.url})` : ''}`)),
  );

  // one row per offered filter
  const offered = topic.canFilterBy.map((c) => {
    const operator = h('select', {}, h('option', { value: '' }, '= (equals)'), c.comparators.map((m) => h('option', { value: m }, `${m} (comparator)`)), c.modifiers.map((m) => h('option', { value: m }, `:${m} (modifier)`)));
    const value = h('input', { type: 'text' });
    const label = `${c.resource ? `${c.resource}.` : ''}${c.filterParameter}`;
    operator.setAttribute('aria-label', `${label} comparator or modifier`);
    return {
      row: h('div', { class: 'filter-row' }, field(`Filter ${label}`, value, c.description), operator),
      read: (): FilterInput => ({ ...(c.resource ? { resource: c.resource } : {}), parameter: value.value.trim() ? c.filterParameter : '', operator: operator.value, value: value.value.trim() }),
    };
  });
  const otherName = h('input', { type: 'text', placeholder: 'e.g. name:contains' });
  const otherValue = h('input', { type: 'text' });
  const readOther = (): FilterInput => {
    const [parameter = '', modifier = ''] = otherName.value.trim().split(':', 2);
    return { ...(topic.triggers[0]?.resource ? { resource: topic.triggers[0].resource } : {}), parameter: otherValue.value.trim() ? parameter : '', operator: modifier, value: otherValue.value.trim() };
  };

  const channelRest = h('input', { type: 'radio', name: 'channel', value: 'rest-hook', id: 'channel-rest-hook', checked: true });
  const channelWs = h('input', { type: 'radio', name: 'channel', value: 'websocket', id: 'channel-websocket' });
  const endpoint = h('input', { type: 'url', placeholder: 'https://example.org/hook' });
  const headers = h('textarea', { rows: 2, placeholder: 'Authorization: Bearer …' });
  const restFields = h('div', {}, field('Endpoint', endpoint), field('Headers (one "Name: value" per line)', headers));
  const content = h('select', {}, ['id-only', 'full-resource', 'empty'].map((c) => h('option', { value: c }, c)));
  const heartbeat = h('input', { type: 'number', min: 0, step: 1, placeholder: 'none' });
  const reason = h('input', { type: 'text', value: 'herald console' });
  const preview = h('pre', { class: 'code', id: 'request-preview', tabindex: 0, 'aria-label': 'The request it will send' });
  const status = h('div', { 'aria-live': 'polite' });

  const input = (): SubscriptionInput => {
    const channel = channelWs.checked ? 'websocket' : 'rest-hook';
    return {
      topic: topic.url,
      channel,
      endpoint: endpoint.value.trim(),
      headers: headers.value.split('\n').map((x) => x.trim()).filter((x) => x.includes(':')),
      content: content.value,
      ...(heartbeat.value ? { heartbeat: Number(heartbeat.value) } : {}),
      filters: [...offered.map((o) => o.read()), readOther()],
      reason: reason.value,
    };
  };
  const update = () => {
    restFields.hidden = channelWs.checked;
    preview.textContent = `POST ${view.base}/Subscription\nContent-Type: application/fhir+json\n\n${json(buildSubscription(view.version, input()))}`;
  };
  const form = h(
    'form',
    {
      class: 'card',
      'aria-label': 'New subscription',
      oninput: update,
      onchange: update,
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const req = input();
        try {
          const created = await fhir<{ id: string }>(view.base, 'POST', 'Subscription', buildSubscription(view.version, req));
          view.go(req.channel === 'websocket' ? `#/${view.version}/subscriptions/${encodeURIComponent(created.id)}/live` : `#/${view.version}/subscriptions`);
        } catch (err) {
          fill(status, alertBox(`The server refused the subscription: ${(err as Error).message}`));
        }
      },
    },
    field('Topic', topicSelect),
    h('fieldset', {}, h('legend', {}, 'Filters'), offered.length ? offered.map((o) => o.row) : h('p', { class: 'muted' }, 'This topic offers no filters.'), h('div', { class: 'filter-row' }, field('Other filter parameter (not offered by the topic: the server decides)', otherName), field('Other filter value', otherValue))),
    h('fieldset', {}, h('legend', {}, 'Channel'), h('div', { class: 'radios' }, channelRest, h('label', { for: 'channel-rest-hook' }, 'rest-hook'), channelWs, h('label', { for: 'channel-websocket' }, 'websocket')), restFields),
    field('Payload content', content),
    field('Heartbeat period (seconds)', heartbeat),
    field('Reason', reason),
    status,
    h('button', { type: 'submit' }, 'Create subscription'),
  );
  fill(view.main, h('h1', {}, `New subscription on ${view.version}`), h('div', { class: 'two' }, form, h('section', { 'aria-label': 'Request preview' }, h('h2', {}, 'The request it will send'), preview)));
  update();
}
