/**
 * Topic-based subscriptions on /fhir/R4 (backport): write throughput with 0, 1,000 and 100,000
 * active non-matching subscriptions, and write → rest-hook delivery latency at a steady write rate,
 * beside a floor (the same receiver getting the same bytes straight from the writer).
 *
 * One topic (an R4 Basic): Patient create, filterable by identifier. One rest-hook subscription
 * (identifier urn:bench|match) delivers to bench/receiver.ts; the many others are websocket
 * subscriptions (no endpoint, no handshake) with distinct identifier filters, so they are indexed
 * by filter value and cost a hash lookup per write, whatever their number. Throughput is compared
 * with a second Herald that never gets them, measured just before each point.
 */
import { request } from 'undici';
import { measureCpu, type CpuShare } from '../cpu.ts';
import { postBundle } from '../dataset.ts';
import { ms, type Check, type Helpers, type Row, type RunSummary, type ScenarioResult } from '../harness.ts';
import { startReceiver, type Receiver } from '../receiver.ts';
import { PATIENT } from './crud.ts';

const BASE = '/fhir/R4';
const TOPIC_URL = 'http://example.org/bench/SubscriptionTopic/patient-create';
const IG = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
const XVER = 'http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.';
const SUB_COUNTS = [0, 1_000, 100_000];
const CONC = 16;
/** Writes per second in the latency runs. */
const RATE = 200;
const JSON_TYPE = { 'content-type': 'application/fhir+json' };

export const TOPIC = {
  resourceType: 'Basic',
  modifierExtension: [{ url: `${XVER}status`, valueCode: 'active' }],
  extension: [
    { url: `${XVER}url`, valueUri: TOPIC_URL },
    { url: `${XVER}title`, valueString: 'Bench: Patient created' },
    { url: `${XVER}resourceTrigger`, extension: [{ url: 'resource', valueUri: 'Patient' }, { url: 'supportedInteraction', valueCode: 'create' }] },
    { url: `${XVER}canFilterBy`, extension: [{ url: 'resource', valueUri: 'Patient' }, { url: 'filterParameter', valueString: 'identifier' }] },
  ],
  code: { coding: [{ system: 'http://hl7.org/fhir/fhir-types', code: 'SubscriptionTopic' }] },
};

export function subscription(identifier: string, endpoint?: string) {
  return {
    resourceType: 'Subscription',
    meta: { profile: [`${IG}/backport-subscription`] },
    status: 'requested',
    reason: 'bench',
    criteria: TOPIC_URL,
    _criteria: { extension: [{ url: `${IG}/backport-filter-criteria`, valueString: `Patient?identifier=urn:bench|${identifier}` }] },
    channel: {
      type: endpoint ? 'rest-hook' : 'websocket',
      ...(endpoint ? { endpoint } : {}),
      payload: 'application/fhir+json',
      _payload: { extension: [{ url: `${IG}/backport-payload-content`, valueCode: 'id-only' }] },
    },
  };
}

const patient = (identifier: string) => JSON.stringify({ ...PATIENT, identifier: [{ system: 'urn:bench', value: identifier }] });

