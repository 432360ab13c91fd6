/**
 * Search at 100,000 stored resources (bench/dataset.ts, loaded by transaction Bundles into a fresh
 * Herald on /fhir/R4, on each store of BENCH_STORES in turn): latency of an indexed token search, a date range, a chained search and an
 * `_include`, each beside a read by id at the same size; then in-memory matches/s of a typical
 * topic criterion (bench/match.ts, its own process, with Herald stopped).
 */
import { execFile } from 'node:child_process';
import { CODES, COUNTS, FAMILIES, ID_SYSTEM, LOINC, YEARS, bundles, loadAll, mrn, patientId, prng } from '../dataset.ts';
import { LABEL, ROOT, STORE_TARGET, ms, type Check, type Helpers, type Row, type RunSummary, type ScenarioResult, type TargetName } from '../harness.ts';
import type { MatchOutput } from '../match.ts';
import { analyze } from '../pg.ts';

const CONCURRENCY = [1, 8];
const BUNDLE_SIZE = 1000;
const ROTATE = 500;
const BASE = '/fhir/R4';
/** A query whose first request takes longer than this is reported, not put under load. */
const SLOW_MS = 2000;
const PROBE_TIMEOUT_MS = 30_000;

/** The queries, each with the paths it rotates through; `read` is the floor. */
function queries(): { name: string; paths: string[] }[] {
  const rnd = prng(7);
  const n = (k: number) => Math.floor(rnd() * k);
  const list = (f: () => string) => Array.from({ length: ROTATE }, f);
  const month = () => {
    const y = YEARS.from + n(YEARS.to - YEARS.from + 1);
    const m = n(12);
    const next = m === 11 ? `${y + 1}-01` : `${y}-${String(m + 2).padStart(2, '0')}`;
    return `date=ge${y}-${String(m + 1).padStart(2, '0')}-01&date=lt${next}-01`;
  };
  return [
    { name: 'read by id (floor)', paths: list(() => `${BASE}/Patient/${patientId(n(COUNTS.patients))}`) },
    { name: 'token: Patient?identifier', paths: list(() => `${BASE}/Patient?identifier=${ID_SYSTEM}|${mrn(n(COUNTS.patients))}`) },
    { name: 'date: Observation?date=<month>', paths: list(() => `${BASE}/Observation?${month()}&_count=20`) },
    { name: 'chain: subject:Patient.family', paths: list(() => `${BASE}/Observation?subject:Patient.family=${FAMILIES[n(FAMILIES.length)]}&_count=20`) },
    { name: 'include: code + Observation:subject', paths: list(() => `${BASE}/Observation?code=${LOINC}|${CODES[n(CODES.length)]!.code}&_include=Observation:subject&_count=20`) },
  ];
}

