/**
 * The event path (issue 15): what a matching subscription costs a write, measured in one run.
 *
 *   c16 creates with 0 / 1 unbound / 1 bound matching websocket subscription (÷ 0; goal ≥ 0.9);
 *   c1 creates with 100 matching subscriptions bound on 100 sockets: creates/s (÷ c1 with none;
 *     goal ≥ 0.5), notifications/s (goal ≥ 20,000) and arrival − 201 lag (goal p99 ≤ 50 ms);
 *   c1 creates with none ÷ the floor's c1 creates (goal ≥ 0.5);
 *   many subscriptions (BENCH_EP_SUBS, default 1,000,000; 0 skips): bulk creation time, creates at
 *     c16 ÷ the same server before they existed (goal ≥ 0.9; medians of the rounds' c16 runs
 *     without a match and one more before, of three after), the server's resident memory (goal < 2 GB).
 *
 * One Herald with one topic (Patient create, filterable by identifier) installed from a folder.
 * Which subscriptions a create matches is chosen by the Patient's identifier: `none` matches none,
 * `one` a subscription never bound, `two` one bound on a socket, `hundred` the hundred. The c16
 * and c1 ratios come from BENCH_EP_ROUNDS rounds of alternating runs (the floor runs beside
 * Herald), the round with the median ratio reported. Subscriptions are websocket, full-resource.
 * Sockets are opened and bound by bench/ws/client.ts in its own process (never the server's loop);
 * creates without sockets come from bench/load.ts (autocannon), also in its own process.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { middle, ms, type Check, type Helpers, type Row, type RunSummary, type ScenarioResult, type Target } from '../harness.ts';
import { peakRssKb, rssKb } from '../cpu.ts';
import type { WsClientOutput } from '../ws/protocol.ts';
import { PATIENT } from './crud.ts';
import { runClient, startFloor, startWithEnv } from './websocket.ts';

const TOPIC_URL = 'http://example.org/topics/bench-event-path';
/** The scenario's topic (also bench/subscription-heap.ts's). */
export const TOPIC = {
  resourceType: 'SubscriptionTopic',
  id: 'bench-event-path',
  url: TOPIC_URL,
  status: 'active',
  resourceTrigger: [{ resource: 'Patient', supportedInteraction: ['create'] }],
  canFilterBy: [{ resource: 'Patient', filterParameter: 'identifier' }],
};
const IG = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
const JSON_TYPE = { 'content-type': 'application/fhir+json' };
const FANOUT = 100;
/** Rounds of alternating runs for the c16 and c1 ratios (BENCH_EP_ROUNDS, default 5). */
const ROUNDS = Number(process.env.BENCH_EP_ROUNDS ?? 5);
const GOAL = { oneMatch: 0.9, hundredCreates: 0.5, notificationsPerSecond: 20_000, lagP99Ms: 50, c1Floor: 0.5, manySubs: 0.9, rssMb: 2048 };

const subscription = (identifier: string) => ({
  resourceType: 'Subscription',
  meta: { profile: [`${IG}/backport-subscription`] },
  status: 'requested',
  reason: 'bench',
  criteria: TOPIC_URL,
  _criteria: { extension: [{ url: `${IG}/backport-filter-criteria`, valueString: `Patient?identifier=urn:bench|${identifier}` }] },
  channel: { type: 'websocket', payload: 'application/fhir+json', _payload: { extension: [{ url: `${IG}/backport-payload-content`, valueCode: 'full-resource' }] } },
});
const patient = (identifier: string) => JSON.stringify({ ...PATIENT, identifier: [{ system: 'urn:bench', value: identifier }] });

