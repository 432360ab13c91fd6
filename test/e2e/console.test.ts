/**
 * The Herald console (issue 18) in a real headless Chromium: topics and subscriptions created
 * through the page, live websocket events with their numbers (§5.5, §6.2, §7.3), a failing
 * rest-hook shown in error with its reason (ER-1, §7.1), a filter the topic does not offer
 * refused with the server's message, and sign-in with client credentials in auth mode.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { parseNotification } from '../../src/client/index.ts';
import { launchChromium } from '../helpers/browser.ts';
import { type Receiver, startReceiver } from '../helpers/receiver.ts';
import { call, startServer, type TestServer } from '../helpers/server.ts';
import { subscriptionResource, topicResource } from '../helpers/subscriptions.ts';
import { until } from '../helpers/until.ts';

const WAIT = { timeout: 20_000 };
let browser: Browser;

before(async () => {
  browser = await launchChromium();
});
after(() => browser?.close());

/** A page that fails the test on any script error it throws. */
async function openPage(url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('dialog', (d) => void d.accept());
  await page.goto(url);
  return { page, errors };
}

describe('console in open mode', () => {
  let server: TestServer;
  let receiver: Receiver;
  let page: Page;
  let errors: string[];
  const topicUrl = 'http://example.org/topics/console-patient';

  before(async () => {
    server = await startServer();
    receiver = await startReceiver();
    receiver.respond(500);
    ({ page, errors } = await openPage(`${server.url}/console/#/R4/topics`));
  });
  after(async () => {
    await page?.close();
    await receiver?.close();
    await server?.close();
  });

  it('creates an R4 topic (Basic-wrapped) through the page and shows its trigger and canFilterBy', async () => {
    await page.getByRole('link', { name: 'New topic…' }).click();
    const topic = topicResource('R4', { url: topicUrl, resource: 'Patient', interactions: ['create', 'update'], fhirPath: "%current.active = true", canFilterBy: [{ param: 'identifier' }, { param: 'birthdate', modifiers: ['gt', 'lt'] }] }, 'ignored');
    delete topic.id;
    await page.getByLabel('Basic (JSON)').fill(JSON.stringify(topic));
    await page.getByRole('button', { name: 'Create topic' }).click();
    const card = page.getByRole('article', { name: `Topic ${topicUrl}` });
    await card.waitFor(WAIT);
    const text = await card.innerText();
    assert.match(text, /Patient on create, update/);
    assert.match(text, /%current\.active = true/);
    assert.match(text, /birthdate\s+gt lt/);
  });

  it('creates a websocket subscription from the topic and shows a matching write live with its event number', async () => {
    await page.getByRole('link', { name: 'Subscribe to this topic…' }).click();
    await page.getByLabel('websocket').check();
    await page.getByLabel('Payload content').selectOption('full-resource');
    const preview = await page.locator('#request-preview').innerText();
    assert.match(preview, /^POST \/fhir\/R4\/Subscription/);
    assert.match(preview, /"type": "websocket"/);
    await page.getByRole('button', { name: 'Create subscription' }).click();
    await page.getByText(/^listening: bound Subscription\//).waitFor(WAIT);

    const written = await call('POST', `${server.fhir('R4')}/Patient`, { resourceType: 'Patient', active: true });
    assert.equal(written.status, 201);
    const row = page.locator('#live-events tr[data-event="1"]');
    await row.waitFor(WAIT);
    assert.match(await row.innerText(), new RegExp(`#1\\s+\\S+\\s+.*Patient/${written.body.id}`));
    assert.equal(await page.locator('#live-last').innerText(), '1');
    await call('PUT', `${server.fhir('R4')}/Patient/${written.body.id}`, { resourceType: 'Patient', id: written.body.id, active: true, gender: 'female' });
    await page.locator('#live-events tr[data-event="2"]').waitFor(WAIT);
    await page.getByRole('button', { name: 'Show event 2' }).click();
    assert.match(await page.locator('#payload').innerText(), /"gender": "female"/);
    assert.equal(await page.locator('#live-count').innerText(), '2');
  });

  it('refuses a filter the topic does not offer, with the server message', async () => {
    await page.goto(`${server.url}/console/#/R4/subscriptions/new?topic=${encodeURIComponent(topicUrl)}`);
    await page.getByLabel('websocket').check();
    await page.getByLabel(/^Other filter parameter/).fill('name');
    await page.getByLabel('Other filter value').fill('smith');
    await page.getByRole('button', { name: 'Create subscription' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor(WAIT);
    // the same request straight to the server: its OperationOutcome text is what the page shows
    const direct = await call('POST', `${server.fhir('R4')}/Subscription`, JSON.parse((await page.locator('#request-preview').innerText()).split('\n\n').slice(1).join('\n\n')));
    assert.equal(direct.status, 422);
    const diagnostics = direct.body.issue[0].diagnostics as string;
    assert.ok((await alert.innerText()).includes(diagnostics), `${await alert.innerText()} should include ${diagnostics}`);
  });

  it('shows a rest-hook subscription whose endpoint fails in error, with the reason', async () => {
    await page.getByRole('link', { name: 'Topics' }).click();
    await page.getByRole('link', { name: 'Subscribe to this topic…' }).click();
    await page.getByLabel('rest-hook').check();
    await page.getByLabel('Endpoint').fill(receiver.url);
    await page.getByRole('button', { name: 'Create subscription' }).click();
    await page.getByRole('heading', { name: 'Subscriptions on R4' }).waitFor(WAIT);
    // the handshake fails (the endpoint answers 500): wait for the list to show it in error
    const errorRow = page.locator('tr.row-error');
    for (let i = 0; i < 100 && (await errorRow.count()) === 0; i++) {
      await page.waitForTimeout(200);
      await page.getByRole('button', { name: 'Refresh' }).click();
      await page.getByRole('heading', { name: 'Subscriptions on R4' }).waitFor(WAIT);
    }
    assert.equal(await errorRow.count(), 1);
    const text = await errorRow.innerText();
    assert.match(text, /error/);
    assert.match(text, /rest-hook/);
    assert.match(text, /handshake failed: endpoint answered HTTP 500/);
    assert.match(await page.locator('main p').first().innerText(), /1 in error/);
    // Next retry: the instant $status gives (Herald's extension on the status code); a retry may
    // reschedule it between the page's request and ours, so compare after a fresh load
    const id = await errorRow.getAttribute('data-id');
    let shown: string | null = null;
    let given: string | undefined;
    for (let i = 0; i < 20; i++) {
      shown = await errorRow.locator('td.retry time').getAttribute('datetime');
      given = parseNotification((await call('GET', `${server.fhir('R4')}/Subscription/${id}/$status`)).body).nextAttempt;
      if (shown === given) break;
      await page.getByRole('button', { name: 'Refresh' }).click();
      await page.getByRole('heading', { name: 'Subscriptions on R4' }).waitFor(WAIT);
    }
    assert.ok(given, 'a failing rest-hook has a next attempt in $status');
    assert.equal(shown, given);
  });

  it('shows the error reason on R5 too, where only $status carries it', async () => {
    const t = topicResource('R5', { url: 'http://example.org/topics/console-r5-patient', resource: 'Patient' }, 'r5-patient');
    await call('PUT', `${server.fhir('R5')}/SubscriptionTopic/r5-patient`, t);
    const created = await call('POST', `${server.fhir('R5')}/Subscription`, subscriptionResource('R5', { topic: t.url, endpoint: receiver.url }));
    assert.equal(created.status, 201);
    await page.goto(`${server.url}/console/#/R5/subscriptions`);
    const row = page.locator(`tr.row-error[data-id="${created.body.id}"]`);
    for (let i = 0; i < 100 && (await row.count()) === 0; i++) {
      await page.waitForTimeout(200);
      await page.getByRole('button', { name: 'Refresh' }).click();
      await page.getByRole('heading', { name: 'Subscriptions on R5' }).waitFor(WAIT);
    }
    assert.match(await row.innerText(), /handshake failed: endpoint answered HTTP 500/);
    await page.goto(`${server.url}/console/#/R4/subscriptions`);
    await page.locator('tr.row-error').waitFor(WAIT);
  });

  it('keeps the list when $status fails for some rows, and says so above the table', async () => {
    const other = await browser.newPage();
    try {
      const scriptErrors: string[] = [];
      other.on('pageerror', (err) => scriptErrors.push(err.message));
      await other.route('**/Subscription/$status?*', (route) =>
        route.fulfill({ status: 503, contentType: 'application/fhir+json', body: JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'transient', diagnostics: 'try again later' }] }) }),
      );
      await other.goto(`${server.url}/console/#/R4/subscriptions`);
      await other.getByRole('heading', { name: 'Subscriptions on R4' }).waitFor(WAIT);
      assert.match(await other.getByRole('alert').innerText(), /Some rows have no event counts: \$status failed \(HTTP 503: .*try again later/);
      assert.ok((await other.locator('table.subscriptions tbody tr').count()) >= 1, 'the rows are there');
      assert.deepEqual(scriptErrors, []);
    } finally {
      await other.close();
    }
  });

  it('sets a subscription off and back to requested, searches, and deletes', async () => {
    const row = page.locator('tr.row-error');
    const id = await row.getAttribute('data-id');
    receiver.respond(200);
    await page.getByRole('button', { name: `Turn off Subscription/${id}` }).click();
    await page.locator(`tr[data-id="${id}"] .status-off`).waitFor(WAIT);
    await page.getByRole('button', { name: `Back to requested Subscription/${id}` }).click();
    await page.locator(`tr[data-id="${id}"] .status-requested, tr[data-id="${id}"] .status-active`).first().waitFor(WAIT);
    // sorting by keyboard: Tab to a column's button, Enter
    await page.getByRole('button', { name: 'Events', exact: true }).focus();
    await page.keyboard.press('Enter');
    await page.locator('th[aria-sort="ascending"]', { hasText: 'Events' }).waitFor(WAIT);
    await page.keyboard.press('Enter');
    await page.locator('th[aria-sort="descending"]', { hasText: 'Events' }).waitFor(WAIT);
    await page.getByLabel('Search').fill('websocket');
    assert.equal(await page.locator('table.subscriptions tbody tr').count(), 1);
    await page.getByLabel('Search').fill('');
    await page.getByRole('button', { name: `Delete Subscription/${id}` }).click();
    await page.locator(`tr[data-id="${id}"]`).waitFor({ state: 'detached', ...WAIT });
    assert.equal((await call('GET', `${server.fhir('R4')}/Subscription/${id}`)).status, 410);
  });

  it('shows R4B and R5 SubscriptionTopics: query criteria, comparators and modifiers, shapes; the form offers them', async () => {
    for (const v of ['R4B', 'R5'] as const) {
      const url = `http://example.org/topics/console-encounter-${v}`;
      const t = topicResource(v, { url, resource: 'Encounter', interactions: ['update'], previous: 'status=planned', current: 'status=finished', requireBoth: true, canFilterBy: [{ param: 'patient', modifiers: ['missing'] }, { param: 'date', modifiers: ['gt', 'lt'] }], include: ['Encounter:patient'] }, `enc-${v}`);
      assert.equal((await call('PUT', `${server.fhir(v)}/SubscriptionTopic/enc-${v}`, t)).status, 201);
      await page.goto(`${server.url}/console/#/${v}/topics`);
      const card = page.getByRole('article', { name: `Topic ${url}` });
      await card.waitFor(WAIT);
      const text = await card.innerText();
      assert.match(text, /Encounter on update/);
      assert.match(text, /previous\s+status=planned/);
      assert.match(text, /current\s+status=finished/);
      assert.match(text, /requireBoth\s+true/);
      assert.match(text, /date\s+gt lt\s+–/);
      assert.match(text, /patient\s+=\s+missing/);
      assert.match(text, /Encounter include Encounter:patient/);
      await card.getByRole('link', { name: 'Subscribe to this topic…' }).click();
      const operator = page.getByLabel('Encounter.date comparator or modifier');
      await operator.waitFor(WAIT);
      assert.deepEqual(await operator.locator('option').allTextContents(), ['= (equals)', 'gt (comparator)', 'lt (comparator)']);
      await operator.selectOption('gt');
      await page.getByLabel('Filter Encounter.date').fill('2024-01-01');
      const preview = await page.locator('#request-preview').innerText();
      if (v === 'R5') assert.match(preview, /"filterParameter": "date",\s+"comparator": "gt",\s+"value": "2024-01-01"/);
      else assert.match(preview, /"valueString": "Encounter\?date=gt2024-01-01"/);
      // the server takes what the form built, and the live view binds it
      await page.getByLabel('websocket').check();
      await page.getByRole('button', { name: 'Create subscription' }).click();
      await page.getByText(/^listening: bound Subscription\//).waitFor(WAIT);
    }
  });

  it('fills the events before opening with $events when a live view opens', async () => {
    const subs = await call('GET', `${server.fhir('R4')}/Subscription?_count=10`);
    const ws = subs.body.entry.map((e: any) => e.resource).find((s: any) => s.channel.type === 'websocket');
    await page.goto(`${server.url}/console/#/R4/subscriptions/${ws.id}/live`);
    await page.locator('#live-events tr[data-event="2"]').waitFor(WAIT);
    assert.match(await page.locator('#live-events tr[data-event="1"]').innerText(), /filled with \$events/);
    assert.match(await page.locator('.log').innerText(), /gap detected: fetching events 1\.\.2/);
  });

  it('browses event history with $events', async () => {
    const subs = await call('GET', `${server.fhir('R4')}/Subscription?_count=10`);
    const ws = subs.body.entry.map((e: any) => e.resource).find((s: any) => s.channel.type === 'websocket');
    await page.goto(`${server.url}/console/#/R4/subscriptions/${ws.id}/events`);
    await page.locator('#history-events tr[data-event="2"]').waitFor(WAIT);
    assert.equal(await page.locator('#events-since').innerText(), '2');
    assert.equal(await page.locator('#history-events tr').count(), 2);
    assert.deepEqual(errors, []);
  });

  it('shows which events of a rest-hook were delivered and when, from $status', async () => {
    receiver.respond(200);
    const created = await call('POST', `${server.fhir('R4')}/Subscription`, subscriptionResource('R4', { topic: topicUrl, endpoint: receiver.url }));
    assert.equal(created.status, 201);
    const id = created.body.id as string;
    const status = async () => parseNotification((await call('GET', `${server.fhir('R4')}/Subscription/${id}/$status`)).body);
    const poll = { intervalMs: 100 }; // each look is a $status request
    await until('active after the handshake', async () => (await status()).status === 'active', poll);
    await call('POST', `${server.fhir('R4')}/Patient`, { resourceType: 'Patient', active: true });
    await until('event 1 delivered', async () => (await status()).delivered?.through === 1, poll);
    receiver.respond(500);
    await call('POST', `${server.fhir('R4')}/Patient`, { resourceType: 'Patient', active: true });
    await until('in error', async () => (await status()).status === 'error', poll);
    const { delivered } = await status();
    assert.ok(delivered?.at && !Number.isNaN(Date.parse(delivered.at)), 'the time of the latest delivery');
    await page.goto(`${server.url}/console/#/R4/subscriptions/${id}/events`);
    await page.locator('#history-events tr[data-event="2"]').waitFor(WAIT);
    assert.equal(await page.locator('#delivered-through').innerText(), '#1');
    assert.equal(await page.locator('main time').first().getAttribute('datetime'), delivered.at);
    assert.equal(await page.locator('#history-events tr[data-event="1"] td.delivered').innerText(), 'delivered');
    assert.equal(await page.locator('#history-events tr[data-event="2"] td.delivered').innerText(), 'not yet');
    await call('DELETE', `${server.fhir('R4')}/Subscription/${id}`);
    assert.deepEqual(errors, []);
  });
});

describe('console in auth mode', () => {
  let server: TestServer;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-console-'));
    writeFileSync(join(dir, 'clients.json'), JSON.stringify({ clients: [{ id: 'ops-console', secret: 'ops-console-secret-0123', scope: 'system/*.cruds' }, { id: 'writer', secret: 'writer-secret-0123456789', scope: 'system/*.cruds' }] }));
    server = await startServer({ HERALD_AUTH_CLIENTS: join(dir, 'clients.json') });
  });
  after(() => server?.close());
  const issue = async (id: string, secret: string) => {
    const res = await fetch(`${server.url}/auth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'client_credentials', client_id: id, client_secret: secret }) });
    return ((await res.json()) as { access_token: string }).access_token;
  };

  it('asks for client credentials, refuses wrong ones, signs in, creates and listens with the token; another principal sees none of it', async () => {
    const { page, errors } = await openPage(`${server.url}/console/`);
    await page.getByRole('heading', { name: 'Sign in with client credentials' }).waitFor(WAIT);
    await page.getByLabel('Client id').fill('ops-console');
    await page.getByLabel('Client secret').fill('wrong-secret-0123456789');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    assert.match(await page.getByRole('alert').innerText(), /Sign-in failed: HTTP 401/);
    await page.getByLabel('Client secret').fill('ops-console-secret-0123');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { name: 'Subscriptions on R4' }).waitFor(WAIT);
    assert.match(await page.locator('.who').innerText(), /signed in: ops-console/);
    assert.match(await page.locator('main').innerText(), /0 subscriptions/);
    // kept for the tab only
    assert.ok(await page.evaluate(() => sessionStorage.getItem('herald.console.token')));
    assert.equal(await page.evaluate(() => localStorage.length), 0);

    // a topic and a websocket subscription through the page, an event live over the token-bound socket
    await page.getByRole('link', { name: 'Topics' }).click();
    await page.getByRole('link', { name: 'New topic…' }).click();
    const topic = topicResource('R4', { url: 'http://example.org/topics/auth-console', resource: 'Patient', interactions: ['create'] }, 'x');
    delete topic.id;
    await page.getByLabel('Basic (JSON)').fill(JSON.stringify(topic));
    await page.getByRole('button', { name: 'Create topic' }).click();
    await page.getByRole('link', { name: 'Subscribe to this topic…' }).click();
    await page.getByLabel('websocket').check();
    await page.getByRole('button', { name: 'Create subscription' }).click();
    await page.getByText(/^listening: bound Subscription\//).waitFor(WAIT);
    const token = await issue('writer', 'writer-secret-0123456789');
    assert.equal((await call('POST', `${server.fhir('R4')}/Patient`, { resourceType: 'Patient' }, { authorization: `Bearer ${token}` })).status, 201);
    await page.locator('#live-events tr[data-event="1"]').waitFor(WAIT);

    // another principal's console does not see this subscription
    const other = await browser.newPage();
    await other.goto(`${server.url}/console/`);
    await other.getByLabel('Bearer token').fill(token);
    await other.getByRole('button', { name: 'Use token' }).click();
    await other.getByRole('heading', { name: 'Subscriptions on R4' }).waitFor(WAIT);
    assert.match(await other.locator('main').innerText(), /0 subscriptions/);
    assert.match(await other.locator('.who').innerText(), /signed in: writer/);
    await other.close();

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in with a bearer token' }).waitFor(WAIT);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('herald.console.token')), null);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
