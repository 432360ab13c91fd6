/**
 * The websocket load process, run apart from the server it measures (the server's event loop is
 * never shared):
 *   node --import tsx bench/ws/client.ts '<WsClientSpec as JSON>'   → one WsClientOutput as JSON on stdout
 * Opens and binds N sockets in batches, then makes the writes that cause events, from this same
 * process so one clock (performance.now) times the write and every arrival:
 *   latency: writes at a steady rate (open loop, paced by a timer), warm-up then measured; every
 *            (socket, event) pair gives arrival − 201 received and arrival − request start.
 *   closed:  `concurrency` writers, each sending its next write once the previous one answered
 *            (closed loop), warm-up then measured; the same figures as latency.
 *   fanout:  one write at a time, each once the previous one has reached every socket; per write,
 *            the last socket's arrival − 201 received (and − request start).
 *   peer:    no writes: one of several clients of a fan-out whose sockets are more than one process
 *            can hold (bench/scenarios/fanout-nodes.ts makes the writes); it reports each event's
 *            arrivals at its sockets on the machine's monotonic clock, which every process shares
 *            (`WsPeerLine`).
 * An event is recognised on arrival by the Patient id its frame names (the id the 201 returned), so
 * arrivals before the 201 (the broadcast may outrun the HTTP answer) are matched too.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { Pool } from 'undici';
import { WebSocket } from 'ws';
import { type CpuShare, measureCpu, processCpuSeconds, rssKb } from '../cpu.ts';
import { createInterface } from 'node:readline';
import type { Spread, WsClientOutput, WsClientSpec, WsPeerLine } from './protocol.ts';

const spec = JSON.parse(process.argv[2] ?? '') as WsClientSpec;
const log = (line: string) => process.stderr.write(`ws client: ${line}\n`);

// ---------------------------------------------------------------- events

interface Ev {
  /** Made by a write of the measured part (false: warm-up, or not (yet) known). */
  measured: boolean;
  /** performance.now() at request start and when the 201 was read; NaN until known. */
  tStart: number;
  tResp: number;
  /** Arrival per socket index; NaN until it arrives. */
  arrivals: Float64Array;
  count: number;
  first: number;
  last: number;
  /** With `listen`: when the store's announcement of this create's commit arrived (see listen()); NaN until then. */
  announced: number;
  done?: () => void;
}

const events = new Map<string, Ev>();
let duplicates = 0;
let stray = 0;

function eventFor(id: string): Ev {
  let ev = events.get(id);
  if (!ev) {
    ev = { measured: false, tStart: NaN, tResp: NaN, arrivals: new Float64Array(spec.sockets).fill(NaN), count: 0, first: NaN, last: NaN, announced: NaN };
    events.set(id, ev);
  }
  return ev;
}

const PATIENT = Buffer.from('Patient/');
const HANDSHAKE = Buffer.from('"handshake"');
const QUOTE = 0x22;
const SLASH = 0x2f;

/** The Patient id the frame's first `Patient/<id>` names (the focus, or its fullUrl). */
function focusId(frame: Buffer): string | undefined {
  const at = frame.indexOf(PATIENT);
  if (at < 0) return undefined;
  const from = at + PATIENT.length;
  let end = from;
  while (end < frame.length && frame[end] !== QUOTE && frame[end] !== SLASH) end++;
  return frame.toString('latin1', from, end);
}

// ---------------------------------------------------------------- sockets

const sockets: (WebSocket | undefined)[] = new Array(spec.sockets);
let bound = 0;
let opened = 0;
let openFailures = 0;
let openErrorSample: string | undefined;
let closing = false;
const unexpectedCloses: Record<string, number> = {};
let captured: WsClientOutput['captured'];
let capturedHandshake: string | undefined;

