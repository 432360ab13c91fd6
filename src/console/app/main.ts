/**
 * The Herald console: one page, views chosen by the location hash
 * (`#/R4/topics`, `#/R4/subscriptions`, `#/R4/subscriptions/new?topic=…`, `#/R4/subscriptions/{id}/live`,
 * `#/R4/subscriptions/{id}/events`, `#/login`). Every number it shows comes from the FHIR API.
 */
import { type ConsoleConfig, loadConfig, session, setUnauthorizedHandler } from './api.ts';
import { createView } from './create.ts';
import { fill, h } from './dom.ts';
import { eventsView } from './events.ts';
import { liveView } from './live.ts';
import { loginView, principalName } from './login.ts';
import { subscriptionsView } from './subscriptions.ts';
import { topicsView } from './topics.ts';

export interface View {
  /** The FHIR base path (`/fhir/R4`) and its version. */
  base: string;
  version: 'R4' | 'R4B' | 'R5';
  main: HTMLElement;
  config: ConsoleConfig;
  /** Stops what a view left running (a websocket listener, timers) when the user leaves it. */
  onLeave(fn: () => void): void;
  go(hash: string): void;
}

let leaving: (() => void)[] = [];
let loginMessage: string | undefined;

async function start(): Promise<void> {
  const config = await loadConfig();
  setUnauthorizedHandler((message) => {
    session.clear();
    loginMessage = `The server refused the token: ${message}`;
    if (location.hash !== '#/login') location.hash = '#/login';
  });
  window.addEventListener('hashchange', () => {
    // keyboard and screen-reader users land on the new view, not on the link they left
    document.getElementById('main')!.focus({ preventScroll: true });
    void route(config);
  });
  await route(config);
}

async function route(config: ConsoleConfig): Promise<void> {
  for (const fn of leaving.splice(0)) fn();
  const main = document.getElementById('main')!;
  const [path = '', query = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  const needsLogin = config.auth !== 'off' && !session.token();
  if (parts[0] === 'login' || needsLogin) {
    header(config, undefined, 'login');
    const message = loginMessage;
    loginMessage = undefined;
    return loginView(main, config, message, () => (location.hash = '#/R4/subscriptions'));
  }
  const base = config.bases.find((b) => b.version === parts[0]) ?? config.bases[0]!;
  if (parts[0] !== base.version) {
    location.hash = `#/${base.version}/subscriptions`;
    return;
  }
  const view: View = {
    base: base.path,
    version: base.version,
    main,
    config,
    onLeave: (fn) => leaving.push(fn),
    go: (hash) => (location.hash = hash),
  };
  const section = parts[1] ?? 'subscriptions';
  header(config, base.version, section === 'topics' ? 'topics' : section === 'subscriptions' && parts[2] === 'new' ? 'new' : 'subscriptions');
  fill(main, h('p', { class: 'muted' }, 'Loading…'));
  if (section === 'topics') return topicsView(view, parts[2] === 'new');
  if (section === 'subscriptions' && parts[2] === 'new') return createView(view, params.get('topic') ?? '');
  if (section === 'subscriptions' && parts[2] && parts[3] === 'live') return liveView(view, parts[2]);
  if (section === 'subscriptions' && parts[2] && parts[3] === 'events') return eventsView(view, parts[2], params);
  return subscriptionsView(view);
}

/** The header: base switcher, view links (the current one marked), who is signed in. */
function header(config: ConsoleConfig, version: string | undefined, current: string): void {
  const nav = document.getElementById('nav')!;
  const link = (href: string, label: string, key: string) => h('a', { href, ...(key === current ? { 'aria-current': 'page' } : {}) }, label);
  const v = version ?? config.bases[0]!.version;
  const baseSelect = h(
    'select',
    { id: 'base', onchange: (e: Event) => (location.hash = `#/${(e.target as HTMLSelectElement).value}/${current === 'topics' ? 'topics' : 'subscriptions'}`) },
    config.bases.map((b) => h('option', { value: b.version, selected: b.version === v }, `${b.version} (${b.path})`)),
  );
  const who = config.auth === 'off' ? h('span', { class: 'muted' }, 'open mode (no auth)') : session.token() ? h('span', {}, `signed in: ${principalName(session.token()!)} `, h('button', { type: 'button', onclick: signOut }, 'Sign out')) : h('span', {}, 'not signed in');
  fill(
    nav,
    h('label', { for: 'base' }, 'FHIR base '),
    baseSelect,
    h('ul', {}, h('li', {}, link(`#/${v}/topics`, 'Topics', 'topics')), h('li', {}, link(`#/${v}/subscriptions`, 'Subscriptions', 'subscriptions')), h('li', {}, link(`#/${v}/subscriptions/new`, 'New subscription', 'new'))),
    h('div', { class: 'who' }, who),
  );
}

function signOut(): void {
  session.clear();
  location.hash = '#/login';
}

void start().catch((err: Error) => {
  fill(document.getElementById('main')!, h('p', { class: 'alert', role: 'alert' }, `The console could not start: ${err.message}`));
});
