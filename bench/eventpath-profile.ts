/**
 * Profiles Herald during closed-loop creates that each match N websocket subscriptions (issue 15):
 * `node --import tsx bench/eventpath-profile.ts [N=100] [prof]` starts Herald with one topic,
 * creates N full-resource subscriptions bound on N sockets (bench/ws/client.ts), runs creates at
 * concurrency CONC (default 1) for SECS (default 5) seconds, and prints creates/s, notifications/s,
 * lag, Herald's CPU ms per create and per notification, CPU ms per thread (from /proc) and, with
 * `prof`, the main thread's top self-time functions over the run (CALLERS=<name> adds who calls
 * it; INCL=[n] the top n functions by inclusive time). SOCKETS binds only that many of the N subscriptions (the others match, unbound: what recording
 * costs apart from sending). SUBFILTER replaces the subscriptions' filter; BOUNDFILTER the filter of the SOCKETS bound ones (a bound socket that never hears: unbound matches alone); FULL=1 creates the benchmarks' full Patient instead of a minimal one. On a shared machine compare CPU per create
 * and profiles, alternating runs, not rates.
 */
import { mkdtemp, writeFile, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, startTarget, print, printColumns, printTable, check, checkValue, runLoad, settings } from './harness.ts';
import { runClient, startWithEnv } from './scenarios/websocket.ts';
import { PATIENT } from './scenarios/crud.ts';
const ROOTP = ROOT.replace(/\/$/, '');
const N = Number(process.argv[2] ?? 100);
// The sockets' client needs one subscription to bind at least; a run without a match binds one
// that never hears (SOCKETS=1 BOUNDFILTER='Patient?identifier=urn:bench|none').
if (!Number.isInteger(N) || N < 1) throw new Error(`N must be a whole number of at least 1 (got ${process.argv[2]}); for creates that match nothing, bind one subscription that never hears: SOCKETS=1 BOUNDFILTER='Patient?identifier=urn:bench|none'`);
const PROF = process.argv[3] === 'prof';
const h: any = { settings, startTarget, runLoad, print, printTable, check, checkValue, printColumns };
const topics = await mkdtemp(join(tmpdir(), 'p-topics-'));
const TOPIC_URL = 'http://example.org/topics/p';
await writeFile(join(topics, 't.json'), JSON.stringify({ resourceType: 'SubscriptionTopic', id: 'p', url: TOPIC_URL, status: 'active', resourceTrigger: [{ resource: 'Patient', supportedInteraction: ['create'] }], canFilterBy: [{ resource: 'Patient', filterParameter: 'identifier' }] }));
const profDir = await mkdtemp(join(tmpdir(), 'prof-'));
const env: Record<string, string> = { HERALD_TOPICS: topics };
if (PROF) Object.assign(env, { NODE_OPTIONS: `--import file://${ROOTP}/bench/ws/cpu-prof.mjs`, BENCH_WS_PROF_DIR: profDir });
const herald = await startWithEnv(h, env);
// A run that fails (no socket could be bound, …) must not leave its server running.
process.on('exit', () => {
  try {
    process.kill(herald.pid);
  } catch {}
});
const IG = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
const sub = { resourceType: 'Subscription', meta: { profile: [`${IG}/backport-subscription`] }, status: 'requested', reason: 'b', criteria: TOPIC_URL,
  _criteria: { extension: [{ url: `${IG}/backport-filter-criteria`, valueString: `Patient?identifier=urn:bench|h` }] },
  channel: { type: 'websocket', payload: 'application/fhir+json', _payload: { extension: [{ url: `${IG}/backport-payload-content`, valueCode: 'full-resource' }] } } };
if (process.env.SUBFILTER) sub._criteria.extension[0].valueString = process.env.SUBFILTER;
const base = `${herald.url}/fhir/R4`;
const r = await fetch(base, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: Array.from({ length: N }, (_, i) => ({ resource: process.env.BOUNDFILTER && i < Number(process.env.SOCKETS ?? N) ? { ...sub, _criteria: { extension: [{ ...sub._criteria.extension[0], valueString: process.env.BOUNDFILTER }] } } : sub, request: { method: 'POST', url: 'Subscription' } })) }) });
const ids = ((await r.json()) as any).entry.map((e: any) => e.resource.id);
const binds = await Promise.all(ids.map(async (id: string) => { const p: any = await (await fetch(`${base}/Subscription/${id}/$get-ws-binding-token`)).json(); return `bind-with-token ${p.parameter.find((x: any) => x.name === 'token').valueString}`; }));
import { readdirSync, readFileSync } from 'node:fs';
const threads = () => { const m = new Map<string, number>(); for (const t of readdirSync(`/proc/${herald.pid}/task`)) { try { const st = readFileSync(`/proc/${herald.pid}/task/${t}/stat`, 'utf8'); const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')')); const f = st.slice(st.lastIndexOf(')') + 2).split(' '); m.set(`${t} ${name}`, (Number(f[11]) + Number(f[12])) * 10); } catch {} } return m; };
const th0 = threads();
const t0 = Number(process.hrtime.bigint() / 1000n) + 2_500_000;
const o = await runClient(h, 'c1', { mode: 'closed', concurrency: Number(process.env.CONC ?? 1), wsUrl: herald.url.replace('http', 'ws') + '/ws', bind: binds[0], binds: binds.slice(0, Number(process.env.SOCKETS ?? N)), sockets: Number(process.env.SOCKETS ?? N), openBatch: N, serverPid: herald.pid, warmupSeconds: 1, seconds: Number(process.env.SECS ?? 5),
  trigger: { origin: herald.url, path: '/fhir/R4/Patient', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(process.env.FULL ? { ...PATIENT, identifier: [{ system: 'urn:bench', value: 'h' }] } : { resourceType: 'Patient', identifier: [{ system: 'urn:bench', value: 'h' }], name: [{ family: 'X' }] }) } });
