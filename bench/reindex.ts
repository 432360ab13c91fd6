/**
 * How fast the search index is rebuilt (src/store/reindex.ts), and what a lone writer meets
 * meanwhile: N full Patients (the benchmarks' own) stored as an older Herald left them (bodies,
 * no index rows), then a rebuild while one client creates Patients back to back, on one store.
 *
 *   node --import tsx bench/reindex.ts [N=20000] [page=200] [sqlite|postgres]
 *
 * Prints the creates' latency before the rebuild, the rebuild's rate, and the creates' latency
 * during it. The store runs in this process (no HTTP), so the figures are the store's and the
 * extraction's: the page's bodies are extracted on this thread, as the server does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDefinitions } from '../src/fhir/definitions/index.ts';
import type { Resource } from '../src/fhir/types.ts';
import { extractIndex } from '../src/search/extract.ts';
import { searchRegistry } from '../src/search/parameters.ts';
import { emptyIndexRows } from '../src/search/types.ts';
import { openPostgresStore } from '../src/store/postgres/index.ts';
import { openSqliteStore } from '../src/store/sqlite/index.ts';
import { type Store, rebuildIndex } from '../src/store/store.ts';
import { createDatabase, dropDatabase } from './pg.ts';
import { PATIENT } from './scenarios/crud.ts';

const N = Number(process.argv[2] ?? 20_000);
const page = Number(process.argv[3] ?? 200);
const kind = process.argv[4] ?? 'sqlite';
const registry = searchRegistry(loadDefinitions('R4'));
const BASE = 'http://bench.test/fhir/R4';
const AT = '2024-01-01T00:00:00.000Z';
const patient = (id: string): Resource => ({ ...(PATIENT as Resource), id, meta: { versionId: '1', lastUpdated: AT } });
const indexOf = (r: Resource) => extractIndex(registry, r, { baseUrl: BASE });

const dir = mkdtempSync(join(tmpdir(), 'herald-reindex-bench-'));
const pg = kind === 'postgres' ? await createDatabase() : undefined;
const store: Store = pg ? await openPostgresStore({ url: pg.url, poolSize: 8 }) : await openSqliteStore({ path: join(dir, 'herald.db') });
try {
  for (let i = 0; i < N; i += 500) {
    await store.transaction(async (tx) => {
      for (let j = i; j < Math.min(N, i + 500); j++) {
        const id = `p${String(j).padStart(7, '0')}`;
        await tx.write('R4', { type: 'Patient', id, versionId: 1, lastUpdated: AT, method: 'POST', json: JSON.stringify(patient(id)), index: emptyIndexRows() });
      }
    });
  }
  await store.transaction((tx) => tx.setIndexState('R4', { built: { generation: 0, base: BASE } }));
  let n = 0;
  const create = async () => {
    const r = patient(`new${n++}`);
    const t0 = performance.now();
    await store.transaction((tx) => tx.write('R4', { type: 'Patient', id: r.id!, versionId: 1, lastUpdated: AT, method: 'POST', json: JSON.stringify(r), index: indexOf(r) }));
    return performance.now() - t0;
  };
  const pct = (a: number[], p: number) => [...a].sort((x, y) => x - y)[Math.floor((a.length - 1) * p)]!.toFixed(2);
  const before: number[] = [];
  for (let i = 0; i < 300; i++) before.push(await create());
  console.log(`${kind}, ${N} full Patients, pages of ${page}`);
  console.log(`creates before: p50 ${pct(before, 0.5)} ms, p99 ${pct(before, 0.99)} ms`);
  const during: number[] = [];
  let done = false;
  const t0 = performance.now();
  const rebuilding = rebuildIndex({ store, fv: 'R4', target: { generation: 1, base: BASE }, indexOf, log: { info() {}, warn() {} }, batch: page }).finally(() => (done = true));
  while (!done) during.push(await create());
  const outcome = await rebuilding;
  const ms = performance.now() - t0;
  console.log(`rebuild: ${outcome}, ${N} in ${(ms / 1000).toFixed(1)} s = ${Math.round((N / ms) * 1000)} resources/s`);
  console.log(`creates during: ${during.length}, p50 ${pct(during, 0.5)} ms, p99 ${pct(during, 0.99)} ms, max ${pct(during, 1)} ms`);
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  if (pg) await dropDatabase(pg.name);
}
