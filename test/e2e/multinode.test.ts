import assert from 'node:assert/strict';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type HeraldProcess, spawnHerald } from '../helpers/process.ts';
import { usePostgresDatabase } from '../helpers/postgres.ts';
import { type Attempt, type Receiver, startReceiver } from '../helpers/receiver.ts';
import { call } from '../helpers/server.ts';
import { readNotification, subscriptionResource, topicResource } from '../helpers/subscriptions.ts';
import { until } from '../helpers/until.ts';
import { type WsClient, connectWs } from '../helpers/ws.ts';

/**
 * Issue 16: three Herald processes on one PostgreSQL database act as one server. Writes go to
 * every node, websocket clients are bound on other nodes than the writes, and one rest-hook
 * receiver tells which node sent each POST (by the sending socket's owner, read from /proc).
 * Mid-stream the endpoint answers 503 for a while, longer than a delivery lease, and the node
 * holding the rest-hook lease is killed with SIGKILL; the endpoint then recovers.
 */
const LEASE_S = 2;
const TOPIC = 'http://example.org/topics/multinode';
const IDLE_TOPIC = 'http://example.org/topics/multinode-idle';
const names = ['A', 'B', 'C'] as const;
type Name = (typeof names)[number];

interface Node {
  name: Name;
  proc: HeraldProcess;
  base: string;
  alive: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Which of `pids` owns the client end of `socket` (a connection to us on loopback): its port is
 * found in /proc/net/tcp, whose inode is then looked for among each process's descriptors.
 */
function ownerOf(socket: Socket, pids: Map<number, Name>): string | undefined {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, '0');
  const local = `:${hex(socket.remotePort!)}`;
  const remote = `:${hex(socket.localPort!)}`;
  const line = readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[1]?.endsWith(local) && f[2]?.endsWith(remote));
  const inode = line?.[9];
  if (!inode) return undefined;
  for (const [pid, name] of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return name;
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

const note = (a: { body: any }) => (a.body?.resourceType === 'Bundle' ? readNotification(a.body) : undefined);
const forSub = (id: string) => (a: { body: any }) => JSON.stringify(a.body?.entry?.[0] ?? '').includes(`Subscription/${id}`);

/** Runs of consecutive attempts by one sender: [sender, first attempt, last attempt]. */
function runsOf(attempts: Attempt[]): { from: string; first: Attempt; last: Attempt }[] {
  const runs: { from: string; first: Attempt; last: Attempt }[] = [];
  for (const a of attempts) {
    const run = runs[runs.length - 1];
    if (run && run.from === (a.from ?? '?')) run.last = a;
    else runs.push({ from: a.from ?? '?', first: a, last: a });
  }
  return runs;
}

describe('three Herald nodes on one PostgreSQL database (issue 16)', { timeout: 300_000 }, () => {
  const database = usePostgresDatabase();
  const nodes = new Map<Name, Node>();
  const pids = new Map<number, Name>();
  let hook: Receiver;
  const sockets: { on: Name; ws: WsClient }[] = [];
  let restId = '';
  let wsId = '';
  let idleId = '';
  // Filled by the stream test, read by the ones after it.
  const acknowledged: string[] = [];
  let holder: Name | undefined;
  let killedAt = 0;
  let recoveredAt = 0;
  const node = (n: Name) => nodes.get(n)!;
  const r4 = (n: Name) => `${node(n).base}/fhir/R4`;

  before(async () => {
    const url = await database;
    const env = {
      HERALD_DB: url,
      HERALD_DELIVERY_LEASE_S: String(LEASE_S),
      // Backoff that grows past the lease: a holder must renew its lease while it waits to retry.
      HERALD_RETRY_BASE_MS: '500',
      HERALD_RETRY_CAP_MS: '3000',
      HERALD_MIN_HEARTBEAT_S: '1',
      LOG_LEVEL: 'warn',
    };
    // Three at once, on a machine perhaps busy with other work: give them time to start.
    const procs = await Promise.all(names.map(() => spawnHerald(env, { readyTimeoutMs: 120_000 })));
    for (const [i, name] of names.entries()) {
      const proc = procs[i]!;
      nodes.set(name, { name, proc, base: proc.url, alive: true });
      pids.set(proc.child.pid!, name);
    }
    hook = await startReceiver({ sender: (socket) => ownerOf(socket, pids) });
  });

  after(async () => {
    for (const s of sockets) await s.ws.close();
    for (const n of nodes.values()) {
      if (!n.alive) continue;
      n.proc.child.kill('SIGTERM');
      await n.proc.exited;
    }
    await hook?.close();
  });

  it('a topic made on one node, and Subscriptions made on another, take effect on every node within a second', async () => {
    const topic = topicResource('R4', { url: TOPIC, resource: 'Patient', interactions: ['create'] }, 'multinode');
    assert.equal((await call('PUT', `${r4('B')}/Basic/multinode`, topic)).status, 201);
    // Node C accepts Subscriptions to the topic written on B.
    const topicAt = Date.now();
    wsId = await until(
      'node C knows the topic made on B',
      async () => {
        const res = await call('POST', `${r4('C')}/Subscription`, subscriptionResource('R4', { topic: TOPIC, channel: 'websocket' }));
        return res.status === 201 ? (res.body.id as string) : undefined;
      },
      { timeoutMs: 5_000 },
    );
    const topicMs = Date.now() - topicAt;
    console.log(`# topic written on B usable on C after ${topicMs} ms`);
    assert.ok(topicMs < 1000, `topic took ${topicMs} ms to reach node C`);
    const rest = await call('POST', `${r4('C')}/Subscription`, subscriptionResource('R4', { topic: TOPIC, endpoint: hook.url, heartbeat: 1, maxCount: 20 }));
    assert.equal(rest.status, 201, rest.text);
    restId = rest.body.id;
    // An idle subscription whose heartbeat period (6 s) is longer than the nodes' 5 s poll of the log:
    // the poll wakes its worker with nothing to send, which must not put the heartbeat off.
    const idle = topicResource('R4', { url: IDLE_TOPIC, resource: 'Observation', interactions: ['create'] }, 'multinode-idle');
    assert.equal((await call('PUT', `${r4('A')}/Basic/multinode-idle`, idle)).status, 201);
    idleId = await until(
      'node B knows the topic made on A',
      async () => {
        const res = await call('POST', `${r4('B')}/Subscription`, subscriptionResource('R4', { topic: IDLE_TOPIC, endpoint: hook.url, heartbeat: 6 }));
        return res.status === 201 ? (res.body.id as string) : undefined;
      },
      { timeoutMs: 5_000 },
    );

    // A binding token minted on A for the Subscription made on C; bound on every node.
    const subscriptionAt = Date.now();
    const token = await until(
      'node A knows the Subscription made on C',
      async () => {
        const res = await call('GET', `${r4('A')}/Subscription/${wsId}/$get-ws-binding-token`);
        return res.status === 200 ? (res.body.parameter.find((p: any) => p.name === 'token').valueString as string) : undefined;
      },
      { timeoutMs: 5_000 },
    );
    const subscriptionMs = Date.now() - subscriptionAt;
    console.log(`# Subscription written on C known on A after ${subscriptionMs} ms`);
    assert.ok(subscriptionMs < 1000, `the Subscription took ${subscriptionMs} ms to reach node A`);
    for (const on of names) {
      const ws = await connectWs(`${node(on).base.replace('http', 'ws')}/ws`);
      ws.send(`bind-with-token ${token}`);
      const answer = await ws.next((f) => f?.resourceType === 'Bundle' || f?.resourceType === 'OperationOutcome', 5_000);
      assert.equal(answer.resourceType, 'Bundle', `bind on ${on}: ${JSON.stringify(answer)}`);
      assert.equal(readNotification(answer).type, 'handshake');
      sockets.push({ on, ws });
    }
    // RH-5: the rest-hook handshake, from one node.
    await hook.waitFor((r) => r.some((x) => forSub(restId)(x) && note(x)?.type === 'handshake'), 10_000);
    assert.equal((await call('GET', `${r4('B')}/Subscription/${restId}`)).body.status, 'active');
  });

  it('kill -9 of the rest-hook lease holder while the endpoint answers 503: every acknowledged write arrives by rest-hook and websocket, numbers without gaps (EN-1, EN-2, D-10, D-18)', async () => {
    let writing = true;
    let i = 0;
    const writer = (async () => {
      while (writing) {
        const alive = names.filter((n) => node(n).alive);
        const on = alive[i++ % alive.length]!;
        try {
          const res = await call('POST', `${r4(on)}/Patient`, { resourceType: 'Patient', name: [{ family: `W${i}` }] });
          if (res.status === 201) acknowledged.push(`Patient/${res.body.id}`);
        } catch {
          // the node was killed mid-request: not acknowledged
        }
        await sleep(25);
      }
    })();
    const events = () => hook.attempts.filter((a) => forSub(restId)(a) && note(a)?.type === 'event-notification');
    try {
      await until('first rest-hook events', () => events().length >= 5, { timeoutMs: 15_000 });
      holder = events()[0]!.from as Name;
      assert.ok(names.includes(holder), `the sender of the rest-hook POSTs is one of the nodes: ${holder}`);
      hook.respond(503);
      // Longer than a lease: the holder backs off (0.5 s, 1 s, 2 s, 3 s) and must keep its lease meanwhile.
      await sleep(4_500);
      node(holder).proc.child.kill('SIGKILL');
      killedAt = Date.now();
      node(holder).alive = false;
      await node(holder).proc.exited;
      await sleep(3_500);
      hook.respond(200);
      recoveredAt = Date.now();
      await sleep(1_000);
    } finally {
      writing = false;
      await writer;
    }
    console.log(`# ${acknowledged.length} writes acknowledged; lease holder ${holder} killed`);
    assert.ok(acknowledged.length >= 50, `enough writes: ${acknowledged.length}`);

    // rest-hook: every acknowledged write's event was delivered.
    const delivered = () => new Set(hook.received.filter(forSub(restId)).flatMap((r) => note(r)!.events.map((e) => e.focus!.split('/fhir/R4/')[1]!)));
    await hook.waitFor(() => acknowledged.every((a) => delivered().has(a)), 30_000).catch((err: Error) => {
      throw new Error(`${err.message}; missing ${acknowledged.filter((a) => !delivered().has(a)).length} of ${acknowledged.length}`);
    });
    const numbers = [...new Set(hook.received.filter(forSub(restId)).flatMap((r) => note(r)!.events.map((e) => e.number)))].sort((a, b) => a - b);
    assert.deepEqual(numbers, Array.from({ length: numbers.length }, (_, k) => k + 1), 'rest-hook: numbers 1..n, no gap');

    // websocket: the clients on the surviving nodes got every event, in order, once.
    for (const { on, ws } of sockets.filter((s) => s.on !== holder)) {
      const isEvent = (f: any) => f?.resourceType === 'Bundle' && readNotification(f).type === 'event-notification';
      const focusOf = () => new Set(ws.frames.filter(isEvent).flatMap((f) => readNotification(f).events.map((e) => e.focus!.split('/fhir/R4/')[1]!)));
      await until(`websocket on ${on}: every acknowledged write`, () => acknowledged.every((a) => focusOf().has(a)));
      const got = ws.frames.filter(isEvent).flatMap((f) => readNotification(f).events.map((e) => e.number));
      assert.deepEqual(got, Array.from({ length: got.length }, (_, k) => k + 1), `websocket on ${on}: 1..n in order, each once`);
      assert.ok(got.length >= numbers[numbers.length - 1]! - 1);
    }
  });

  it('one node at a time delivers a subscription: no POST overlaps another node’s, the sender changes only after the holder died, and it goes on from the stored cursor', () => {
    assert.ok(holder, 'the stream test ran');
    const mine = hook.attempts.filter(forSub(restId));
    // Two nodes at once: an attempt by one node that starts before another node's attempt was answered.
    for (let k = 1; k < mine.length; k++) {
      const [a, b] = [mine[k - 1]!, mine[k]!];
      if (a.from !== b.from) assert.ok(a.answeredAt !== undefined && b.at >= a.answeredAt, `attempts by ${a.from} and ${b.from} overlap`);
    }
    const runs = runsOf(mine);
    const summary = runs.map((r) => `${r.from}@${new Date(r.first.at).toISOString().slice(17, 23)}..${new Date(r.last.at).toISOString().slice(17, 23)}`).join(' → ');
    console.log(`# rest-hook senders: ${summary}`);
    // Before the kill the holder alone sent (its lease renewed while it backed off); after it, one other node.
    const before = runs.filter((r) => r.first.at < killedAt);
    assert.deepEqual(
      before.map((r) => r.from),
      [holder],
      `before the kill only the holder sends: ${summary}`,
    );
    const afterKill = runs.filter((r) => r.first.at >= killedAt);
    assert.equal(afterKill.length, 1, `after the kill one node takes over and keeps the lease: ${summary}`);
    const taker = afterKill[0]!;
    assert.notEqual(taker.from, holder);
    const takeoverMs = taker.first.at - killedAt;
    console.log(`# takeover: ${taker.from} sent its first POST ${takeoverMs} ms after the holder ${holder} was killed (lease ${LEASE_S} s)`);
    assert.ok(takeoverMs <= LEASE_S * 1000 + 4_000, `takeover within the lease plus a few seconds: ${takeoverMs} ms`);

    // Duplicates: events both nodes delivered successfully (only possible after the lease expired).
    const ok = hook.received.filter(forSub(restId)).filter((r) => note(r)?.type === 'event-notification');
    const byOld = new Set(ok.filter((r) => r.from === holder).flatMap((r) => note(r)!.events.map((e) => e.number)));
    const byNew = ok.filter((r) => r.from === taker.from).flatMap((r) => note(r)!.events.map((e) => e.number));
    const duplicates = byNew.filter((n) => byOld.has(n));
    console.log(`# duplicates after the takeover: ${duplicates.length} (${duplicates.join(', ') || 'none'})`);
    // It went on from the stored cursor: nothing the old holder delivered before its 503s is sent again
    // (its cursor was stored long before the kill), and nothing is skipped.
    const firstNew = Math.min(...byNew);
    assert.ok(firstNew <= Math.max(0, ...byOld) + 1, `no gap at the takeover: old through ${Math.max(...byOld)}, new from ${firstNew}`);
    assert.equal(duplicates.length, 0, 'the cursor was stored before the 503s began, so nothing is sent twice');
  });

  it('heartbeats come from the lease holder only, one per period (NT-3, HB-1)', async () => {
    assert.ok(holder, 'the stream test ran');
    const start = Date.now();
    await sleep(4_000);
    const beats = hook.attempts.filter((a) => a.at >= start && forSub(restId)(a) && note(a)?.type === 'heartbeat');
    const from = new Set(beats.map((b) => b.from));
    console.log(`# heartbeats in 4 s (period 1 s): ${beats.length}, from ${[...from].join(', ')}`);
    assert.equal(from.size, 1, `one sender: ${[...from]}`);
    assert.notEqual([...from][0], holder, 'not the dead node');
    assert.ok(beats.length >= 2 && beats.length <= 5, `about one per period, not one per node: ${beats.length}`);
    // Every heartbeat ever sent for it came from the node holding the lease at the time.
    const all = hook.attempts.filter((a) => forSub(restId)(a) && note(a)?.type === 'heartbeat');
    for (const b of all) assert.ok(b.at < killedAt ? b.from === holder : b.from !== holder, `heartbeat from ${b.from} at ${b.at}`);
    assert.ok(recoveredAt > 0);
    // The idle subscription beat every 6 s since its handshake, from one node at a time, despite the 5 s polls.
    const slowBeats = () => hook.received.filter((r) => forSub(idleId)(r) && note(r)?.type === 'heartbeat');
    // Its beats were interrupted by the 503s (and perhaps its holder's death): two in a row after them.
    const slow = await hook.waitFor(() => slowBeats().filter((b) => b.at > recoveredAt).length >= 2, 20_000).then(slowBeats);
    const gaps = slow.slice(1).map((b, k) => b.at - slow[k]!.at);
    console.log(`# idle subscription (period 6 s): ${slow.length} heartbeats, ${gaps.map((g) => `${(g / 1000).toFixed(1)} s`).join(', ')} apart`);
    assert.ok(slow.length >= 2, `heartbeats with a period longer than the poll: ${slow.length}`);
    for (const g of gaps) assert.ok(g >= 5_500, `one per period, not one per node or per wake-up: ${g} ms`);
  });

  it('a Subscription set off on one node ends the bindings on every node within a second (D-5)', async () => {
    const on = names.find((n) => node(n).alive)!;
    const current = (await call('GET', `${r4(on)}/Subscription/${wsId}`)).body;
    const start = Date.now();
    assert.equal((await call('PUT', `${r4(on)}/Subscription/${wsId}`, { ...current, status: 'off' })).status, 200);
    for (const { on: bound, ws } of sockets.filter((s) => s.on !== holder)) {
      await ws.next((f) => f?.resourceType === 'OperationOutcome', 5_000);
      const ms = Date.now() - start;
      console.log(`# binding on ${bound} ended ${ms} ms after the Subscription was set off on ${on}`);
      assert.ok(ms < 1000, `binding on ${bound} ended after ${ms} ms`);
    }
  });

  it('a topic changed on one node is matched by writes on another within a second', async () => {
    const [on, other] = names.filter((n) => node(n).alive) as [Name, Name];
    const eventsSince = async () => readNotification((await call('GET', `${r4(other)}/Subscription/${idleId}/$status`)).body).eventsSince;
    const obs = await call('POST', `${r4(other)}/Observation`, { resourceType: 'Observation', status: 'final', code: { text: 'x' } });
    assert.equal(obs.status, 201);
    const before = await eventsSince();
    // The idle topic triggered on creates only; from now on on updates too.
    const topic = topicResource('R4', { url: IDLE_TOPIC, resource: 'Observation', interactions: ['create', 'update'] }, 'multinode-idle');
    assert.equal((await call('PUT', `${r4(on)}/Basic/multinode-idle`, topic)).status, 200);
    const start = Date.now();
    await until(
      `an update on ${other} matched after the topic changed on ${on}`,
      async () => {
        const res = await call('PUT', `${r4(other)}/Observation/${obs.body.id}`, { ...obs.body, status: 'amended' });
        assert.equal(res.status, 200);
        return (await eventsSince()) > before;
      },
      { timeoutMs: 5_000 },
    );
    const ms = Date.now() - start;
    console.log(`# topic changed on ${on}: updates on ${other} matched after ${ms} ms`);
    assert.ok(ms < 1000, `the topic change took ${ms} ms to reach ${other}`);
  });

  it('a clean stop (SIGTERM) of the lease holder hands the lease over at once: the next event goes out before the lease could have expired', async () => {
    const senders = runsOf(hook.attempts.filter(forSub(restId)));
    const current = senders[senders.length - 1]!.from as Name;
    const other = names.find((n) => n !== current && node(n).alive)!;
    const stoppedAt = Date.now();
    node(current).proc.child.kill('SIGTERM');
    node(current).alive = false;
    await node(current).proc.exited;
    const res = await call('POST', `${r4(other)}/Patient`, { resourceType: 'Patient', name: [{ family: 'after-stop' }] });
    assert.equal(res.status, 201);
    const focus = `Patient/${res.body.id}`;
    const [got] = await hook.waitFor((r) => r.some((x) => forSub(restId)(x) && note(x)!.events.some((e) => e.focus?.endsWith(focus))), 10_000).then((r) =>
      r.filter((x) => forSub(restId)(x) && note(x)!.events.some((e) => e.focus?.endsWith(focus))),
    );
    const ms = got!.at - stoppedAt;
    console.log(`# ${current} stopped cleanly; ${got!.from} delivered the next event ${ms} ms after the SIGTERM`);
    assert.equal(got!.from, other);
    assert.ok(ms < LEASE_S * 1000, `handed over at once, not after the lease: ${ms} ms`);
  });
});
