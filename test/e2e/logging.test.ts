import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Receiver, startReceiver } from '../helpers/receiver.ts';
import { VERSIONS, call, startServer, type TestServer } from '../helpers/server.ts';
import { subscriptionResource } from '../helpers/subscriptions.ts';
import { until } from '../helpers/until.ts';

const TOPIC = 'http://example.org/topics/patient-created';
const SECRET = 's3cret-never-logged';

/**
 * An operator reads what Herald does in the background from its log: topics installed at start,
 * failing handshakes and deliveries, status changes, each one JSON line with the subscription and
 * the base; and a client reading the Subscription sees the same error as `$status` (ST-8).
 */
describe('background work is logged, and the stored error follows $status', () => {
  let server: TestServer;
  let hook: Receiver;
  const lines: Record<string, any>[] = [];
  before(async () => {
    const sink = { write: (line: string) => void lines.push(JSON.parse(line)) };
    server = await startServer({ LOG_LEVEL: 'info', HERALD_TOPICS: 'test/fixtures/topics', HERALD_RETRY_BASE_MS: '20', HERALD_RETRY_CAP_MS: '50' }, sink);
    hook = await startReceiver();
  });
  after(async () => {
    await server.close();
    await hook.close();
  });

  it('logs each topic installed from --topics, per base', () => {
    const installed = lines.filter((l) => l.msg === 'topic installed' && l.topic === TOPIC);
    assert.deepEqual(installed.map((l) => l.base).sort(), [...VERSIONS].sort());
    assert.ok(installed.every((l) => l.file === 'patient-created.json' && typeof l.resource === 'string'));
  });

  for (const v of VERSIONS) {
    it(`on ${v}: logs failed handshakes and status changes without secrets; the stored error is $status's, after each different failure`, async () => {
      const base = server.fhir(v);
      hook.respond(500);
      const endpoint = `${hook.url}?token=${SECRET}`;
      const created = await call('POST', `${base}/Subscription`, subscriptionResource(v, { topic: TOPIC, endpoint, headers: [`Authorization: Bearer ${SECRET}`] }));
      assert.equal(created.status, 201, created.text);
      const id = created.body.id as string;
      const mine = (msg: string) => lines.filter((l) => l.subscription === id && l.msg === msg);

      const first = await settledError(base, id, /HTTP 500/);
      assert.match(first.status, /^handshake failed: endpoint answered HTTP 500$/);
      if (v !== 'R5') assert.equal(first.stored, first.status, 'the stored Subscription.error is the $status error');

      hook.respond(503);
      const second = await settledError(base, id, /HTTP 503/);
      if (v !== 'R5') assert.equal(second.stored, second.status, 'after a different failure, the stored error is the latest');

      // Retries failing the same way add no versions.
      const version = (await call('GET', `${base}/Subscription/${id}`)).body.meta.versionId;
      const failures = mine('rest-hook handshake failed').length;
      await until('three more failed handshakes logged', () => mine('rest-hook handshake failed').length >= failures + 3, { timeoutMs: 10_000, intervalMs: 25 });
      assert.equal((await call('GET', `${base}/Subscription/${id}`)).body.meta.versionId, version);

      hook.respond(200);
      await until('subscription active', async () => (await call('GET', `${base}/Subscription/${id}`)).body.status === 'active', { timeoutMs: 10_000, intervalMs: 25 });
      const active = await call('GET', `${base}/Subscription/${id}`);
      assert.equal(active.body.error, undefined, 'recovery clears the stored error');

      const failed = mine('rest-hook handshake failed');
      assert.ok(failed.length >= 2);
      for (const l of failed) {
        assert.equal(l.base, v);
        assert.equal(l.level, 40, 'a failed attempt is a warning');
        assert.equal(l.endpoint, new URL(hook.url).origin, 'only the origin of the endpoint');
        assert.equal(l.stage, 'handshake');
        assert.ok(l.attempt >= 1 && l.retryInMs >= 0);
      }
      assert.ok(failed.some((l) => l.reason === 'handshake failed: endpoint answered HTTP 500'));
      assert.ok(failed.some((l) => l.reason === 'handshake failed: endpoint answered HTTP 503'));
      const changes = mine('subscription status changed').map((l) => [l.base, l.from, l.to, l.reason]);
      assert.deepEqual(changes, [
        [v, 'requested', 'error', 'handshake failed: endpoint answered HTTP 500'],
        [v, 'error', 'active', undefined],
      ]);
      assert.ok(!JSON.stringify(lines).includes(SECRET), 'channel headers and endpoint query are never logged');
    });
  }

  it('logs a failed event notification with its reason, and the change to error and back', async () => {
    const base = server.fhir('R4B');
    hook.respond(200);
    const created = await call('POST', `${base}/Subscription`, subscriptionResource('R4B', { topic: TOPIC, endpoint: hook.url }));
    const id = created.body.id as string;
    await until('subscription active', async () => (await call('GET', `${base}/Subscription/${id}`)).body.status === 'active', { timeoutMs: 10_000, intervalMs: 25 });
    hook.respond(500);
    await call('POST', `${base}/Patient`, { resourceType: 'Patient' });
    await until('a failed notification logged', () => lines.some((l) => l.subscription === id && l.msg === 'rest-hook notification failed'), { timeoutMs: 10_000, intervalMs: 25 });
    hook.respond(200);
    await until('error -> active change logged', () => lines.some((l) => l.subscription === id && l.msg === 'subscription status changed' && l.to === 'active' && l.from === 'error'), { timeoutMs: 10_000, intervalMs: 25 });
    const failed = lines.find((l) => l.subscription === id && l.msg === 'rest-hook notification failed')!;
    assert.deepEqual([failed.base, failed.stage, failed.reason], ['R4B', 'notification', 'endpoint answered HTTP 500']);
    const changes = lines.filter((l) => l.subscription === id && l.msg === 'subscription status changed').map((l) => [l.from, l.to]);
    assert.deepEqual(changes, [['requested', 'active'], ['active', 'error'], ['error', 'active']]);
  });

  /** Waits until $status reports an error matching `pattern` and the stored resource follows it. */
  async function settledError(base: string, id: string, pattern: RegExp): Promise<{ status: string; stored: string | undefined }> {
    let out = { status: '', stored: undefined as string | undefined };
    await until(
      `settled error matching ${pattern}`,
      async () => {
        const status = statusError((await call('GET', `${base}/Subscription/${id}/$status`)).body.entry[0].resource);
        const stored = (await call('GET', `${base}/Subscription/${id}`)).body;
        out = { status: status ?? '', stored: stored.error };
        return pattern.test(out.status) && stored.status === 'error' && (base.endsWith('R5') || pattern.test(stored.error ?? ''));
      },
      { timeoutMs: 10_000, intervalMs: 25 },
    );
    return out;
  }
});

/** The error text of a status resource: R4 Parameters `error`, R4B/R5 SubscriptionStatus.error. */
function statusError(resource: any): string | undefined {
  if (resource.resourceType === 'Parameters') return resource.parameter.find((p: any) => p.name === 'error')?.valueCodeableConcept.text;
  return resource.error?.[0]?.text;
}
