import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { after, before, describe, it } from 'node:test';
import { VERSIONS, call, startServer, type TestServer } from '../helpers/server.ts';
import { readNotification, subscriptionResource } from '../helpers/subscriptions.ts';
import { until } from '../helpers/until.ts';
import { connectWs } from '../helpers/ws.ts';

const TOPICS_DIR = fileURLToPath(new URL('../fixtures/topics', import.meta.url));
const TOPIC = 'http://example.org/topics/patient-created';

const isNote = (type: string, sub?: string) => (f: any) =>
  f?.resourceType === 'Bundle' && readNotification(f).type === type && (!sub || JSON.stringify(f.entry[0]).includes(`Subscription/${sub}`));
const isOutcome = (f: any) => f?.resourceType === 'OperationOutcome';
const param = (p: any, name: string) => p.parameter.filter((x: any) => x.name === name);

describe('websocket channel and $get-ws-binding-token', () => {
  let server: TestServer;
  // Tokens that outlive a long test (the slow reader's 120 large writes take a while under load).
  let roomy: TestServer;
  before(async () => {
    server = await startServer({ HERALD_TOPICS: TOPICS_DIR, HERALD_WS_TOKEN_TTL_S: '2', HERALD_WS_MAX_BUFFERED_BYTES: '200000' });
    roomy = await startServer({ HERALD_TOPICS: TOPICS_DIR, HERALD_WS_MAX_BUFFERED_BYTES: '200000' });
  });
  after(async () => {
    await server.close();
    await roomy.close();
  });

  for (const v of VERSIONS) {
    describe(`on /fhir/${v}`, () => {
      const base = (srv = server) => srv.fhir(v);
      const wsSubscription = async (value: string, extra: Record<string, unknown> = {}, srv = server) => {
        const res = await call('POST', `${base(srv)}/Subscription`, subscriptionResource(v, { topic: TOPIC, channel: 'websocket', filters: [`Patient?identifier=urn:ws|${value}`], ...extra }));
        assert.equal(res.status, 201, JSON.stringify(res.body));
        assert.equal(res.body.status, 'active', 'D-7: websocket subscriptions start active');
        return res.body.id as string;
      };
      const token = async (ids: string[], how: 'GET' | 'POST' = 'GET', srv = server) => {
        const res =
          how === 'GET'
            ? await call('GET', ids.length === 1 ? `${base(srv)}/Subscription/${ids[0]}/$get-ws-binding-token` : `${base(srv)}/Subscription/$get-ws-binding-token?${ids.map((i) => `id=${i}`).join('&')}`)
            : await call('POST', `${base(srv)}/Subscription/$get-ws-binding-token`, { resourceType: 'Parameters', parameter: ids.map((i) => ({ name: 'id', valueId: i })) });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return res.body;
      };
      const patient = (value: string) => call('POST', `${base()}/Patient`, { resourceType: 'Patient', identifier: [{ system: 'urn:ws', value }] });

      it('issues a token with expiration, subscriptions and websocket-url, by GET and POST (OP-W*, D-3, D-4)', async () => {
        const id = await wsSubscription('tok');
        for (const how of ['GET', 'POST'] as const) {
          const p = await token([id], how);
          assert.ok(param(p, 'token')[0].valueString.length >= 22);
          assert.ok(Date.parse(param(p, 'expiration')[0].valueDateTime) > Date.now());
          assert.deepEqual(param(p, 'subscription').map((x: any) => x.valueString), [id]);
          assert.equal(param(p, 'websocket-url')[0].valueUrl, `${server.url.replace('http', 'ws')}/ws`);
        }
        assert.equal((await call('GET', `${base()}/Subscription/unknown/$get-ws-binding-token`)).status, 404);
        const hookSub = await call('POST', `${base()}/Subscription`, subscriptionResource(v, { topic: TOPIC, channel: 'websocket', filters: ['Patient?identifier=urn:ws|x'] }));
        const restHook = await call('POST', `${base()}/Subscription`, subscriptionResource(v, { topic: TOPIC, endpoint: 'http://127.0.0.1:9/never' }));
        assert.equal((await call('GET', `${base()}/Subscription/$get-ws-binding-token?id=${hookSub.body.id}&id=${restHook.body.id}`)).status, 400, 'never a partial token');
        const all = await call('GET', `${base()}/Subscription/$get-ws-binding-token`);
        assert.equal(all.status, 200);
        assert.ok(param(all.body, 'subscription').length >= 2, 'no ids: every websocket subscription');
      });

      it('binds with the text frame: a handshake, then events in order; the JSON frame works too (D-1, HS-1)', async () => {
        const id = await wsSubscription('bind');
        const t = param(await token([id]), 'token')[0].valueString;
        const text = await connectWs(`${server.url.replace('http', 'ws')}/ws`);
        const json = await connectWs(`${server.url.replace('http', 'ws')}/ws`);
        text.send(`bind-with-token ${t}`);
        json.send({ type: 'bind-with-token', payload: { token: t } });
        for (const c of [text, json]) {
          const hs = readNotification(await c.next(isNote('handshake', id)));
          assert.equal(hs.eventsSince, 0);
        }
        for (let i = 0; i < 3; i++) await patient('bind');
        for (const c of [text, json]) {
          const got = await c.waitCount(isNote('event-notification', id), 3);
          assert.deepEqual(got.map((f) => readNotification(f).events[0]!.number), [1, 2, 3]);
        }
        json.send({ type: 'ping' });
        assert.deepEqual(await json.next((f) => f?.type === 'pong'), { type: 'pong' });
        await text.close();
        await json.close();
      });

      it('the events of one commit (a transaction Bundle) arrive each in its own notification, in order, written together (issue 15)', async () => {
        const id = await wsSubscription('batch');
        const t = param(await token([id]), 'token')[0].valueString;
        const c = await connectWs(`${server.url.replace('http', 'ws')}/ws`);
        c.send(`bind-with-token ${t}`);
        await c.next(isNote('handshake', id));
        const entry = Array.from({ length: 4 }, (_, i) => ({ resource: { resourceType: 'Patient', identifier: [{ system: 'urn:ws', value: 'batch' }], name: [{ family: `B${i}` }] }, request: { method: 'POST', url: 'Patient' } }));
        const res = await call('POST', base(), { resourceType: 'Bundle', type: 'transaction', entry });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        const got = (await c.waitCount(isNote('event-notification', id), 4)).map(readNotification);
        assert.deepEqual(got.map((n) => n.events.map((e) => e.number)), [[1], [2], [3], [4]]);
        assert.deepEqual(got.map((n) => n.eventsSince), [1, 2, 3, 4], 'EN-2: each counts its own number');
        const ids = res.body.entry.map((e: any) => /Patient\/([^/]+)/.exec(e.response.location)![1]);
        assert.deepEqual(got.map((n) => n.events[0]!.focus?.split('/').slice(-1)[0]), ids, 'each event names its own focus');
        await c.close();
      });

      it('a change matched by more subscriptions than start sending in one turn (40): each gets every event, in order (issue 15)', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 40; i++) ids.push(await wsSubscription('wide'));
        const t = param(await token(ids, 'POST'), 'token')[0].valueString;
        const c = await connectWs(`${server.url.replace('http', 'ws')}/ws`);
        c.send(`bind-with-token ${t}`);
        for (const id of ids) await c.next(isNote('handshake', id));
        // Three creates at once: senders woken by one commit are still starting when the next commits.
        const created = await Promise.all([1, 2, 3].map(() => patient('wide')));
        assert.deepEqual(created.map((r) => r.status), [201, 201, 201]);
        for (const id of ids) {
          const got = (await c.waitCount(isNote('event-notification', id), 3)).map(readNotification);
          assert.deepEqual(got.map((n) => n.events[0]!.number), [1, 2, 3], `Subscription/${id}: every event, in order`);
        }
        await c.close();
      });

      it('one token covering two subscriptions; unbind stops delivery (D-2)', async () => {
        const a = await wsSubscription('two-a');
        const b = await wsSubscription('two-b');
        const t = param(await token([a, b], 'POST'), 'token')[0].valueString;
        const c = await connectWs(`${server.url.replace('http', 'ws')}/ws`);
        c.send(`bind-with-token ${t}`);
        await c.next(isNote('handshake', a));
        await c.next(isNote('handshake', b));
        await patient('two-a');
        await patient('two-b');
        await c.next(isNote('event-notification', a));
        await c.next(isNote('event-notification', b));
        c.send(`unbind-with-token ${t}`);
        await new Promise((r) => setTimeout(r, 100));
        const before = c.frames.length;
        await patient('two-a');
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(c.frames.length, before, 'nothing after unbind');
        const { events } = readNotification((await call('GET', `${base()}/Subscription/${a}/$events`)).body);
        assert.deepEqual(events.map((e) => e.number), [1, 2], 'the event stays in the log for $events (D-9)');
        await c.close();
      });

      it('refuses bad, expired or revoked tokens with an OperationOutcome frame and keeps the socket usable', async () => {
        const c = await connectWs(`${server.url.replace('http', 'ws')}/ws`);
        c.send('bind-with-token not-a-token');
        assert.match((await c.next(isOutcome)).issue[0].diagnostics, /Unknown token/);
        c.send('hello');
        await c.waitCount(isOutcome, 2);
        const id = await wsSubscription('expiry');
        const t = param(await token([id]), 'token')[0].valueString;
        c.send(`bind-with-token ${t}`);
        await c.next(isNote('handshake', id));
        // The token lives 2 s in this test: its expiry ends the binding with an OperationOutcome.
        const expired = await c.next((f) => isOutcome(f) && /expired/.test(f.issue[0].diagnostics), 5000);
        assert.equal(expired.issue[0].code, 'expired');
        c.send(`bind-with-token ${t}`);
        assert.match((await c.waitCount((f) => isOutcome(f) && /expired/.test(f.issue[0].diagnostics), 2))[1].issue[0].diagnostics, /expired/);
        const fresh = param(await token([id]), 'token')[0].valueString;
        c.send(`bind-with-token ${fresh}`);
        await c.waitCount(isNote('handshake', id), 2);
        await c.close();
      });

      it('two sockets on one subscription each get every event; deletion while bound ends it with an OperationOutcome (D-5)', async () => {
        const id = await wsSubscription('fan');
        const t = param(await token([id]), 'token')[0].valueString;
        const one = await connectWs(`${server.url.replace('http', 'ws')}/ws`);
        const two = await connectWs(`${server.url.replace('http', 'ws')}/ws`);
        for (const c of [one, two]) {
          c.send(`bind-with-token ${t}`);
          await c.next(isNote('handshake', id));
        }
        await patient('fan');
        await patient('fan');
        for (const c of [one, two]) assert.equal((await c.waitCount(isNote('event-notification', id), 2)).length, 2);
        assert.equal((await call('DELETE', `${base()}/Subscription/${id}`)).status, 204);
        for (const c of [one, two]) assert.match((await c.next((f) => isOutcome(f) && /deleted/.test(f.issue[0].diagnostics))).issue[0].diagnostics, /deleted/);
        c2: {
          const again = await connectWs(`${server.url.replace('http', 'ws')}/ws`);
          again.send(`bind-with-token ${t}`);
          assert.match((await again.next(isOutcome)).issue[0].diagnostics, /revoked/);
          await again.close();
          break c2;
        }
        await one.close();
        await two.close();
      });

      it('a websocket subscription in error is live: it gets a token and binds, as a reconnecting client expects; off is not (LIVE_STATUSES)', async () => {
        // A websocket subscription is in error only by inheriting it: a rest-hook one whose
        // handshake failed, switched to websocket by an update that keeps its status.
        const filters = ['Patient?identifier=urn:ws|err'];
        const hook = await call('POST', `${base()}/Subscription`, subscriptionResource(v, { topic: TOPIC, endpoint: 'http://127.0.0.1:9/never', filters }));
        assert.equal(hook.status, 201, JSON.stringify(hook.body));
        const id = hook.body.id as string;
        await until('subscription in error', async () => (await call('GET', `${base()}/Subscription/${id}`)).body.status === 'error', { timeoutMs: 10_000, intervalMs: 25 });
        const put = await call('PUT', `${base()}/Subscription/${id}`, subscriptionResource(v, { id, topic: TOPIC, channel: 'websocket', status: 'error', filters }));
        assert.equal(put.status, 200, JSON.stringify(put.body));
        assert.equal(put.body.status, 'error');
        const t = param(await token([id]), 'token')[0].valueString;
        const all = await call('GET', `${base()}/Subscription/$get-ws-binding-token`);
        assert.ok(param(all.body, 'subscription').some((x: any) => x.valueString === id), 'no ids: error subscriptions are covered too');
        const c = await connectWs(`${server.url.replace('http', 'ws')}/ws`);
        c.send(`bind-with-token ${t}`);
        assert.equal(readNotification(await c.next(isNote('handshake', id))).status, 'error');
        await patient('err');
        assert.equal(readNotification(await c.next(isNote('event-notification', id))).events[0]!.number, 1, 'EN-3: events keep coming in error');
        await c.close();
        const off = await call('PUT', `${base()}/Subscription/${id}`, subscriptionResource(v, { id, topic: TOPIC, channel: 'websocket', status: 'off', filters }));
        assert.equal(off.body.status, 'off');
        const refused = await call('GET', `${base()}/Subscription/${id}/$get-ws-binding-token`);
        assert.equal(refused.status, 400);
        assert.equal(refused.body.issue[0].code, 'business-rule');
        assert.match(refused.body.issue[0].diagnostics, /is off/);
      });

      it('closes a reader that does not keep up, without delaying others; it catches up with $events', async () => {
        const id = await wsSubscription('slow', { content: 'full-resource' }, roomy);
        const t = param(await token([id], 'GET', roomy), 'token')[0].valueString;
        const slow = await connectWs(`${roomy.url.replace('http', 'ws')}/ws`);
        const fast = await connectWs(`${roomy.url.replace('http', 'ws')}/ws`);
        for (const c of [slow, fast]) {
          c.send(`bind-with-token ${t}`);
          await c.next(isNote('handshake', id));
        }
        slow.ws.pause();
        (slow.ws as any)._socket.pause();
        const closed = new Promise<number>((resolve) => slow.ws.once('close', (code) => resolve(code)));
        // Enough bytes to fill the kernel's socket buffers too, so the server's own buffer grows.
        const big = 'x'.repeat(60_000);
        const n = 120;
        for (let i = 0; i < n; i++) {
          await call('POST', `${base(roomy)}/Patient`, { resourceType: 'Patient', identifier: [{ system: 'urn:ws', value: 'slow' }], text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${big}</div>` } });
        }
        assert.equal((await fast.waitCount(isNote('event-notification', id), n, 60_000)).length, n);
        (slow.ws as any)._socket.resume();
        slow.ws.resume();
        const code = await Promise.race([closed, new Promise((r) => setTimeout(() => r('not closed'), 10_000))]);
        assert.equal(code, 1013);
        const { events } = readNotification((await call('GET', `${base(roomy)}/Subscription/${id}/$events?eventsSinceNumber=1`)).body);
        assert.equal(events.length, n);
        await fast.close();
      });
    });
  }

  it('a live notification reads nothing back from the event log when the store tells the numbers (SQLite; issue 15)', async () => {
    // The real store, its event log reads counted once the socket is bound.
    let kind = '';
    let counting = false;
    let logReads = 0;
    const observed = await startServer({ HERALD_TOPICS: TOPICS_DIR }, undefined, {
      observeStore: (store) => {
        kind = store.kind;
        return new Proxy(store, {
          get(target, key) {
            const value = Reflect.get(target, key) as unknown;
            if (typeof value !== 'function') return value;
            const fn = value as (...args: unknown[]) => unknown;
            if (key !== 'events' && key !== 'eventsAfter') return fn.bind(target);
            return (...args: unknown[]) => {
              if (counting) logReads++;
              return fn.apply(target, args);
            };
          },
        });
      },
    });
    try {
      const base = observed.fhir('R4');
      const sub = await call('POST', `${base}/Subscription`, subscriptionResource('R4', { topic: TOPIC, channel: 'websocket', filters: ['Patient?identifier=urn:ws|live'] }));
      assert.equal(sub.status, 201, JSON.stringify(sub.body));
      const token = param((await call('GET', `${base}/Subscription/${sub.body.id}/$get-ws-binding-token`)).body, 'token')[0].valueString;
      const c = await connectWs(`${observed.url.replace('http', 'ws')}/ws`);
      c.send(`bind-with-token ${token}`);
      await c.next(isNote('handshake', sub.body.id));
      counting = true;
      // One at a time, and three at once (their commits may share a group and wake the sender together).
      for (let i = 0; i < 3; i++) await call('POST', `${base}/Patient`, { resourceType: 'Patient', identifier: [{ system: 'urn:ws', value: 'live' }] });
      await Promise.all([0, 1, 2].map(() => call('POST', `${base}/Patient`, { resourceType: 'Patient', identifier: [{ system: 'urn:ws', value: 'live' }] })));
      const got = (await c.waitCount(isNote('event-notification', sub.body.id), 6)).map(readNotification);
      counting = false;
      assert.deepEqual(got.map((n) => n.events[0]!.number), [1, 2, 3, 4, 5, 6]);
      // PostgreSQL does not tell a commit's numbers to its after-commit functions: its senders read them.
      if (kind === 'sqlite') assert.equal(logReads, 0, 'the senders were answered from the events the commits told');
      await c.close();
    } finally {
      await observed.close();
    }
  });

  it('answers an upgrade (and a plain GET) to an unknown path, under /ws or not, with a 404 OperationOutcome and no upgrade', async () => {
    for (const path of ['/ws/nope', '/ws/subscriptions-r4/x', '/wsx', '/nope']) {
      const refused = await upgrade(`${server.url.replace('http', 'ws')}${path}?token=x`);
      assert.equal(refused.status, 404, path);
      assert.equal(refused.contentType, 'application/fhir+json', path);
      const outcome = JSON.parse(refused.body);
      assert.equal(outcome.resourceType, 'OperationOutcome', path);
      assert.equal(outcome.issue[0].code, 'not-found', path);
      assert.match(outcome.issue[0].diagnostics, new RegExp(`No websocket endpoint at ${path}: the endpoints are /ws and /ws/subscriptions-r4`));
      const get = await call('GET', `${server.url}${path}`);
      assert.equal(get.status, 404, path);
      assert.equal(get.body.resourceType, 'OperationOutcome', path);
      assert.equal(get.body.issue[0].code, 'not-found', path);
    }
    // the endpoints themselves still upgrade
    await (await connectWs(`${server.url.replace('http', 'ws')}/ws`)).close();
    await (await connectWs(`${server.url.replace('http', 'ws')}/ws/subscriptions-r4`)).close();
  });
});

/** Opens a websocket with a real client: the refused upgrade's status, content type and body. */
function upgrade(url: string): Promise<{ status: number; contentType: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => {
      ws.close();
      reject(new Error(`${url} was upgraded`));
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, contentType: res.headers['content-type'], body }));
    });
    ws.once('error', reject);
  });
}
