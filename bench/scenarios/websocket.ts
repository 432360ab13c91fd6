/**
 * Websocket delivery: write→socket latency at a steady write rate with 1 and 1,000 bound sockets, and
 * fan-out time of one event to 10,000 bound sockets (with PostgreSQL in BENCH_STORES, also the
 * 1-socket latency of Herald on PostgreSQL); Herald beside a bare `ws` server broadcasting
 * the same bytes (bench/ws/floor.ts), measured in the same run by the same client process
 * (bench/ws/client.ts), which never shares an event loop with the server it measures.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { ROOT, middle, ms, type Check, type Helpers, type Row, type RunSummary, type ScenarioResult, type Target, type TargetName } from '../harness.ts';
import type { WsClientOutput, WsClientSpec, WsFloorSpec } from '../ws/protocol.ts';
import { PATIENT } from './crud.ts';

/** The stated goals. */
const RATE = 200; // writes per second in the latency runs
const P99_LIMIT_MS = 20;
const FANOUT_MAX_RATIO = 2;
/** Issue 15's tighter goal for the same fan-out. */
const FANOUT_GOAL_15 = 1.5;
const LATENCY_SOCKETS = [1, 1000];
const FANOUT_REPEATS = 5;
const OPEN_BATCH = 250;

const TOPIC_URL = 'http://example.org/topics/bench-patient-created';
export const TOPIC = {
  resourceType: 'SubscriptionTopic',
  id: 'bench-patient-created',
  url: TOPIC_URL,
  status: 'active',
  resourceTrigger: [{ resource: 'Patient', supportedInteraction: ['create'] }],
  canFilterBy: [{ resource: 'Patient', filterParameter: 'identifier' }],
};
const IG = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
const SUBSCRIPTION = {
  resourceType: 'Subscription',
  meta: { profile: [`${IG}/backport-subscription`] },
  status: 'requested',
  reason: 'bench',
  criteria: TOPIC_URL,
  _criteria: { extension: [{ url: `${IG}/backport-filter-criteria`, valueString: 'Patient?identifier=urn:bench|ws' }] },
  channel: { type: 'websocket', payload: 'application/fhir+json', _payload: { extension: [{ url: `${IG}/backport-payload-content`, valueCode: 'id-only' }] } },
};
export const BODY = JSON.stringify({ ...PATIENT, identifier: [{ system: 'urn:bench', value: 'ws' }] });

/** What a process may hold open: Node raises its soft limit to the hard one at start. */
export function fdLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const hard = line?.split(/\s+/)[4];
    return hard === 'unlimited' ? Infinity : Number(hard);
  } catch {
    return NaN;
  }
}

type WsSummary = RunSummary & { ws: Omit<WsClientOutput, 'captured'> };

