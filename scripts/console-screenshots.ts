/**
 * `npm run screenshots`: the console's main views in headless Chromium, written to docs/ (shown
 * in the README). A Herald on loopback with an in-memory store gets a topic, a websocket
 * subscription with some events, and a rest-hook subscription whose endpoint fails.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../test/helpers/browser.ts';
import { startReceiver } from '../test/helpers/receiver.ts';
import { call, startServer } from '../test/helpers/server.ts';
import { subscriptionResource, topicResource } from '../test/helpers/subscriptions.ts';

const DOCS = fileURLToPath(new URL('../docs/', import.meta.url));
const TOPIC = 'http://example.org/topics/patient-admitted';

const server = await startServer();
const receiver = await startReceiver();
receiver.respond(503);
const browser = await launchChromium();
try {
  mkdirSync(DOCS, { recursive: true });
  const base = server.fhir('R4B');
  const topic = topicResource('R4B', { url: TOPIC, resource: 'Encounter', interactions: ['create', 'update'], previous: 'status:not=in-progress', current: 'status=in-progress', fhirPath: "%current.class.code = 'IMP'", canFilterBy: [{ param: 'patient' }, { param: 'date', modifiers: ['gt', 'lt', 'ge', 'le'] }, { param: 'class', modifiers: ['in', 'not-in'] }], include: ['Encounter:patient'] }, 'patient-admitted');
  topic.title = 'Patient admitted';
  await call('PUT', `${base}/SubscriptionTopic/patient-admitted`, topic);
  await call('PUT', `${base}/SubscriptionTopic/lab-result`, { ...topicResource('R4B', { url: 'http://example.org/topics/lab-result-final', resource: 'Observation', interactions: ['create', 'update'], current: 'status=final', canFilterBy: [{ param: 'subject' }, { param: 'code' }] }, 'lab-result'), title: 'Lab result final' });
  const ws = await call('POST', `${base}/Subscription`, subscriptionResource('R4B', { topic: TOPIC, channel: 'websocket', content: 'full-resource' }));
  await call('POST', `${base}/Subscription`, subscriptionResource('R4B', { topic: TOPIC, endpoint: receiver.url, filters: ['Encounter?patient=Patient/p1'] }));
  await call('POST', `${base}/Subscription`, subscriptionResource('R4B', { topic: 'http://example.org/topics/lab-result-final', channel: 'websocket', filters: ['Observation?code=http://loinc.org|2345-7'] }));
  const admit = (i: number) => call('POST', `${base}/Encounter`, { resourceType: 'Encounter', status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: `Patient/p${i}` } });
  for (let i = 0; i < 3; i++) await admit(i);

  const page = await browser.newPage({ viewport: { width: 1280, height: 820 } });
  const shot = async (hash: string, file: string, ready: string) => {
    await page.goto(`${server.url}/console/${hash}`);
    await page.locator(ready).first().waitFor({ timeout: 20_000 });
    await page.screenshot({ path: `${DOCS}${file}` });
  };
  await shot('#/R4B/topics', 'console-topics.png', 'article.topic');
  // the rest-hook's handshake has failed by now: wait for the error row
  for (let i = 0; i < 50; i++) {
    await page.goto(`${server.url}/console/#/R4B/subscriptions`);
    if (await page.locator('tr.row-error').first().waitFor({ timeout: 500 }).then(() => true, () => false)) break;
  }
  await shot('#/R4B/subscriptions', 'console-subscriptions.png', 'tr.row-error');
  await shot(`#/R4B/subscriptions/new?topic=${encodeURIComponent(TOPIC)}`, 'console-new-subscription.png', '#request-preview');
  await page.goto(`${server.url}/console/#/R4B/subscriptions/${ws.body.id}/live`);
  await page.locator('#live-events tr[data-event="3"]').waitFor({ timeout: 20_000 });
  for (let i = 3; i < 12; i++) {
    await new Promise((resolve) => setTimeout(resolve, 150 + ((i * 7) % 5) * 120)); // a livelier chart
    await admit(i);
    await page.locator(`#live-events tr[data-event="${i + 1}"]`).waitFor({ timeout: 20_000 });
  }
  await page.getByRole('button', { name: 'Show event 12' }).click();
  await page.waitForTimeout(1100); // one chart redraw
  await page.screenshot({ path: `${DOCS}console-live.png` });
  await shot(`#/R4B/subscriptions/${ws.body.id}/events?from=1&to=12`, 'console-events.png', '#history-events tr');
  console.log(`wrote docs/console-{topics,subscriptions,new-subscription,live,events}.png`);
} finally {
  await browser.close();
  await receiver.close();
  await server.close();
}
