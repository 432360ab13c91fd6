/**
 * One event to 50,000 bound websockets (issue 15), on several Herald nodes sharing one PostgreSQL
 * database, beside as many bare `ws` processes broadcasting the same bytes.
 *
 * Why several processes: a server holds one file descriptor per socket, and this machine's hard
 * limit on open files per process is 20,000 (it cannot be raised here), so 50,000 sockets cannot
 * be held by one process, Herald's or the floor's. They are spread over BENCH_FANOUT_NODES
 * processes (default 3) on each side, which is also how a deployment holds that many: several
 * nodes on one database.
 *
 * Herald: one websocket Subscription and one binding token, every socket on every node bound with
 * it. Each write goes to node A; the other nodes hear of its commit through PostgreSQL's
 * LISTEN/NOTIFY, read the event log and send to their sockets, so the figure is the whole path of
 * a real multi-node deployment. The floor: as many bench/ws/floor.ts processes, each holding its
 * share of the sockets, all poked at once with one id (no storage, no database, nothing between
 * them); its clock starts at the last of their 201s, the strictest start for Herald.
 *
 * One client process per node (bench/ws/client.ts in `peer` mode) opens and binds that node's
 * sockets and reports when each event has reached all of them, on the machine's monotonic clock;
 * this process makes the writes and reads its 201s on the same clock.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT, middle, ms, type Check, type Helpers, type Row, type RunSummary, type ScenarioResult, type Target } from '../harness.ts';
import { processCpuSeconds } from '../cpu.ts';
import { FLOOR_ID_HEADER, type WsClientSpec, type WsPeerLine } from '../ws/protocol.ts';
import { BODY, TOPIC, fdLimit, startFloor, startWithEnv, subscribe } from './websocket.ts';

/** The goal, issue 15: the last socket within this many times the bare broadcast's time. */
const GOAL_RATIO = 1.5;
const REPEATS = 5;
const OPEN_BATCH = 250;
/** A round that has not reached every socket by then counts what it reached. */
const ROUND_DEADLINE_MS = 30_000;
const monotonic = () => Number(process.hrtime.bigint()) / 1e6;

type Ready = Extract<WsPeerLine, { kind: 'ready' }>;
type Arrival = Extract<WsPeerLine, { kind: 'event' }>;
type End = Extract<WsPeerLine, { kind: 'end' }>;

/** One peer client process: its ready line, its event lines by id, and its end. */
interface Peer {
  ready: Ready;
  arrivals: Map<string, Arrival>;
  /** Resolves once the event's line is in, or at the deadline. */
  wait(id: string, deadline: number): Promise<void>;
  end(ids: string[]): Promise<End>;
  kill(): void;
  pid: number;
}

async function startPeer(h: Helpers, label: string, spec: WsClientSpec): Promise<Peer> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'bench/ws/client.ts', JSON.stringify(spec)], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  createInterface({ input: child.stderr! }).on('line', (line) => h.print(`    ${label}: ${line}`));
  const arrivals = new Map<string, Arrival>();
  const waiting = new Map<string, () => void>();
  let onReady: (r: Ready) => void = () => {};
  let onEnd: (e: End) => void = () => {};
  let onExit: (err: Error) => void = () => {};
  let exited: Error | undefined;
  createInterface({ input: child.stdout! }).on('line', (text) => {
    const line = JSON.parse(text) as WsPeerLine;
    if (line.kind === 'ready') onReady(line);
    else if (line.kind === 'end') onEnd(line);
    else {
      arrivals.set(line.id, line);
      waiting.get(line.id)?.();
    }
  });
  child.once('exit', (code, signal) => onExit((exited = new Error(`${label}: the client exited with ${code ?? signal}`))));
  const ready = await new Promise<Ready>((resolve, reject) => ((onReady = resolve), (onExit = reject)));
  return {
    ready,
    arrivals,
    wait: (id, deadline) =>
      arrivals.has(id)
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const timer = setTimeout(() => (waiting.delete(id), resolve()), Math.max(0, deadline - monotonic()));
            waiting.set(id, () => (clearTimeout(timer), waiting.delete(id), resolve()));
          }),
    end: (ids) =>
      new Promise<End>((resolve, reject) => {
        if (exited) return reject(exited);
        onEnd = resolve;
        onExit = reject;
        child.stdin!.end(`end ${ids.join(',')}\n`);
      }),
    kill: () => child.kill('SIGKILL'),
    pid: child.pid!,
  };
}