export default async function search(h: Helpers): Promise<ScenarioResult> {
  const { seconds } = h.settings;
  const rows: Row[] = [];
  const checks: Check[] = [];
  /** Queries too slow to put under load, with what one request took, per store. */
  const skipped = new Map<string, string>();
  const targets = h.settings.stores.map((s) => STORE_TARGET[s]);
  for (const name of targets) await measureStore(h, name, rows, skipped);

  const title = (name: TargetName) => (name === 'heraldPg' ? 'PostgreSQL' : 'SQLite');
  for (const name of targets) {
    h.print('');
    const floor = (conc: number) => rows.find((r) => r.scenario.startsWith('read') && r.conc === conc)!.results[name]!;
    h.printColumns(
      [`query (100k resources, ${title(name)})`, 'conc', 'req/s', 'p50 ms', 'p99 ms', 'p50 ÷ read', 'req/s ÷ read', `cores: Herald${name === 'heraldPg' ? ' + db' : ''} + load`],
      rows.filter((r) => r.scenario !== 'load').map((r) => {
        const s = r.results[name]!;
        const f = floor(r.conc);
        const slow = skipped.get(`${name} ${r.scenario}`);
        if (slow) return [r.scenario, String(r.conc), '-', slow, '-', '-', '-', 'not run'];
        const c = (n: number | null | undefined) => (typeof n === 'number' ? n.toFixed(2) : '?'); // NaN arrives as null
        const db = s.cpu.db !== undefined ? ` + ${c(s.cpu.db)}` : '';
        return [r.scenario, String(r.conc), s.rps.toFixed(0), ms(s.p50), ms(s.p99), (s.p50 / f.p50).toFixed(2), (s.rps / f.rps).toFixed(2), `${c(s.cpu.server)}${db} + ${c(s.cpu.load)}`];
      }),
    );
  }
  if (targets.length === 2) {
    h.print('');
    const cell = (r: RunSummary | undefined, slow: string | undefined) => (slow ? [slow, '-', '-'] : r ? [ms(r.p50), ms(r.p99), r.rps.toFixed(0)] : ['-', '-', '-']);
    h.printColumns(
      ['query (100k resources)', 'conc', 'SQLite p50 ms', 'p99 ms', 'req/s', 'PostgreSQL p50 ms', 'p99 ms', 'req/s', 'PostgreSQL/SQLite p50', 'req/s'],
      rows.map((r) => {
        const [a, b] = [r.results.herald, r.results.heraldPg];
        const [sa, sb] = [skipped.get(`herald ${r.scenario}`), skipped.get(`heraldPg ${r.scenario}`)];
        if (r.scenario === 'load') return ['load (resources/s)', '2', '-', '-', a!.rps.toFixed(0), '-', '-', b!.rps.toFixed(0), '-', (b!.rps / a!.rps).toFixed(2)];
        const ok = a && b && !sa && !sb;
        return [r.scenario, String(r.conc), ...cell(a, sa), ...cell(b, sb), ok ? (b.p50 / a.p50).toFixed(2) : '-', ok ? (b.rps / a.rps).toFixed(2) : '-'];
      }),
    );
  }
  for (const name of targets) {
    const token = rows.find((r) => r.scenario.startsWith('token') && r.conc === 1)?.results[name];
    const on = name === 'heraldPg' ? ', PostgreSQL' : targets.length > 1 ? ', SQLite' : '';
    checks.push(h.checkValue(`indexed token search p50 < 5 ms at 100k (c1${on})`, token?.p50 ?? NaN, 5, true, ' ms'));
  }

  const matchSeconds = Math.max(1, seconds);
  h.print(`\nin-memory matching, one process, ${matchSeconds}s (Herald stopped)`);
  const m = await runMatch(matchSeconds);
  h.printColumns(
    ['criterion (R4 Encounter)', 'matches/s', 'extract only/s', 'matched', 'cores'],
    [[m.criteria, fmt(m.matchesPerSecond), fmt(m.extractsPerSecond), String(m.matched), m.cores.toFixed(2)]],
  );
  checks.push(h.checkValue('>= 200,000 matches/s', m.matched ? m.matchesPerSecond : NaN, 200_000, false, ' matches/s'));
  return { name: 'search', rows: [...rows, { scenario: 'matches/s', conc: 1, results: { herald: loadSummary(m.matchesPerSecond * matchSeconds, matchSeconds) } }], checks };
}

