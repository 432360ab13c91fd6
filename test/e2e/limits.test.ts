import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { type IncomingMessage, createServer } from 'node:http';
import { type Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { call, startServer, type TestServer } from '../helpers/server.ts';
import { persistentDb } from '../helpers/store.ts';
import { readNotification, subscriptionResource } from '../helpers/subscriptions.ts';
import { until } from '../helpers/until.ts';
import { connectWs } from '../helpers/ws.ts';

/**
 * Issue 14: the limits that keep one client (or many) from holding Herald: HTTP timeouts and the
 * connection cap, websocket caps, subscription quotas, the cap on outbound deliveries, and an
 * event log bounded by size as well as age. Every outcome here is a condition waited for, never a
 * duration measured.
 */
const TOPICS_DIR = fileURLToPath(new URL('../fixtures/topics', import.meta.url));
const TOPIC = 'http://example.org/topics/patient-created';

/** How long a condition gets to come true (unless a wait says otherwise), and how often it is looked at. */
const WAIT = { timeoutMs: 30_000, intervalMs: 25 };

/** A raw TCP client that records what it receives and when the server closed it. */
interface RawClient {
  socket: Socket;
  received(): string;
  closed: Promise<void>;
  isClosed(): boolean;
}

function rawClient(port: number, onConnect: (s: Socket) => void): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    let done = false;
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (data += d));
    socket.on('error', () => undefined);
    const closed = new Promise<void>((r) => socket.once('close', () => ((done = true), r())));
    socket.once('connect', () => {
      onConnect(socket);
      resolve({ socket, received: () => data, closed, isClosed: () => done });
    });
    socket.once('error', reject);
  });
}

const portOf = (s: TestServer) => Number(new URL(s.url).port);

describe('HTTP limits (issue 14)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ HERALD_REQUEST_TIMEOUT_MS: '3000', HERALD_HEADERS_TIMEOUT_MS: '2000', HERALD_KEEP_ALIVE_TIMEOUT_MS: '500' });
  });
  after(() => server.close());

  it('300 connections that send headers and then trickle, stop, or never finish their headers are answered 408 and closed, while /healthz keeps answering', async () => {
    const port = portOf(server);
    const timers: NodeJS.Timeout[] = [];
    const clients = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        rawClient(port, (s) => {
          if (i % 3 === 2) return void s.write(`POST /fhir/R4/Patient HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Ty`);
          s.write(`POST /fhir/R4/Patient HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/fhir+json\r\nContent-Length: 100000\r\n\r\n{`);
          // One in three trickles a byte every 100 ms: only the whole-request timeout stops it.
          if (i % 3 === 0) timers.push(setInterval(() => s.writable && s.write(' '), 100));
        }),
      ),
    );
    try {
      for (let i = 0; i < 5; i++) {
        const health = await call('GET', `${server.url}/healthz`);
        assert.equal(health.status, 200);
      }
      await until('every slow connection is closed by the server', () => clients.every((c) => c.isClosed()), { ...WAIT, timeoutMs: 60_000 });
      for (const c of clients) assert.match(c.received(), /^HTTP\/1\.1 408 Request Timeout/, c.received().slice(0, 200));
      assert.match(clients[0]!.received(), /"code":"timeout"/, 'an OperationOutcome says why');
      assert.equal((await call('GET', `${server.url}/healthz`)).status, 200);
    } finally {
      for (const t of timers) clearInterval(t);
      for (const c of clients) c.socket.destroy();
    }
  });

  it('closes an idle keep-alive connection after HERALD_KEEP_ALIVE_TIMEOUT_MS', async () => {
    const port = portOf(server);
    const c = await rawClient(port, (s) => s.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: keep-alive\r\n\r\n`));
    await until('the answer', () => c.received().includes('{"status":"ok"}'), WAIT);
    assert.match(c.received(), /keep-alive/i, 'the connection was kept open after the answer');
    await until('the idle connection is closed by the server', () => c.isClosed(), WAIT);
  });
});

describe('HTTP connection cap (issue 14)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ HERALD_MAX_CONNECTIONS: '20', HERALD_HEADERS_TIMEOUT_MS: '60000', HERALD_REQUEST_TIMEOUT_MS: '60000' });
  });
  after(() => server.close());

  it('closes connections beyond HERALD_MAX_CONNECTIONS as they arrive, and takes new ones once others have gone', async () => {
    const port = portOf(server);
    const held = await Promise.all(Array.from({ length: 20 }, () => rawClient(port, () => undefined)));
    try {
      // The 21st connection is accepted after the 20 (the listen queue is FIFO) and closed at once.
      const extra = await rawClient(port, (s) => s.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`));
      await extra.closed;
      assert.equal(extra.received(), '', 'nothing is read from or answered to a connection beyond the cap');
    } finally {
      for (const c of held) c.socket.destroy();
    }
    await until('a new connection is served', async () => {
      try {
        return (await fetch(`${server.url}/healthz`)).ok;
      } catch {
        return false;
      }
    }, WAIT);
  });
});

