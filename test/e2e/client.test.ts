import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { createListener, type Listener, type ListenerOptions, type ListenerStatus, type SubscriptionEvent } from '../../src/client/index.ts';
import { VERSIONS, call, freePort, startServer, type TestServer } from '../helpers/server.ts';
import { until } from '../helpers/until.ts';

/**
 * The client library and `herald listen` against a real Herald: events once and in order, a
 * dropped socket caught up through $events, token renewal past the token lifetime (3 s here).
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TOPICS_DIR = fileURLToPath(new URL('../fixtures/topics', import.meta.url));
const TOPIC = 'http://example.org/topics/patient-created';

/** The `ws` WebSocket, remembering every socket the listener opens so a test can cut one. */
function recordingWebSocket() {
  const sockets: WebSocket[] = [];
  class Recording extends WebSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  }
  return { WebSocket: Recording, sockets };
}

function listen(options: Omit<ListenerOptions, 'onEvent'> & { onEvent?: ListenerOptions['onEvent'] }) {
  const events: SubscriptionEvent[] = [];
  const statuses: ListenerStatus[] = [];
  const errors: Error[] = [];
  const ws = recordingWebSocket();
  const listener: Listener = createListener({
    WebSocket: ws.WebSocket,
    backoff: { initialDelayMs: 1000, maxDelayMs: 2000 },
    onEvent: (e) => void events.push(e),
    onStatus: (s) => void statuses.push(s),
    onError: (e) => void errors.push(e),
    ...options,
  });
  return { listener, events, statuses, errors, sockets: ws.sockets };
}

