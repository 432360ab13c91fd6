import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { INDEX_TABLE } from '../search-sql.ts';
import { storeContract } from '../store.contract.ts';
import Database from 'better-sqlite3';
import type { NewVersion } from '../store.ts';
import { openSqliteStore } from './index.ts';
import { MIGRATIONS } from './migrations.ts';

const patient = (id: string, versionId = 1): NewVersion => ({
  type: 'Patient',
  id,
  versionId,
  lastUpdated: new Date().toISOString(),
  method: 'POST',
  json: `{"resourceType":"Patient","id":"${id}"}`,
});

const dir = mkdtempSync(join(tmpdir(), 'herald-sqlite-'));
after(() => rmSync(dir, { recursive: true, force: true }));

storeContract('sqlite :memory:', async () => openSqliteStore({ path: ':memory:' }));
storeContract('sqlite file (WAL)', async () => openSqliteStore({ path: join(dir, 'contract.db') }));

/** A database file as Herald left it at schema version `version` (the migrations up to it). */
function databaseAt(path: string, version: number): Database.Database {
  const db = new Database(path);
  db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
  for (let v = 1; v <= version; v++) {
    db.exec(MIGRATIONS[v - 1]!);
    db.prepare('INSERT INTO schema_migrations VALUES (?, ?)').run(v, '2024-01-01T00:00:00.000Z');
  }
  return db;
}

