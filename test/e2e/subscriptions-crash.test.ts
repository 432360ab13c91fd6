import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { spawnHerald } from '../helpers/process.ts';
import { startReceiver } from '../helpers/receiver.ts';
import { call } from '../helpers/server.ts';
import { persistentDb } from '../helpers/store.ts';
import { readNotification, subscriptionResource, topicResource } from '../helpers/subscriptions.ts';

const dir = mkdtempSync(join(tmpdir(), 'herald-crash-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('delivery survives a crash', () => {
  it('after kill -9 mid-stream, every acknowledged write is delivered once restarted, numbers without gaps (D-18, EN-1)', async () => {
    const hook = await startReceiver();
    const env = { HERALD_DB: await persistentDb(dir, 'crash'), HERALD_RETRY_BASE_MS: '50', HERALD_RETRY_CAP_MS: '200' };
    const first = await spawnHerald(env);
    const base = `${first.url}/fhir/R4`;
    const topic = topicResource('R4', { url: 'http://example.org/topics/crash', resource: 'Patient', interactions: ['create'] }, 'crash');
    assert.equal((await call('PUT', `${base}/Basic/crash`, topic)).status, 201);
    const sub = await call('POST', `${base}/Subscription`, subscriptionResource('R4', { topic: 'http://example.org/topics/crash', endpoint: hook.url }));
    assert.equal(sub.status, 201);
    // The endpoint is slow, so a backlog builds up that the crash interrupts.
    hook.respond(200, 20);
    const acknowledged: string[] = [];
    let killed = false;
    const writer = (async () => {
      for (let i = 0; i < 400 && !killed; i++) {
        try {
          const res = await call('POST', `${base}/Patient`, { resourceType: 'Patient', name: [{ family: `C${i}` }] });
          if (res.status === 201) acknowledged.push(`Patient/${res.body.id}`);
        } catch {
          return; // the server is gone
        }
      }
    })();
    await hook.waitFor((r) => r.length >= 10, 20_000);
    first.child.kill('SIGKILL');
    killed = true;
    await first.exited;
    await writer;
    assert.ok(acknowledged.length >= 10);

    hook.respond(200, 0);
    const second = await spawnHerald({ ...env, PORT: new URL(first.url).port });
    try {
      const focusOf = () =>
        new Set(hook.received.map((r) => readNotification(r.body)).filter((n) => n.type === 'event-notification').flatMap((n) => n.events.map((e) => e.focus!.split('/fhir/R4/')[1]!)));
      await hook.waitFor(() => acknowledged.every((a) => focusOf().has(a)), 30_000);
      const numbers = [...new Set(hook.received.map((r) => readNotification(r.body)).filter((n) => n.type === 'event-notification').flatMap((n) => n.events.map((e) => e.number)))].sort((a, b) => a - b);
      assert.deepEqual(numbers, Array.from({ length: numbers.length }, (_, i) => i + 1), 'no gaps');
      assert.ok(numbers.length >= acknowledged.length);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
      await hook.close();
    }
  });

  it('after a clean stop (SIGTERM) the stored cursor is where delivery stood: a restart sends nothing twice (D-10)', async () => {
    const hook = await startReceiver();
    const env = { HERALD_DB: await persistentDb(dir, 'clean') };
    const first = await spawnHerald(env);
    const base = `${first.url}/fhir/R4`;
    const topic = topicResource('R4', { url: 'http://example.org/topics/clean', resource: 'Patient', interactions: ['create'] }, 'clean');
    assert.equal((await call('PUT', `${base}/Basic/clean`, topic)).status, 201);
    assert.equal((await call('POST', `${base}/Subscription`, subscriptionResource('R4', { topic: 'http://example.org/topics/clean', endpoint: hook.url }))).status, 201);
    const events = () => hook.received.map((r) => readNotification(r.body)).filter((n) => n.type === 'event-notification').flatMap((n) => n.events.map((e) => e.number));
    for (let i = 0; i < 20; i++) assert.equal((await call('POST', `${base}/Patient`, { resourceType: 'Patient', name: [{ family: `S${i}` }] })).status, 201);
    await hook.waitFor(() => events().length >= 20, 10_000);
    // Stopped within the moment in which cursor moves gather before they are stored.
    first.child.kill('SIGTERM');
    await first.exited;

    const second = await spawnHerald({ ...env, PORT: new URL(first.url).port });
    try {
      assert.equal((await call('POST', `${second.url}/fhir/R4/Patient`, { resourceType: 'Patient', name: [{ family: 'after' }] })).status, 201);
      await hook.waitFor(() => events().includes(21), 10_000);
      assert.deepEqual(events(), Array.from({ length: 21 }, (_, i) => i + 1), 'each event once, in order');
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
      await hook.close();
    }
  });
});