/** How long a listener gets to receive what the test waits for (unless a wait says otherwise). */
const WAIT = { timeoutMs: 10_000 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('client library and herald listen', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ HERALD_TOPICS: TOPICS_DIR, HERALD_WS_TOKEN_TTL_S: '3' });
  });
  after(() => server.close());

  const patient = async (base: string, system: string, value: string) => {
    const res = await call('POST', `${base}/Patient`, { resourceType: 'Patient', identifier: [{ system, value }] });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return `${base}/Patient/${res.body.id}`;
  };

  for (const v of VERSIONS) {
    describe(`on /fhir/${v}`, () => {
      const base = () => server.fhir(v);

      it('creates a websocket subscription and delivers each event once, in order, with the full resource', async () => {
        const h = listen({ baseUrl: base(), topic: TOPIC, filters: ['Patient?identifier=urn:client|order'], content: 'full-resource' });
        try {
          const [id] = await h.listener.ready;
          assert.ok(h.statuses.some((s) => s.type === 'subscription-created' && s.subscriptionId === id));
          assert.equal(h.listener.fhirVersion, v);
          const focus: string[] = [];
          for (let i = 0; i < 6; i++) focus.push(await patient(base(), 'urn:client', 'order'));
          await patient(base(), 'urn:client', 'someone-else');
          await until('6 events', () => h.events.length >= 6, WAIT);
          await sleep(300);
          assert.deepEqual(h.events.map((e) => e.eventNumber), [1, 2, 3, 4, 5, 6]);
          assert.deepEqual(h.events.map((e) => e.focus), focus);
          assert.ok(h.events.every((e) => e.subscriptionId === id && e.interaction === 'create' && e.resource?.resourceType === 'Patient'));
          assert.deepEqual(h.events.map((e) => `${base()}/Patient/${e.resource?.id}`), focus);
          assert.equal(h.listener.lastEventNumber(id!), 6);
          assert.deepEqual(h.errors, []);

          // A second listener for the same topic, filters and content reuses the subscription.
          const again = listen({ baseUrl: base(), topic: TOPIC, filters: ['Patient?identifier=urn:client|order'], content: 'full-resource' });
          assert.deepEqual(await again.listener.ready, [id]);
          assert.ok(again.statuses.some((s) => s.type === 'subscription-reused'));
          await again.listener.close();
        } finally {
          await h.listener.close();
        }
      });

      it('catches up through $events after the socket drops: no gap, no duplicate', async () => {
        const h = listen({ baseUrl: base(), topic: TOPIC, filters: ['Patient?identifier=urn:client|drop'], reuse: false });
        try {
          await h.listener.ready;
          const focus: string[] = [];
          for (let i = 0; i < 2; i++) focus.push(await patient(base(), 'urn:client', 'drop'));
          await until('2 events before the drop', () => h.events.length === 2, WAIT);
          h.sockets[0]!.terminate(); // the connection dies under the client
          for (let i = 0; i < 3; i++) focus.push(await patient(base(), 'urn:client', 'drop')); // nobody is bound now
          await until('a reconnect', () => h.sockets.length === 2 && h.statuses.filter((s) => s.type === 'bound').length >= 2, { timeoutMs: 15_000 });
          await until('the catch-up through $events', () => h.statuses.some((s) => s.type === 'caught-up'), WAIT);
          for (let i = 0; i < 2; i++) focus.push(await patient(base(), 'urn:client', 'drop'));
          await until('7 events', () => h.events.length >= 7, WAIT);
          await sleep(300);
          assert.deepEqual(h.events.map((e) => e.eventNumber), [1, 2, 3, 4, 5, 6, 7]);
          assert.deepEqual(h.events.map((e) => e.focus), focus);
          const types = h.statuses.map((s) => s.type);
          assert.ok(types.includes('disconnected') && types.includes('reconnecting') && types.includes('catching-up'), types.join(' '));
          assert.ok(h.events.slice(2, 5).every((e) => e.source === 'query-event'), 'the missed events came from $events');
          assert.deepEqual(h.errors, []);
        } finally {
          await h.listener.close();
        }
      });

      it('binds existing subscriptions by id and resumes after a given event number', async () => {
        const first = listen({ baseUrl: base(), topic: TOPIC, filters: ['Patient?identifier=urn:client|resume'], reuse: false });
        const [id] = await first.listener.ready;
        for (let i = 0; i < 4; i++) await patient(base(), 'urn:client', 'resume');
        await until('4 events', () => first.events.length === 4, WAIT);
        await first.listener.close();
        const second = listen({ baseUrl: base(), subscriptionIds: [id!], resumeAfter: { [id!]: 2 } });
        try {
          await second.listener.ready;
          await patient(base(), 'urn:client', 'resume');
          await until('events 3..5', () => second.events.length >= 3, WAIT);
          await sleep(200);
          assert.deepEqual(second.events.map((e) => e.eventNumber), [3, 4, 5]);
          assert.deepEqual(second.events.slice(0, 2).map((e) => e.focus), first.events.slice(2).map((e) => e.focus));
        } finally {
          await second.listener.close();
        }
      });
    });
  }

  it('renews the binding token before it expires, so delivery goes on past the token lifetime', async () => {
    const base = server.fhir('R4B');
    const h = listen({ baseUrl: base, topic: TOPIC, filters: ['Patient?identifier=urn:client|renew'] });
    try {
      await h.listener.ready;
      const started = Date.now();
      const focus: string[] = [];
      while (Date.now() - started < 8000) {
        focus.push(await patient(base, 'urn:client', 'renew'));
        await sleep(250);
      }
      await until(`${focus.length} events`, () => h.events.length >= focus.length, WAIT);
      await sleep(300);
      assert.deepEqual(h.events.map((e) => e.eventNumber), focus.map((_, i) => i + 1));
      assert.deepEqual(h.events.map((e) => e.focus), focus);
      assert.ok(h.statuses.filter((s) => s.type === 'token-renewed').length >= 2, 'renewed at least twice in 8 s of 3 s tokens');
      assert.equal(h.sockets.length, 1, 'renewed on the same socket');
      assert.ok(!h.statuses.some((s) => s.type === 'disconnected'));
      assert.deepEqual(h.errors.map((e) => e.message), [], 'no expiry OperationOutcome, no error');
    } finally {
      await h.listener.close();
    }
  });

  it('stops listening to a deleted subscription, and closes when none is left', async () => {
    const base = server.fhir('R5');
    const a = listen({ baseUrl: base, topic: TOPIC, filters: ['Patient?identifier=urn:client|del-a'], reuse: false });
    const b = listen({ baseUrl: base, topic: TOPIC, filters: ['Patient?identifier=urn:client|del-b'], reuse: false });
    const [idA] = await a.listener.ready;
    const [idB] = await b.listener.ready;
    await Promise.all([a.listener.close(), b.listener.close()]);
    const h = listen({ baseUrl: base, subscriptionIds: [idA!, idB!] });
    try {
      await h.listener.ready;
      assert.equal((await call('DELETE', `${base}/Subscription/${idA}`)).status < 300, true);
      await until('Subscription A to end', () => h.statuses.some((s) => s.type === 'subscription-ended' && s.subscriptionId === idA), WAIT);
      assert.deepEqual(h.listener.subscriptionIds, [idB]);
      await patient(base, 'urn:client', 'del-b');
      await until('an event for B after A went', () => h.events.length === 1, WAIT);
      assert.equal(h.events[0]!.subscriptionId, idB);
      assert.equal((await call('DELETE', `${base}/Subscription/${idB}`)).status < 300, true);
      await h.listener.closed;
      assert.ok(h.errors.some((e) => /no subscriptions left/.test(e.message)));
    } finally {
      await h.listener.close();
    }
  });

  it('herald listen --json prints one JSON object per event and exits 0 on SIGINT', async () => {
    const base = server.fhir('R4');
    const child = spawn(process.execPath, ['bin/herald.js', 'listen', '--base', base, '--topic', TOPIC, '--filter', 'Patient?identifier=urn:client|cli', '--json'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const exited = once(child, 'exit');
    try {
      await until(`herald listen to start (stderr: ${err})`, () => err.includes('listening to'));
      const focus: string[] = [];
      for (let i = 0; i < 3; i++) focus.push(await patient(base, 'urn:client', 'cli'));
      await until(`3 lines (stdout: ${out})`, () => out.trim().split('\n').filter(Boolean).length >= 3, WAIT);
      const lines = out.trim().split('\n').map((l) => JSON.parse(l));
      assert.deepEqual(lines.map((l) => l.eventNumber), [1, 2, 3]);
      assert.deepEqual(lines.map((l) => l.focus), focus);
      assert.ok(lines.every((l) => l.interaction === 'create' && typeof l.subscriptionId === 'string' && l.topic === TOPIC));
      assert.match(err, /created Subscription\//);
    } finally {
      child.kill('SIGINT');
    }
    const [code] = await exited;
    assert.equal(code, 0, err);
  });

  it('herald --help and bad usage', async () => {
    const run = async (args: string[]) => {
      const child = spawn(process.execPath, ['bin/herald.js', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (d) => (text += d));
      child.stderr.on('data', (d) => (text += d));
      const [code] = await once(child, 'exit');
      return { code, text };
    };
    const help = await run(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.text, /herald listen --base/);
    const bad = await run(['listen', '--topic', TOPIC]);
    assert.equal(bad.code, 2);
    assert.match(bad.text, /--base is required/);
    // Nobody listens on this port: the error names the URL and the cause, not just "fetch failed".
    const nowhere = `http://127.0.0.1:${await freePort()}/fhir/R4`;
    const down = await run(['listen', '--base', nowhere, '--topic', TOPIC]);
    assert.equal(down.code, 1);
    assert.ok(down.text.includes(`GET ${nowhere}/Subscription?`), down.text);
    assert.match(down.text, /cannot reach the server \(ECONNREFUSED\)/);
  });
});