function openOne(i: number): Promise<void> {
  return new Promise((resolve) => {
    let isBound = false;
    let settled = false;
    const settle = (err?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        openFailures++;
        openErrorSample ??= err;
        ws.terminate();
      }
      resolve();
    };
    const timer = setTimeout(() => settle(`socket ${i}: not bound within 60 s`), 60_000);
    const ws = new WebSocket(spec.wsUrl, { perMessageDeflate: false, skipUTF8Validation: true });
    ws.once('open', () => {
      opened++;
      ws.send(spec.binds?.[i] ?? spec.bind);
    });
    ws.on('error', (err) => settle(`socket ${i}: ${err.message}`));
    ws.on('close', (code) => {
      if (!settled) return settle(`socket ${i}: closed with ${code} before its handshake`);
      if (isBound && !closing) unexpectedCloses[code] = (unexpectedCloses[code] ?? 0) + 1;
    });
    ws.on('message', (data: Buffer) => {
      const now = performance.now();
      if (!isBound) {
        if (data.indexOf(HANDSHAKE) < 0) return settle(`socket ${i}: expected a handshake, got ${data.toString().slice(0, 200)}`);
        isBound = true;
        bound++;
        sockets[i] = ws;
        if (spec.capture) capturedHandshake ??= data.toString();
        return settle();
      }
      const id = focusId(data);
      if (id === undefined) {
        stray++;
        return;
      }
      if (spec.capture && !captured && capturedHandshake) captured = { handshake: capturedHandshake, event: data.toString(), id };
      const ev = eventFor(id);
      if (!Number.isNaN(ev.arrivals[i]!)) {
        duplicates++;
        return;
      }
      ev.arrivals[i] = now;
      if (ev.count++ === 0) ev.first = now;
      ev.last = now;
      if (ev.count === bound) {
        ev.done?.();
        if (spec.mode === 'peer') peerLine({ kind: 'event', id, first: MONOTONIC + ev.first, last: MONOTONIC + ev.last, ...(captured?.id === id ? { captured } : {}) });
      }
    });
  });
}

async function openAll(): Promise<void> {
  for (let from = 0; from < spec.sockets; from += spec.openBatch) {
    const batch: Promise<void>[] = [];
    for (let i = from; i < Math.min(spec.sockets, from + spec.openBatch); i++) batch.push(openOne(i));
    await Promise.all(batch);
  }
  if (openFailures > 0) log(`!!! ${openFailures} of ${spec.sockets} sockets could not be opened or bound; first: ${openErrorSample}`);
}

// ---------------------------------------------------------------- announcements

/**
 * With `listen`: LISTENs on the PostgreSQL store's commit channel, as every Herald node does, and
 * notes when each create's announcement arrives. An announcement names the subscriptions whose
 * logs a commit appended to (`{ n, c: [{ fv, s: [ids] }] }`, src/store/postgres/signals.ts), not
 * the Patient, so announcements are matched to writes in the order the writes started: at the
 * paced rates this client drives (writes milliseconds apart, each committed before the next
 * starts) that is the commit order. A write that failed has no commit and is left out of the
 * queue when its answer comes; one still in flight when its successor's announcement arrives would
 * shift the matching by one (the figures would then show it as negative and late pairs).
 */
interface Slot {
  announced: number;
  ev?: Ev;
  failed?: boolean;
}
const slots: Slot[] = [];
let nextSlot = 0;

function announced(now: number): void {
  while (nextSlot < slots.length && slots[nextSlot]!.failed) nextSlot++;
  const slot = slots[nextSlot++];
  if (!slot) return;
  slot.announced = now;
  if (slot.ev && Number.isNaN(slot.ev.announced)) slot.ev.announced = now;
}

async function listen(): Promise<pg.Client | undefined> {
  if (!spec.listen) return undefined;
  const client = new pg.Client({ connectionString: spec.listen.url });
  await client.connect();
  client.on('notification', (m) => {
    const now = performance.now();
    if (m.channel !== spec.listen!.channel || !m.payload) return;
    try {
      const p = JSON.parse(m.payload) as { c?: { s?: string[] }[] };
      if ((p.c ?? []).some((c) => (c.s?.length ?? 0) > 0)) announced(now);
    } catch {
      // not an announcement this client understands
    }
  });
  await client.query(`LISTEN ${spec.listen.channel}`);
  return client;
}