export default async function subscriptions(h: Helpers): Promise<ScenarioResult> {
  const { seconds, warmupSeconds } = h.settings;
  const rows: Row[] = [];
  const latency: { label: string; l: Latency }[] = [];
  // Two Heralds, both with the topic and the rest-hook subscription: `subs` also gets the many
  // others, `baseline` never does. Each point measures baseline then subs, so both databases grow
  // alike and slow drift (disk, database size) does not pass for the cost of subscriptions.
  h.print('Herald (baseline, and the one that gets the subscriptions): starting');
  const baseline = await h.startTarget('herald');
  const target = await h.startTarget('herald').catch(async (err: unknown) => (await baseline.stop(), Promise.reject(err)));
  const receiver = await startReceiver();
  const base = `${target.url}${BASE}`;
  try {
    const sub = await setup(base, receiver);
    await setup(`${baseline.url}${BASE}`, receiver);
    h.print(`topic and rest-hook Subscription/${sub} active on both (handshakes received: ${receiver.types.handshake ?? 0})`);
    // Warm the delivery path up and learn what a notification looks like (the floor replays it).
    await paced(base, receiver, 20, 1, undefined);

    let stored = 0;
    for (const count of SUB_COUNTS) {
      if (count > stored) {
        const t0 = performance.now();
        for (let i = stored; i < count; i += 1000) {
          const entry = Array.from({ length: Math.min(1000, count - i) }, (_, k) => ({ resource: subscription(`s-${i + k}`), request: { method: 'POST', url: 'Subscription' } }));
          await postBundle(base, { resourceType: 'Bundle', type: 'transaction', entry });
        }
        const s = (performance.now() - t0) / 1000;
        h.print(`  created ${(count - stored).toLocaleString('en-US')} websocket subscriptions in ${s.toFixed(1)} s (${Math.round((count - stored) / s)}/s)`);
        stored = count;
      }
      if (count === 0 || count === SUB_COUNTS[SUB_COUNTS.length - 1]) {
        const { value: l, cpu } = await measureCpu(target.pid, () => paced(base, receiver, RATE, seconds, receiver.lastBody));
        l.cpu = cpu;
        latency.push({ label: `${count.toLocaleString('en-US')} other subs`, l });
        if (cpu.other > 0.25) h.print(`!!! subscriptions delivery, ${count} other subs: other processes kept ${cpu.other.toFixed(2)} cores busy; its figures are disturbed, re-run on a quiet machine`);
        h.print(`  delivery at ${RATE} writes/s, ${count} other subs: p50 ${ms(l.hookAfter201.p50)} ms after the 201 (${l.received}/${l.sent} notified)`);
      }
      const row: Row = { scenario: `creates, ${count} other subs`, conc: CONC, results: {} };
      for (const [slot, t] of [['floor', baseline], ['herald', target]] as const) {
        const out = await h.runLoad(`subscriptions creates c${CONC}, ${slot === 'floor' ? 'baseline' : `${count} other subs`}`, {
          url: t.url, connections: CONC, warmupSeconds, seconds, serverPid: t.pid,
          request: { method: 'POST', path: `${BASE}/Patient`, headers: JSON_TYPE, body: patient('load') },
        });
        row.results[slot] = out.measured;
      }
      rows.push(row);
      h.print(`  creates c${CONC}: ${row.results.herald!.rps.toFixed(0)} req/s with ${count.toLocaleString('en-US')} other subscriptions, ${row.results.floor!.rps.toFixed(0)} req/s baseline`);
    }
    const after = (await (await fetch(`${base}/Subscription/${sub}`)).json()) as { status?: string; error?: string };
    h.print(`rest-hook subscription status at the end: ${after.status}${after.error ? ` (${after.error})` : ''}; notification types received: ${JSON.stringify(receiver.types)}`);
  } finally {
    await receiver.close();
    await target.stop();
    await baseline.stop();
  }

  h.print('');
  const cpuMs = (r: RunSummary) => ((r.cpu.server / r.rps) * 1000).toFixed(3);
  h.printColumns(
    ['Patient creates', 'conc', 'req/s', 'p50 ms', 'p99 ms', 'CPU ms/create', 'baseline req/s', 'CPU ms/create', '÷ baseline', 'cores: Herald + load'],
    rows.map((r) => {
      const s = r.results.herald!;
      const b = r.results.floor!;
      return [r.scenario, String(r.conc), s.rps.toFixed(0), ms(s.p50), ms(s.p99), cpuMs(s), b.rps.toFixed(0), cpuMs(b), (s.rps / b.rps).toFixed(2), `${s.cpu.server.toFixed(2)} + ${s.cpu.load.toFixed(2)}`];
    }),
  );
  h.print('');
  h.print(`write → notification arrival at ${RATE} writes/s (ms; "after 201": arrival − the create's 201 at the writer; "after start": arrival − request start)`);
  h.printColumns(
    ['delivery', 'notified', 'writes/s', 'p50 after 201', 'p99 after 201', 'p50 after start', 'p99 after start', 'write p50', 'write p99', 'cores: Herald + bench + rest'],
    latency.flatMap(({ label, l }) => [
      [`Herald rest-hook, ${label}`, `${l.received}/${l.sent}`, l.rate.toFixed(0), ms(l.hookAfter201.p50), ms(l.hookAfter201.p99), ms(l.hookAfterStart.p50), ms(l.hookAfterStart.p99), ms(l.write.p50), ms(l.write.p99),
        l.cpu ? `${l.cpu.server.toFixed(2)} + ${l.cpu.load.toFixed(2)} + ${l.cpu.other.toFixed(2)}` : ''],
      [`  floor: direct POST, ${label}`, `${l.direct}/${l.sent}`, '', ms(l.directAfter201.p50), ms(l.directAfter201.p99), ms(l.directAfterStart.p50), ms(l.directAfterStart.p99), '', '', ''],
    ]),
  );
  const last = rows[rows.length - 1]!.results;
  const checks: Check[] = [h.checkValue('100k non-matching subscriptions: creates within 10% of 0 (÷ baseline)', last.herald!.rps / last.floor!.rps, 0.9, false)];
  for (const { label, l } of latency) {
    rows.push({ scenario: `rest-hook latency after 201, ${label}`, conc: RATE, results: { herald: summary(l.received, l.hookAfter201), floor: summary(l.direct, l.directAfter201) } });
  }
  return { name: 'subscriptions', rows, checks };
}

