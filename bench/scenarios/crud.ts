/**
 * Create and read of one Patient over /fhir/R4, Herald on each store (BENCH_STORES: SQLite, and
 * PostgreSQL on a fresh database) against the floor (bench/floor.ts), at each concurrency. Reads
 * rotate through ids created during the create warm-ups.
 */
import { LABEL, STORE_TARGET, type Helpers, type LoadSpec, type Row, type ScenarioResult, type TargetName } from '../harness.ts';

/** The stated goals: Herald's (SQLite) req/s as a share of the floor's. */
const GOALS = [
  { scenario: 'creates', conc: 16, min: 0.5 },
  { scenario: 'reads', conc: 16, min: 0.5 },
];
/** Issue 16: Herald on PostgreSQL creates at c16 at least 3× Medplum's 288/s on the same machine class. */
const MEDPLUM_CREATES = 288;
const PG_CREATES_MIN = 3 * MEDPLUM_CREATES;

const MAX_IDS = 1000;

export const PATIENT = {
  resourceType: 'Patient',
  identifier: [{ system: 'urn:oid:1.2.36.146.595.217.0.1', value: '12345' }],
  active: true,
  name: [{ use: 'official', family: 'Chalmers', given: ['Peter', 'James'] }],
  telecom: [{ system: 'phone', value: '(03) 5555 6473', use: 'work' }],
  gender: 'male',
  birthDate: '1974-12-25',
  address: [{ use: 'home', line: ['534 Erewhon St'], city: 'PleasantVille', state: 'Vic', postalCode: '3999' }],
};

export default async function crud(h: Helpers): Promise<ScenarioResult> {
  const { concurrency, seconds, warmupSeconds } = h.settings;
  const rows: Row[] = ['creates', 'reads'].flatMap((scenario) => concurrency.map((conc) => ({ scenario, conc, results: {} })));
  const row = (scenario: string, conc: number) => rows.find((r) => r.scenario === scenario && r.conc === conc)!;

  const targets: TargetName[] = [...h.settings.stores.map((s) => STORE_TARGET[s]), 'floor'];
  for (const name of targets) {
    h.print(`${LABEL[name]}: starting`);
    const target = await h.startTarget(name);
    try {
      const base = { url: target.url, warmupSeconds, seconds, serverPid: target.pid, ...(target.db ? { serverDb: target.db.name } : {}) };
      const ids: string[] = [];
      for (const conc of concurrency) {
        const spec: LoadSpec = {
          ...base,
          connections: conc,
          request: { method: 'POST', path: '/fhir/R4/Patient', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(PATIENT) },
          collectIds: MAX_IDS - ids.length,
        };
        const out = await h.runLoad(`${LABEL[name]} creates c${conc}`, spec);
        ids.push(...out.ids);
        row('creates', conc).results[name] = out.measured;
        h.print(`  creates c${conc}: ${out.measured.rps.toFixed(0)} req/s`);
      }
      if (ids.length === 0) throw new Error('no Patient was created during warm-up, so reads have no ids (is BENCH_WARMUP_SECONDS 0?)');
      for (const conc of concurrency) {
        const spec: LoadSpec = { ...base, connections: conc, request: { method: 'GET', path: `/fhir/R4/Patient/${ids[0]}` }, paths: ids.map((id) => `/fhir/R4/Patient/${id}`) };
        const out = await h.runLoad(`${LABEL[name]} reads c${conc}`, spec);
        row('reads', conc).results[name] = out.measured;
        h.print(`  reads c${conc}: ${out.measured.rps.toFixed(0)} req/s (rotating over ${ids.length} ids)`);
      }
    } finally {
      await target.stop();
    }
  }

  h.print('');
  h.printTable(rows);
  const checks = targets.includes('herald') ? GOALS.filter((g) => concurrency.includes(g.conc)).map((g) => h.check(rows, g.scenario, g.conc, g.min)) : [];
  const pg = row('creates', 16)?.results.heraldPg;
  if (pg) checks.push(h.checkValue(`PostgreSQL creates at c16 >= ${PG_CREATES_MIN}/s (3x Medplum's ${MEDPLUM_CREATES}/s)`, pg.rps, PG_CREATES_MIN, false, ' creates/s'));
  return { name: 'crud', rows, checks };
}
