import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { call, startServer, type TestServer } from '../helpers/server.ts';
import { subscriptionResource } from '../helpers/subscriptions.ts';
import { until } from '../helpers/until.ts';

const TOPICS_DIR = fileURLToPath(new URL('../fixtures/topics', import.meta.url));
const TOPIC = 'http://example.org/topics/patient-created';

/** A local HTTP server that counts every request, answering with `status` (and `location`). */
async function countingServer(status = 200, location?: string) {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '');
    if (location) res.setHeader('location', location);
    res.statusCode = status;
    res.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { hits, port: (server.address() as AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('rest-hook endpoint safety in open mode (issue 13)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ HERALD_TOPICS: TOPICS_DIR, HERALD_RETRY_BASE_MS: '50', HERALD_RETRY_CAP_MS: '200' });
  });
  after(() => server.close());
  const base = () => server.fhir('R4B');
  const subscribe = (endpoint: string) => call('POST', `${base()}/Subscription`, subscriptionResource('R4B', { topic: TOPIC, endpoint }));

  it('refuses a subscription to Herald itself under any spelling of its address (self-loop): 422 naming it', async () => {
    const port = new URL(server.url).port;
    for (const host of ['127.0.0.1', 'localhost', 'localhost.', '127.1', '2130706433', '0x7f.1', '0177.0.0.1', '0.0.0.0', '[::1]', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]']) {
      const res = await subscribe(`http://${host}:${port}/fhir/R4B/Patient`);
      assert.equal(res.status, 422, host);
      assert.equal(res.body.resourceType, 'OperationOutcome');
      assert.match(res.body.issue[0].diagnostics, /Herald server itself/, host);
    }
    // In a transaction too.
    const tx = await call('POST', base(), { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: subscriptionResource('R4B', { topic: TOPIC, endpoint: `${base()}/Observation` }), request: { method: 'POST', url: 'Subscription' } }] });
    assert.equal(tx.status, 422);
    assert.match(tx.body.issue[0].diagnostics, /itself/);
  });

  it('keeps the open-mode rule: plain http only on loopback hosts', async () => {
    const res = await subscribe('http://receiver.example.com/hook');
    assert.equal(res.status, 422);
    assert.match(res.body.issue[0].diagnostics, /https/);
  });

  it('never follows a redirect from an allowed endpoint to a forbidden one: zero hits there, status error with the reason', async () => {
    const forbidden = await countingServer();
    const redirecting = await countingServer(302, `http://127.0.0.1:${forbidden.port}/internal`);
    try {
      const res = await subscribe(`http://127.0.0.1:${redirecting.port}/hook`);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const id = res.body.id;
      let status: any;
      await until(
        'the $status to report a redirect',
        async () => {
          status = (await call('GET', `${base()}/Subscription/${id}/$status`)).body;
          return JSON.stringify(status).includes('redirect');
        },
        { timeoutMs: 10_000, intervalMs: 50 },
      );
      assert.match(JSON.stringify(status), /HTTP 302 \(a redirect\): redirects are not followed/);
      assert.equal((await call('GET', `${base()}/Subscription/${id}`)).body.status, 'error');
      assert.ok(redirecting.hits.length >= 1);
      assert.equal(forbidden.hits.length, 0);
    } finally {
      await forbidden.close();
      await redirecting.close();
    }
  });
});