// ---------------------------------------------------------------- writes

const pool = new Pool(spec.trigger.origin, { connections: 64, keepAliveTimeout: 60_000 });
let writes = 0;
let errors = 0;
let errorSample: string | undefined;
const statusCodes: Record<string, number> = {};
const writeTimes: number[] = [];

/** One write; resolves with its event (undefined if it failed). */
async function write(measured: boolean): Promise<Ev | undefined> {
  if (measured) writes++;
  const tStart = performance.now();
  const slot: Slot = { announced: NaN };
  if (spec.listen) slots.push(slot);
  try {
    const res = await pool.request({ method: 'POST', path: spec.trigger.path, headers: spec.trigger.headers, body: spec.trigger.body });
    const text = await res.body.text();
    const tResp = performance.now();
    if (measured) {
      statusCodes[res.statusCode] = (statusCodes[res.statusCode] ?? 0) + 1;
      writeTimes.push(tResp - tStart);
    }
    if (res.statusCode !== 201) {
      slot.failed = true;
      errorSample ??= `${res.statusCode}: ${text.slice(0, 300)}`;
      return undefined;
    }
    const location = String(res.headers.location ?? '');
    const id = /Patient\/([^/]+)/.exec(location)?.[1] ?? (JSON.parse(text) as { id: string }).id;
    const ev = eventFor(id);
    ev.tStart = tStart;
    ev.tResp = tResp;
    ev.measured = measured;
    slot.ev = ev;
    if (!Number.isNaN(slot.announced)) ev.announced = slot.announced;
    return ev;
  } catch (err) {
    if (measured) errors++;
    slot.failed = true;
    errorSample ??= (err as Error).message;
    return undefined;
  }
}

/**
 * The server's, its database's and this client's CPU in cores over a measured span, rescaled to
 * a span `scale` times shorter (their CPU in the rest of the span, the drain, counts in). The
 * rest of the machine is not rescaled: other processes do not idle while the frames drain.
 */
function overLoop(cpu: CpuShare, scale: number): CpuShare {
  const r = (n: number) => Math.round(n * scale * 100) / 100;
  return { server: r(cpu.server), load: r(cpu.load), other: cpu.other, ...(cpu.db === undefined ? {} : { db: r(cpu.db) }) };
}

/** Resolves once the event has reached every bound socket, or after `ms`. */
function arrived(ev: Ev, ms: number): Promise<void> {
  if (ev.count >= bound) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => (ev.done = undefined, resolve()), ms);
    ev.done = () => (clearTimeout(timer), ev.done = undefined, resolve());
  });
}

/** Writes at `rate` per second for `seconds`, open loop: the i-th write starts at t0 + i/rate whatever the answers. */
async function paced(rate: number, seconds: number, measured: boolean): Promise<{ evs: Ev[]; wall: number }> {
  const total = Math.max(1, Math.round(rate * seconds));
  const interval = 1000 / rate;
  const pending: Promise<Ev | undefined>[] = [];
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    let i = 0;
    const tick = () => {
      const now = performance.now();
      while (i < total && t0 + i * interval <= now) {
        pending.push(write(measured));
        i++;
      }
      if (i >= total) return resolve();
      setTimeout(tick, Math.max(0, t0 + i * interval - performance.now()));
    };
    tick();
  });
  const wall = (performance.now() - t0) / 1000;
  const evs = (await Promise.all(pending)).filter((e): e is Ev => !!e);
  return { evs, wall };
}

/** `concurrency` closed-loop writers for `seconds`: each sends its next write once the previous one answered. */
async function closedLoop(concurrency: number, seconds: number, measured: boolean): Promise<{ evs: Ev[]; wall: number }> {
  const evs: Ev[] = [];
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const ev = await write(measured);
        if (ev) evs.push(ev);
      }
    }),
  );
  return { evs, wall: (performance.now() - t0) / 1000 };
}


// ---------------------------------------------------------------- peer