/** Opens a websocket from a given local address: the socket, or the refusal's status and body. */
function tryWs(url: string, localAddress: string): Promise<{ ws: WebSocket } | { status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { localAddress });
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    ws.once('error', reject);
  });
}

describe('websocket limits (issue 14, WS-4)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({
      HERALD_TOPICS: TOPICS_DIR,
      HERALD_WS_MAX_CONNECTIONS: '3',
      HERALD_WS_MAX_CONNECTIONS_PER_ADDRESS: '2',
      HERALD_WS_MAX_SUBSCRIPTIONS_PER_SOCKET: '2',
      HERALD_WS_MAX_FAILED_BINDS: '3',
    });
  });
  after(() => server.close());
  const wsUrl = () => `${server.url.replace('http', 'ws')}/ws`;
  const base = () => server.fhir('R4B');
  const wsSubscription = async () => {
    const res = await call('POST', `${base()}/Subscription`, subscriptionResource('R4B', { topic: TOPIC, channel: 'websocket', filters: ['Patient?identifier=urn:lim|ws'] }));
    assert.equal(res.status, 201, res.text);
    return res.body.id as string;
  };
  const token = async (ids: string[]) => {
    const res = await call('GET', `${base()}/Subscription/$get-ws-binding-token?${ids.map((i) => `id=${i}`).join('&')}`);
    assert.equal(res.status, 200, res.text);
    return res.body.parameter.find((p: any) => p.name === 'token').valueString as string;
  };

  it('refuses an upgrade past the cap per address with 429 and past the total with 503, each naming its setting; a closed socket frees its place', async () => {
    const open: WebSocket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const r = await tryWs(wsUrl(), '127.0.0.1');
        assert.ok('ws' in r, JSON.stringify(r));
        open.push(r.ws);
      }
      const perAddress = await tryWs(wsUrl(), '127.0.0.1');
      assert.ok('status' in perAddress);
      assert.equal(perAddress.status, 429);
      assert.match(JSON.parse(perAddress.body).issue[0].diagnostics, /HERALD_WS_MAX_CONNECTIONS_PER_ADDRESS/);
      // Another loopback address is another client, until the total is reached.
      const other = await tryWs(wsUrl(), '127.0.0.2');
      assert.ok('ws' in other, JSON.stringify(other));
      open.push(other.ws);
      const total = await tryWs(wsUrl(), '127.0.0.3');
      assert.ok('status' in total);
      assert.equal(total.status, 503);
      assert.match(JSON.parse(total.body).issue[0].diagnostics, /HERALD_WS_MAX_CONNECTIONS\b/);
      open.shift()!.close();
      await until('a place is free again', async () => {
        const r = await tryWs(wsUrl(), '127.0.0.3');
        if ('ws' in r) open.push(r.ws);
        return 'ws' in r;
      }, WAIT);
    } finally {
      for (const ws of open) ws.close();
    }
  });

  it('refuses a bind that would put more than HERALD_WS_MAX_SUBSCRIPTIONS_PER_SOCKET subscriptions on one socket; binding the same ones again adds none', async () => {
    const [a, b, c] = [await wsSubscription(), await wsSubscription(), await wsSubscription()];
    const client = await connectWs(wsUrl());
    try {
      client.send(`bind-with-token ${await token([a!, b!, c!])}`);
      const refused = await client.next((f) => f?.resourceType === 'OperationOutcome');
      assert.match(refused.issue[0].diagnostics, /HERALD_WS_MAX_SUBSCRIPTIONS_PER_SOCKET/);
      client.send(`bind-with-token ${await token([a!, b!])}`);
      await client.waitCount((f) => f?.resourceType === 'Bundle' && readNotification(f).type === 'handshake', 2);
      client.send(`bind-with-token ${await token([b!, a!])}`);
      await client.waitCount((f) => f?.resourceType === 'Bundle' && readNotification(f).type === 'handshake', 4);
      client.send(`bind-with-token ${await token([c!])}`);
      await client.waitCount((f) => f?.resourceType === 'OperationOutcome', 2);
      assert.match(client.frames.filter((f) => f?.resourceType === 'OperationOutcome')[1].issue[0].diagnostics, /more than 2/);
    } finally {
      await client.close();
    }
  });

  it('refuses a bind past 100 tokens on one socket, though they add no subscription; unbinding one frees its place', async () => {
    const a = await wsSubscription();
    const tokens = await Promise.all(Array.from({ length: 101 }, () => token([a])));
    const client = await connectWs(wsUrl());
    const handshakes = (n: number) => client.waitCount((f) => f?.resourceType === 'Bundle' && readNotification(f).type === 'handshake', n);
    try {
      for (const t of tokens.slice(0, 100)) client.send(`bind-with-token ${t}`);
      await handshakes(100);
      client.send(`bind-with-token ${tokens[100]}`);
      const refused = await client.next((f) => f?.resourceType === 'OperationOutcome');
      assert.match(refused.issue[0].diagnostics, /This connection has 100 tokens bound, the most one may: unbind some/);
      client.send(`unbind-with-token ${tokens[0]}`);
      client.send(`bind-with-token ${tokens[100]}`);
      await handshakes(101);
    } finally {
      await client.close();
    }
  });

  it('closes a socket with 1008 after HERALD_WS_MAX_FAILED_BINDS refused binds, each answered first', async () => {
    const client = await connectWs(wsUrl());
    const closed = new Promise<{ code: number; reason: string }>((resolve) => client.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    for (let i = 0; i < 3; i++) client.send(`bind-with-token not-a-token-${i}`);
    const { code, reason } = await closed;
    assert.equal(code, 1008);
    assert.match(reason, /HERALD_WS_MAX_FAILED_BINDS/);
    assert.equal(client.frames.filter((f) => f?.resourceType === 'OperationOutcome').length, 3);
  });
});