/** Loads the data set into a fresh Herald on one store and puts each query under load; fills `rows[…].results[name]`. */
async function measureStore(h: Helpers, name: TargetName, rows: Row[], skipped: Map<string, string>): Promise<void> {
  const { seconds, warmupSeconds } = h.settings;
  const row = (scenario: string, conc: number) => {
    let r = rows.find((x) => x.scenario === scenario && x.conc === conc);
    if (!r) rows.push((r = { scenario, conc, results: {} }));
    return r;
  };
  h.print(`${LABEL[name]}: starting`);
  const target = await h.startTarget(name);
  try {
    h.print(`loading ${(COUNTS.organizations + COUNTS.patients + COUNTS.observations).toLocaleString('en-US')} resources in transactions of ${BUNDLE_SIZE}…`);
    const load = await loadAll(`${target.url}${BASE}`, bundles(BUNDLE_SIZE));
    h.print(`  loaded ${load.resources.toLocaleString('en-US')} resources in ${load.seconds.toFixed(1)} s: ${Math.round(load.resources / load.seconds).toLocaleString('en-US')} resources/s`);
    row('load', 2).results[name] = loadSummary(load.resources, load.seconds);
    if (target.db) {
      // The planner needs statistics of the freshly loaded tables; autovacuum would gather them a minute or so later.
      const a = await analyze(target.db.url);
      h.print(`  ANALYZE of the database: ${(a.ms / 1000).toFixed(1)} s${a.autovacuum ? '' : ' (autovacuum is off on this server: without it the planner would have no statistics at all)'}`);
    }
    for (const q of queries()) {
      const p = await probe(target.url, q.paths[0]!);
      h.print(`  ${q.name}: e.g. ${q.paths[0]} -> ${p.outcome} in ${p.ms.toFixed(1)} ms`);
      if (p.ms > SLOW_MS) {
        h.print(`!!! search ${q.name} (${LABEL[name]}): one request took ${p.ms > PROBE_TIMEOUT_MS ? 'over ' : ''}${(p.ms / 1000).toFixed(1)} s; not put under load`);
        skipped.set(`${name} ${q.name}`, `${p.ms > PROBE_TIMEOUT_MS ? '>' : ''}${(p.ms / 1000).toFixed(1)} s, 1 request`);
        for (const conc of CONCURRENCY) row(q.name, conc).results[name] = { ...loadSummary(1, p.ms / 1000), p50: p.ms, p99: p.ms };
        const busy = await waitResponsive(target.url);
        if (busy > 1000) h.print(`!!! search ${q.name}: Herald stayed unresponsive for another ${(busy / 1000).toFixed(0)} s (the query runs on)`);
        continue;
      }
      for (const conc of CONCURRENCY) {
        const out = await h.runLoad(`search ${q.name} c${conc} (${LABEL[name]})`, {
          url: target.url, connections: conc, warmupSeconds, seconds, serverPid: target.pid, ...(target.db ? { serverDb: target.db.name } : {}),
          request: { method: 'GET', path: q.paths[0]! }, paths: q.paths,
        });
        row(q.name, conc).results[name] = out.measured;
      }
    }
  } finally {
    await target.stop();
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** A RunSummary for figures that are not request/response (load, matches): count and rate only. */
function loadSummary(count: number, seconds: number): RunSummary {
  return { requests: count, seconds, rps: count / seconds, p50: NaN, p99: NaN, non2xx: 0, errors: 0, timeouts: 0, statusCodes: {}, cpu: { server: NaN, load: NaN, other: NaN } };
}

/** One request, timed; a timeout leaves the server busy with it (SQLite queries are synchronous). */
async function probe(url: string, path: string): Promise<{ ms: number; outcome: string }> {
  const t0 = performance.now();
  try {
    const res = await fetch(url + path, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    const body = (await res.json()) as { total?: number; entry?: unknown[] };
    const t = performance.now() - t0;
    return { ms: t, outcome: `${res.status}${body.total !== undefined ? `, total ${body.total}` : ''}${body.entry ? `, ${body.entry.length} entries` : ''}` };
  } catch (err) {
    return { ms: performance.now() - t0, outcome: `no answer (${(err as Error).name})` };
  }
}

/** Waits (up to 30 min) until the server answers /healthz again; returns how long that took (ms). */
async function waitResponsive(url: string): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < 30 * 60_000) {
    const ok = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(60_000) }).then((r) => r.ok, () => false);
    if (ok) return performance.now() - t0;
  }
  throw new Error('Herald did not answer /healthz for 30 min after a slow search');
}

function runMatch(seconds: number): Promise<MatchOutput> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', 'bench/match.ts', JSON.stringify({ seconds })], { cwd: ROOT }, (err, out, errOut) =>
      err ? reject(new Error(`bench/match.ts failed: ${errOut || err.message}`)) : resolve(JSON.parse(out) as MatchOutput),
    );
  });
}