export default async function websocket(h: Helpers): Promise<ScenarioResult> {
  const seconds = Math.max(1, Math.min(h.settings.seconds, 5));
  const warmupSeconds = Math.min(h.settings.warmupSeconds, 2);
  let fanout = Number(process.env.BENCH_WS_FANOUT || 10_000);
  if (!Number.isInteger(fanout) || fanout < 1) throw new Error(`BENCH_WS_FANOUT must be a positive integer, not '${process.env.BENCH_WS_FANOUT}'`);
  const limit = fdLimit();
  if (Number.isFinite(limit) && fanout + 500 > limit) {
    h.print(`!!! open-file limit is ${limit} (ulimit -Hn); the server and the client each hold one fd per socket: fan-out runs with ${limit - 500} sockets instead of ${fanout}`);
    fanout = limit - 500;
  }
  h.print(`latency: ${RATE} writes/s, ${warmupSeconds}s warm-up + ${seconds}s measured, with ${LATENCY_SOCKETS.join(' and ')} sockets; fan-out: ${FANOUT_REPEATS} writes to ${fanout} sockets`);

  const latencyRows: Row[] = LATENCY_SOCKETS.map((n) => ({ scenario: 'ws latency', conc: n, results: {} }));
  const fanoutRow: Row = { scenario: 'ws fan-out', conc: fanout, results: {} };
  const out: Partial<Record<TargetName, { latency: WsClientOutput[]; fanout?: WsClientOutput }>> = {};
  let captured: WsClientOutput['captured'];

  /** Runs the client's latency runs and fan-out run against one server. */
  const measure = async (name: TargetName, label: string, wsUrl: string, bind: string, origin: string, path: string, serverPid: number) => {
    const base = { wsUrl, bind, openBatch: OPEN_BATCH, serverPid, trigger: { origin, path, headers: { 'content-type': 'application/fhir+json' }, body: BODY } };
    const runs: WsClientOutput[] = [];
    for (const [k, n] of LATENCY_SOCKETS.entries()) {
      h.print(`  latency, ${n} socket(s)`);
      const o = await runClient(h, `${label} latency ${n} sockets`, { ...base, mode: 'latency', sockets: n, rate: RATE, warmupSeconds, seconds, capture: name === 'herald' && k === 0 });
      captured ??= o.captured;
      runs.push(o);
      latencyRows[k]!.results[name] = summary(o, 'latency');
    }
    h.print(`  fan-out, ${fanout} sockets`);
    const f = await runClient(h, `${label} fan-out ${fanout} sockets`, { ...base, mode: 'fanout', sockets: fanout, repeats: FANOUT_REPEATS });
    fanoutRow.results[name] = summary(f, 'fanout');
    out[name] = { latency: runs, fanout: f };
  };

  // Herald, with the bench topic installed from a folder.
  const topics = await mkdtemp(join(tmpdir(), 'bench-ws-topics-'));
  try {
    await writeFile(join(topics, 'bench-patient-created.json'), JSON.stringify(TOPIC));
    h.print('Herald: starting');
    const herald = await startWithEnv(h, { HERALD_TOPICS: topics, ...(await profileEnv(h)) });
    try {
      const { token, wsUrl } = await subscribe(herald);
      await measure('herald', 'Herald', wsUrl, `bind-with-token ${token}`, herald.url, '/fhir/R4/Patient', herald.pid);
    } finally {
      await herald.stop();
    }
  } finally {
    await rm(topics, { recursive: true, force: true });
  }
  if (!captured) throw new Error('no notification frame was captured from Herald, so the floor has nothing to send');

  // Herald on PostgreSQL (a fresh database), 1 socket: the latency beside SQLite's.
  let pgLatency: WsClientOutput | undefined;
  if (h.settings.stores.includes('postgres')) {
    const pgTopics = await mkdtemp(join(tmpdir(), 'bench-ws-topics-'));
    try {
      await writeFile(join(pgTopics, 'bench-patient-created.json'), JSON.stringify(TOPIC));
      h.print('Herald on PostgreSQL: starting');
      const herald = await startWithEnv(h, { HERALD_TOPICS: pgTopics }, 'heraldPg');
      try {
        const { token, wsUrl } = await subscribe(herald);
        h.print('  latency, 1 socket(s)');
        pgLatency = await runClient(h, 'Herald on PostgreSQL latency 1 sockets', {
          wsUrl, bind: `bind-with-token ${token}`, openBatch: OPEN_BATCH, serverPid: herald.pid, serverDb: herald.db!.name,
          trigger: { origin: herald.url, path: '/fhir/R4/Patient', headers: { 'content-type': 'application/fhir+json' }, body: BODY },
          mode: 'latency', sockets: 1, rate: RATE, warmupSeconds, seconds,
        });
        latencyRows[0]!.results.heraldPg = summary(pgLatency, 'latency');
      } finally {
        await herald.stop();
      }
    } finally {
      await rm(pgTopics, { recursive: true, force: true });
    }
  }

  // The floor: a bare ws server sending Herald's frame.
  h.print(`floor (bare ws broadcast of Herald's ${Buffer.byteLength(captured.event)}-byte event frame): starting`);
  const floor = await startFloor({ handshake: captured.handshake, event: captured.event, templateId: captured.id });
  try {
    await measure('floor', 'floor', `ws://127.0.0.1:${floor.port}/ws`, 'bind', `http://127.0.0.1:${floor.port}`, '/fhir/R4/Patient', floor.pid);
  } finally {
    await floor.stop();
  }

  // Tables.
  h.print('');
  h.print(`write→websocket latency at ${RATE} writes/s (ms; over every (socket, event) pair; "201→" from the write's 201 response, "start→" from its request start)`);
  const f = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '-' : ms(v));
  const r = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || !b ? '-' : (a / b).toFixed(2));
  h.printColumns(
    ['sockets', 'writes/s', 'Herald 201→ p50', 'p99', 'start→ p50', 'p99', 'floor 201→ p50', 'p99', 'start→ p50', 'p99', 'Herald/floor p99'],
    LATENCY_SOCKETS.map((n, k) => {
      const hr = out.herald?.latency[k];
      const fl = out.floor?.latency[k];
      return [
        n.toLocaleString('en-US'),
        hr ? hr.achievedRate.toFixed(0) : '-',
        f(hr?.fromResponse.p50), f(hr?.fromResponse.p99), f(hr?.fromStart.p50), f(hr?.fromStart.p99),
        f(fl?.fromResponse.p50), f(fl?.fromResponse.p99), f(fl?.fromStart.p50), f(fl?.fromStart.p99),
        r(hr?.fromResponse.p99, fl?.fromResponse.p99),
      ];
    }),
  );
  if (pgLatency) {
    h.print('');
    const sq = out.herald?.latency[0];
    h.print(`the same, 1 socket, Herald on SQLite vs on PostgreSQL (ms after the 201)`);
    h.printColumns(
      ['sockets', 'SQLite writes/s', '201→ p50', 'p99', 'PostgreSQL writes/s', '201→ p50', 'p99', 'start→ p50', 'p99', 'PostgreSQL/SQLite p99'],
      [['1', sq ? sq.achievedRate.toFixed(0) : '-', f(sq?.fromResponse.p50), f(sq?.fromResponse.p99), pgLatency.achievedRate.toFixed(0),
        f(pgLatency.fromResponse.p50), f(pgLatency.fromResponse.p99), f(pgLatency.fromStart.p50), f(pgLatency.fromStart.p99), r(pgLatency.fromResponse.p99, sq?.fromResponse.p99)]],
    );
    h.print(`  cores busy (Herald + its PostgreSQL backends + client + rest): ${pgLatency.cpu.server.toFixed(2)} + ${(pgLatency.cpu.db ?? NaN).toFixed(2)} + ${pgLatency.cpu.load.toFixed(2)} + ${pgLatency.cpu.other.toFixed(2)}`);
  }
  h.print('');
  const hf = out.herald?.fanout;
  const ff = out.floor?.fanout;
  const last = (o: WsClientOutput | undefined, k: keyof WsClientOutput['rounds'][number]) => middle(o?.rounds.map((x) => x[k]) ?? [], (x) => x) ?? NaN;
  const worst = (o: WsClientOutput | undefined) => Math.max(...(o?.rounds.map((x) => x.lastFromResponse) ?? [NaN]));
  h.print(`fan-out of one event to ${fanout.toLocaleString('en-US')} sockets (ms, median of ${FANOUT_REPEATS} writes; until the last socket has it)`);
  const fanRatio = last(hf, 'lastFromResponse') / last(ff, 'lastFromResponse');
  h.printColumns(
    ['sockets', 'Herald 201→last', 'worst', 'start→last', '201→first', 'CPU', 'floor 201→last', 'worst', 'start→last', '201→first', 'CPU', 'Herald/floor'],
    [[
      fanout.toLocaleString('en-US'),
      f(last(hf, 'lastFromResponse')), f(worst(hf)), f(last(hf, 'lastFromStart')), f(last(hf, 'firstFromResponse')), f(last(hf, 'serverCpuMs')),
      f(last(ff, 'lastFromResponse')), f(worst(ff)), f(last(ff, 'lastFromStart')), f(last(ff, 'firstFromResponse')), f(last(ff, 'serverCpuMs')),
      Number.isNaN(fanRatio) ? '-' : fanRatio.toFixed(2),
    ]],
  );
  h.print(`  CPU: the server's CPU ms from the write's start to the last arrival (for Herald this includes the create); Herald/floor CPU ${r(last(hf, 'serverCpuMs'), last(ff, 'serverCpuMs'))}`);
  for (const [name, o] of [['Herald', hf], ['floor', ff]] as const) {
    if (o) h.print(`  ${name} 201→last per write: ${o.rounds.map((x) => f(x.lastFromResponse)).join(', ')}`);
  }
  // Memory per idle bound socket: the server's RSS once every socket is bound, less before any was opened.
  const perSocket = (o: WsClientOutput | undefined) => (o && o.bound > 0 ? `${(((o.serverRssKb.bound - o.serverRssKb.before) * 1024) / o.bound / 1024).toFixed(1)} KB` : '-');
  h.print(`  server memory per bound idle socket (RSS, bound − before): Herald ${perSocket(hf)}, floor ${perSocket(ff)}`);
  h.print('cores busy while measured (server + client process + rest of machine):');
  const cpu = (o: WsClientOutput | undefined) => (o ? `${o.cpu.server.toFixed(2)} + ${o.cpu.load.toFixed(2)} + ${o.cpu.other.toFixed(2)}` : '-');
  LATENCY_SOCKETS.forEach((n, k) => h.print(`  latency ${n} socket(s): Herald ${cpu(out.herald?.latency[k])}, floor ${cpu(out.floor?.latency[k])}`));
  h.print(`  fan-out ${fanout} sockets: Herald ${cpu(hf)}, floor ${cpu(ff)}`);

  // Goals.
  const checks: Check[] = LATENCY_SOCKETS.map((n, k) =>
    h.checkValue(`latency p99 < ${P99_LIMIT_MS} ms at ${RATE} writes/s (${n.toLocaleString('en-US')} socket${n === 1 ? '' : 's'})`, out.herald?.latency[k]?.fromResponse.p99 ?? NaN, P99_LIMIT_MS, true, ' ms'),
  );
  if (pgLatency) checks.push(h.checkValue(`latency p99 < ${P99_LIMIT_MS} ms at ${RATE} writes/s (1 socket, PostgreSQL)`, pgLatency.fromResponse.p99, P99_LIMIT_MS, true, ' ms'));
  const label = `fan-out to ${fanout >= 10_000 ? `${Math.round(fanout / 1000)}k` : fanout} sockets within ${FANOUT_MAX_RATIO}x of bare ws broadcast`;
  const fanCheck: Check = { label, ratio: fanRatio, min: FANOUT_MAX_RATIO, pass: fanRatio <= FANOUT_MAX_RATIO, value: fanRatio, limit: FANOUT_MAX_RATIO };
  h.print(`target: ${label}: ${Number.isNaN(fanRatio) ? 'n/a' : fanRatio.toFixed(2)}x ${fanCheck.pass ? 'PASS' : 'FAIL'}`);
  checks.push(fanCheck);
  // Issue 15 asks for 50,000 sockets within 1.5×; the count here is what one process may hold (fanout-nodes spreads 50,000 over several).
  const label15 = `fan-out to ${fanout.toLocaleString('en-US')} sockets within ${FANOUT_GOAL_15}x of bare ws broadcast (issue 15; its 50,000 sockets need several processes here: fanout-nodes)`;
  const check15: Check = { label: label15, ratio: fanRatio, min: FANOUT_GOAL_15, pass: fanRatio <= FANOUT_GOAL_15, value: fanRatio, limit: FANOUT_GOAL_15 };
  h.print(`target: ${label15}: ${Number.isNaN(fanRatio) ? 'n/a' : fanRatio.toFixed(2)}x ${check15.pass ? 'PASS' : 'FAIL'}`);
  checks.push(check15);
  return { name: 'websocket', rows: [...latencyRows, fanoutRow], checks };
}