/** performance.now() + this = the machine's monotonic clock in ms (process.hrtime), shared with the other processes. */
const MONOTONIC = Number(process.hrtime.bigint()) / 1e6 - performance.now();

function peerLine(line: WsPeerLine): void {
  process.stdout.write(JSON.stringify(line) + '\n');
}

/** peer: says it is ready, reports events as they complete (the message handler), and ends when told. */
async function peer(rssBefore: number, rssBound: number): Promise<void> {
  peerLine({ kind: 'ready', sockets: spec.sockets, opened, bound, openFailures, ...(openErrorSample ? { openErrorSample } : {}), serverRssKb: { before: rssBefore, bound: rssBound } });
  const ids = await new Promise<string[]>((resolve, reject) => {
    const lines = createInterface({ input: process.stdin });
    lines.on('line', (line) => {
      if (line.startsWith('end')) resolve(line.slice(3).trim().split(',').filter(Boolean));
    });
    lines.once('close', () => reject(new Error('stdin closed before the end line')));
  });
  const pairs = ids.length * bound;
  const missing = ids.reduce((n, id) => n + bound - Math.min(bound, events.get(id)?.count ?? 0), 0);
  if (missing > 0) log(`!!! ${missing} of ${pairs} (socket, event) pairs never arrived`);
  closing = true;
  peerLine({ kind: 'end', pairs, missing, duplicates, unexpectedCloses });
  for (const ws of sockets) ws?.terminate();
  await pool.close();
  process.exit(0);
}

// ---------------------------------------------------------------- figures

function spread(values: Float64Array | number[]): Spread {
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
  return { n: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.length ? sorted[sorted.length - 1]! : NaN };
}

const empty: Spread = { n: 0, p50: NaN, p99: NaN, max: NaN };

