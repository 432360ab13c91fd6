import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { spawnHerald } from '../helpers/process.ts';
import { call } from '../helpers/server.ts';
import { persistentDb, sqliteOnly } from '../helpers/store.ts';

const dir = mkdtempSync(join(tmpdir(), 'herald-proc-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('the Herald process', () => {
  it('loses no acknowledged write when killed with SIGKILL right after the 201, nor its search index rows', async () => {
    const db = await persistentDb(dir, 'kill');
    const first = await spawnHerald({ HERALD_DB: db });
    const created = await Promise.all(
      Array.from({ length: 50 }, (_, i) => call('POST', `${first.url}/fhir/R4/Patient`, { resourceType: 'Patient', name: [{ family: `K${i}` }] })),
    );
    first.child.kill('SIGKILL');
    await first.exited;
    assert.ok(created.every((r) => r.status === 201));

    const second = await spawnHerald({ HERALD_DB: db });
    try {
      for (const r of created) {
        const read = await call('GET', `${second.url}/fhir/R4/Patient/${r.body.id}`);
        assert.equal(read.status, 200);
        assert.equal(read.body.name[0].family, r.body.name[0].family);
      }
      // On SQLite the index rows were still pending when the process died (they are moved after
      // the commit): the restarted store moves them before it answers a search.
      const found = await call('GET', `${second.url}/fhir/R4/Patient?family:exact=${created.map((r) => r.body.name[0].family).join(',')}&_count=100&_total=accurate`);
      assert.equal(found.status, 200);
      assert.deepEqual(
        found.body.entry.map((e: { resource: { id: string } }) => e.resource.id).sort(),
        created.map((r) => r.body.id).sort(),
      );
    } finally {
      second.child.kill('SIGKILL');
      await second.exited;
    }
  });

  it('holds its database exclusively: a second process refuses to start, naming the lock and the holder; kill -9 leaves no stale lock', sqliteOnly('one process per database file, through an OS lock on <db>.lock; PostgreSQL takes any number of nodes'), async () => {
    const path = join(dir, 'exclusive.db');
    const db = `sqlite:${path}`;
    const first = await spawnHerald({ HERALD_DB: db });
    try {
      await assert.rejects(spawnHerald({ HERALD_DB: db }), (err: Error) => {
        assert.match(err.message, /exited early with code 1/);
        assert.ok(err.message.includes(`${path}.lock`), err.message);
        assert.ok(err.message.includes(`pid ${first.child.pid}`), err.message);
        return true;
      });
      assert.equal((await call('POST', `${first.url}/fhir/R4/Patient`, { resourceType: 'Patient' })).status, 201, 'the holder is unaffected');
    } finally {
      first.child.kill('SIGKILL');
      await first.exited;
    }
    // The operating system released the dead holder's lock: no stale lock blocks the next start.
    const second = await spawnHerald({ HERALD_DB: db });
    assert.equal((await call('POST', `${second.url}/fhir/R4/Patient`, { resourceType: 'Patient' })).status, 201);
    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0);
    // A clean stop releases it too.
    const third = await spawnHerald({ HERALD_DB: db });
    third.child.kill('SIGTERM');
    assert.equal(await third.exited, 0);
  });

  it('on SIGTERM finishes the request in flight, then exits 0 with the store closed', async () => {
    const db = await persistentDb(dir, 'term');
    const h = await spawnHerald({ HERALD_DB: db });
    const body = JSON.stringify({ resourceType: 'Patient', name: [{ family: 'InFlight' }] });
    const port = Number(new URL(h.url).port);
    // Send the headers and half the body, stop the server, then send the rest.
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, method: 'POST', path: '/fhir/R4/Patient', headers: { 'content-type': 'application/fhir+json', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode!, body: text }));
        },
      );
      req.on('error', reject);
      req.write(body.slice(0, 10));
      setTimeout(() => {
        h.child.kill('SIGTERM');
        setTimeout(() => req.end(body.slice(10)), 300);
      }, 200);
    });
    const res = await response;
    assert.equal(res.status, 201);
    assert.equal(await h.exited, 0);
    assert.match(h.output(), /stopping/);

    const again = await spawnHerald({ HERALD_DB: db });
    try {
      const read = await call('GET', `${again.url}/fhir/R4/Patient/${JSON.parse(res.body).id}`);
      assert.equal(read.status, 200);
    } finally {
      again.child.kill('SIGTERM');
      assert.equal(await again.exited, 0);
    }
  });

  it('logs structured JSON lines with a request id', async () => {
    const h = await spawnHerald({ HERALD_DB: 'sqlite::memory:' });
    try {
      const res = await call('GET', `${h.url}/fhir/R5/metadata`, undefined, { 'x-request-id': 'trace-me-123' });
      assert.equal(res.headers.get('x-request-id'), 'trace-me-123');
      await new Promise((r) => setTimeout(r, 100));
      const line = h.output().split('\n').find((l) => l.includes('trace-me-123'));
      assert.ok(line, 'a log line carries the request id');
      const entry = JSON.parse(line);
      assert.equal(entry.reqId, 'trace-me-123');
      assert.equal(entry.status, 200);
    } finally {
      h.child.kill('SIGTERM');
      await h.exited;
    }
  });
});