// ---------------------------------------------------------------- latency

export interface Pct {
  p50: number;
  p99: number;
}

interface Latency {
  sent: number;
  received: number;
  direct: number;
  /** Writes per second actually achieved. */
  rate: number;
  write: Pct;
  hookAfter201: Pct;
  hookAfterStart: Pct;
  directAfter201: Pct;
  directAfterStart: Pct;
  errors: number;
  /** Cores busy during the run: Herald, the bench process (writer and receiver), the rest. */
  cpu?: CpuShare;
}

/**
 * Creates `rate` matching Patients per second for `seconds` (open loop: each write starts on its
 * schedule whether or not the previous one has answered); after each 201, POSTs `floorBody` (if
 * given) straight to the receiver. Then waits for the notifications and computes the latencies.
 */
async function paced(base: string, receiver: Receiver, rate: number, seconds: number, floorBody: string | undefined): Promise<Latency> {
  const n = Math.max(1, Math.round(rate * seconds));
  const writes: { id?: string; start: number; done: number }[] = [];
  let errors = 0;
  const body = patient('match');
  const write = async () => {
    const start = performance.now();
    const res = await request(`${base}/Patient`, { method: 'POST', headers: JSON_TYPE, body });
    const done = performance.now();
    const text = await res.body.text();
    if (res.statusCode !== 201) {
      errors++;
      return;
    }
    const id = (JSON.parse(text) as { id: string }).id;
    writes.push({ id, start, done });
    if (floorBody === undefined) return;
    const d = await request(`${receiver.url}/direct`, { method: 'POST', headers: { ...JSON_TYPE, 'x-bench-id': id }, body: floorBody });
    await d.body.dump();
  };
  const t0 = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait >= 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(write().catch(() => void errors++));
  }
  await Promise.all(inflight);
  const elapsed = (performance.now() - t0) / 1000;
  // Wait for the notifications: until all came, or none came for 10 s.
  let seen = -1;
  for (let idle = 0; idle < 100 && writes.some((w) => !receiver.arrivals.hook.has(w.id!)); ) {
    const now = receiver.arrivals.hook.size;
    idle = now === seen ? idle + 1 : 0;
    seen = now;
    await new Promise((r) => setTimeout(r, 100));
  }
  const lat = (arrivals: Map<string, number>, from: 'start' | 'done') => pct(writes.filter((w) => arrivals.has(w.id!)).map((w) => arrivals.get(w.id!)! - w[from]));
  if (errors > 0) process.stdout.write(`!!! subscriptions latency: ${errors} writes failed or were not 201\n`);
  return {
    sent: n,
    received: writes.filter((w) => receiver.arrivals.hook.has(w.id!)).length,
    direct: writes.filter((w) => receiver.arrivals.direct.has(w.id!)).length,
    rate: writes.length / elapsed,
    write: pct(writes.map((w) => w.done - w.start)),
    hookAfter201: lat(receiver.arrivals.hook, 'done'),
    hookAfterStart: lat(receiver.arrivals.hook, 'start'),
    directAfter201: lat(receiver.arrivals.direct, 'done'),
    directAfterStart: lat(receiver.arrivals.direct, 'start'),
    errors,
  };
}

export function pct(values: number[]): Pct {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => (s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))]!);
  return { p50: at(0.5), p99: at(0.99) };
}

export function summary(count: number, p: Pct): RunSummary {
  return { requests: count, seconds: NaN, rps: NaN, p50: p.p50, p99: p.p99, non2xx: 0, errors: 0, timeouts: 0, statusCodes: {}, cpu: { server: NaN, load: NaN, other: NaN } };
}

// ---------------------------------------------------------------- setup

/** The topic and the matching rest-hook subscription, handshake done; returns the subscription id. */
export async function setup(base: string, receiver: Receiver, headers: Record<string, string> = JSON_TYPE): Promise<string> {
  await post(`${base}/Basic`, TOPIC, headers);
  const { id } = await post(`${base}/Subscription`, subscription('match', `${receiver.url}/hook`), headers);
  await waitActive(`${base}/Subscription/${id}`, headers);
  return id;
}

async function post(url: string, resource: unknown, headers: Record<string, string>): Promise<{ id: string }> {
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(resource) });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`POST ${url} answered ${res.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text) as { id: string };
}

/** Waits for the rest-hook handshake to succeed (status active). */
async function waitActive(url: string, headers: Record<string, string>): Promise<void> {
  let status = '';
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    status = ((await (await fetch(url, { headers })).json()) as { status: string }).status;
    if (status === 'active') return;
  }
  throw new Error(`the rest-hook subscription is still '${status}' after 30 s`);
}