/** The client's output in the shape results.json and run.ts's error summary read; the whole output rides along as `ws`. */
function summary(o: WsClientOutput, mode: 'latency' | 'fanout'): WsSummary {
  const lasts = o.rounds.map((x) => x.lastFromResponse).sort((a, b) => a - b);
  const closes = Object.values(o.unexpectedCloses).reduce((a, b) => a + b, 0);
  const { captured: _, ...ws } = o;
  return {
    requests: o.writes,
    seconds: o.writes / o.achievedRate,
    rps: o.achievedRate,
    // latency: over (socket, event) pairs, from the 201; fan-out: median and worst over writes of the last arrival, from the 201.
    p50: mode === 'latency' ? o.fromResponse.p50 : lasts[Math.floor((lasts.length - 1) / 2)] ?? NaN,
    p99: mode === 'latency' ? o.fromResponse.p99 : lasts[lasts.length - 1] ?? NaN,
    non2xx: o.non201,
    // Anything that makes the figures untrustworthy: sockets not bound, frames never delivered, sockets the server closed.
    errors: o.errors + o.openFailures + o.missing + closes,
    timeouts: 0,
    statusCodes: o.statusCodes,
    ...(o.errorSample || o.openErrorSample ? { errorSample: o.errorSample ?? o.openErrorSample } : {}),
    cpu: o.cpu,
    ws,
  };
}

