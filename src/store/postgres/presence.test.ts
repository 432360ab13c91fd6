import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { createDatabase, dropDatabase, withClient } from '../../../test/helpers/postgres.ts';
import { until } from '../../../test/helpers/until.ts';
import { FhirError } from '../../fhir/errors.ts';
import { emptyIndexRows } from '../../search/types.ts';
import { openPostgresStore } from './index.ts';
import { enterDatabase } from './presence.ts';
import { MIGRATIONS, RUNNING_LOCK, runningNodes } from './schema.ts';

const made: string[] = [];
after(async () => Promise.all(made.map(dropDatabase)));

/** The next version of Herald, as far as the schema goes: one migration more. */
const NEXT = [...MIGRATIONS, 'CREATE TABLE next_version_table (x integer)'];

const sql = <T extends pg.QueryResultRow>(url: string, text: string, args: unknown[] = []) => withClient(url, async (c) => (await c.query<T>(text, args)).rows);

const version = async (url: string) => (await sql<{ v: number }>(url, 'SELECT max(version) AS v FROM herald_migrations'))[0]!.v;
const tableExists = async (url: string) => (await sql<{ t: string | null }>(url, "SELECT to_regclass('next_version_table')::text AS t"))[0]!.t !== null;
const write = (id: string) => ({ type: 'Patient', id, versionId: 1, lastUpdated: '2024-01-01T00:00:00.000Z', method: 'PUT' as const, json: `{"resourceType":"Patient","id":"${id}"}`, index: emptyIndexRows() });

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
    await gone(url, 1); // a closed connection's lock goes as its server process ends
    await assert.rejects(enterDatabase(url, { migrations: NEXT }), /1 Herald node is running/);
    await b.close();
    await gone(url, 0);
    const next = await enterDatabase(url, { migrations: NEXT });
    assert.equal(await version(url), NEXT.length);
    assert.equal(await tableExists(url), true);
    // The old version, started again by mistake, refuses the newer schema.
    await assert.rejects(openPostgresStore({ url, poolSize: 2 }), /schema version \d+ is newer than this Herald/);
    await next.close();
  });

  it('nodes started at the same moment: one migrates, the others wait for it and find nothing to do (a fresh database, then an upgrade)', async () => {
    const url = await createDatabase();
    made.push(url);
    const first = await Promise.all([1, 2, 3].map(() => enterDatabase(url)));
    assert.equal(await version(url), MIGRATIONS.length);
    assert.equal(await running(url), 3);
    await Promise.all(first.map((p) => p.close()));
    await gone(url, 0);
    const next = await Promise.all([1, 2, 3].map(() => enterDatabase(url, { migrations: NEXT, checkMs: 50 })));
    assert.equal(await version(url), NEXT.length);
    assert.equal(await running(url), 3);
    await new Promise((r) => setTimeout(r, 200)); // checks have run on each
    assert.deepEqual(next.map((p) => p.unable()), [undefined, undefined, undefined]);
    await Promise.all(next.map((p) => p.close()));
    await gone(url, 0);
  });

  it('a node that lost its running lock writes nothing until it holds it again; if the schema changed meanwhile, never again, and it says why (/healthz)', async () => {
    const url = await createDatabase();
    made.push(url);
    const warnings: string[] = [];
    const warn = (w: Error) => warnings.push(w.message);
    process.on('warning', warn);
    const old = await openPostgresStore({ url, poolSize: 2, presence: { retryMs: 100 } });
    try {
      // Its connection is cut; it connects again, finds the same schema and writes again.
      await terminatePresence(url);
      await until('the node is present again', async () => (await running(url)) === 1 && old.failure() === undefined, { timeoutMs: 10_000 });
      await old.transaction((tx) => tx.write('R4', write('p1')));

      // A session asks for the lock exclusively, as a migrating node would, and waits behind the
      // node; the node's connection is cut, so that session has the lock and the node, connecting
      // again, waits behind it. The order is PostgreSQL's lock queue, not timing.
      const migrator = new pg.Client({ connectionString: url });
      await migrator.connect();
      // A transaction under way when the lock is lost.
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let began!: () => void;
      const inside = new Promise<void>((r) => (began = r));
      const inFlight = old.transaction(async (tx) => {
        await tx.write('R4', write('p3'));
        began();
        await gate;
      });
      await inside;
      try {
        const locked = migrator.query('SELECT pg_advisory_lock($1)', [RUNNING_LOCK]);
        await until('the exclusive request waits', async () => (await sql(url, `${LOCKS} AND NOT granted AND mode = 'ExclusiveLock'`, [RUNNING_LOCK])).length === 1);
        await terminatePresence(url);
        await locked;
        const lost = await until('the node knows it lost its lock', () => old.failure());
        assert.match(lost, /own connection to the database, which holds its running lock, was lost/);
        release();
        await assert.rejects(inFlight, (err: unknown) => err instanceof FhirError && err.status === 503 && /This node cannot write/.test(err.message), 'not committed');
        await assert.rejects(
          old.transaction((tx) => tx.write('R4', write('p2'))),
          (err: unknown) => err instanceof FhirError && err.status === 503 && /This node cannot write: this node's own connection/.test(err.message),
        );
        await assert.rejects(old.claimDelivery!('R4', 's1', 5_000), (err: unknown) => err instanceof FhirError && err.status === 503);
        // The newer version's migration, while the node waits.
        await migrator.query(NEXT[NEXT.length - 1]!);
        await migrator.query('INSERT INTO herald_migrations (version, applied_at) VALUES ($1, $2)', [NEXT.length, new Date().toISOString()]);
        await migrator.query('SELECT pg_advisory_unlock($1)', [RUNNING_LOCK]);
      } finally {
        await migrator.end();
      }
      const why = await until('the node sees the schema changed', () => /schema is at version/.test(old.failure() ?? '') && old.failure());
      assert.match(why!, new RegExp(`schema is at version ${NEXT.length}, not this node's ${MIGRATIONS.length} \\(another Herald migrated it`));
      await assert.rejects(
        old.transaction((tx) => tx.write('R4', write('p2'))),
        (err: unknown) => err instanceof FhirError && err.status === 503 && /This node cannot write: the database's schema is at version/.test(err.message),
      );
      await assert.rejects(old.claimDelivery!('R4', 's1', 5_000), (err: unknown) => err instanceof FhirError && err.status === 503);
      assert.equal((await old.read('R4', 'Patient', 'p1'))?.versionId, 1, 'reads go on');
      assert.equal(await old.read('R4', 'Patient', 'p2'), undefined);
      assert.equal(await old.read('R4', 'Patient', 'p3'), undefined, 'the transaction under way was rolled back');
      assert.ok(warnings.some((w) => /PostgreSQL store: the database's schema is at version/.test(w)), warnings.join('\n'));
      await gone(url, 0); // a stale node does not hold the lock
    } finally {
      process.off('warning', warn);
      await old.close();
    }
  });

  it('a migration that takes longer than the check\'s deadline is not cut short (the check begins once the lock is held)', async () => {
    const url = await createDatabase();
    made.push(url);
    const slow = [...MIGRATIONS, 'SELECT pg_sleep(1)'];
    const presence = await enterDatabase(url, { migrations: slow, checkMs: 50, checkTimeoutMs: 300 });
    try {
      assert.equal(await version(url), slow.length);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(presence.unable(), undefined);
      assert.equal(await running(url), 1);
    } finally {
      await presence.close();
    }
  });

  it('a connection that stops answering (a frozen network path) counts as lost: the node is unable to write until it holds the lock again', async () => {
    const url = await createDatabase();
    made.push(url);
    const proxy = await freezableProxy(new URL(url));
    try {
      const presence = await enterDatabase(proxy.url, { checkMs: 50, checkTimeoutMs: 300, retryMs: 60_000 });
      try {
        // A check has run through the relay and found the lock held.
        await until('a check has run', async () => (await sql(url, "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT count(*)::int AS n FROM pg_locks WHERE pid = pg_backend_pid()%'")).length === 1);
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(presence.unable(), undefined);
        proxy.freeze(); // nothing gets through any more, and nothing is closed
        const why = await until('the check gives up', () => presence.unable(), { timeoutMs: 5_000 });
        assert.match(why, /was lost \(Query read timeout\)/);
      } finally {
        await presence.close();
      }
    } finally {
      proxy.close();
    }
  });
});