describe('sqlite store', () => {
  it('keeps committed data across close and reopen, and migrates only once', async () => {
    const path = join(dir, 'reopen.db');
    const a = await openSqliteStore({ path });
    await a.transaction(async (tx) =>
      tx.write('R4', { type: 'Patient', id: 'p', versionId: 1, lastUpdated: '2024-01-01T00:00:00.000Z', method: 'POST', json: '{"resourceType":"Patient","id":"p"}' }),
    );
    await a.close();
    const b = await openSqliteStore({ path });
    assert.equal((await b.read('R4', 'Patient', 'p'))?.versionId, 1);
    await b.close();
  });

  it('commits many concurrent transactions in groups, each settled after its commit', async () => {
    const store = await openSqliteStore({ path: join(dir, 'group.db') });
    const n = 500;
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        store.transaction(async (tx) =>
          tx.write('R4', { type: 'Patient', id: `g${i}`, versionId: 1, lastUpdated: new Date().toISOString(), method: 'POST', json: '{}' }),
        ),
      ),
    );
    const page = await store.history('R4', { type: 'Patient', count: 1 });
    assert.equal(page.total, n);
    await store.close();
  });

  it('lets a transaction read what earlier ones wrote before they are acknowledged (the writer thread keeps their order)', async () => {
    const store = await openSqliteStore({ path: join(dir, 'order.db') });
    const first = store.transaction(async (tx) => tx.write('R4', patient('o1')));
    const second = store.transaction(async (tx) => {
      const seen = await tx.read('R4', 'Patient', 'o1');
      await tx.write('R4', patient('o1', (seen?.versionId ?? 0) + 1));
      return seen?.versionId;
    });
    assert.equal(await second, 1);
    await first;
    assert.equal((await store.read('R4', 'Patient', 'o1'))?.versionId, 2);
    await store.close();
  });

  it('rolls back only the transaction whose write fails on the thread, with the database error', async () => {
    const store = await openSqliteStore({ path: join(dir, 'fail.db') });
    await store.transaction(async (tx) => tx.write('R4', patient('f1')));
    const outcomes = await Promise.allSettled([
      store.transaction(async (tx) => tx.write('R4', patient('f2'))),
      // version 1 of f1 exists: the insert breaks the unique key, on the thread, after fn returned
      store.transaction(async (tx) => {
        await tx.write('R4', patient('f3'));
        await tx.write('R4', patient('f1'));
      }),
      store.transaction(async (tx) => tx.write('R4', patient('f4'))),
    ]);
    assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.match(String((outcomes[1] as PromiseRejectedResult).reason), /UNIQUE constraint failed/);
    assert.equal(await store.read('R4', 'Patient', 'f3'), undefined, 'the failed transaction left nothing');
    assert.equal((await store.read('R4', 'Patient', 'f4'))?.versionId, 1);
    await store.close();
  });

  it('a failing read inside a transaction is the caller\'s to handle: caught, the transaction still commits', async () => {
    const store = await openSqliteStore({ path: ':memory:' });
    await store.transaction(async (tx) => {
      // A search the SQL layer cannot run (an unknown kind of parameter) throws on the thread.
      await assert.rejects(tx.search('R4', { type: 'Patient', params: [{ param: { code: 'x', type: 'special', url: '', targets: [] }, values: [] }] } as never));
      await tx.write('R4', patient('c1'));
    });
    assert.equal((await store.read('R4', 'Patient', 'c1'))?.versionId, 1);
    await store.close();
  });

  it('creates exactly the index tables the SQL layer names (INDEX_TABLE)', async () => {
    const path = join(dir, 'tables.db');
    await (await openSqliteStore({ path })).close();
    const db = new Database(path, { readonly: true });
    const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'sp\\_%' ESCAPE '\\'").all();
    db.close();
    assert.deepEqual(tables.map((t) => t.name).sort(), Object.values(INDEX_TABLE).sort());
  });

  it('holds a file database exclusively until closed: a second open fails naming the lock and the holder', async () => {
    const path = join(dir, 'exclusive.db');
    const first = await openSqliteStore({ path });
    await assert.rejects(openSqliteStore({ path }), (err: Error) => {
      assert.ok(err.message.includes(`${path}.lock`), err.message);
      assert.ok(err.message.includes(`pid ${process.pid}`), err.message);
      return true;
    });
    await first.close();
    const second = await openSqliteStore({ path });
    await second.close();
  });

  it('moves a log written before migration 6 into the compact tables: same events, numbers go on', async () => {
    const path = join(dir, 'pre6.db');
    const db = databaseAt(path, 5);
    const old = db.prepare('INSERT INTO subscription_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    // One change matched by s1 and s2 (R4) and by s1 on R5; a second change matched by s1 only.
    old.run('R4', 's1', 1, '2024-01-01T00:00:01.000Z', 'Patient', 'a', 1, 'create');
    old.run('R4', 's2', 1, '2024-01-01T00:00:01.000Z', 'Patient', 'a', 1, 'create');
    old.run('R5', 's1', 7, '2024-01-01T00:00:01.000Z', 'Patient', 'a', 1, 'create');
    old.run('R4', 's1', 2, '2024-01-01T00:00:02.000Z', 'Patient', 'a', 2, 'update');
    const counter = db.prepare('INSERT INTO subscription_counters VALUES (?, ?, ?)');
    counter.run('R4', 's1', 2);
    counter.run('R4', 's2', 1);
    counter.run('R5', 's1', 7);
    db.close();

    const store = await openSqliteStore({ path });
    try {
      const s1 = await store.events('R4', 's1', 1, 10, 10);
      assert.deepEqual(s1.map((e) => [e.number, e.focus.versionId, e.interaction, e.timestamp]), [
        [1, 1, 'create', '2024-01-01T00:00:01.000Z'],
        [2, 2, 'update', '2024-01-01T00:00:02.000Z'],
      ]);
      assert.deepEqual((await store.events('R4', 's2', 1, 10, 10)).map((e) => [e.number, e.focus.id]), [[1, 'a']]);
      assert.deepEqual(await store.eventRange('R5', 's1'), { last: 7, first: 7 });
      await store.transaction((tx) =>
        tx.appendEvents('R4', [{ subscription: 's1', timestamp: '2024-01-01T00:00:03.000Z', focus: { type: 'Patient', id: 'a', versionId: 3 }, interaction: 'update' }]),
      );
      assert.deepEqual(await store.eventRange('R4', 's1'), { last: 3, first: 1 });
      const check = new Database(path, { readonly: true });
      const tables = check.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'subscription_%'").all().map((r) => r.name);
      assert.equal(check.prepare<[], { n: number }>('SELECT count(*) AS n FROM event_changes').get()!.n, 3, 'the change shared by three events is stored once');
      check.close();
      assert.ok(!tables.includes('subscription_events') && !tables.includes('subscription_counters'), 'the old tables are gone');
    } finally {
      await store.close();
    }
  });

  it('numbers a change matched by hundreds of subscriptions in one batch: logs old and new, across marks and chunks (D-18)', async () => {
    const store = await openSqliteStore({ path: join(dir, 'batched.db') });
    try {
      const ev = (subscription: string, vid: number) => ({ subscription, timestamp: `2024-01-01T00:00:${String(vid).padStart(2, '0')}.000Z`, focus: { type: 'Patient', id: 'b', versionId: vid }, interaction: 'update' as const });
      const subs = Array.from({ length: 300 }, (_, i) => `b${i}`);
      // The even half gets 62 events first (one at a time: each its own change), so the batch below
      // crosses mark 64 for them, while the odd half starts its logs in the batch.
      for (let vid = 1; vid <= 62; vid++) await store.transaction((tx) => tx.appendEvents('R4', subs.filter((_, i) => i % 2 === 0).map((s) => ev(s, vid))));
      // Three changes in one transaction, each matched by distinct subscriptions: 300 (more than
      // one INSERT's worth), then every third of them twice more.
      const appended = await store.transaction(async (tx) => {
        const batches = [63, 64, 65].map((vid) => subs.map((s) => ev(s, vid)).filter((_, i) => vid === 63 || i % 3 === 0));
        for (const batch of batches) await tx.appendEvents('R4', batch);
        return batches;
      });
      assert.deepEqual(appended.map((b) => b.length), [300, 100, 100]);
      for (const [i, s] of subs.entries()) {
        const expected = i % 2 === 0 ? Array.from({ length: 63 }, (_, k) => k + 1) : [1];
        if (i % 3 === 0) expected.push(expected.length + 1, expected.length + 2);
        const got = await store.events('R4', s, 1, 1000, 1000);
        assert.deepEqual(got.map((e) => e.number), expected, s);
        assert.deepEqual(got.slice(-1).map((e) => e.focus.versionId), [i % 3 === 0 ? 65 : 63], s);
        // A span that starts past the newest mark walks back through the batch's prev links.
        if (expected.length >= 64) assert.deepEqual((await store.events('R4', s, 60, 65, 10)).map((e) => e.focus.versionId), [60, 61, 62, 63, 64, 65], s);
        assert.deepEqual(await store.eventRange('R4', s), { last: expected.length, first: 1 });
      }
      const check = new Database(join(dir, 'batched.db'), { readonly: true });
      assert.equal(check.prepare('SELECT count(*) FROM event_changes').pluck().get(), 62 + 3, 'each change is stored once');
      check.close();
    } finally {
      await store.close();
    }
  });

  it('moves a log written before migration 7 to events clustered by change: same spans, ranges and numbering', async () => {
    const path = join(dir, 'pre7.db');
    const db = databaseAt(path, 6);
    // Key 1 ('long'): 150 events, one per change; key 2 ('trimmed'): numbers 5..7 held of 7, in
    // every 20th change; key 3 ('emptied'): counter 3, nothing held.
    const key = db.prepare('INSERT INTO subscription_keys (key, fv, subscription, last_number) VALUES (?, ?, ?, ?)');
    key.run(1, 'R4', 'long', 150);
    key.run(2, 'R4', 'trimmed', 7);
    key.run(3, 'R4', 'emptied', 3);
    const change = db.prepare("INSERT INTO event_changes (seq, ts, focus_type, focus_id, focus_vid, interaction) VALUES (?, ?, 'Patient', ?, 1, 'create')");
    const number = db.prepare('INSERT INTO event_numbers (key, number, change) VALUES (?, ?, ?)');
    for (let i = 1; i <= 150; i++) {
      change.run(i, new Date(Date.UTC(2024, 0, 1, 0, 0, i)).toISOString(), `p${i}`);
      number.run(1, i, i);
      if (i % 20 === 0 && i / 20 >= 5) number.run(2, i / 20, i);
    }
    db.close();

    const store = await openSqliteStore({ path });
    try {
      const ids = async (sub: string, from: number, to: number, limit: number) => (await store.events('R4', sub, from, to, limit)).map((e) => [e.number, e.focus.id]);
      assert.deepEqual(await ids('long', 60, 70, 100), Array.from({ length: 11 }, (_, i) => [60 + i, `p${60 + i}`]));
      assert.deepEqual(await ids('long', 1, 150, 3), [[1, 'p1'], [2, 'p2'], [3, 'p3']]);
      assert.deepEqual(await ids('long', 128, 129, 100), [[128, 'p128'], [129, 'p129']]);
      assert.deepEqual(await ids('trimmed', 1, 10, 10), [[5, 'p100'], [6, 'p120'], [7, 'p140']]);
      assert.deepEqual(await store.eventRange('R4', 'long'), { last: 150, first: 1 });
      assert.deepEqual(await store.eventRange('R4', 'trimmed'), { last: 7, first: 5 });
      assert.deepEqual(await store.eventRange('R4', 'emptied'), { last: 3, first: undefined });
      const ev = (subscription: string) => ({ subscription, timestamp: '2024-01-02T00:00:00.000Z', focus: { type: 'Patient', id: 'new', versionId: 1 }, interaction: 'create' as const });
      await store.transaction((tx) => tx.appendEvents('R4', [ev('long'), ev('trimmed'), ev('emptied')]));
      assert.deepEqual(await ids('long', 149, 200, 10), [[149, 'p149'], [150, 'p150'], [151, 'new']]);
      assert.deepEqual(await ids('trimmed', 1, 10, 10), [[5, 'p100'], [6, 'p120'], [7, 'p140'], [8, 'new']]);
      assert.deepEqual(await ids('emptied', 1, 10, 10), [[4, 'new']]);
      assert.deepEqual(await store.eventRange('R4', 'emptied'), { last: 4, first: 4 });
      const check = new Database(path, { readonly: true });
      const marks = check.prepare<[], { key: number; number: number; change: number }>('SELECT key, number, change FROM event_marks ORDER BY key, number').all();
      const tables = check.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'event_numbers'").all();
      check.close();
      assert.deepEqual(marks, [{ key: 1, number: 64, change: 64 }, { key: 1, number: 128, change: 128 }]);
      assert.deepEqual(tables, [], 'event_numbers is gone');
    } finally {
      await store.close();
    }
  });

  it('reads logs moved over from migration 6 that have holes or changes out of order (review of issue 15)', async () => {
    const path = join(dir, 'pre7-odd.db');
    const db = databaseAt(path, 6);
    const key = db.prepare('INSERT INTO subscription_keys (key, fv, subscription, last_number) VALUES (?, ?, ?, ?)');
    const change = db.prepare("INSERT INTO event_changes (seq, ts, focus_type, focus_id, focus_vid, interaction) VALUES (?, '2024-01-01T00:00:00.000Z', 'Patient', ?, 1, 'create')");
    const number = db.prepare('INSERT INTO event_numbers (key, number, change) VALUES (?, ?, ?)');
    // 'swapped': two changes of one millisecond stored by migration 6 in the other order.
    key.run(1, 'R4', 'swapped', 2);
    change.run(1, 'y');
    change.run(2, 'x');
    number.run(1, 1, 2);
    number.run(1, 2, 1);
    // 'holey': numbers 1-3 and 1500-1505 held of 1505.
    key.run(2, 'R4', 'holey', 1505);
    for (const n of [1, 2, 3, 1500, 1501, 1502, 1503, 1504, 1505]) {
      change.run(10 + n, `h${n}`);
      number.run(2, n, 10 + n);
    }
    db.close();
    const store = await openSqliteStore({ path });
    try {
      const ids = async (sub: string, from: number, to: number, limit: number) => (await store.events('R4', sub, from, to, limit)).map((e) => [e.number, e.focus.id]);
      assert.deepEqual(await ids('swapped', 1, 10, 10), [[1, 'x'], [2, 'y']]);
      assert.deepEqual((await store.eventsAfter!('R4', [{ subscription: 'swapped', after: 0 }], 10)).map((e) => e.number), [1, 2]);
      assert.deepEqual(await ids('holey', 4, Number.MAX_SAFE_INTEGER, 1000), [[1500, 'h1500'], [1501, 'h1501'], [1502, 'h1502'], [1503, 'h1503'], [1504, 'h1504'], [1505, 'h1505']]);
      assert.deepEqual(await ids('holey', 1, Number.MAX_SAFE_INTEGER, 5), [[1, 'h1'], [2, 'h2'], [3, 'h3'], [1500, 'h1500'], [1501, 'h1501']]);
      assert.deepEqual((await store.eventsAfter!('R4', [{ subscription: 'holey', after: 3 }], 1)).map((e) => e.number), [1500], 'a reader past the hole moves on');
      await store.transaction((tx) => tx.appendEvents('R4', [{ subscription: 'swapped', timestamp: '2024-01-02T00:00:00.000Z', focus: { type: 'Patient', id: 'z', versionId: 1 }, interaction: 'create' }]));
      assert.deepEqual(await ids('swapped', 1, 10, 10), [[1, 'x'], [2, 'y'], [3, 'z']]);
      // Pruning by size walks across the hole too.
      assert.equal(await store.pruneEvents('2000-01-01T00:00:00.000Z', 2), 3 + 4 + 1);
      assert.deepEqual(await ids('holey', 1, Number.MAX_SAFE_INTEGER, 100), [[1504, 'h1504'], [1505, 'h1505']]);
      assert.deepEqual(await ids('swapped', 1, 10, 10), [[2, 'y'], [3, 'z']]);
    } finally {
      await store.close();
    }
  });

  it('refuses to open a database made by a newer Herald, with the reason', async () => {
    const path = join(dir, 'newer.db');
    const db = new Database(path);
    db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
    db.prepare('INSERT INTO schema_migrations VALUES (999, ?)').run(new Date().toISOString());
    db.close();
    await assert.rejects(openSqliteStore({ path }), /schema version 999 is newer than this Herald/);
  });

  it('when its writer thread dies, says so (failure(), for /healthz) and rejects writes instead of hanging', async () => {
    let writer: import('node:worker_threads').Worker | undefined;
    const store = await openSqliteStore({ path: join(dir, 'dies.db'), onWriter: (w) => (writer = w) });
    await store.transaction(async (tx) => tx.write('R4', patient('d1')));
    await writer!.terminate();
    assert.match(store.failure() ?? '', /writer thread stopped unexpectedly/);
    await assert.rejects(store.transaction(async (tx) => tx.write('R4', patient('d2'))), (err: { status?: number; message: string }) => {
      assert.equal(err.status, 503, 'a write that cannot be stored is a 503 OperationOutcome, not a 500');
      assert.match(err.message, /writer thread stopped unexpectedly/);
      return true;
    });
    assert.equal((await store.read('R4', 'Patient', 'd1'))?.versionId, 1, 'what was committed is still readable');
    await store.close();
  });

  it('rejects transactions once closed, without touching the closed database', async () => {
    const store = await openSqliteStore({ path: join(dir, 'closed.db') });
    await store.close();
    assert.match(store.failure() ?? '', /closed/);
    await assert.rejects(store.transaction(async (tx) => tx.write('R4', patient('z'))), /closed/);
  });
});