/** Runs bench/ws/client.ts in its own process; its progress lines are printed, its failures loudly. */
export async function runClient(h: Helpers, label: string, spec: WsClientSpec): Promise<WsClientOutput> {
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', 'bench/ws/client.ts', JSON.stringify(spec)], { cwd: ROOT, maxBuffer: 64 << 20 }, (err, out, errOut) =>
      err ? reject(new Error(`${label}: websocket client failed: ${errOut || err.message}`)) : resolve({ stdout: out, stderr: errOut }),
    );
  });
  for (const line of stderr.split('\n').filter(Boolean)) h.print(`    ${line}`);
  const o = JSON.parse(stdout) as WsClientOutput;
  const closes = Object.entries(o.unexpectedCloses);
  if (o.openFailures > 0 || o.missing > 0 || o.errors > 0 || o.non201 > 0 || o.duplicates > 0 || closes.length > 0) {
    h.print(`!!! ${label}: ${o.openFailures} sockets not bound of ${o.sockets}, ${o.missing} of ${o.pairs} deliveries missing, ${o.duplicates} duplicates, ` +
      `${closes.length ? `closed by the server: ${closes.map(([c, n]) => `${n}×${c}`).join(', ')}, ` : ''}` +
      `${o.errors} write errors, ${o.non201} non-201 (${JSON.stringify(o.statusCodes)})${o.errorSample ?? o.openErrorSample ? `; first error: ${o.errorSample ?? o.openErrorSample}` : ''}`);
  }
  if (o.cpu.load > 0.9) h.print(`!!! ${label}: the client process kept ${o.cpu.load.toFixed(2)} cores busy: it is (near) the bottleneck, so the figures measure it as much as the server`);
  if (o.cpu.other > 0.25) h.print(`!!! ${label}: other processes kept ${o.cpu.other.toFixed(2)} cores busy; its figures are disturbed, re-run on a quiet machine`);
  return o;
}

