import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { type TestServer, call, startServer } from '../helpers/server.ts';
import { createDatabase, dropDatabase, withClient } from '../helpers/postgres.ts';

/**
 * Upgrading a database whose search index an older Herald built (src/store/reindex.ts): the server
 * rebuilds it from the stored bodies in the background when it starts, and again when its public
 * base URL changes (absolute references into the server are indexed as `Type/id`). On SQLite, and on
 * PostgreSQL under HERALD_TEST_STORE=postgres.
 */
const postgres = process.env.HERALD_TEST_STORE === 'postgres';
const dir = mkdtempSync(join(tmpdir(), 'herald-reindex-e2e-'));
let database: string | undefined;
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (database) await dropDatabase(database);
});

/** Runs SQL on the stopped server's database, as another program would. */
async function sql(db: string, statements: string[]): Promise<void> {
  if (db.startsWith('sqlite:')) {
    const conn = new Database(db.slice('sqlite:'.length));
    try {
      for (const s of statements) conn.prepare(s).run();
    } finally {
      conn.close();
    }
  } else {
    await withClient(db, async (client) => {
      for (const s of statements) await client.query(s);
    });
  }
}

/** A server whose log lines are kept; `rebuilt(base)` resolves once that base's index is rebuilt. */
async function start(db: string, baseUrl: string) {
  const lines: { msg?: string; base?: string }[] = [];
  let wake = () => {};
  const server = await startServer(
    { HERALD_DB: db, HERALD_BASE_URL: baseUrl, LOG_LEVEL: 'info' },
    {
      write(line: string) {
        lines.push(JSON.parse(line));
        wake();
      },
    },
  );
  const rebuilt = async (base: string) => {
    const deadline = Date.now() + 30_000;
    while (!lines.some((l) => l.msg === 'search index rebuilt' && l.base === base)) {
      assert.ok(Date.now() < deadline, `no rebuild of ${base} logged: ${JSON.stringify(lines.filter((l) => l.base === base))}`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 100);
      });
    }
  };
  return { server, lines, rebuilt };
}

const ids = (res: { body: any }) => (res.body.entry ?? []).map((e: any) => e.resource.id).sort();

describe('search index rebuilt after an upgrade or a new base URL', () => {
  it('finds again what an older index missed, and indexes references anew for another base URL', async () => {
    const db = postgres ? (database = await createDatabase()) : `sqlite:${join(dir, 'herald.db')}`;
    const first = await start(db, 'http://old.example');
    let server: TestServer | undefined = first.server;
    try {
      // A fresh database is recorded as built at the first start (nothing to rebuild).
      await first.rebuilt('R4');
      await call('PUT', `${server.fhir('R4')}/Patient/p1`, { resourceType: 'Patient', id: 'p1', name: [{ family: 'Old' }] });
      for (const [id, code] of [['o1', '8867-4'], ['o2', '8310-5']])
        await call('PUT', `${server.fhir('R4')}/Observation/${id}`, {
          resourceType: 'Observation',
          id,
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code }] },
          subject: { reference: 'http://old.example/fhir/R4/Patient/p1' },
        });
      assert.deepEqual(ids(await call('GET', `${server.fhir('R4')}/Observation?subject=Patient/p1`)), ['o1', 'o2']);
      assert.deepEqual(ids(await call('GET', `${server.fhir('R4')}/Observation?code=http://loinc.org|8867-4`)), ['o1']);
      await server.close();
      server = undefined;

      // As an older Herald would have left it: no record of the build, and rows it did not write.
      await sql(db, ["DELETE FROM index_state WHERE fv = 'R4'", "DELETE FROM sp_token WHERE fv = 'R4' AND type = 'Observation'"]);
      const second = await start(db, 'http://old.example');
      server = second.server;
      await second.rebuilt('R4');
      assert.deepEqual(ids(await call('GET', `${server.fhir('R4')}/Observation?code=http://loinc.org|8867-4`)), ['o1']);
      assert.deepEqual(ids(await call('GET', `${server.fhir('R4')}/Observation?code=http://loinc.org|8310-5`)), ['o2']);
      // Nothing else changed: no new version, history as it was.
      const read = await call('GET', `${server.fhir('R4')}/Observation/o1`);
      assert.equal(read.body.meta.versionId, '1');
      assert.equal((await call('GET', `${server.fhir('R4')}/Observation/o1/_history`)).body.total, 1);
      // The other bases had nothing to rebuild.
      assert.ok(!second.lines.some((l) => l.msg === 'search index rebuilt' && l.base === 'R5'));
      await server.close();
      server = undefined;

      // Another public base URL: the old absolute references now point elsewhere.
      const third = await start(db, 'http://new.example');
      server = third.server;
      await third.rebuilt('R4');
      assert.deepEqual(ids(await call('GET', `${server.fhir('R4')}/Observation?subject=Patient/p1`)), []);
      assert.deepEqual(ids(await call('GET', `${server.fhir('R4')}/Observation?subject=http://old.example/fhir/R4/Patient/p1`)), ['o1', 'o2']);
      const started = third.lines.find((l) => l.msg === 'rebuilding the search index' && l.base === 'R4') as { from?: { base: string }; to?: { base: string } } | undefined;
      assert.equal(started?.from?.base, 'http://old.example/fhir/R4');
      assert.equal(started?.to?.base, 'http://new.example/fhir/R4');
    } finally {
      await server?.close();
    }
  });
});
