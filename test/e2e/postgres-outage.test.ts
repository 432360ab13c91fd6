import assert from 'node:assert/strict';
import { type Server, type Socket, createServer, connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { usePostgresDatabase } from '../helpers/postgres.ts';
import { call, freePort, startServer, type TestServer } from '../helpers/server.ts';
import { until } from '../helpers/until.ts';
import { FhirError } from '../../src/fhir/errors.ts';
import { openPostgresStore } from '../../src/store/postgres/index.ts';

/**
 * A node whose database connection drops: /healthz says 503 (and writes are a 503 `transient`,
 * never a 500) while PostgreSQL cannot be reached, and the node recovers by itself once it can.
 * The outage is real: Herald reaches PostgreSQL through a TCP relay that the test cuts and restores.
 */
class Relay {
  server: Server | undefined;
  readonly sockets = new Set<Socket>();
  constructor(
    readonly port: number,
    private readonly target: number,
  ) {}
  async start(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }
  async cut(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server?.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

describe('a node whose PostgreSQL connection drops', () => {
  const database = usePostgresDatabase();
  let relay: Relay;
  let server: TestServer;
  before(async () => {
    const url = new URL(await database);
    relay = new Relay(await freePort(), Number(url.port || 5432));
    await relay.start();
    url.port = String(relay.port);
    server = await startServer({ HERALD_DB: url.toString() });
  });
  after(async () => {
    await server?.close();
    await relay?.cut();
  });

  it('answers /healthz 503 while the database is unreachable, refuses writes with 503, and recovers by itself', async () => {
    const health = async () => (await call('GET', `${server.url}/healthz`)).status;
    const before = await call('POST', `${server.fhir('R4')}/Patient`, { resourceType: 'Patient', active: true });
    assert.equal(before.status, 201);
    assert.equal(await health(), 200);

    await relay.cut();
    const poll = { intervalMs: 100 }; // each look is a /healthz request
    await until('/healthz to answer 503 while PostgreSQL is unreachable', async () => (await health()) === 503, poll);
    const during = await call('POST', `${server.fhir('R4')}/Patient`, { resourceType: 'Patient' });
    assert.equal(during.status, 503, during.text);
    assert.equal(during.body.resourceType, 'OperationOutcome');

    await relay.start();
    await until('/healthz to answer 200 again once PostgreSQL is back', async () => (await health()) === 200, poll);
    assert.equal((await call('GET', `${server.fhir('R4')}/Patient/${before.body.id}`)).status, 200, 'the acknowledged write is there');
    assert.equal((await call('POST', `${server.fhir('R4')}/Patient`, { resourceType: 'Patient' })).status, 201);
  });
});

describe('a transaction in flight when the PostgreSQL connection drops', () => {
  const database = usePostgresDatabase();
  it('fails with a 503 transient, and the process goes on (the client\'s error event is heard)', async () => {
    const url = new URL(await database);
    const relay = new Relay(await freePort(), Number(url.port || 5432));
    await relay.start();
    url.port = String(relay.port);
    const store = await openPostgresStore({ url: url.toString(), poolSize: 2 });
    try {
      const failed = await store
        .transaction(async (tx) => {
          await tx.read('R4', 'Patient', 'a');
          await relay.cut();
          return tx.read('R4', 'Patient', 'b');
        })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      assert.ok(failed instanceof FhirError, String(failed));
      assert.equal(failed.status, 503);
      // Still here, and back once the database is.
      await relay.start();
      await until('the store to write again', async () => {
        try {
          await store.transaction((tx) => tx.write('R4', { type: 'Patient', id: 'after', versionId: 1, lastUpdated: new Date().toISOString(), method: 'PUT', json: '{"resourceType":"Patient","id":"after"}' }));
          return true;
        } catch {
          return false;
        }
      });
      assert.equal((await store.read('R4', 'Patient', 'after'))?.versionId, 1);
    } finally {
      await store.close();
      await relay.cut();
    }
  });
});
