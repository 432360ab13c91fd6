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

const dir = mkdtempSync(join(tmpdir(), 'herald-shutdown-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A Herald with a rest-hook subscription whose endpoint takes a minute to answer an event. */
async function stuckDelivery(name: string, env: Record<string, string>) {
  const hook = await startReceiver();
  const db = await persistentDb(dir, name);
  const herald = await spawnHerald({ HERALD_DB: db, ...env });
  const base = `${herald.url}/fhir/R4`;
  const url = `http://example.org/topics/${name}`;
  assert.equal((await call('PUT', `${base}/Basic/${name}`, topicResource('R4', { url, resource: 'Patient', interactions: ['create'] }, name))).status, 201);
  const sub = await call('POST', `${base}/Subscription`, { ...subscriptionResource('R4', { topic: url, endpoint: hook.url }) });
  assert.equal(sub.status, 201);
  await hook.waitFor((r) => r.some((x) => readNotification(x.body).type === 'handshake'));
  hook.respond(200, 60_000);
  const created = await call('POST', `${base}/Patient`, { resourceType: 'Patient' });
  assert.equal(created.status, 201);
  await hook.waitFor((r) => r.some((x) => readNotification(x.body).type === 'event-notification'));
  return { hook, herald, db, focus: `Patient/${created.body.id}` };
}

describe('stopping', () => {
  it('SIGTERM waits at most HERALD_SHUTDOWN_GRACE_S for a delivery in flight; the delivery is sent again after the restart (at-least-once)', async () => {
    const { hook, herald, db, focus } = await stuckDelivery('grace', { HERALD_SHUTDOWN_GRACE_S: '2' });
    const started = Date.now();
    herald.child.kill('SIGTERM');
    const code = await herald.exited;
    const took = Date.now() - started;
    assert.equal(code, 1);
    assert.ok(took < 10_000, `stopped after ${took} ms`);
    assert.match(herald.output(), /HERALD_SHUTDOWN_GRACE_S/);
    hook.respond(200, 0);
    const before = hook.received.length;
    const again = await spawnHerald({ HERALD_DB: db });
    try {
      const events = await hook.waitFor((r) => r.slice(before).some((x) => readNotification(x.body).type === 'event-notification'), 20_000);
      const redelivered = events.slice(before).map((x) => readNotification(x.body)).find((n) => n.type === 'event-notification')!;
      assert.equal(redelivered.events[0]!.number, 1);
      assert.match(redelivered.events[0]!.focus!, new RegExp(`${focus}$`));
    } finally {
      again.child.kill('SIGTERM');
      await again.exited;
      await hook.close();
    }
  });

  it('a second SIGTERM ends a stop that is waiting', async () => {
    const { hook, herald } = await stuckDelivery('twice', { HERALD_SHUTDOWN_GRACE_S: '60' });
    herald.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    herald.child.kill('SIGTERM');
    assert.equal(await herald.exited, 1);
    assert.ok(Date.now() - started < 5_000);
    assert.match(herald.output(), /second signal/);
    await hook.close();
  });
});