/** What one side (Herald's nodes or the floors) measured. */
interface Side {
  rounds: { lastFromResponse: number; lastFromStart: number; firstFromResponse: number; serverCpuMs: number; clientCpuMs: number }[];
  ready: Ready[];
  end: End[];
  statusCodes: Record<string, number>;
  errorSample?: string;
}

/**
 * Opens each server's share of the sockets (one peer client per server, one after the other),
 * makes a warm-up write and REPEATS measured ones through `write`, each once the previous one has
 * reached every peer's sockets, and ends the peers.
 */
async function measure(
  h: Helpers,
  label: string,
  servers: { wsUrl: string; origin: string; pid: number; sockets: number }[],
  bind: string,
  write: () => Promise<{ id?: string; tStart: number; tResp: number; status: string; error?: string }>,
  capture: boolean,
): Promise<Side & { captured?: Arrival['captured'] }> {
  const peers: Peer[] = [];
  const side: Side = { rounds: [], ready: [], end: [], statusCodes: {} };
  try {
    for (const [i, s] of servers.entries()) {
      h.print(`  ${label}: ${s.sockets.toLocaleString('en-US')} sockets on process ${i + 1} of ${servers.length}`);
      peers.push(await startPeer(h, `${label} ${i + 1}`, {
        mode: 'peer', wsUrl: s.wsUrl, bind, sockets: s.sockets, openBatch: OPEN_BATCH, serverPid: s.pid, capture: capture && i === 0,
        trigger: { origin: s.origin, path: '/fhir/R4/Patient', headers: {}, body: '' },
      }));
    }
    side.ready = peers.map((p) => p.ready);
    const pids = servers.map((s) => s.pid);
    const cpu = () => pids.reduce((n, pid) => n + processCpuSeconds(pid), 0);
    const clientCpu = () => peers.reduce((n, p) => n + processCpuSeconds(p.pid), 0);
    const ids: string[] = [];
    let captured: Arrival['captured'];
    for (let r = 0; r <= REPEATS; r++) {
      await new Promise((res) => setTimeout(res, 300));
      const cpu0 = cpu();
      const client0 = clientCpu();
      const w = await write();
      if (r > 0) side.statusCodes[w.status] = (side.statusCodes[w.status] ?? 0) + 1;
      if (!w.id) {
        side.errorSample ??= w.error;
        continue;
      }
      const deadline = monotonic() + ROUND_DEADLINE_MS;
      await Promise.all(peers.map((p) => p.wait(w.id!, deadline)));
      const serverCpuMs = (cpu() - cpu0) * 1000;
      const clientCpuMs = (clientCpu() - client0) * 1000;
      const got = peers.map((p) => p.arrivals.get(w.id!));
      captured ??= got[0]?.captured;
      if (r === 0) continue;
      ids.push(w.id);
      if (got.some((a) => !a)) {
        h.print(`!!! ${label}, write ${r}: not every socket had it within ${ROUND_DEADLINE_MS / 1000} s (processes done: ${got.filter(Boolean).length} of ${peers.length})`);
        continue;
      }
      const last = Math.max(...got.map((a) => a!.last));
      const first = Math.min(...got.map((a) => a!.first));
      side.rounds.push({ lastFromResponse: last - w.tResp, lastFromStart: last - w.tStart, firstFromResponse: first - w.tResp, serverCpuMs, clientCpuMs });
    }
    for (const p of peers) side.end.push(await p.end(ids));
    return { ...side, ...(captured ? { captured } : {}) };
  } finally {
    for (const p of peers) p.kill();
  }
}