async function main(): Promise<void> {
  const rssBefore = rssKb(spec.serverPid);
  await openAll();
  const rssBound = rssKb(spec.serverPid);
  if (bound === 0) throw new Error(`no socket could be bound (${openErrorSample ?? 'no error'})`);
  log(`${bound} of ${spec.sockets} sockets bound`);
  if (spec.mode === 'peer') return peer(rssBefore, rssBound);
  const listener = await listen();
  let evs: Ev[] = [];
  let framesWall = NaN;
  const rounds: WsClientOutput['rounds'] = [];
  let achievedRate = NaN;

  let cpu;
  if (spec.mode === 'closed') {
    const concurrency = spec.concurrency ?? 1;
    if ((spec.warmupSeconds ?? 0) > 0) {
      const warm = await closedLoop(concurrency, spec.warmupSeconds!, false);
      await Promise.all(warm.evs.map((ev) => arrived(ev, 10_000)));
    }
    let loopWall = NaN;
    ({ cpu } = await measureCpu(spec.serverPid, async () => {
      const t0 = performance.now();
      const run = await closedLoop(concurrency, spec.seconds ?? 5, true);
      evs = run.evs;
      loopWall = run.wall;
      achievedRate = writes / run.wall;
      await Promise.all(evs.map((ev) => arrived(ev, 15_000)));
      framesWall = (performance.now() - t0) / 1000;
    }, spec.serverDb));
    // The CPU of the loop and of delivering its last frames, in cores over the loop itself: the
    // wait for those frames is mostly idle, and up to 15 s of it when a bound socket hears nothing
    // (eventpath-profile's BOUNDFILTER), which put the cores at a third of the truth. So
    // cpu.server ÷ achievedRate is the server's CPU per write, the drain's included.
    cpu = overLoop(cpu, framesWall / loopWall);
  } else if (spec.mode === 'latency') {
    const rate = spec.rate ?? 200;
    if ((spec.warmupSeconds ?? 0) > 0) {
      const warm = await paced(rate, spec.warmupSeconds!, false);
      await Promise.all(warm.evs.map((ev) => arrived(ev, 10_000)));
    }
    ({ cpu } = await measureCpu(spec.serverPid, async () => {
      const t0 = performance.now();
      const run = await paced(rate, spec.seconds ?? 5, true);
      evs = run.evs;
      achievedRate = writes / run.wall;
      await Promise.all(evs.map((ev) => arrived(ev, 15_000)));
      framesWall = (performance.now() - t0) / 1000;
    }, spec.serverDb));
  } else {
    const warm = await write(false);
    if (warm) await arrived(warm, 30_000);
    ({ cpu } = await measureCpu(spec.serverPid, async () => {
      const t0 = performance.now();
      for (let r = 0; r < (spec.repeats ?? 5); r++) {
        await new Promise((res) => setTimeout(res, 300));
        const cpu0 = processCpuSeconds(spec.serverPid ?? 0);
        const ev = await write(true);
        if (!ev) continue;
        await arrived(ev, 30_000);
        const serverCpuMs = (processCpuSeconds(spec.serverPid ?? 0) - cpu0) * 1000;
        evs.push(ev);
        if (ev.count < bound) log(`!!! fan-out write ${r + 1}: reached ${ev.count} of ${bound} sockets within 30 s`);
        rounds.push({ lastFromResponse: ev.last - ev.tResp, lastFromStart: ev.last - ev.tStart, firstFromResponse: ev.first - ev.tResp, serverCpuMs });
      }
      framesWall = (performance.now() - t0) / 1000;
      achievedRate = writes / framesWall;
    }));
  }

  // Every (socket, event) pair of the measured part, over the sockets that were bound.
  const live = sockets.map((s, i) => (s ? i : -1)).filter((i) => i >= 0);
  const pairs = evs.length * live.length;
  let delivered = 0;
  const timed = spec.mode !== 'fanout';
  const fromResponse = timed ? new Float64Array(pairs) : new Float64Array(0);
  const fromStart = timed ? new Float64Array(pairs) : new Float64Array(0);
  for (const ev of evs) {
    for (const i of live) {
      const t = ev.arrivals[i]!;
      if (Number.isNaN(t)) continue;
      if (timed) {
        fromResponse[delivered] = t - ev.tResp;
        fromStart[delivered] = t - ev.tStart;
      }
      delivered++;
    }
  }
  const announced = spec.listen ? evs.filter((ev) => !Number.isNaN(ev.announced)) : [];
  const firstArrival = (ev: Ev) => Math.min(...live.map((i) => ev.arrivals[i]!).filter((t) => !Number.isNaN(t)));
  const announcement = spec.listen
    ? {
        n: evs.length,
        missing: evs.length - announced.length,
        fromResponse: spread(announced.map((ev) => ev.announced - ev.tResp)),
        toFrame: spread(announced.map((ev) => firstArrival(ev) - ev.announced).filter(Number.isFinite)),
      }
    : undefined;
  const missing = pairs - delivered;
  if (missing > 0) log(`!!! ${missing} of ${pairs} (socket, event) pairs never arrived`);
  if (stray > 0) log(`${stray} frames named no Patient (heartbeats or outcomes?)`);

  closing = true;
  const output: WsClientOutput = {
    sockets: spec.sockets,
    opened,
    bound,
    openFailures,
    ...(openErrorSample ? { openErrorSample } : {}),
    unexpectedCloses,
    writes,
    statusCodes,
    non201: writes - errors - (statusCodes['201'] ?? 0),
    errors,
    ...(errorSample ? { errorSample } : {}),
    achievedRate,
    write: spread(writeTimes),
    pairs,
    missing,
    duplicates,
    fromResponse: timed ? spread(fromResponse.subarray(0, delivered)) : empty,
    fromStart: timed ? spread(fromStart.subarray(0, delivered)) : empty,
    rounds,
    measuredSeconds: framesWall,
    framesPerSecond: delivered / framesWall,
    serverRssKb: { before: rssBefore, bound: rssBound },
    cpu: cpu!,
    ...(captured ? { captured } : {}),
    ...(announcement ? { announcement } : {}),
  };
  process.stdout.write(JSON.stringify(output) + '\n');
  for (const ws of sockets) ws?.terminate();
  await listener?.end();
  await pool.close();
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`ws client failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
