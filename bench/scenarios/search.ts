/**
 * Search at 100,000 stored resources (bench/dataset.ts, loaded by transaction Bundles into a fresh
 * Herald on /fhir/R4): latency of an indexed token search, a date range, a chained search and an
 * `_include`, each beside a read by id at the same size; then in-memory matches/s of a typical
 * topic criterion (bench/match.ts, its own process, with Herald stopped).
 */
import { execFile } from 'node:child_process';
import { CODES, COUNTS, FAMILIES, ID_SYSTEM, LOINC, YEARS, bundles, loadAll, mrn, patientId, prng } from '../dataset.ts';
import { ROOT, ms, type Check, type Helpers, type Row, type RunSummary, type ScenarioResult } from '../harness.ts';
import type { MatchOutput } from '../match.ts';

const CONCURRENCY = [1, 8];
const BUNDLE_SIZE = 1000;
const ROTATE = 500;
const BASE = '/fhir/R4';

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
  const { seconds, warmupSeconds } = h.settings;
  const rows: Row[] = [];
  const checks: Check[] = [];
  h.print('Herald: starting');
  const target = await h.startTarget('herald');
  try {
    h.print(`loading ${(COUNTS.organizations + COUNTS.patients + COUNTS.observations).toLocaleString('en-US')} resources in transactions of ${BUNDLE_SIZE}…`);
    const load = await loadAll(`${target.url}${BASE}`, bundles(BUNDLE_SIZE));
    h.print(`  loaded ${load.resources.toLocaleString('en-US')} resources in ${load.seconds.toFixed(1)} s: ${Math.round(load.resources / load.seconds).toLocaleString('en-US')} resources/s`);
    rows.push({ scenario: 'load', conc: 2, results: { herald: loadSummary(load.resources, load.seconds) } });
    for (const q of queries()) {
      const first = await fetch(target.url + q.paths[0]!);
      const body = (await first.json()) as { total?: number; entry?: unknown[] };
      h.print(`  ${q.name}: e.g. ${q.paths[0]} -> ${first.status}${body.total !== undefined ? `, total ${body.total}` : ''}${body.entry ? `, ${body.entry.length} entries` : ''}`);
      for (const conc of CONCURRENCY) {
        const out = await h.runLoad(`search ${q.name} c${conc}`, {
          url: target.url, connections: conc, warmupSeconds, seconds, serverPid: target.pid,
          request: { method: 'GET', path: q.paths[0]! }, paths: q.paths,
        });
        rows.push({ scenario: q.name, conc, results: { herald: out.measured } });
      }
    }
  } finally {
    await target.stop();
  }

  h.print('');
  const floor = (conc: number) => rows.find((r) => r.scenario.startsWith('read') && r.conc === conc)!.results.herald!;
  h.printColumns(
    ['query (100k resources)', 'conc', 'req/s', 'p50 ms', 'p99 ms', 'p50 ÷ read', 'req/s ÷ read', 'cores: Herald + load'],
    rows.filter((r) => r.scenario !== 'load').map((r) => {
      const s = r.results.herald!;
      const f = floor(r.conc);
      return [r.scenario, String(r.conc), s.rps.toFixed(0), ms(s.p50), ms(s.p99), (s.p50 / f.p50).toFixed(2), (s.rps / f.rps).toFixed(2), `${s.cpu.server.toFixed(2)} + ${s.cpu.load.toFixed(2)}`];
    }),
  );
  const token = rows.find((r) => r.scenario.startsWith('token') && r.conc === 1)?.results.herald;
  checks.push(h.checkValue('indexed token search p50 < 5 ms at 100k (c1)', token?.p50 ?? NaN, 5, true, ' ms'));

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

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** A RunSummary for figures that are not request/response (load, matches): count and rate only. */
function loadSummary(count: number, seconds: number): RunSummary {
  return { requests: count, seconds, rps: count / seconds, p50: NaN, p99: NaN, non2xx: 0, errors: 0, timeouts: 0, statusCodes: {}, cpu: { server: NaN, load: NaN, other: NaN } };
}

function runMatch(seconds: number): Promise<MatchOutput> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', 'bench/match.ts', JSON.stringify({ seconds })], { cwd: ROOT }, (err, out, errOut) =>
      err ? reject(new Error(`bench/match.ts failed: ${errOut || err.message}`)) : resolve(JSON.parse(out) as MatchOutput),
    );
  });
}