export default async function eventpath(h: Helpers): Promise<ScenarioResult> {
  const { seconds, warmupSeconds } = h.settings;
  const many = Number(process.env.BENCH_EP_SUBS ?? 1_000_000);
  if (!Number.isInteger(many) || many < 0) throw new Error(`BENCH_EP_SUBS must be a non-negative integer, not '${process.env.BENCH_EP_SUBS}'`);
  if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`BENCH_EP_ROUNDS must be a positive integer, not '${process.env.BENCH_EP_ROUNDS}'`);
  const rows: Row[] = [];
  const checks: Check[] = [];
  const load = (t: Target, label: string, conc: number, identifier: string) =>
    h.runLoad(`event path ${label}`, { url: t.url, connections: conc, warmupSeconds, seconds, serverPid: t.pid, request: { method: 'POST', path: '/fhir/R4/Patient', headers: JSON_TYPE, body: patient(identifier) } }).then((o) => o.measured);

  const topics = await mkdtemp(join(tmpdir(), 'bench-ep-topics-'));
  await writeFile(join(topics, 'topic.json'), JSON.stringify(TOPIC));
  // The floor at c1 (the same create, a minimal durable writer), beside Herald throughout.
  h.print('floor: starting');
  const floor = await h.startTarget('floor');
  h.print('Herald: starting');
  const herald = await startWithEnv(h, { HERALD_TOPICS: topics }).catch(async (err) => {
    await floor.stop();
    throw err;
  });
  let hundred: WsClientOutput | undefined;
  let wsFloorHundred: WsClientOutput | undefined;
  let c1Around: RunSummary | undefined;
  let c1None: RunSummary | undefined;
  let c1Floor: RunSummary | undefined;
  try {
    const base = `${herald.url}/fhir/R4`;
    await createSubscriptions(base, 'one', 1);
    const [two] = await createSubscriptions(base, 'two', 1);
    const group = await createSubscriptions(base, 'hundred', FANOUT);
    const token = (id: string) => bindingToken(base, id);
    const wsUrl = `${herald.url.replace(/^http/, 'ws')}/ws`;
    h.print(`  subscriptions: 1 ('one', never bound), 1 ('two', bound on one socket) and ${FANOUT} ('hundred'), websocket, full-resource`);

    // Rounds of alternating runs: c16 none, one unbound, one bound; c1 Herald, c1 floor (the floor
    // runs beside Herald from the start, idle while Herald is measured and the other way round).
    // Each ratio is taken within a round, runs seconds apart, and the round with the median ratio
    // is reported: the machine's drift over minutes (±15% here) stays out of the ratios.
    const pairs: Record<'unbound' | 'bound' | 'c1', { a: RunSummary; b: RunSummary }[]> = { unbound: [], bound: [], c1: [] };
    // The rounds' c16 runs without a match, on this server: part of "before" for the million below.
    const noneRuns: RunSummary[] = [];
    // 'one' is never bound; 'two' is bound on one socket throughout (the creates of a run name one of them).
    const held = await holdSockets(wsUrl, [`bind-with-token ${await token(two!)}`]);
    let boundFrames = 0;
    let boundCreates = 0;
    try {
      for (let round = 1; round <= ROUNDS; round++) {
        h.print(`  round ${round} of ${ROUNDS}`);
        // The order turns each round, so that no run is always first (nor last) in its round.
        const got: Partial<Record<'none' | 'unbound' | 'bound', RunSummary>> = {};
        const runs = [
          async () => (got.none = await load(herald, 'c16, no match', 16, 'none')),
          async () => (got.unbound = await load(herald, 'c16, 1 unbound match', 16, 'one')),
          async () => {
            const before = held.frames();
            got.bound = await load(herald, 'c16, 1 bound match', 16, 'two');
            boundFrames += held.frames() - before;
            boundCreates += got.bound.requests;
          },
        ];
        for (let i = 0; i < runs.length; i++) await runs[(i + round - 1) % runs.length]!();
        noneRuns.push(got.none!);
        pairs.unbound.push({ a: got.unbound!, b: got.none! });
        pairs.bound.push({ a: got.bound!, b: got.none! });
        // Herald first in odd rounds, the floor first in even ones (properties are run in order).
        const heraldC1 = () => load(herald, 'c1, no match', 1, 'none');
        const floorC1 = () => load(floor, 'floor c1', 1, 'none');
        pairs.c1.push(round % 2 === 1 ? { a: await heraldC1(), b: await floorC1() } : { b: await floorC1(), a: await heraldC1() });
      }
    } finally {
      held.close();
    }
    h.print(`  the bound socket received ${boundFrames} frames during the measured c16 runs (${boundCreates} creates measured, plus warm-ups)`);
    const median = (list: { a: RunSummary; b: RunSummary }[], what: string) => {
      h.print(`  ${what}: ratio per round ${list.map((p) => (p.a.rps / p.b.rps).toFixed(2)).join(', ')}; the median reported`);
      // The server's CPU per create (all its threads), which the machine's other load moves far
      // less than the rate: what the difference between the two runs costs, round by round.
      const cpu = list.map((p) => cpuPerCreateMs(p.b) / cpuPerCreateMs(p.a));
      h.print(`    server CPU per create ${list.map((p) => `${cpuPerCreateMs(p.a).toFixed(3)}/${cpuPerCreateMs(p.b).toFixed(3)}`).join(', ')} ms; ` +
        `the second ÷ the first (the rate ratio if CPU alone decided) ${cpu.map((x) => x.toFixed(2)).join(', ')}, median ${middle(cpu, (x) => x)?.toFixed(2)}`);
      return middle(list, (p) => p.a.rps / p.b.rps)!;
    };
    const unbound = median(pairs.unbound, 'c16, 1 unbound ÷ none');
    const bound = median(pairs.bound, 'c16, 1 bound ÷ none');
    const c1 = median(pairs.c1, 'c1 ÷ floor c1');
    rows.push({ scenario: 'c16 creates, 1 unbound matching subscription', conc: 16, results: { herald: unbound.a, floor: unbound.b } });
    rows.push({ scenario: 'c16 creates, 1 bound matching subscription', conc: 16, results: { herald: bound.a, floor: bound.b } });
    rows.push({ scenario: 'c16 creates, no matching subscription', conc: 16, results: { herald: bound.b } });
    c1None = c1.a;
    c1Floor = c1.b;

    // c1 with 100 bound (the client makes the writes, timing each 201 and every arrival), between
    // two c1 runs without: compared with their mean.
    const binds = await Promise.all(group.map(async (id) => `bind-with-token ${await token(id)}`));
    const c1Before = await load(herald, 'c1, no match, before 100', 1, 'none');
    hundred = await runClient(h, `c1 with ${FANOUT} bound matches`, {
      mode: 'closed', concurrency: 1, wsUrl, bind: binds[0]!, binds, sockets: FANOUT, openBatch: FANOUT, serverPid: herald.pid, capture: true,
      warmupSeconds, seconds, trigger: { origin: herald.url, path: '/fhir/R4/Patient', headers: JSON_TYPE, body: patient('hundred') },
    });
    const c1After = await load(herald, 'c1, no match, after 100', 1, 'none');
    c1Around = { ...c1After, rps: (c1Before.rps + c1After.rps) / 2 };
    rows.push({ scenario: `c1 creates, ${FANOUT} bound matching subscriptions`, conc: 1, results: { herald: asSummary(hundred), floor: c1Around } });

    // The same closed loop against a bare ws server (bench/ws/floor.ts): it answers each POST 201
    // without parsing or storing it, then sends one of Herald's frames (one Buffer for all) to the
    // hundred sockets. What no server can beat on this machine, with this client beside it.
    const captured = hundred.captured;
    if (captured) {
      h.print(`  bare ws floor (Herald's ${Buffer.byteLength(captured.event)}-byte frame to ${FANOUT} sockets, no storage): starting`);
      const wsFloor = await startFloor({ handshake: captured.handshake, event: captured.event, templateId: captured.id });
      try {
        const url = `http://127.0.0.1:${wsFloor.port}`;
        wsFloorHundred = await runClient(h, `bare ws floor, c1 with ${FANOUT} sockets`, {
          mode: 'closed', concurrency: 1, wsUrl: `ws://127.0.0.1:${wsFloor.port}/ws`, bind: 'bind', sockets: FANOUT, openBatch: FANOUT, serverPid: wsFloor.pid,
          warmupSeconds, seconds, trigger: { origin: url, path: '/fhir/R4/Patient', headers: JSON_TYPE, body: patient('hundred') },
        });
      } finally {
        await wsFloor.stop();
      }
    }

    // Many subscriptions, one per patient, none matching the creates measured.
    if (many > 0) {
      // Before: the median of the rounds' c16 runs without a match and one more now; after: the
      // median of three. One run each way measured the machine's drift as much as the million.
      const beforeRuns = [...noneRuns, await load(herald, 'c16, before many', 16, 'none')];
      const before = middle(beforeRuns, (r) => r.rps)!;
      const t0 = performance.now();
      await bulkSubscriptions(base, many, (done) => h.print(`    ${done.toLocaleString('en-US')} created, ${Math.round(done / ((performance.now() - t0) / 1000))}/s`));
      const s = (performance.now() - t0) / 1000;
      h.print(`  created ${many.toLocaleString('en-US')} subscriptions in ${s.toFixed(0)} s (${Math.round(many / s)}/s)`);
      const afterRuns: RunSummary[] = [];
      // RSS sampled every half second through the three runs: one reading lands anywhere in V8's
      // cycle of heap growth and full GC, so the highest is what is checked against the goal.
      const samples: number[] = [];
      const sampler = setInterval(() => samples.push(rssKb(herald.pid) / 1024), 500);
      try {
        for (let i = 0; i < 3; i++) afterRuns.push(await load(herald, `c16, ${many} subscriptions`, 16, 'none'));
      } finally {
        clearInterval(sampler);
      }
      const after = middle(afterRuns, (r) => r.rps)!;
      h.print(`  c16 creates/s before the ${many.toLocaleString('en-US')} subscriptions: ${beforeRuns.map((r) => r.rps.toFixed(0)).join(', ')}; with them: ${afterRuns.map((r) => r.rps.toFixed(0)).join(', ')}; medians compared`);
      const read = samples.filter((x) => Number.isFinite(x));
      const rssMb = read.length > 0 ? Math.max(...read) : rssKb(herald.pid) / 1024;
      h.print(`  server RSS through those runs (${read.length} samples): lowest ${Math.min(...read).toFixed(0)} MB, median ${middle(read, (x) => x)?.toFixed(0)} MB, highest ${rssMb.toFixed(0)} MB (checked)`);
      // The high-water mark includes the bulk creation's transient garbage: what the machine must have.
      const peakMb = peakRssKb(herald.pid) / 1024;
      rows.push({ scenario: `c16 creates, ${many.toLocaleString('en-US')} other subscriptions`, conc: 16, results: { herald: after, floor: before } });
      h.print(`  c16 creates: ${after.rps.toFixed(0)}/s with ${many.toLocaleString('en-US')} subscriptions, ${before.rps.toFixed(0)}/s before; server RSS at most ${rssMb.toFixed(0)} MB under that load (peak since start, the bulk creation included, ${peakMb.toFixed(0)} MB)`);
      checks.push(h.checkValue(`${many.toLocaleString('en-US')} subscriptions: creates ÷ before ≥ ${GOAL.manySubs}`, after.rps / before.rps, GOAL.manySubs, false));
      checks.push(h.checkValue(`${many.toLocaleString('en-US')} subscriptions: server RSS under c16 < ${GOAL.rssMb} MB (highest sample)`, rssMb, GOAL.rssMb, true, ' MB'));
      checks.push(h.checkValue(`${many.toLocaleString('en-US')} subscriptions created in bulk within 10 minutes`, s, 600, true, ' s'));
    }
  } finally {
    await herald.stop();
    await floor.stop();
    await rm(topics, { recursive: true, force: true });
  }

  rows.push({ scenario: 'c1 creates, no subscription', conc: 1, results: { herald: c1None!, floor: c1Floor! } });

  h.print('');
  h.printColumns(
    ['event path', 'conc', 'creates/s', 'p50 ms', 'p99 ms', 'compared with', 'its creates/s', 'ratio', 'goal'],
    rows.map((r) => {
      const a = r.results.herald;
      const b = r.results.floor;
      const goal = r.scenario.includes('1 ') && r.conc === 16 ? `≥ ${GOAL.oneMatch}` : r.scenario.includes(`${FANOUT} bound`) ? `≥ ${GOAL.hundredCreates}` : r.scenario.startsWith('c1 creates, no') ? `≥ ${GOAL.c1Floor}` : r.scenario.includes('other subscriptions') ? `≥ ${GOAL.manySubs}` : '';
      const against = r.scenario.startsWith('c1 creates, no') ? 'floor c1' : r.scenario.includes('other subscriptions') ? 'same server before' : r.conc === 1 ? 'c1, no match' : 'c16, no match';
      return [r.scenario, String(r.conc), a ? a.rps.toFixed(0) : '-', a ? ms(a.p50) : '-', a ? ms(a.p99) : '-', b ? against : '', b ? b.rps.toFixed(0) : '', a && b ? (a.rps / b.rps).toFixed(2) : '', goal];
    }),
  );
  if (hundred) {
    h.print(`c1 with ${FANOUT} bound matching subscriptions: ${hundred.achievedRate.toFixed(0)} creates/s, ${Math.round(hundred.framesPerSecond).toLocaleString('en-US')} notifications/s, ` +
      `arrival − 201 p50 ${ms(hundred.fromResponse.p50)} ms, p99 ${ms(hundred.fromResponse.p99)} ms, max ${ms(hundred.fromResponse.max)} ms; ${hundred.missing} of ${hundred.pairs} missing, ${hundred.duplicates} duplicates`);
  }
  if (hundred && wsFloorHundred) {
    const f = wsFloorHundred.achievedRate;
    h.print(`  bare ws floor, c1 with ${FANOUT} sockets: ${f.toFixed(0)} creates/s (${Math.round(wsFloorHundred.framesPerSecond).toLocaleString('en-US')} frames/s, arrival − 201 p50 ${ms(wsFloorHundred.fromResponse.p50)} ms); ` +
      `Herald ÷ bare ws ${(hundred.achievedRate / f).toFixed(2)}` + (c1Around ? `; the goal (${GOAL.hundredCreates} × Herald's c1 without = ${(GOAL.hundredCreates * c1Around.rps).toFixed(0)}/s) is ${((GOAL.hundredCreates * c1Around.rps) / f).toFixed(2)} × the bare ws floor` : ''));
  }
  for (const r of rows) {
    const a = r.results.herald;
    const b = r.results.floor;
    if (!a || !b) continue;
    if (r.conc === 16 && r.scenario.includes(' 1 ')) checks.push(h.checkValue(`${r.scenario} ÷ none ≥ ${GOAL.oneMatch}`, a.rps / b.rps, GOAL.oneMatch, false));
    if (r.scenario.startsWith('c1 creates, no')) checks.push(h.checkValue(`c1 creates ÷ floor ≥ ${GOAL.c1Floor}`, a.rps / b.rps, GOAL.c1Floor, false));
    if (r.scenario.includes(`${FANOUT} bound`)) checks.push(h.checkValue(`c1 creates with ${FANOUT} bound matches ÷ none ≥ ${GOAL.hundredCreates}`, a.rps / b.rps, GOAL.hundredCreates, false));
  }
  if (hundred) {
    checks.push(h.checkValue(`notifications/s with ${FANOUT} bound matches at c1 ≥ ${GOAL.notificationsPerSecond.toLocaleString('en-US')}`, hundred.framesPerSecond, GOAL.notificationsPerSecond, false, '/s'));
    checks.push(h.checkValue(`notification lag p99 with ${FANOUT} bound matches at c1 ≤ ${GOAL.lagP99Ms} ms`, hundred.fromResponse.p99, GOAL.lagP99Ms, true, ' ms'));
  }
  return { name: 'eventpath', rows, checks };
}