describe('subscription quotas (issue 14)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({
      HERALD_TOPICS: TOPICS_DIR,
      HERALD_MAX_FILTERS_PER_SUBSCRIPTION: '2',
      HERALD_MAX_SUBSCRIPTIONS_PER_TOPIC: '4',
      HERALD_MAX_SUBSCRIPTIONS_PER_TOKEN: '2',
    });
  });
  after(() => server.close());

  const refusal = (res: { status: number; body: any; text: string }, setting: RegExp, expression?: string) => {
    assert.equal(res.status, 422, res.text);
    assert.equal(res.body.resourceType, 'OperationOutcome');
    assert.match(res.body.issue[0].diagnostics, setting);
    if (expression) assert.deepEqual(res.body.issue[0].expression, [expression]);
  };

  for (const v of ['R4', 'R5'] as const) {
    it(`${v}: a heartbeatPeriod under HERALD_MIN_HEARTBEAT_S (10 s by default) is refused with 422 naming the minimum, not clamped (N-4, HB-1)`, async () => {
      const sub = subscriptionResource(v, { topic: TOPIC, channel: 'websocket', heartbeat: 5 });
      const res = await call('POST', `${server.fhir(v)}/Subscription`, sub);
      refusal(res, /heartbeatPeriod must be from 10 to 86400 seconds \(this server's limit is HERALD_MIN_HEARTBEAT_S\), not 5/);
      assert.match(res.body.issue[0].expression[0], /heartbeat/i);
      assert.equal((await call('POST', `${server.fhir(v)}/Subscription`, subscriptionResource(v, { topic: TOPIC, channel: 'websocket', heartbeat: 10 }))).status, 201);
    });

    it(`${v}: a timeout over HERALD_MAX_DELIVERY_TIMEOUT_S (60 s by default) is refused with 422 naming the maximum (RH-8)`, async () => {
      const sub = subscriptionResource(v, { topic: TOPIC, endpoint: 'http://127.0.0.1:9/hook' });
      if (v === 'R5') sub.timeout = 61;
      else sub.channel.extension = [{ url: 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-timeout', valueUnsignedInt: 61 }];
      refusal(await call('POST', `${server.fhir(v)}/Subscription`, sub), /timeout must be from 1 to 60 seconds \(this server's limit is HERALD_MAX_DELIVERY_TIMEOUT_S\), not 61/);
    });

    it(`${v}: more filters than HERALD_MAX_FILTERS_PER_SUBSCRIPTION is a 422 naming the setting and the first filter too many`, async () => {
      const filters = ['Patient?identifier=urn:q|1', 'Patient?identifier=urn:q|2', 'Patient?identifier=urn:q|3'];
      const res = await call('POST', `${server.fhir(v)}/Subscription`, subscriptionResource(v, { topic: TOPIC, channel: 'websocket', filters }));
      refusal(res, /at most 2 filters .*HERALD_MAX_FILTERS_PER_SUBSCRIPTION/, v === 'R5' ? 'Subscription.filterBy[2]' : undefined);
    });
  }

  it('refuses a live subscription past HERALD_MAX_SUBSCRIPTIONS_PER_TOPIC; one set off frees its place; an update of a counted one passes', async () => {
    const base = server.fhir('R4B');
    const create = () => call('POST', `${base}/Subscription`, subscriptionResource('R4B', { topic: TOPIC, channel: 'websocket', filters: ['Patient?identifier=urn:q|topic'] }));
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await create();
      assert.equal(res.status, 201, res.text);
      ids.push(res.body.id);
    }
    refusal(await create(), /maximum of 4 live subscriptions .*HERALD_MAX_SUBSCRIPTIONS_PER_TOPIC/, 'Subscription.criteria');
    const first = (await call('GET', `${base}/Subscription/${ids[0]}`)).body;
    assert.equal((await call('PUT', `${base}/Subscription/${ids[0]}`, { ...first, reason: 'renamed' })).status, 200, 'an update is not a new subscription');
    const off = await call('PUT', `${base}/Subscription/${ids[0]}`, { ...first, status: 'off' });
    assert.equal(off.status, 200, off.text);
    assert.equal((await create()).status, 201);
    refusal(await call('PUT', `${base}/Subscription/${ids[0]}`, { ...first, status: 'active' }), /HERALD_MAX_SUBSCRIPTIONS_PER_TOPIC/);
  });

  it('refuses a binding token for more than HERALD_MAX_SUBSCRIPTIONS_PER_TOKEN subscriptions, named or all, with 400 too-costly (OP-W*)', async () => {
    const base = server.fhir('R5'); // where one websocket subscription exists already (the heartbeat test's)
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await call('POST', `${base}/Subscription`, subscriptionResource('R5', { topic: TOPIC, channel: 'websocket', filters: [`Patient?identifier=urn:q|tok${i}`] }));
      assert.equal(res.status, 201, res.text);
      ids.push(res.body.id);
    }
    for (const query of [ids.map((i) => `id=${i}`).join('&'), '']) {
      const res = await call('GET', `${base}/Subscription/$get-ws-binding-token?${query}`);
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.issue[0].code, 'too-costly');
      assert.match(res.body.issue[0].diagnostics, /at most 2 subscriptions .*HERALD_MAX_SUBSCRIPTIONS_PER_TOKEN/);
    }
    assert.equal((await call('GET', `${base}/Subscription/$get-ws-binding-token?id=${ids[0]}&id=${ids[1]}`)).status, 200);
  });
});

/** A rest-hook endpoint that holds every request until released, and counts how many it holds at once. */
async function holdingReceiver() {
  const waiting: (() => void)[] = [];
  let inFlight = 0;
  let most = 0;
  let holding = true;
  const bodies: any[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('end', () => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      const answer = () => {
        inFlight -= 1;
        bodies.push(JSON.parse(text));
        res.end();
      };
      if (holding) waiting.push(answer);
      else answer();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`,
    inFlight: () => inFlight,
    most: () => most,
    bodies,
    release() {
      holding = false;
      for (const w of waiting.splice(0)) w();
    },
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

describe('the cap on concurrent outbound deliveries (issue 14)', () => {
  it('never has more than HERALD_MAX_CONCURRENT_DELIVERIES POSTs in flight; the others wait and none is dropped (RH-1, D-10)', async () => {
    const hook = await holdingReceiver();
    const server = await startServer({ HERALD_TOPICS: TOPICS_DIR, HERALD_MAX_CONCURRENT_DELIVERIES: '2' });
    try {
      const base = server.fhir('R4');
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await call('POST', `${base}/Subscription`, subscriptionResource('R4', { topic: TOPIC, endpoint: hook.url, filters: ['Patient?identifier=urn:q|slots'] }));
        assert.equal(res.status, 201, res.text);
        ids.push(res.body.id);
      }
      // Five handshakes are due; the endpoint answers none of them yet.
      await until('two handshakes are held', () => hook.inFlight() === 2, WAIT);
      await new Promise((r) => setTimeout(r, 300)); // room for a third, were the cap not kept
      assert.equal(hook.most(), 2);
      hook.release();
      await until('every handshake arrived', () => hook.bodies.filter((b) => readNotification(b).type === 'handshake').length === 5, WAIT);
      for (const id of ids) await until(`Subscription/${id} is active`, async () => (await call('GET', `${base}/Subscription/${id}`)).body.status === 'active', WAIT);
      await call('POST', `${base}/Patient`, { resourceType: 'Patient', identifier: [{ system: 'urn:q', value: 'slots' }] });
      await until('every subscription got its event', () => hook.bodies.filter((b) => readNotification(b).type === 'event-notification').length === 5, WAIT);
      assert.equal(hook.most(), 2, 'never more than the cap in flight');
    } finally {
      await server.close();
      await hook.close();
    }
  });
});

describe('the event log is bounded by size as well as age (issue 14, D-9, OP-E1)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-limits-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const patient = (server: TestServer, value: string) =>
    call('POST', `${server.fhir('R4')}/Patient`, { resourceType: 'Patient', identifier: [{ system: 'urn:log', value }] });
  const subscribe = async (server: TestServer, value: string) => {
    const res = await call('POST', `${server.fhir('R4')}/Subscription`, subscriptionResource('R4', { topic: TOPIC, channel: 'websocket', filters: [`Patient?identifier=urn:log|${value}`] }));
    assert.equal(res.status, 201, res.text);
    return res.body.id as string;
  };
  const events = (server: TestServer, id: string, query = '') => call('GET', `${server.fhir('R4')}/Subscription/${id}/$events${query}`);

  it('keeps at most HERALD_EVENT_LOG_MAX_PER_SUBSCRIPTION events of a subscription: older ones answer 410, the newest stay, numbers go on', async () => {
    const env = { HERALD_TOPICS: TOPICS_DIR, HERALD_DB: await persistentDb(dir, 'size'), HERALD_EVENT_LOG_MAX_PER_SUBSCRIPTION: '5', HERALD_EVENT_PRUNE_INTERVAL_S: '1' };
    const server = await startServer(env);
    try {
      const busy = await subscribe(server, 'busy');
      const quiet = await subscribe(server, 'quiet');
      await patient(server, 'quiet');
      for (let i = 0; i < 12; i++) await patient(server, 'busy');
      // A prune may run between two of the writes (every second): wait for one after the last.
      const trimmed = async () => {
        const gone = await events(server, busy, '?eventsSinceNumber=1');
        return gone.status === 410 && /oldest event still held is 8/.test(gone.body.issue[0].diagnostics);
      };
      await until('the busy subscription is trimmed to its newest 5 events', trimmed, WAIT);
      assert.deepEqual(readNotification((await events(server, busy)).body).events.map((e) => e.number), [8, 9, 10, 11, 12]);
      assert.deepEqual(readNotification((await events(server, quiet)).body).events.map((e) => e.number), [1], 'a quiet subscription keeps its events');
      await patient(server, 'busy');
      assert.equal(readNotification((await events(server, busy, '?eventsSinceNumber=13')).body).events[0]?.number, 13, 'numbers are never reused');
    } finally {
      await server.close();
    }
  });

  it('prunes shortly after start, not only an interval later, so that frequent restarts do not skip it', async () => {
    const db = await persistentDb(dir, 'restart');
    let server = await startServer({ HERALD_TOPICS: TOPICS_DIR, HERALD_DB: db });
    let id: string;
    try {
      id = await subscribe(server, 'restart');
      for (let i = 0; i < 8; i++) await patient(server, 'restart');
    } finally {
      await server.close();
    }
    // The hourly interval (the default) never comes: only the prune run after start can do it.
    server = await startServer({ HERALD_TOPICS: TOPICS_DIR, HERALD_DB: db, HERALD_EVENT_LOG_MAX_PER_SUBSCRIPTION: '3' });
    try {
      await until('pruned after start', async () => (await events(server, id, '?eventsSinceNumber=1')).status === 410, { ...WAIT, timeoutMs: 60_000 });
      assert.deepEqual(readNotification((await events(server, id)).body).events.map((e) => e.number), [6, 7, 8]);
    } finally {
      await server.close();
    }
  });
});

describe('classic-criteria subscriptions have a quota of their own (each is tested on every write of its type)', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ HERALD_TOPICS: TOPICS_DIR, HERALD_MAX_CLASSIC_SUBSCRIPTIONS: '2', HERALD_MAX_SUBSCRIPTIONS_PER_TOPIC: '2' });
  });
  after(() => server.close());

  it('refuses a live classic subscription past HERALD_MAX_CLASSIC_SUBSCRIPTIONS; one set off frees its place; an update of a counted one passes; topic-based ones count apart', async () => {
    const base = server.fhir('R4');
    const classic = (status = 'active') => ({ resourceType: 'Subscription', status, reason: 'quota', criteria: 'Patient?name=zzz', channel: { type: 'websocket' } });
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await call('POST', `${base}/Subscription`, classic());
      assert.equal(res.status, 201, res.text);
      ids.push(res.body.id);
    }
    const refused = await call('POST', `${base}/Subscription`, classic());
    assert.equal(refused.status, 422, refused.text);
    assert.match(refused.body.issue[0].diagnostics, /maximum of 2 live subscriptions with classic criteria .*HERALD_MAX_CLASSIC_SUBSCRIPTIONS/);
    assert.deepEqual(refused.body.issue[0].expression, ['Subscription.criteria']);
    assert.equal((await call('POST', `${base}/Subscription`, classic('off'))).status, 201, 'an off one is not counted');
    const first = (await call('GET', `${base}/Subscription/${ids[0]}`)).body;
    assert.equal((await call('PUT', `${base}/Subscription/${ids[0]}`, { ...first, reason: 'renamed' })).status, 200, 'an update is not a new subscription');
    assert.equal((await call('POST', `${base}/Subscription`, subscriptionResource('R4', { topic: TOPIC, channel: 'websocket' }))).status, 201, 'a topic-based one counts on its topic');
    assert.equal((await call('PUT', `${base}/Subscription/${ids[0]}`, { ...first, status: 'off' })).status, 200);
    assert.equal((await call('POST', `${base}/Subscription`, classic())).status, 201, 'one set off frees its place');
    assert.equal((await call('PUT', `${base}/Subscription/${ids[0]}`, { ...first, status: 'active' })).status, 422, 'and it cannot come back while the others hold it');
    assert.equal((await call('DELETE', `${base}/Subscription/${ids[1]}`)).status, 204);
    assert.equal((await call('PUT', `${base}/Subscription/${ids[0]}`, { ...first, status: 'active' })).status, 200, 'a deleted one frees its place');
  });
});
