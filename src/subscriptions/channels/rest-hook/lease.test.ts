import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { usePostgresDatabase } from '../../../../test/helpers/postgres.ts';
import { openPostgresStore } from '../../../store/postgres/index.ts';
import { openSqliteStore } from '../../../store/sqlite/index.ts';
import type { Store } from '../../../store/store.ts';
import { DeliveryLeases } from './lease.ts';

const quiet = { warn: () => {} };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const state = (n: number) => ({ deliveredThrough: n, attempts: 0 });

/** A node's leases, writing down what it is told. */
function node(store: Store, leaseMs: number) {
  const told: string[] = [];
  const leases = new DeliveryLeases({ store, fv: 'R4', leaseMs, log: quiet, onLost: (id) => told.push(`lost ${id}`), onFree: (id) => told.push(`free ${id}`) });
  return { leases, told };
}

describe('DeliveryLeases on one process (SQLite: no leases)', () => {
  it('always holds, and writes the delivery state in a transaction', async () => {
    const store = await openSqliteStore({ path: ':memory:' });
    try {
      const { leases, told } = node(store, 1000);
      assert.equal(await leases.hold('s'), 'held');
      assert.equal(leases.waiting('s'), false);
      assert.equal(await leases.write('s', state(3)), true);
      assert.equal((await store.deliveryState('R4', 's')).deliveredThrough, 3);
      await leases.stop();
      assert.deepEqual(told, []);
    } finally {
      await store.close();
    }
  });
});