/** Milliseconds of the server's CPU (every thread) per request of a run. */
const cpuPerCreateMs = (r: RunSummary) => (1000 * r.cpu.server) / r.rps;

/** The client's output as a load summary (creates/s and write latency). */
function asSummary(o: WsClientOutput): RunSummary {
  return {
    requests: o.writes, seconds: o.writes / o.achievedRate, rps: o.achievedRate, p50: o.write.p50, p99: o.write.p99,
    non2xx: o.non201, errors: o.errors + o.openFailures + o.missing, timeouts: 0, statusCodes: o.statusCodes, cpu: o.cpu,
  };
}

async function post(url: string, body: unknown, headers: Record<string, string> = JSON_TYPE): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`POST ${url} answered ${res.status}: ${text.slice(0, 500)}`);
  return { status: res.status, json: JSON.parse(text) };
}

/** `n` websocket subscriptions filtered by `identifier`, created in one transaction; their ids. */
async function createSubscriptions(base: string, identifier: string, n: number): Promise<string[]> {
  const entry = Array.from({ length: n }, () => ({ resource: subscription(identifier), request: { method: 'POST', url: 'Subscription' } }));
  const { json } = await post(base, { resourceType: 'Bundle', type: 'transaction', entry });
  return (json.entry as { resource: { id: string } }[]).map((e) => e.resource.id);
}

