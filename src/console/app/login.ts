/**
 * Auth mode: a bearer token pasted in, or (embedded issuer on) client credentials exchanged at
 * /auth/token. The token is kept in sessionStorage only: for this tab, gone when it closes.
 */
import { type ConsoleConfig, clientCredentials, session } from './api.ts';
import { alertBox, field, fill, h } from './dom.ts';

export function loginView(main: HTMLElement, config: ConsoleConfig, message: string | undefined, done: () => void): void {
  const status = h('div', { 'aria-live': 'polite' }, message ? alertBox(message) : null);
  const tokenInput = h('textarea', { rows: 3, autocomplete: 'off', spellcheck: 'false' });
  const tokenForm = h(
    'form',
    {
      class: 'card',
      onsubmit: (e: Event) => {
        e.preventDefault();
        const t = tokenInput.value.trim().replace(/^Bearer\s+/i, '');
        if (!t) return fill(status, alertBox('Paste a token first.'));
        session.setToken(t);
        done();
      },
    },
    h('h2', {}, 'Sign in with a bearer token'),
    field('Bearer token', tokenInput, 'An access token for this server (from your authorization server).'),
    h('button', { type: 'submit' }, 'Use token'),
  );
  const id = h('input', { type: 'text', autocomplete: 'username' });
  const secret = h('input', { type: 'password', autocomplete: 'current-password' });
  const scope = h('input', { type: 'text', placeholder: 'all the client may have' });
  const ccForm =
    config.auth === 'issuer' && config.tokenUrl
      ? h(
          'form',
          {
            class: 'card',
            onsubmit: async (e: Event) => {
              e.preventDefault();
              try {
                session.setToken(await clientCredentials(config.tokenUrl!, id.value.trim(), secret.value, scope.value));
                done();
              } catch (err) {
                fill(status, alertBox(`Sign-in failed: ${(err as Error).message}`));
              }
            },
          },
          h('h2', {}, 'Sign in with client credentials'),
          h('p', { class: 'muted' }, `Herald's embedded issuer (POST ${config.tokenUrl}, client_secret_post).`),
          field('Client id', id),
          field('Client secret', secret),
          field('Scope (optional)', scope),
          h('button', { type: 'submit' }, 'Sign in'),
        )
      : null;
  fill(main, h('h1', {}, 'Sign in'), h('p', {}, 'This Herald runs in auth mode: every FHIR call needs a token. It is kept for this tab only (sessionStorage).'), status, h('div', { class: 'cards' }, ccForm, tokenForm));
}

/** Who a token names (its client_id or sub), read from the JWT payload without verifying it: for display only. */
export function principalName(token: string): string {
  try {
    const payload = JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as Record<string, unknown>;
    return String(payload.client_id ?? payload.sub ?? 'token');
  } catch {
    return 'token';
  }
}
