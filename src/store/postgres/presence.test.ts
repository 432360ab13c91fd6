import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { createDatabase, dropDatabase } from '../../../test/helpers/postgres.ts';
import { until } from '../../../test/helpers/until.ts';
import { FhirError } from '../../fhir/errors.ts';
import { openPostgresStore } from './index.ts';
import { enterDatabase } from './presence.ts';
import { MIGRATIONS, RUNNING_LOCK, runningNodes } from './schema.ts';

const made: string[] = [];
after(async () => Promise.all(made.map(dropDatabase)));

/** The next version of Herald, as far as the schema goes: one migration more. */
const NEXT = [...MIGRATIONS, 'CREATE TABLE next_version_table (x integer)'];

async function sql<T extends pg.QueryResultRow>(url: string, text: string, args: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, args)).rows;
  } finally {
    await client.end();
  }
}

const version = async (url: string) => (await sql<{ v: number }>(url, 'SELECT max(version) AS v FROM herald_migrations'))[0]!.v;
const tableExists = async (url: string) => (await sql<{ t: string | null }>(url, "SELECT to_regclass('next_version_table')::text AS t"))[0]!.t !== null;
const empty = { string: [], token: [], reference: [], date: [], number: [], quantity: [], uri: [] };
const write = (id: string) => ({ type: 'Patient', id, versionId: 1, lastUpdated: '2024-01-01T00:00:00.000Z', method: 'PUT' as const, json: `{"resourceType":"Patient","id":"${id}"}`, index: empty });

describe('PostgreSQL: an upgrade stops every node first (schema migrations and running nodes)', () => {
  it('a node that would migrate refuses to start while nodes of the schema before run, saying how many; once they stop, it migrates', async () => {
    const url = await createDatabase();
    made.push(url);
    const a = await openPostgresStore({ url, poolSize: 2 });
    const b = await openPostgresStore({ url, poolSize: 2 }); // the same version beside it: nothing to migrate, starts
    assert.equal(await running(url), 2);
    await assert.rejects(
      enterDatabase(url, { migrations: NEXT }),
      new RegExp(`2 Herald nodes are running on this database at schema version ${MIGRATIONS.length}, and this Herald needs version ${NEXT.length}: stop every running node`),
    );
    assert.equal(await version(url), MIGRATIONS.length, 'nothing migrated');
    assert.equal(await tableExists(url), false);
    await a.close();
    await assert.rejects(enterDatabase(url, { migrations: NEXT }), /1 Herald node is running/);
    await b.close();
    const next = await enterDatabase(url, { migrations: NEXT });
    assert.equal(await version(url), NEXT.length);
    assert.equal(await tableExists(url), true);
    // The old version, started again by mistake, refuses the newer schema.
    await assert.rejects(openPostgresStore({ url, poolSize: 2 }), /schema version \d+ is newer than this Herald/);
    await next.close();
  });

  it('a node that lost its connection while a newer one migrated stops writing and says why (/healthz); one whose schema is unchanged carries on', async () => {
    const url = await createDatabase();
    made.push(url);
    const warnings: string[] = [];
    const warn = (w: Error) => warnings.push(w.message);
    process.on('warning', warn);
    const old = await openPostgresStore({ url, poolSize: 2, presence: { retryMs: 2_000 } });
    try {
      // Its presence connection drops; it connects again and finds the same schema.
      await terminatePresence(url);
      await until('the node is present again', async () => (await running(url)) === 1, { timeoutMs: 10_000 });
      assert.equal(old.failure(), undefined);
      await old.transaction((tx) => tx.write('R4', write('p1')));

      // It drops again, and a newer node migrates in the gap (before the old one's 2 s pause ends).
      await terminatePresence(url);
      const next = await enterDatabase(url, { migrations: NEXT });
      try {
        const why = await until('the old node sees the schema changed', () => old.failure(), { timeoutMs: 10_000 });
        assert.match(why, new RegExp(`migrated to version ${NEXT.length} by a newer Herald while this node \\(version ${MIGRATIONS.length}\\)`));
        await assert.rejects(
          old.transaction((tx) => tx.write('R4', write('p2'))),
          (err: unknown) => err instanceof FhirError && err.status === 503 && /This node cannot write: the database's schema was migrated/.test(err.message),
        );
        await assert.rejects(old.claimDelivery!('R4', 's1', 5_000), (err: unknown) => err instanceof FhirError && err.status === 503);
        assert.equal((await old.read('R4', 'Patient', 'p1'))?.versionId, 1, 'reads go on');
        assert.equal(await old.read('R4', 'Patient', 'p2'), undefined);
        assert.ok(warnings.some((w) => /PostgreSQL store: the database's schema was migrated/.test(w)), warnings.join('\n'));
        assert.equal(await running(url), 1, 'only the newer node holds the lock');
      } finally {
        await next.close();
      }
    } finally {
      process.off('warning', warn);
      await old.close();
    }
  });
});

/** How many nodes hold the running lock. */
async function running(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await runningNodes(client);
  } finally {
    await client.end();
  }
}

/** Ends the session holding the running lock (the node's presence connection), and waits until its lock is gone. */
async function terminatePresence(url: string): Promise<void> {
  const rows = await sql<{ pid: number }>(
    url,
    `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 AND objid = $1 AND objsubid = 1 AND granted
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [RUNNING_LOCK],
  );
  assert.equal(rows.length, 1);
  await sql(url, 'SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
  await until('the presence session is gone', async () => (await sql(url, 'SELECT 1 FROM pg_stat_activity WHERE pid = $1', [rows[0]!.pid])).length === 0, { timeoutMs: 5_000 });
}
