import assert from 'node:assert/strict';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { type HeraldProcess, spawnHerald } from '../helpers/process.ts';
import { call, startServer, type TestServer } from '../helpers/server.ts';
import { subscriptionResource } from '../helpers/subscriptions.ts';
import { connectWs } from '../helpers/ws.ts';

const TOPICS_DIR = fileURLToPath(new URL('../fixtures/topics', import.meta.url));
const TOPIC = 'http://example.org/topics/patient-created';

/** A GET with the Host header the test chooses (fetch does not let one set it). */
function getWithHost(url: string, host: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host, accept: 'application/fhir+json', ...headers } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens a websocket; resolves with the HTTP status of a refused upgrade, or 101. */
function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    ws.once('error', reject);
  });
}

describe('browser safety: Host and Origin (issue 13)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ HERALD_BASE_URL: 'https://herald.example.org', HERALD_CORS_ORIGINS: 'https://app.example.org' });
  });
  after(() => server.close());
  const port = () => new URL(server.url).port;

  it('answers for its base URL host and its listening names, and refuses any other Host with 421 (DNS rebinding)', async () => {
    const url = `${server.url}/fhir/R4/metadata`;
    // Twice: the second answer for a Host comes from what the guard remembers.
    for (const round of [1, 2]) {
      for (const host of ['herald.example.org', 'HERALD.example.org.', `127.0.0.1:${port()}`, `localhost:${port()}`, `[::1]:${port()}`]) {
        assert.equal((await getWithHost(url, host)).status, 200, `${host} (round ${round})`);
      }
      for (const host of ['attacker.example', `attacker.example:${port()}`, 'herald.example.org.attacker.example', `10.0.0.8:${port()}`]) {
        const res = await getWithHost(url, host);
        assert.equal(res.status, 421, `${host} (round ${round})`);
        assert.equal(res.body.resourceType, 'OperationOutcome');
        assert.equal(res.body.issue[0].code, 'security', 'the code README\'s error table gives a 421');
        assert.match(res.body.issue[0].diagnostics, /does not answer for the host/);
      }
    }
  });

  it('refuses websocket upgrades from a foreign Host or Origin; accepts configured origins, its own, and non-browser clients', async () => {
    const ws = `${server.url.replace('http', 'ws')}/ws`;
    assert.equal(await upgradeStatus(ws, { origin: 'https://evil.example' }), 403);
    assert.equal(await upgradeStatus(ws, { host: 'attacker.example' }), 421);
    assert.equal(await upgradeStatus(ws, { origin: 'https://app.example.org' }), 101);
    assert.equal(await upgradeStatus(ws, { origin: 'https://herald.example.org' }), 101);
    assert.equal(await upgradeStatus(ws, {}), 101);
  });
});

describe('request ids and request logs (issue 13)', () => {
  let herald: HeraldProcess;
  before(async () => {
    herald = await spawnHerald({});
  });
  after(async () => {
    herald.child.kill('SIGTERM');
    await herald.exited;
  });

  it('uses a client request id only when short and plain', async () => {
    const echo = async (id: string) => (await call('GET', `${herald.url}/healthz`, undefined, { 'x-request-id': id })).headers.get('x-request-id');
    assert.equal(await echo('abc-123_X.9'), 'abc-123_X.9');
    for (const bad of ['a'.repeat(65), 'has space', 'line\tbreak', '<script>', 'a/b']) {
      const got = await echo(bad);
      assert.notEqual(got, bad);
      assert.match(got!, /^[0-9a-f-]{36}$/);
    }
  });

  it('logs the path and parameter names of a request, never search values (PHI)', async () => {
    await call('GET', `${herald.url}/fhir/R4/Patient?name=Zebedee-Quux&birthdate=1931-04-05`, undefined, { 'x-request-id': 'phi-check' });
    const deadline = Date.now() + 5000;
    while (!herald.output().includes('phi-check') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const line = JSON.parse(herald.output().split('\n').find((l) => l.includes('"phi-check"'))!);
    assert.equal(line.path, '/fhir/R4/Patient');
    assert.deepEqual(line.params, ['name', 'birthdate']);
    assert.ok(!herald.output().includes('Zebedee') && !herald.output().includes('1931-04-05'));
  });
});

describe('HERALD_LOG_PHI (issue 13: the debug setting)', () => {
  it('logs the whole URL with its values when set, and still masks an access_token in it', async () => {
    const lines: string[] = [];
    const server = await startServer({ HERALD_LOG_PHI: 'true', LOG_LEVEL: 'info' }, { write: (l) => void lines.push(l) });
    try {
      await call('GET', `${server.fhir('R4')}/Patient?name=Zebedee-Quux&access_token=secret-token-value`, undefined, { 'x-request-id': 'phi-debug' });
      const line = JSON.parse(lines.find((l) => l.includes('"phi-debug"') && l.includes('"request"'))!);
      assert.equal(line.url, '/fhir/R4/Patient?name=Zebedee-Quux&access_token=***');
      assert.ok(!lines.join('').includes('secret-token-value'));
    } finally {
      await server.close();
    }
  });
});

describe('revoking a websocket binding token (issue 13)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ HERALD_TOPICS: TOPICS_DIR });
  });
  after(() => server.close());
  const base = () => server.fhir('R5');

  it('serves tokens with Cache-Control: no-store; revoking unbinds sockets with an OperationOutcome, and binding then fails', async () => {
    const sub = await call('POST', `${base()}/Subscription`, subscriptionResource('R5', { topic: TOPIC, channel: 'websocket', filters: ['Patient?identifier=urn:rv|1'] }));
    assert.equal(sub.status, 201);
    const res = await call('GET', `${base()}/Subscription/${sub.body.id}/$get-ws-binding-token`);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const token = res.body.parameter.find((p: any) => p.name === 'token').valueString;
    const client = await connectWs(`${server.url.replace('http', 'ws')}/ws`);
    client.send(`bind-with-token ${token}`);
    await client.next((f) => f?.resourceType === 'Bundle');

    assert.equal((await call('GET', `${base()}/Subscription/$revoke-ws-binding-token?token=${token}`)).status, 405, 'state changes take POST');
    assert.equal((await call('POST', `${base()}/Subscription/$revoke-ws-binding-token`, { resourceType: 'Parameters', parameter: [] })).status, 400);
    const revoke = await call('POST', `${base()}/Subscription/$revoke-ws-binding-token`, { resourceType: 'Parameters', parameter: [{ name: 'token', valueString: token }] });
    assert.equal(revoke.status, 200);
    assert.equal(revoke.headers.get('cache-control'), 'no-store');
    assert.match(revoke.body.issue[0].diagnostics, /revoked/);
    const frame = await client.next((f) => f?.resourceType === 'OperationOutcome');
    assert.match(frame.issue[0].diagnostics, /revoked/);

    await call('POST', `${base()}/Patient`, { resourceType: 'Patient', identifier: [{ system: 'urn:rv', value: '1' }] });
    client.send(`bind-with-token ${token}`);
    const refused = await client.next((f) => f?.resourceType === 'OperationOutcome' && f !== frame);
    assert.match(refused.issue[0].diagnostics, /revoked/);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(client.frames.filter((f) => f?.resourceType === 'Bundle').length, 1, 'only the handshake: nothing after revocation');
    await client.close();
  });
});