export default async function fanoutNodes(h: Helpers): Promise<ScenarioResult> {
  if (!h.settings.stores.includes('postgres')) {
    h.print('note: the fan-out across nodes needs PostgreSQL (BENCH_STORES, BENCH_PG); skipped');
    return { name: 'fanout-nodes', rows: [], checks: [] };
  }
  const total = Number(process.env.BENCH_FANOUT_SOCKETS || 50_000);
  const count = Number(process.env.BENCH_FANOUT_NODES || 3);
  if (!Number.isInteger(total) || total < 1) throw new Error(`BENCH_FANOUT_SOCKETS must be a positive integer, not '${process.env.BENCH_FANOUT_SOCKETS}'`);
  if (!Number.isInteger(count) || count < 1) throw new Error(`BENCH_FANOUT_NODES must be a positive integer, not '${process.env.BENCH_FANOUT_NODES}'`);
  const shares = Array.from({ length: count }, (_, i) => Math.floor(total / count) + (i < total % count ? 1 : 0));
  const limit = fdLimit();
  if (Number.isFinite(limit) && shares[0]! + 500 > limit) {
    throw new Error(`${shares[0]} sockets per process do not fit under the open-file limit of ${limit} (ulimit -Hn): raise BENCH_FANOUT_NODES`);
  }
  h.print(`one event to ${total.toLocaleString('en-US')} sockets over ${count} processes (${shares.map((s) => s.toLocaleString('en-US')).join(' + ')}), median of ${REPEATS} writes; ` +
    `Herald: ${count} nodes on one PostgreSQL database, writes through node A; floor: ${count} bare ws processes poked at once`);

  const topics = await mkdtemp(join(tmpdir(), 'bench-fanout-topics-'));
  const nodes: Target[] = [];
  let herald: Awaited<ReturnType<typeof measure>>;
  try {
    await writeFile(join(topics, 'bench-patient-created.json'), JSON.stringify(TOPIC));
    for (let i = 0; i < count; i++) {
      h.print(`Herald node ${i + 1}: starting`);
      nodes.push(await startWithEnv(h, { HERALD_TOPICS: topics }, 'heraldPg', nodes[0]?.db));
    }
    const a = nodes[0]!;
    const { token, wsUrl } = await subscribe(a);
    const servers = nodes.map((n, i) => {
      const url = new URL(wsUrl);
      url.host = new URL(n.url).host;
      return { wsUrl: url.toString(), origin: n.url, pid: n.pid, sockets: shares[i]! };
    });
    herald = await measure(h, 'Herald', servers, `bind-with-token ${token}`, async () => {
      const tStart = monotonic();
      try {
        const res = await fetch(`${a.url}/fhir/R4/Patient`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: BODY });
        const text = await res.text();
        const tResp = monotonic();
        if (res.status !== 201) return { tStart, tResp, status: String(res.status), error: `${res.status}: ${text.slice(0, 300)}` };
        return { id: (JSON.parse(text) as { id: string }).id, tStart, tResp, status: '201' };
      } catch (err) {
        return { tStart, tResp: NaN, status: 'error', error: (err as Error).message };
      }
    }, true);
  } finally {
    for (const n of nodes.reverse()) await n.stop();
    await rm(topics, { recursive: true, force: true });
  }
  const captured = herald.captured;
  if (!captured) throw new Error('no notification frame was captured from Herald, so the floor has nothing to send');

  h.print(`floor: ${count} bare ws processes broadcasting Herald's ${Buffer.byteLength(captured.event)}-byte event frame`);
  const floors: Awaited<ReturnType<typeof startFloor>>[] = [];
  let floor: Side;
  try {
    for (let i = 0; i < count; i++) floors.push(await startFloor({ handshake: captured.handshake, event: captured.event, templateId: captured.id }));
    const servers = floors.map((f, i) => ({ wsUrl: `ws://127.0.0.1:${f.port}/ws`, origin: `http://127.0.0.1:${f.port}`, pid: f.pid, sockets: shares[i]! }));
    floor = await measure(h, 'floor', servers, 'bind', async () => {
      const id = randomUUID();
      const tStart = monotonic();
      try {
        // Every floor at once, one id; the clock starts when the last 201 is read.
        const answers = await Promise.all(servers.map(async (s) => {
          const res = await fetch(`${s.origin}/fhir/R4/Patient`, { method: 'POST', headers: { 'content-type': 'application/fhir+json', [FLOOR_ID_HEADER]: id }, body: BODY });
          await res.text();
          return res.status;
        }));
        const tResp = monotonic();
        const bad = answers.find((s) => s !== 201);
        return bad ? { tStart, tResp, status: String(bad), error: `a floor answered ${bad}` } : { id, tStart, tResp, status: '201' };
      } catch (err) {
        return { tStart, tResp: NaN, status: 'error', error: (err as Error).message };
      }
    }, false);
  } finally {
    for (const f of floors) await f.stop();
  }

  // Tables.
  const f = (v: number) => (Number.isNaN(v) ? '-' : ms(v));
  const med = (s: Side, k: keyof Side['rounds'][number]) => middle(s.rounds.map((x) => x[k]), (x) => x) ?? NaN;
  const worst = (s: Side) => (s.rounds.length ? Math.max(...s.rounds.map((x) => x.lastFromResponse)) : NaN);
  const bound = (s: Side) => s.ready.reduce((n, r) => n + r.bound, 0);
  const missing = (s: Side) => s.end.reduce((n, e) => n + e.missing, 0);
  const pairs = (s: Side) => s.end.reduce((n, e) => n + e.pairs, 0);
  const ratio = med(herald, 'lastFromResponse') / med(floor, 'lastFromResponse');
  h.print('');
  h.print(`fan-out of one event to ${total.toLocaleString('en-US')} sockets over ${count} processes (ms, median of ${REPEATS} writes; until the last socket of all has it)`);
  h.printColumns(
    ['', 'bound', '201→last', 'worst', 'start→last', '201→first', 'server CPU', 'clients\' CPU', 'missing'],
    [
      [`Herald, ${count} nodes`, bound(herald).toLocaleString('en-US'), f(med(herald, 'lastFromResponse')), f(worst(herald)), f(med(herald, 'lastFromStart')), f(med(herald, 'firstFromResponse')), f(med(herald, 'serverCpuMs')), f(med(herald, 'clientCpuMs')), `${missing(herald)} of ${pairs(herald)}`],
      [`floor, ${count} processes`, bound(floor).toLocaleString('en-US'), f(med(floor, 'lastFromResponse')), f(worst(floor)), f(med(floor, 'lastFromStart')), f(med(floor, 'firstFromResponse')), f(med(floor, 'serverCpuMs')), f(med(floor, 'clientCpuMs')), `${missing(floor)} of ${pairs(floor)}`],
    ],
  );
  h.print(`  Herald/floor ${Number.isNaN(ratio) ? '-' : ratio.toFixed(2)}; CPU: ms from the write's start to the last arrival, of every server process (for Herald the create included, PostgreSQL's backends not counted) and of every client process; ` +
    `the servers and the clients share the machine's ${availableParallelism()} cores, so when their CPU over the span nears that many cores the time measures the machine as much as either server`);
  for (const [name, s] of [['Herald', herald], ['floor', floor]] as const) h.print(`  ${name} 201→last per write: ${s.rounds.map((x) => f(x.lastFromResponse)).join(', ')}`);
  const perSocket = (s: Side) => s.ready.map((r) => (r.bound > 0 ? `${(((r.serverRssKb.bound - r.serverRssKb.before) * 1024) / r.bound / 1024).toFixed(1)} KB` : '-')).join(', ');
  h.print(`  server memory per bound idle socket (RSS once bound − before, per process): Herald ${perSocket(herald)}; floor ${perSocket(floor)}`);
  for (const [name, s] of [['Herald', herald], ['floor', floor]] as const) {
    const closes = s.end.flatMap((e) => Object.entries(e.unexpectedCloses));
    const dup = s.end.reduce((n, e) => n + e.duplicates, 0);
    const failed = s.ready.reduce((n, r) => n + r.openFailures, 0);
    if (failed || dup || closes.length || missing(s) || s.errorSample) {
      h.print(`!!! ${name}: ${failed} sockets not bound, ${missing(s)} deliveries missing, ${dup} duplicates` +
        `${closes.length ? `, closed by the server: ${closes.map(([c, n]) => `${n}×${c}`).join(', ')}` : ''}${s.errorSample ? `; first write error: ${s.errorSample}` : ''}`);
    }
  }

  const summary = (s: Side): RunSummary => ({
    requests: REPEATS,
    seconds: NaN,
    rps: NaN,
    p50: med(s, 'lastFromResponse'),
    p99: worst(s),
    non2xx: Object.entries(s.statusCodes).filter(([c]) => c !== '201' && c !== 'error').reduce((n, [, k]) => n + k, 0),
    errors: (s.statusCodes.error ?? 0) + s.ready.reduce((n, r) => n + r.openFailures, 0) + missing(s) +
      s.end.reduce((n, e) => n + Object.values(e.unexpectedCloses).reduce((a, b) => a + b, 0), 0),
    timeouts: 0,
    statusCodes: s.statusCodes,
    ...(s.errorSample ? { errorSample: s.errorSample } : {}),
    cpu: { server: NaN, load: NaN, other: NaN },
  });
  const rows: Row[] = [{ scenario: `ws fan-out over ${count} processes`, conc: total, results: { heraldPg: summary(herald), floor: summary(floor) } }];
  const label = `fan-out to ${total.toLocaleString('en-US')} sockets (${count} nodes) within ${GOAL_RATIO}x of bare ws broadcast (${count} processes)`;
  const check: Check = { label, ratio, min: GOAL_RATIO, pass: ratio <= GOAL_RATIO && missing(herald) === 0, value: ratio, limit: GOAL_RATIO };
  h.print(`target: ${label}: ${Number.isNaN(ratio) ? 'n/a' : ratio.toFixed(2)}x ${check.pass ? 'PASS' : 'FAIL'}`);
  return { name: 'fanout-nodes', rows, checks: [check] };
}