const t1 = Number(process.hrtime.bigint() / 1000n);
const th1 = threads();
{ const rows = [...th1].map(([k, v]) => [k, v - (th0.get(k) ?? 0)] as const).filter(([, d]) => d > 50).sort((a, b) => b[1] - a[1]); print('threads (ms cpu over run): ' + rows.map(([k, d]) => `${k}=${d}`).join(', ')); }
// cpu.server is in cores over the closed loop, the last frames' delivery included (ws/client.ts):
// per create it is CPU ÷ creates; per notification, that ÷ the notifications a create made.
const perCreate = (1000 * o.cpu.server) / o.achievedRate;
const perEvent = o.pairs - o.missing > 0 ? (perCreate * o.pairs) / (Number(process.env.SOCKETS ?? N) * (o.pairs - o.missing)) : NaN;
print(`ms/create ${perCreate.toFixed(2)} ms/notif ${perEvent.toFixed(3)}`);
print(`creates/s ${o.achievedRate.toFixed(1)} frames/s ${o.framesPerSecond.toFixed(0)} lag p50 ${o.fromResponse.p50?.toFixed(1)} p99 ${o.fromResponse.p99?.toFixed(1)} write p50 ${o.write.p50.toFixed(1)} cpu ${JSON.stringify(o.cpu)}`);
await herald.stop();
if (PROF) {
  for (const f of await readdir(profDir)) {
    const prof = JSON.parse(await readFile(join(profDir, f), 'utf8'));
    const self = new Map<string, number>();
    const dt = new Map<number, number>();
    let t = prof.startTime; prof.samples.forEach((id: number, i: number) => { t += prof.timeDeltas[i] ?? 0; if (t >= t0 && t <= t1) dt.set(id, (dt.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)); });
    for (const n of prof.nodes) { const k = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber}`; self.set(k, (self.get(k) ?? 0) + (dt.get(n.id) ?? 0)); }
    if (process.env.CALLERS) {
      const parent = new Map<number, any>(); const byId = new Map<number, any>();
      for (const n of prof.nodes) { byId.set(n.id, n); for (const c of n.children ?? []) parent.set(c, n); }
      const agg = new Map<string, number>();
      for (const n of prof.nodes) { if (!`${n.callFrame.functionName} ${n.callFrame.url}`.includes(process.env.CALLERS)) continue; let p = parent.get(n.id); const chain: string[] = []; for (let i = 0; i < 4 && p; i++) { chain.push(p.callFrame.functionName || '(anon)'); p = parent.get(p.id); } const k = chain.join(' < '); agg.set(k, (agg.get(k) ?? 0) + (dt.get(n.id) ?? 0)); }
      for (const [k, v] of [...agg].sort((a, b) => b[1] - a[1]).slice(0, 8)) print(`  caller ${(v / 1000).toFixed(0)} ms ${k}`);
    }
    if (process.env.INCL) {
      // Inclusive time: each sample counted once for every function on its stack.
      const parent = new Map<number, any>(); const byId = new Map<number, any>();
      for (const n of prof.nodes) { byId.set(n.id, n); for (const c of n.children ?? []) parent.set(c, n); }
      const key = (n: any) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber}`;
      const incl = new Map<string, number>();
      for (const [id, d] of dt) { const seen = new Set<string>(); for (let n = byId.get(id); n; n = parent.get(n.id)) seen.add(key(n)); for (const k of seen) incl.set(k, (incl.get(k) ?? 0) + d); }
      for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.INCL) || 40)) print(`  incl ${(v / 1000).toFixed(0).padStart(7)} ms ${k}`);
    }
    const tot = [...self.values()].reduce((a, b) => a + b, 0);
    print(`== ${f} total ${(tot / 1000).toFixed(0)} ms`);
    for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 35)) print(`${(v / 1000).toFixed(0).padStart(7)} ms ${(100 * v / tot).toFixed(1).padStart(5)}% ${k}`);
  }
}
