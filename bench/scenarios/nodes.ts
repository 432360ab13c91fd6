/**
 * Several Herald nodes on one PostgreSQL database (issue 16): websocket notification latency when
 * the socket is bound on the node that took the write, and when it is bound on another node (the
 * wake-up then crosses PostgreSQL's LISTEN/NOTIFY). Writes at 100/s through node A; one socket,
 * measured by bench/ws/client.ts (its own process, one clock for writes and arrivals):
 *   1 node:  A alone, socket on A;
 *   2 nodes: A and B on the same database, socket on A (same node), then on B (cross-node).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ms, type Check, type Helpers, type Row, type ScenarioResult, type Target } from '../harness.ts';
import { CHANNEL } from '../../src/store/postgres/signals.ts';
import type { WsClientOutput } from '../ws/protocol.ts';
import { BODY, TOPIC, runClient, startWithEnv, subscribe } from './websocket.ts';

const RATE = 100;
const P99_LIMIT_MS = 20;

interface Point {
  setup: string;
  on: string;
  out: WsClientOutput;
}

export default async function nodes(h: Helpers): Promise<ScenarioResult> {
  if (!h.settings.stores.includes('postgres')) {
    h.print('note: the nodes scenario needs PostgreSQL (BENCH_STORES, BENCH_PG); skipped');
    return { name: 'nodes', rows: [], checks: [] };
  }
  const seconds = Math.max(1, h.settings.seconds);
  const warmupSeconds = Math.min(h.settings.warmupSeconds, 2);
  h.print(`${RATE} writes/s through node A, 1 socket, ${warmupSeconds}s warm-up + ${seconds}s measured per point, one fresh PostgreSQL database`);
  const topics = await mkdtemp(join(tmpdir(), 'bench-nodes-topics-'));
  const points: Point[] = [];
  let a: Target | undefined;
  let b: Target | undefined;
  try {
    await writeFile(join(topics, 'bench-patient-created.json'), JSON.stringify(TOPIC));
    h.print('node A: starting');
    a = await startWithEnv(h, { HERALD_TOPICS: topics }, 'heraldPg');
    const { token, wsUrl } = await subscribe(a);
    const measure = async (setup: string, on: string, node: Target) => {
      h.print(`  ${setup}, socket on ${on}`);
      const url = new URL(wsUrl);
      url.host = new URL(node.url).host;
      const out = await runClient(h, `${setup}, socket on ${on}`, {
        wsUrl: url.toString(), bind: `bind-with-token ${token}`, openBatch: 1, serverPid: a!.pid, serverDb: a!.db!.name,
        trigger: { origin: a!.url, path: '/fhir/R4/Patient', headers: { 'content-type': 'application/fhir+json' }, body: BODY },
        mode: 'latency', sockets: 1, rate: RATE, warmupSeconds, seconds, listen: { url: a!.db!.url, channel: CHANNEL },
      });
      points.push({ setup, on, out });
    };
    await measure('1 node', 'A (same node)', a);
    h.print('node B: starting, on the same database');
    b = await startWithEnv(h, { HERALD_TOPICS: topics }, 'heraldPg', a.db);
    await measure('2 nodes', 'A (same node)', a);
    await measure('2 nodes', 'B (cross-node)', b);
  } finally {
    await b?.stop();
    await a?.stop();
    await rm(topics, { recursive: true, force: true });
  }

  h.print('');
  h.print(`write through node A → websocket frame at ${RATE} writes/s, 1 socket (ms; "201→" from the write's 201 response, "start→" from its request start)`);
  const f = (v: number) => (Number.isNaN(v) ? '-' : ms(v));
  h.printColumns(
    ['nodes', 'socket on', 'writes/s', '201→ p50', 'p99', 'max', 'start→ p50', 'p99', 'write p50', 'p99', 'NOTIFY 201→ p50', 'p99', 'NOTIFY→frame p50', 'p99', 'missing'],
    points.map(({ setup, on, out }) => [
      setup, on, out.achievedRate.toFixed(0), f(out.fromResponse.p50), f(out.fromResponse.p99), f(out.fromResponse.max),
      f(out.fromStart.p50), f(out.fromStart.p99), f(out.write.p50), f(out.write.p99),
      f(out.announcement?.fromResponse.p50 ?? NaN), f(out.announcement?.fromResponse.p99 ?? NaN),
      f(out.announcement?.toFrame.p50 ?? NaN), f(out.announcement?.toFrame.p99 ?? NaN),
      `${out.missing} of ${out.pairs}`,
    ]),
  );
  h.print('  NOTIFY: when a listener in the client process (as a node listens) got the commit\'s announcement, after the 201; NOTIFY→frame: the frame after that announcement (a node\'s own wake-up, reading the events and sending)');
  h.print('cores busy while measured (node A + the database\'s backends + client + rest of machine):');
  for (const { setup, on, out } of points) h.print(`  ${setup}, socket on ${on}: ${out.cpu.server.toFixed(2)} + ${(out.cpu.db ?? NaN).toFixed(2)} + ${out.cpu.load.toFixed(2)} + ${out.cpu.other.toFixed(2)}`);

  const cross = points.find((p) => p.on.startsWith('B'));
  const checks: Check[] = [h.checkValue(`cross-node websocket p99 < ${P99_LIMIT_MS} ms at ${RATE} writes/s`, cross?.out.fromResponse.p99 ?? NaN, P99_LIMIT_MS, true, ' ms')];
  const rows: Row[] = points.map(({ setup, on, out }) => ({
    scenario: `${setup}, socket on ${on}`,
    conc: 1,
    results: {
      heraldPg: {
        requests: out.writes, seconds: out.writes / out.achievedRate, rps: out.achievedRate, p50: out.fromResponse.p50, p99: out.fromResponse.p99,
        non2xx: out.non201, errors: out.errors + out.openFailures + out.missing, timeouts: 0, statusCodes: out.statusCodes, cpu: out.cpu,
      },
    },
  }));
  return { name: 'nodes', rows, checks };
}