/** startTarget with extra environment for the child (the harness passes process.env through). */
export async function startWithEnv(h: Helpers, env: Record<string, string>, name: 'herald' | 'heraldPg' = 'herald', db?: Target['db']): Promise<Target> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await h.startTarget(name, undefined, db);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** BENCH_WS_CPU_PROF=1: Herald writes a V8 CPU profile of the whole scenario to .bench/ws-prof/ when it stops. */
async function profileEnv(h: Helpers): Promise<Record<string, string>> {
  if (process.env.BENCH_WS_CPU_PROF !== '1') return {};
  const dir = join(ROOT, '.bench', 'ws-prof');
  await mkdir(dir, { recursive: true });
  h.print(`Herald's CPU profile goes to ${dir}`);
  // Node 20 refuses --cpu-prof in NODE_OPTIONS, so a preloaded module runs the profiler instead.
  const preload = pathToFileURL(join(ROOT, 'bench', 'ws', 'cpu-prof.mjs')).href;
  return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${preload}`.trim(), BENCH_WS_PROF_DIR: dir };
}

/** One websocket Subscription (R4, id-only, filtered to the bench's Patients) and a token for it. */
export async function subscribe(herald: Target): Promise<{ token: string; wsUrl: string }> {
  const res = await fetch(`${herald.url}/fhir/R4/Subscription`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(SUBSCRIPTION) });
  const sub = (await res.json()) as { id: string; status: string };
  if (res.status !== 201 || sub.status !== 'active') throw new Error(`creating the websocket Subscription answered ${res.status}: ${JSON.stringify(sub).slice(0, 500)}`);
  const tr = await fetch(`${herald.url}/fhir/R4/Subscription/${sub.id}/$get-ws-binding-token`);
  const params = (await tr.json()) as { parameter?: { name: string; valueString?: string; valueUrl?: string }[] };
  const token = params.parameter?.find((p) => p.name === 'token')?.valueString;
  const wsUrl = params.parameter?.find((p) => p.name === 'websocket-url')?.valueUrl;
  if (tr.status !== 200 || !token || !wsUrl) throw new Error(`$get-ws-binding-token answered ${tr.status}: ${JSON.stringify(params).slice(0, 500)}`);
  return { token, wsUrl };
}

/** Starts bench/ws/floor.ts; resolves with its port once it listens. */
export async function startFloor(spec: WsFloorSpec): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'bench/ws/floor.ts', JSON.stringify(spec)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => (clearTimeout(kill), resolve()));
      child.kill('SIGTERM');
    });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the websocket floor did not listen within 60 s')), 60_000);
      child.once('exit', (code) => reject(new Error(`the websocket floor exited with ${code}`)));
      createInterface({ input: child.stdout! }).once('line', (line) => (clearTimeout(timer), resolve((JSON.parse(line) as { port: number }).port)));
    });
    return { port, pid: child.pid!, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
