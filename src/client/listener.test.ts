import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { until } from '../../test/helpers/until.ts';
import { createListener, EventsLostError, type ListenerOptions } from './listener.ts';
import type { SubscriptionEvent, WebSocketLike } from './types.ts';

/**
 * The listener's state machine against an in-memory fake of Herald's websocket protocol (R4B
 * shapes): a fake `fetch` for $get-ws-binding-token / $events and a fake WebSocket. The real
 * server is exercised in test/e2e/client.test.ts.
 */
const BASE = 'http://fake/fhir/R4B';

class FakeHerald {
  events = new Map<string, number>(); // subscription id → event count
  tokens = new Map<string, { ids: string[]; expires: number }>();
  sockets: FakeSocket[] = [];
  calls: string[] = [];
  ttlMs = 60_000;
  tokenCount = 0;
  /** Event numbers (per subscription) the live stream silently drops. */
  dropLive = new Set<number>();
  /** $events answers 410 for numbers below this. */
  oldestHeld = 1;
  wsUrl = 'ws://fake/ws';

  constructor(...ids: string[]) {
    for (const id of ids) this.events.set(id, 0);
  }

  status(id: string, type: string, numbers: number[]) {
    return {
      resourceType: 'Bundle',
      type: 'history',
      entry: [
        {
          fullUrl: 'urn:uuid:x',
          resource: {
            resourceType: 'SubscriptionStatus',
            status: 'active',
            type,
            eventsSinceSubscriptionStart: String(this.events.get(id)),
            notificationEvent: numbers.map((n) => ({ eventNumber: String(n), focus: { reference: `${BASE}/Patient/p${n}` } })),
            subscription: { reference: `${BASE}/Subscription/${id}` },
          },
        },
        ...numbers.map((n) => ({ fullUrl: `${BASE}/Patient/p${n}`, request: { method: 'POST', url: 'Patient' } })),
      ],
    };
  }

  /** A new event for a subscription: numbered, then sent to every socket bound to it (unless dropped). */
  emit(id: string): number {
    const n = this.events.get(id)! + 1;
    this.events.set(id, n);
    if (this.dropLive.has(n)) return n;
    for (const s of this.sockets) if (s.open && s.boundIds().includes(id)) s.deliver(this.status(id, 'event-notification', [n]));
    return n;
  }

  fetch: ListenerOptions['fetch'] = async (url) => {
    const u = new URL(url);
    this.calls.push(`${u.pathname.replace('/fhir/R4B/', '')}${u.search}`);
    const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/fhir+json' } });
    if (u.pathname.endsWith('/$get-ws-binding-token')) {
      const ids = u.searchParams.getAll('id');
      const token = `t${++this.tokenCount}`;
      const expires = Date.now() + this.ttlMs;
      this.tokens.set(token, { ids, expires });
      return json(200, {
        resourceType: 'Parameters',
        parameter: [
          { name: 'token', valueString: token },
          { name: 'expiration', valueDateTime: new Date(expires).toISOString() },
          ...ids.map((id) => ({ name: 'subscription', valueString: id })),
          { name: 'websocket-url', valueUrl: this.wsUrl },
        ],
      });
    }
    const m = /Subscription\/([^/]+)\/\$events$/.exec(u.pathname);
    if (m) {
      const id = m[1]!;
      const from = Number(u.searchParams.get('eventsSinceNumber'));
      const to = Math.min(Number(u.searchParams.get('eventsUntilNumber')), this.events.get(id)!);
      if (from < this.oldestHeld) return json(410, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'deleted', diagnostics: `the oldest event still held is ${this.oldestHeld}` }] });
      const numbers = [];
      for (let n = from; n <= to; n++) numbers.push(n);
      return json(200, this.status(id, 'query-event', numbers));
    }
    return json(404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] });
  };

  get WebSocket() {
    const server = this;
    return class extends FakeSocket {
      constructor(url: string) {
        super(server, url);
      }
    };
  }
}

type Listener_ = (ev: any) => void;

class FakeSocket implements WebSocketLike {
  readyState = 0;
  open = false;
  bound: string[] = [];
  sent: string[] = [];
  readonly #listeners = new Map<string, Listener_[]>();

  constructor(
    readonly server: FakeHerald,
    readonly url: string,
  ) {
    server.sockets.push(this);
    setTimeout(() => {
      this.open = true;
      this.readyState = 1;
      this.#fire('open', {});
    }, 1);
  }

  boundIds(): string[] {
    return [...new Set(this.bound.flatMap((t) => this.server.tokens.get(t)?.ids ?? []))];
  }

