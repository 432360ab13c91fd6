import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { call, startServer, useServer } from '../helpers/server.ts';
import { persistentDb } from '../helpers/store.ts';

/**
 * A search whose cost the client decides never holds up the server: it runs on a read thread with
 * a deadline, never on the event loop nor on the writer (issue 14). The database holds enough
 * Patients that a legal search over all of them with several sort keys takes a noticeable time.
 */
const dir = mkdtempSync(join(tmpdir(), 'herald-costly-'));
const db = persistentDb(dir, 'costly');
after(() => rmSync(dir, { recursive: true, force: true }));

const PATIENTS = 10_000;
const COSTLY = 'Patient?name:contains=f&_sort=family,given,birthdate,-name';

before(async () => {
  const seeding = await startServer({ HERALD_DB: await db });
  for (let b = 0; b < PATIENTS / 1000; b++) {
    const entry = Array.from({ length: 1000 }, (_, i) => ({
      resource: { resourceType: 'Patient', name: [{ family: `F${b}-${i}`, given: [`G${i % 97}`] }], birthDate: `19${String(i % 100).padStart(2, '0')}-01-01` },
      request: { method: 'POST', url: 'Patient' },
    }));
    assert.equal((await call('POST', seeding.fhir('R4'), { resourceType: 'Bundle', type: 'transaction', entry })).status, 200);
  }
  await seeding.close();
});

/** Runs `work` and notes its name in `order` when it answers. */
const noted = async <T>(order: string[], name: string, work: Promise<T>): Promise<T> => {
  const result = await work;
  order.push(name);
  return result;
};

describe('costly searches within their deadline', () => {
  const server = useServer(async () => ({ HERALD_DB: await db }));

  it('transaction GET searches run after its writes commit, see them, and hold up no other write', async () => {
    const order: string[] = [];
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { request: { method: 'GET', url: COSTLY } },
        { request: { method: 'GET', url: 'Patient?family=Tx-written' } },
        { request: { method: 'GET', url: `${COSTLY.replace('-name', '-family')}` } },
        { resource: { resourceType: 'Patient', name: [{ family: 'Tx-written' }] }, request: { method: 'POST', url: 'Patient' } },
        // More of them, so that they take well over the pause below on a fast machine too.
        ...Array.from({ length: 4 }, () => ({ request: { method: 'GET', url: COSTLY } })),
      ],
    };
    const transaction = noted(order, 'transaction', call('POST', server.fhir('R4'), bundle));
    // Its write commits at once; its searches then take a while over all the Patients.
    await sleep(100);
    const create = noted(order, 'create', call('POST', `${server.fhir('R5')}/Patient`, { resourceType: 'Patient' }));
    const health = noted(order, 'healthz', call('GET', `${server.url}/healthz`));
    const [tx, created, healthz] = await Promise.all([transaction, create, health]);
    assert.equal(created.status, 201);
    assert.equal(healthz.status, 200);
    assert.deepEqual(order.slice(0, 2).sort(), ['create', 'healthz'], 'another base wrote, and the server answered, while the searches ran');
    assert.equal(tx.status, 200, tx.text.slice(0, 300));
    const [first, mine, third, write] = tx.body.entry;
    assert.equal(first.response.status, '200 OK');
    assert.equal(third.response.status, '200 OK');
    assert.equal(first.resource.total, PATIENTS);
    assert.equal(write.response.status, '201 Created');
    assert.equal(mine.resource.total, 1, 'the search saw the transaction’s own write');
    assert.equal(mine.resource.entry[0].resource.id, write.resource.id);
  });

  it('a transaction whose search entry is wrong stores nothing (the search is checked before the writes)', async () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', name: [{ family: 'Never-stored' }] }, request: { method: 'POST', url: 'Patient' } },
        { request: { method: 'GET', url: 'Patient?name:no-such-modifier=1' } },
      ],
    };
    const res = await call('POST', server.fhir('R4'), bundle);
    assert.equal(res.status, 400, res.text.slice(0, 300));
    assert.match(res.body.issue[0].diagnostics, /entry\[1\]/);
    assert.equal((await call('GET', `${server.fhir('R4')}/Patient?family=Never-stored`)).body.total, 0);
  });
});

describe('a search over its deadline', () => {
  // The deadline sits well below the costly search's time on a fast machine (about 100 ms) and well
  // above a search by an indexed value (about 1 ms), so the outcome does not depend on the machine.
  const server = useServer(async () => ({ HERALD_DB: await db, HERALD_SEARCH_TIMEOUT_MS: '25', HERALD_READ_THREADS: '1' }));

  it('answers 422 too-costly while the server keeps answering, and the next search runs on a new thread', async () => {
    const order: string[] = [];
    const search = noted(order, 'search', call('GET', `${server.fhir('R4')}/${COSTLY}`));
    const health = noted(order, 'healthz', call('GET', `${server.url}/healthz`));
    const [res, healthz] = await Promise.all([search, health]);
    assert.equal(res.status, 422, res.text.slice(0, 300));
    assert.equal(res.body.issue[0].code, 'too-costly');
    assert.equal(healthz.status, 200);
    assert.deepEqual(order, ['healthz', 'search']);
    const next = await call('GET', `${server.fhir('R4')}/Patient?family=F9-999`);
    assert.equal(next.status, 200, next.text.slice(0, 300));
    assert.equal(next.body.total, 1);
  });

  it('in a transaction, a search over its deadline fails alone in its entry: the writes stand', async () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', name: [{ family: 'Stands' }] }, request: { method: 'POST', url: 'Patient' } },
        { request: { method: 'GET', url: COSTLY } },
      ],
    };
    const res = await call('POST', server.fhir('R4'), bundle);
    assert.equal(res.status, 200, res.text.slice(0, 300));
    assert.equal(res.body.entry[0].response.status, '201 Created');
    assert.equal(res.body.entry[1].response.status, '422');
    assert.equal(res.body.entry[1].response.outcome.issue[0].code, 'too-costly');
    assert.equal((await call('GET', `${server.fhir('R4')}/Patient?family=Stands`)).body.total, 1);
  });
});