describe('DeliveryLeases between two nodes (PostgreSQL)', () => {
  const database = usePostgresDatabase();
  let sa: Store;
  let sb: Store;
  before(async () => {
    const url = await database;
    [sa, sb] = await Promise.all([openPostgresStore({ url, poolSize: 2 }), openPostgresStore({ url, poolSize: 2 })]);
  });
  after(async () => {
    await sa?.close();
    await sb?.close();
  });

  it('the holder keeps its lease by renewing while idle; the other waits, looks at it in one read each time it could have run out, and claims only once it is free', async () => {
    const sc = await openPostgresStore({ url: await database, poolSize: 2 });
    let claims = 0;
    let looks = 0;
    // B's store, counting what B asks of it (the real store underneath).
    const counted: Store = {
      ...sb,
      claimDelivery: (...args) => (claims++, sb.claimDelivery!(...args)),
      deliveryLeasesHeld: (...args) => (looks++, sb.deliveryLeasesHeld!(...args)),
    };
    const a = node(sc, 600);
    const b = node(counted, 600);
    try {
      assert.equal(await a.leases.hold('s1'), 'acquired');
      assert.equal(await a.leases.hold('s1'), 'held');
      assert.equal(await b.leases.hold('s1'), 'refused');
      assert.equal(b.leases.waiting('s1'), true);
      // Three leases long: A never claims again, only its renewal timer runs; B looks, finds it renewed, waits again.
      await sleep(1_900);
      assert.deepEqual(b.told, [], 'B is not told to claim while A renews');
      assert.ok(looks >= 2, `B looked at the lease once per wait: ${looks}`);
      assert.equal(claims, 1, 'and claimed only the first time');
      assert.equal(b.leases.waiting('s1'), true);
      assert.equal(await a.leases.hold('s1'), 'held');
      assert.deepEqual(a.told, []);
      // A dies (its connections gone, no release): its lease runs out, B's next look finds it free.
      await sc.close();
      const deadline = Date.now() + 3_000;
      while (b.told.length === 0) {
        assert.ok(Date.now() < deadline, 'B was told the lease is free once it ran out');
        await sleep(20);
      }
      assert.deepEqual(b.told, ['free s1']);
      assert.equal(await b.leases.hold('s1'), 'acquired');
    } finally {
      await a.leases.stop();
      await b.leases.stop();
    }
  });

  it('a release heard while a look is under way is acted on at once, and the look (which read the lease still held) leaves it alone', async () => {
    // B's look at the lease reads it while A holds it, then is held back until the test lets it answer.
    let reading!: () => void;
    const read = new Promise<void>((r) => (reading = r));
    let answer!: () => void;
    const answered = new Promise<void>((r) => (answer = r));
    let looks = 0;
    const gated: Store = {
      ...sb,
      deliveryLeasesHeld: async (...args) => {
        const held = await sb.deliveryLeasesHeld!(...args);
        looks++;
        reading();
        await answered;
        return held;
      },
    };
    const a = node(sa, 600);
    const b = node(gated, 600);
    try {
      assert.equal(await a.leases.hold('s5'), 'acquired');
      assert.equal(await b.leases.hold('s5'), 'refused');
      await read;
      assert.equal(b.leases.waiting('s5'), true, 'still waiting while its look is under way');
      // B's worker tries again meanwhile and is refused: B now also waits by a timer of its own.
      assert.equal(await b.leases.hold('s5'), 'refused');
      // A stops cleanly; its NOTIFY reaches B mid-look.
      await a.leases.stop();
      b.leases.released('s5');
      assert.deepEqual(b.told, ['free s5'], 'told at once, not after the lease A released would have run out');
      assert.equal(b.leases.waiting('s5'), false);
      answer();
      // Longer than the stale look's answer could make B wait before looking again.
      await sleep(1_500);
      assert.deepEqual(b.told, ['free s5'], 'the stale look neither waits again nor tells twice');
      assert.equal(looks, 1);
      assert.equal(await b.leases.hold('s5'), 'acquired');
    } finally {
      answer();
      await a.leases.stop();
      await b.leases.stop();
    }
  });

  it('a clean stop releases: the other node is free to take it at once and reads the cursor the holder wrote', async () => {
    const a = node(sa, 60_000);
    const b = node(sb, 60_000);
    try {
      assert.equal(await a.leases.hold('s2'), 'acquired');
      assert.equal(await a.leases.write('s2', state(7)), true);
      assert.equal(await b.leases.hold('s2'), 'refused');
      await a.leases.stop();
      b.leases.released('s2'); // what the NOTIFY of the release leads to
      assert.deepEqual(b.told, ['free s2']);
      assert.equal(b.leases.waiting('s2'), false);
      assert.equal(await b.leases.hold('s2'), 'acquired');
      assert.equal((await sb.deliveryState('R4', 's2')).deliveredThrough, 7);
    } finally {
      await b.leases.stop();
    }
  });

  it('a node that lost its lease without knowing cannot write the cursor (fencing), and is told it lost it', async () => {
    const a = node(sa, 60_000);
    const b = node(sb, 60_000);
    try {
      assert.equal(await a.leases.hold('s3'), 'acquired');
      assert.equal(await a.leases.write('s3', state(2)), true);
      // As if A had stalled past its lease and B had taken over: A still believes it holds it.
      await sa.releaseDeliveries!('R4', ['s3']);
      assert.equal(await b.leases.hold('s3'), 'acquired');
      assert.equal(await a.leases.write('s3', state(5)), false);
      assert.deepEqual(a.told, ['lost s3']);
      assert.equal(await b.leases.write('s3', state(3)), true);
      assert.equal((await sa.deliveryState('R4', 's3')).deliveredThrough, 3);
      assert.equal(await a.leases.hold('s3'), 'refused');
    } finally {
      await a.leases.stop();
      await b.leases.stop();
    }
  });

  it('dropping a held lease releases it once the last work is done', async () => {
    const a = node(sa, 60_000);
    const b = node(sb, 60_000);
    try {
      assert.equal(await a.leases.hold('s4'), 'acquired');
      let finish!: () => void;
      const lastRun = new Promise<void>((r) => (finish = r));
      const dropped = a.leases.drop('s4', lastRun);
      assert.equal(await b.leases.hold('s4'), 'refused', 'not before the last run is done');
      finish();
      await dropped;
      assert.equal(await b.leases.hold('s4'), 'acquired');
    } finally {
      await a.leases.stop();
      await b.leases.stop();
    }
  });
});
