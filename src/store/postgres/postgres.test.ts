import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createDatabase, dropDatabase } from '../../../test/helpers/postgres.ts';
import { storeContract } from '../store.contract.ts';
import pg from 'pg';
import { loadDefinitions } from '../../fhir/definitions/index.ts';
import { searchRegistry } from '../../search/parameters.ts';
import { parseSearch } from '../../search/parse.ts';
import { pageQuery } from '../search-page.ts';
import { openPostgresStore } from './index.ts';
import { dialect, numbered } from './reads.ts';

const made: string[] = [];
after(async () => Promise.all(made.map(dropDatabase)));

storeContract('postgres', async () => {
  const url = await createDatabase();
  made.push(url);
  return openPostgresStore({ url, poolSize: 4 });
});

describe('postgres: table statistics', () => {
  // Without statistics PostgreSQL plans as if each table held a row or two: two `_has` conditions
  // over 150 resources nested-looped for 8-18 s. The store analyzes young tables itself (analyze.ts).
  it('analyzes the tables once a node has written its first 50 versions', async () => {
    const url = await createDatabase();
    made.push(url);
    const store = await openPostgresStore({ url, poolSize: 2 });
    const empty = { string: [], token: [], reference: [], date: [], number: [], quantity: [], uri: [] };
    await store.transaction(async (tx) => {
      for (let i = 0; i < 60; i++)
        await tx.write('R4', { type: 'Patient', id: `p${i}`, versionId: 1, lastUpdated: '2024-01-01T00:00:00.000Z', method: 'PUT', json: `{"resourceType":"Patient","id":"p${i}"}`, index: empty });
    });
    await store.close(); // waits for a run under way
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      // reltuples is -1 until a table has been analyzed (or vacuumed), then its row count.
      const { rows } = await client.query("SELECT relname, reltuples FROM pg_class WHERE relname IN ('resources', 'sp_reference', 'sp_date') ORDER BY relname");
      assert.deepEqual(
        rows.map((r) => [r.relname, Number(r.reltuples)]),
        [
          ['resources', 60],
          ['sp_date', 0],
          ['sp_reference', 0],
        ],
      );
    } finally {
      await client.end();
    }
  });
});

describe('postgres: shared secrets', () => {
  it('keeps the first candidate stored under a name, for every store on the database and after a reopen', async () => {
    const url = await createDatabase();
    made.push(url);
    const [a, b] = await Promise.all([openPostgresStore({ url, poolSize: 2 }), openPostgresStore({ url, poolSize: 2 })]);
    const [fromA, fromB] = await Promise.all([a.sharedSecret!('k', 'from-a'), b.sharedSecret!('k', 'from-b')]);
    assert.equal(fromA, fromB);
    assert.ok(['from-a', 'from-b'].includes(fromA));
    assert.equal(await a.sharedSecret!('other', 'x'), 'x', 'names are independent');
    await Promise.all([a.close(), b.close()]);
    const again = await openPostgresStore({ url, poolSize: 2 });
    assert.equal(await again.sharedSecret!('k', 'later'), fromA);
    await again.close();
  });
});

describe('postgres: search query plans', () => {
  it('cuts the page from the matches before joining their versions (a body is fetched for each row of the page only)', async () => {
    const url = await createDatabase();
    made.push(url);
    const store = await openPostgresStore({ url, poolSize: 1 });
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const registry = searchRegistry(loadDefinitions('R4'));
      const req = parseSearch(registry, ['Observation'], new URLSearchParams('code=http://loinc.org|8867-4'), {
        strict: true, defaultCount: 20, maxCount: 100, baseUrl: 'http://h.test/fhir/R4',
      });
      for (const cursor of [undefined, { direction: 'next' as const, keys: ['Observation', 'o-1'] }]) {
        const q = pageQuery('R4', req, dialect, Date.now(), 21, cursor);
        const { rows } = await client.query(`EXPLAIN (FORMAT JSON) ${numbered(q.sql)}`, q.args);
        type Node = { 'Node Type': string; 'Relation Name'?: string; Plans?: Node[] };
        const plan = (rows[0] as { 'QUERY PLAN': { Plan: Node }[] })['QUERY PLAN'][0]!.Plan;
        const relations = (n: Node): string[] => [...(n['Relation Name'] ? [n['Relation Name']] : []), ...(n.Plans ?? []).flatMap(relations)];
        const limits = (n: Node): Node[] => [...(n['Node Type'] === 'Limit' ? [n] : []), ...(n.Plans ?? []).flatMap(limits)];
        assert.ok(relations(plan).includes('resource_versions'), JSON.stringify(plan));
        const [limit, ...more] = limits(plan);
        assert.ok(limit && more.length === 0, JSON.stringify(plan));
        assert.ok(!relations(limit).includes('resource_versions'), `the LIMIT is above the versions' join: ${JSON.stringify(plan)}`);
      }
    } finally {
      await client.end();
      await store.close();
    }
  });
});