/**
 * `n` subscriptions, one per patient (`p-<i>`), 1,000 per transaction, two transactions in flight
 * (`headers`: a bearer token, for a server with auth on).
 */
export async function bulkSubscriptions(base: string, n: number, progress: (done: number) => void, headers: Record<string, string> = JSON_TYPE): Promise<void> {
  const BATCH = 1000;
  let next = 0;
  let done = 0;
  let reported = 0;
  const worker = async () => {
    while (next < n) {
      const from = next;
      next += BATCH;
      const entry = Array.from({ length: Math.min(BATCH, n - from) }, (_, k) => ({ resource: subscription(`p-${from + k}`), request: { method: 'POST', url: 'Subscription' } }));
      await post(base, { resourceType: 'Bundle', type: 'transaction', entry }, headers);
      done += entry.length;
      if (done - reported >= 100_000) progress((reported = done));
    }
  };
  await Promise.all([worker(), worker()]);
}

async function bindingToken(base: string, id: string): Promise<string> {
  const res = await fetch(`${base}/Subscription/${id}/$get-ws-binding-token`);
  const params = (await res.json()) as { parameter?: { name: string; valueString?: string }[] };
  const token = params.parameter?.find((p) => p.name === 'token')?.valueString;
  if (res.status !== 200 || !token) throw new Error(`$get-ws-binding-token answered ${res.status}: ${JSON.stringify(params).slice(0, 300)}`);
  return token;
}

/** Opens sockets in this process, binds each, and counts what they receive until closed. */
async function holdSockets(wsUrl: string, binds: string[]): Promise<{ frames(): number; close(): void }> {
  const { WebSocket } = await import('ws');
  let frames = 0;
  const sockets = await Promise.all(
    binds.map(
      (bind) =>
        new Promise<InstanceType<typeof WebSocket>>((resolve, reject) => {
          const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
          const timer = setTimeout(() => reject(new Error('a socket was not bound within 30 s')), 30_000);
          ws.once('open', () => ws.send(bind));
          ws.once('error', reject);
          ws.on('message', (data: Buffer) => {
            if (data.includes('"handshake"')) return void (clearTimeout(timer), resolve(ws));
            frames++;
          });
        }),
    ),
  );
  return { frames: () => frames, close: () => sockets.forEach((s) => s.terminate()) };
}