  addEventListener(type: string, listener: Listener_): void {
    this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), listener]);
  }

  #fire(type: string, ev: unknown) {
    for (const l of this.#listeners.get(type) ?? []) l(ev);
  }

  deliver(body: unknown) {
    setTimeout(() => this.open && this.#fire('message', { data: JSON.stringify(body) }), 0);
  }

  send(text: string): void {
    this.sent.push(text);
    const [verb, token] = text.split(' ');
    if (verb === 'bind-with-token') {
      const t = this.server.tokens.get(token!);
      if (!t || t.expires < Date.now()) return this.deliver({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'expired', diagnostics: 'bad token' }] });
      this.bound.push(token!);
      for (const id of t.ids) this.deliver(this.server.status(id, 'handshake', []));
    } else if (verb === 'unbind-with-token') {
      this.bound = this.bound.filter((b) => b !== token);
    } else if (text === '{"type":"ping"}') {
      this.deliver({ type: 'pong' });
    }
  }

  /** The server side dropping the connection. */
  kill(): void {
    if (!this.open) return;
    this.open = false;
    this.readyState = 3;
    setTimeout(() => this.#fire('close', { code: 1006, reason: '' }), 0);
  }

  close(): void {
    this.kill();
  }
}

function harness(server: FakeHerald, extra: Partial<ListenerOptions> = {}) {
  const got: SubscriptionEvent[] = [];
  const errors: Error[] = [];
  const statuses: string[] = [];
  const listener = createListener({
    baseUrl: BASE,
    subscriptionIds: [...server.events.keys()],
    fetch: server.fetch!,
    WebSocket: server.WebSocket,
    backoff: { initialDelayMs: 10, maxDelayMs: 50 },
    onEvent: (e) => void got.push(e),
    onError: (e) => void errors.push(e),
    onStatus: (s) => void statuses.push(s.type),
    ...extra,
  });
  const numbers = (id: string) => got.filter((e) => e.subscriptionId === id).map((e) => e.eventNumber);
  return { listener, got, errors, statuses, numbers };
}

