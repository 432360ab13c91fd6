/**
 * Isolation (issue 14): the worst legal searches must not stall anyone else. A fresh Herald gets the
 * first 30,000 resources of bench/dataset.ts on /fhir/R4; then `GET /healthz` is measured at c1
 * alone, and again while another load generator sends the costliest searches the search budget
 * still accepts (multi-key sorts over every Observation, a 4-link chain, `_has` with a sort, an
 * `_include` of a large page), at c4. The figure that matters is /healthz p99 under that load.
 */
import { COUNTS, FAMILIES, bundles, loadAll } from '../dataset.ts';
import type { Check, Helpers, Row, ScenarioResult } from '../harness.ts';

const BASE = '/fhir/R4';
const RESOURCES = 30_000;
const GOAL_P99_MS = 50;

/** The costliest searches within the budget (src/search/budget.ts): each scans and sorts a lot. */
function worstSearches(): string[] {
  const family = (i: number) => FAMILIES[i % FAMILIES.length]!;
  return Array.from({ length: 50 }, (_, i) => [
    `${BASE}/Observation?_sort=-date,code,value-quantity,subject,-_lastUpdated&_count=1000&_total=accurate`,
    `${BASE}/Observation?subject:Patient.organization.name:contains=${i % 10}&_sort=-date,value-quantity&_count=1000`,
    `${BASE}/Patient?_has:Observation:subject:code:not=8867-4&_sort=family,given,birthdate,-_lastUpdated&_count=1000`,
    `${BASE}/Observation?_include=Observation:subject&_revinclude=Provenance:target&_sort=value-quantity&_count=1000&subject:Patient.family:contains=${family(i).slice(1, 3)}`,
  ][i % 4]!);
}

export default async function isolation(h: Helpers): Promise<ScenarioResult> {
  const { seconds, warmupSeconds } = h.settings;
  const rows: Row[] = [];
  const checks: Check[] = [];
  h.print('Herald: starting');
  const target = await h.startTarget('herald');
  try {
    const source = bundles(1000);
    const limited = (function* () {
      let n = 0;
      for (const b of source) {
        if (n >= RESOURCES) return;
        n += (b.entry as unknown[]).length;
        yield b;
      }
    })();
    const load = await loadAll(`${target.url}${BASE}`, limited);
    h.print(`  loaded ${load.resources.toLocaleString('en-US')} of ${(COUNTS.organizations + COUNTS.patients + COUNTS.observations).toLocaleString('en-US')} dataset resources in ${load.seconds.toFixed(1)} s`);
    const health = { url: target.url, connections: 1, warmupSeconds, seconds, serverPid: target.pid, request: { method: 'GET', path: '/healthz' } };
    const alone = await h.runLoad('healthz alone', health);
    rows.push({ scenario: '/healthz alone', conc: 1, results: { herald: alone.measured } });
    const paths = worstSearches();
    const [attack, busy] = await Promise.all([
      h.runLoad('worst legal searches', { url: target.url, connections: 4, warmupSeconds, seconds, serverPid: target.pid, request: { method: 'GET', path: paths[0]! }, paths }),
      h.runLoad('healthz beside the worst searches', health),
    ]);
    rows.push({ scenario: 'worst legal searches', conc: 4, results: { herald: attack.measured } });
    rows.push({ scenario: '/healthz beside them', conc: 1, results: { herald: busy.measured } });
    h.print('');
    h.printColumns(
      ['load', 'conc', 'req/s', 'p50 ms', 'p99 ms', 'status codes'],
      rows.map((r) => {
        const m = r.results.herald!;
        const f = (v: number | null | undefined) => (typeof v === 'number' ? v.toFixed(2) : 'n/a');
        return [r.scenario, String(r.conc), m.rps.toFixed(1), f(m.p50), f(m.p99), JSON.stringify(m.statusCodes)];
      }),
    );
    checks.push(h.checkValue(`/healthz p99 beside the worst legal searches < ${GOAL_P99_MS} ms`, busy.measured.p99 ?? Number.NaN, GOAL_P99_MS, true, ' ms'));
  } finally {
    await target.stop();
  }
  return { name: 'isolation', rows, checks };
}