/** A TCP relay to PostgreSQL that can stop relaying without closing anything. */
async function freezableProxy(target: URL) {
  let frozen = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((down) => {
    const up = net.connect(Number(target.port || 5432), target.hostname);
    for (const s of [down, up]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => (down.destroy(), up.destroy()));
    }
    down.on('data', (d) => frozen || up.write(d));
    up.on('data', (d) => frozen || down.write(d));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = new URL(target);
  url.host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return {
    url: url.toString(),
    freeze: () => (frozen = true),
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** pg_locks rows of the running lock on this database. */
const LOCKS = `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 AND objid = $1 AND objsubid = 1
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`;

/** Waits until `left` nodes hold the running lock. */
const gone = (url: string, left: number) => until(`${left} nodes left running`, async () => (await running(url)) === left, { timeoutMs: 5_000 });

/** How many nodes hold the running lock. */
const running = (url: string) => withClient(url, runningNodes);

/** Ends the session holding the running lock (the node's presence connection), and waits until its lock is gone. */
async function terminatePresence(url: string): Promise<void> {
  const rows = await sql<{ pid: number }>(url, `${LOCKS} AND granted`, [RUNNING_LOCK]);
  assert.equal(rows.length, 1);
  await sql(url, 'SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
  await until('the presence session is gone', async () => (await sql(url, 'SELECT 1 FROM pg_stat_activity WHERE pid = $1', [rows[0]!.pid])).length === 0, { timeoutMs: 5_000 });
}