/** The fake server answers at once: a wait is short, and looked at often. */
const WAIT = { timeoutMs: 3000, intervalMs: 5 };

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe('listener (against a fake server)', () => {
  it('binds, starts after the handshake count for an existing subscription, delivers in order', async () => {
    const server = new FakeHerald('a', 'b');
    server.events.set('a', 5); // before we connect: not ours to deliver
    const h = harness(server);
    assert.deepEqual((await h.listener.ready).sort(), ['a', 'b']);
    for (let i = 0; i < 3; i++) {
      server.emit('a');
      server.emit('b');
    }
    await until('6 events', () => h.got.length === 6, WAIT);
    assert.deepEqual(h.numbers('a'), [6, 7, 8]);
    assert.deepEqual(h.numbers('b'), [1, 2, 3]);
    assert.equal(h.got[0]!.focus, `${BASE}/Patient/p6`);
    assert.equal(h.got[0]!.interaction, 'create');
    assert.deepEqual(server.sockets[0]!.sent, ['bind-with-token t1']);
    await h.listener.close();
  });

  it('resumes after a given event number, fetching what it missed with $events', async () => {
    const server = new FakeHerald('a');
    server.events.set('a', 4);
    const h = harness(server, { resumeAfter: { a: 1 } });
    await h.listener.ready;
    server.emit('a');
    await until('4 events', () => h.got.length === 4, WAIT);
    assert.deepEqual(h.numbers('a'), [2, 3, 4, 5]);
    assert.ok(server.calls.includes('Subscription/a/$events?eventsSinceNumber=2&eventsUntilNumber=4'), server.calls.join('\n'));
    await h.listener.close();
  });

  it('fills a gap in the live stream with $events before delivering later events', async () => {
    const server = new FakeHerald('a');
    const h = harness(server);
    await h.listener.ready;
    server.dropLive = new Set([2, 3]);
    for (let i = 0; i < 5; i++) server.emit('a');
    await until('5 events', () => h.got.length === 5, WAIT);
    assert.deepEqual(h.numbers('a'), [1, 2, 3, 4, 5]);
    assert.deepEqual(h.got.map((e) => e.source), ['event-notification', 'query-event', 'query-event', 'event-notification', 'event-notification']);
    await h.listener.close();
  });

  it('reconnects after a drop with a new token and catches up without gap or duplicate', async () => {
    const server = new FakeHerald('a');
    const h = harness(server);
    await h.listener.ready;
    server.emit('a');
    server.emit('a');
    await until('2 events', () => h.got.length === 2, WAIT);
    server.sockets[0]!.kill();
    await new Promise((r) => setTimeout(r, 2));
    for (let i = 0; i < 3; i++) server.emit('a'); // nobody bound: only in the log
    await until('the rebind on a second socket', () => server.sockets.length === 2 && server.sockets[1]!.bound.length === 1, WAIT);
    server.emit('a');
    await until('6 events', () => h.got.length === 6, WAIT);
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(h.numbers('a'), range(1, 6));
    assert.ok(h.statuses.includes('disconnected') && h.statuses.includes('reconnecting') && h.statuses.includes('catching-up'));
    assert.equal(server.sockets[1]!.sent[0], 'bind-with-token t2');
    await h.listener.close();
  });

  it('renews the token before it expires: binds the new one on the same socket, then unbinds the old', async () => {
    const server = new FakeHerald('a');
    server.ttlMs = 200;
    const h = harness(server);
    await h.listener.ready;
    const stop = setInterval(() => server.emit('a'), 20);
    await new Promise((r) => setTimeout(r, 700));
    clearInterval(stop);
    const total = server.events.get('a')!;
    await until(`all ${total} events`, () => h.got.length === total, WAIT);
    assert.deepEqual(h.numbers('a'), range(1, total));
    assert.equal(server.sockets.length, 1);
    const sent = server.sockets[0]!.sent;
    assert.ok(server.tokenCount >= 3, `tokens: ${server.tokenCount}`);
    assert.deepEqual(sent.slice(0, 3), ['bind-with-token t1', 'bind-with-token t2', 'unbind-with-token t1']);
    assert.equal(h.errors.length, 0, h.errors.map((e) => e.message).join('\n'));
    await h.listener.close();
  });

  it('moves to a new socket when a renewed token names another websocket-url', async () => {
    const server = new FakeHerald('a');
    server.ttlMs = 200;
    const h = harness(server);
    await h.listener.ready;
    server.emit('a');
    server.wsUrl = 'ws://fake/ws2';
    await until('the bind on a socket at the new websocket-url', () => server.sockets.length === 2 && server.sockets[1]!.bound.length === 1, WAIT);
    assert.equal(server.sockets[1]!.url, 'ws://fake/ws2');
    assert.equal(server.sockets[0]!.open, false);
    server.emit('a');
    await until('2 events', () => h.got.length === 2, WAIT);
    assert.deepEqual(h.numbers('a'), [1, 2]);
    await h.listener.close();
  });

  it('reports events the server no longer holds (410) and carries on after them', async () => {
    const server = new FakeHerald('a');
    server.events.set('a', 10);
    server.oldestHeld = 8;
    const h = harness(server, { resumeAfter: { a: 5 } });
    await h.listener.ready;
    await until('3 events', () => h.got.length === 3, WAIT);
    assert.deepEqual(h.numbers('a'), [8, 9, 10]);
    const lost = h.errors.find((e) => e instanceof EventsLostError) as EventsLostError;
    assert.deepEqual([lost.from, lost.to], [6, 7]);
    await h.listener.close();
  });

  it('gets a new token after an OperationOutcome frame (e.g. expired token)', async () => {
    const server = new FakeHerald('a');
    const h = harness(server);
    await h.listener.ready;
    server.sockets[0]!.deliver({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'expired', diagnostics: 'token expired' }] });
    await until('a bind with a new token', () => server.sockets[0]!.sent.includes('bind-with-token t2'), WAIT);
    assert.match(h.errors[0]!.message, /token expired/);
    server.emit('a');
    await until('the event', () => h.got.length === 1, WAIT);
    await h.listener.close();
  });

  it('detects a silent socket with JSON pings and reconnects', async () => {
    const server = new FakeHerald('a');
    const h = harness(server, { pingIntervalMs: 40 });
    await h.listener.ready;
    // The socket stops answering anything (half-open connection).
    server.sockets[0]!.deliver = () => {};
    server.sockets[0]!.send = () => {};
    await until('a reconnect on a second socket', () => server.sockets.length === 2 && server.sockets[1]!.bound.length === 1, WAIT);
    server.emit('a');
    await until('the event', () => h.got.length === 1, WAIT);
    await h.listener.close();
  });

  it('awaits an async onEvent before the next and fails start-up on a 4xx', async () => {
    const server = new FakeHerald('a');
    const seen: number[] = [];
    let busy = false;
    const h = harness(server, {
      onEvent: async (e) => {
        assert.equal(busy, false);
        busy = true;
        await new Promise((r) => setTimeout(r, 5));
        seen.push(e.eventNumber);
        busy = false;
      },
    });
    await h.listener.ready;
    for (let i = 0; i < 4; i++) server.emit('a');
    await until('4 events handled', () => seen.length === 4, WAIT);
    assert.deepEqual(seen, [1, 2, 3, 4]);
    await h.listener.close();

    const bad = createListener({ baseUrl: 'http://fake/fhir/R4B', topic: 'http://t', fetch: server.fetch!, WebSocket: server.WebSocket, onEvent: () => {} });
    await assert.rejects(bad.ready, /HTTP 404/);
    await bad.closed;
  });
});
