import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { usePostgresDatabase } from '../../../../test/helpers/postgres.ts';
import { until } from '../../../../test/helpers/until.ts';
import { openPostgresStore } from '../../../store/postgres/index.ts';
import { openSqliteStore } from '../../../store/sqlite/index.ts';
import type { Store } from '../../../store/store.ts';
import { DeliveryLeases } from './lease.ts';

const quiet = { warn: () => {} };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const state = (n: number) => ({ deliveredThrough: n, attempts: 0 });

/** A node's leases, writing down what it is told. */
function node(store: Store, leaseMs: number, lookBatchMs?: number) {
  const told: string[] = [];
  const leases = new DeliveryLeases({ store, fv: 'R4', leaseMs, lookBatchMs, log: quiet, onLost: (id) => told.push(`lost ${id}`), onFree: (id) => told.push(`free ${id}`) });
  return { leases, told };
}

/**
 * A node's store whose looks at leases (deliveryLeasesHeld) are counted, and those numbered in
 * `held` (1 is the first) are held back after their read until the test answers them.
 * `refuseAtOnce`: a refused claim says the holder's lease has run out, so the node looks again
 * after its jitter alone (50-250 ms), however long the holder's lease.
 */
function gatedLooks(store: Store, held: number[], { refuseAtOnce = false } = {}) {
  const gate = () => {
    let open!: () => void;
    const opened = new Promise<void>((r) => (open = r));
    return { opened, open };
  };
  const gates = new Map(held.map((n) => [n, { read: gate(), answer: gate() }]));
  let looks = 0;
  let answered = 0;
  const gated: Store = {
    ...store,
    deliveryLeasesHeld: async (...args) => {
      const leases = await store.deliveryLeasesHeld!(...args);
      const g = gates.get(++looks);
      g?.read.open();
      await g?.answer.opened;
      answered++;
      return leases;
    },
    ...(refuseAtOnce && {
      claimDelivery: async (...args) => {
        const claim = await store.claimDelivery!(...args);
        return claim.outcome === 'refused' ? { ...claim, expiresInMs: 0 } : claim;
      },
    }),
  };
  return {
    store: gated,
    looks: () => looks,
    /** How many looks have had their answer. */
    answered: () => answered,
    /** Resolves once look `n` has read the leases (and waits to answer). */
    read: (n: number) => gates.get(n)!.read.opened,
    answer: (n: number) => gates.get(n)!.answer.open(),
    answerAll: () => gates.forEach((g) => g.answer.open()),
  };
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
    // 1.2 s leases renewed every 400 ms: A keeps its lease unless this machine stalls it for 800 ms.
    const a = node(sc, 1_200);
    const b = node(counted, 1_200);
    try {
      assert.equal(await a.leases.hold('s1'), 'acquired');
      assert.equal(await a.leases.hold('s1'), 'held');
      assert.equal(await b.leases.hold('s1'), 'refused');
      assert.equal(b.leases.waiting('s1'), true);
      // Three leases long: A never claims again, only its renewal timer runs; B looks, finds it renewed, waits again.
      await sleep(3_800);
      assert.deepEqual(b.told, [], 'B is not told to claim while A renews');
      assert.ok(looks >= 2, `B looked at the lease once per wait: ${looks}`);
      assert.equal(claims, 1, 'and claimed only the first time');
      assert.equal(b.leases.waiting('s1'), true);
      assert.equal(await a.leases.hold('s1'), 'held');
      assert.deepEqual(a.told, []);
      // A dies (its connections gone, no release): its lease runs out, B's next look finds it free.
      await sc.close();
      await until('B told the lease is free once it ran out', () => b.told.length > 0, { timeoutMs: 5_000 });
      assert.deepEqual(b.told, ['free s1']);
      assert.equal(await b.leases.hold('s1'), 'acquired');
    } finally {
      await a.leases.stop();
      await b.leases.stop();
    }
  });

  it('a release heard while a look is under way is acted on at once, and the look (which read the lease still held) leaves it alone', async () => {
    // B's look at the lease reads it while A holds it, then is held back until the test lets it answer.
    const looks = gatedLooks(sb, [1]);
    const a = node(sa, 600);
    const b = node(looks.store, 600);
    try {
      assert.equal(await a.leases.hold('s5'), 'acquired');
      assert.equal(await b.leases.hold('s5'), 'refused');
      await looks.read(1);
      assert.equal(b.leases.waiting('s5'), true, 'still waiting while its look is under way');
      // B's worker tries again meanwhile and is refused: B now also waits by a timer of its own.
      assert.equal(await b.leases.hold('s5'), 'refused');
      // A stops cleanly; its NOTIFY reaches B mid-look.
      await a.leases.stop();
      b.leases.released('s5');
      assert.deepEqual(b.told, ['free s5'], 'told at once, not after the lease A released would have run out');
      assert.equal(b.leases.waiting('s5'), false);
      looks.answer(1);
      // Longer than the stale look's answer could make B wait before looking again.
      await sleep(1_500);
      assert.deepEqual(b.told, ['free s5'], 'the stale look neither waits again nor tells twice');
      assert.equal(looks.looks(), 1);
      assert.equal(await b.leases.hold('s5'), 'acquired');
    } finally {
      looks.answerAll();
      await a.leases.stop();
      await b.leases.stop();
    }
  });

  // B's first look reads the lease free (A stopped, and B never heard the release) and is held
  // back; meanwhile C takes the lease and B, refused, waits again. Whatever comes of that wait, the
  // first look's answer is stale and must not tell B to claim. Holders keep long leases that no
  // stall can end; B's refusals wait 50-250 ms, and its looks are gathered for 2 s.
  for (const [when, held] of [
    ['before the next look begins (the id due again)', [1]],
    ['while the next look is under way (a newer read)', [1, 2]],
  ] as const) {
    it(`a look whose answer comes ${when} leaves that answer unused: the newest look decides`, async () => {
      const looks = gatedLooks(sb, [...held], { refuseAtOnce: true });
      const sc = await openPostgresStore({ url: await database, poolSize: 2 });
      const a = node(sa, 60_000);
      const b = node(looks.store, 60_000, 2_000);
      const c = node(sc, 60_000);
      try {
        assert.equal(await a.leases.hold('s6'), 'acquired');
        assert.equal(await b.leases.hold('s6'), 'refused');
        await a.leases.stop();
        await looks.read(1);
        assert.equal(await c.leases.hold('s6'), 'acquired');
        assert.equal(await b.leases.hold('s6'), 'refused');
        if (held.length === 1) await sleep(1_000); // B's wait has run out; the next look is 2 s away
        else await looks.read(2); // the next look has read C's lease and waits to answer
        looks.answer(1);
        await sleep(100);
        assert.deepEqual(b.told, [], "the first look's answer (free) is stale: C holds the lease, so B is not told to claim");
        assert.equal(b.leases.waiting('s6'), true);
        if (held.length === 2) looks.answer(2);
        // The next look reads C's lease and waits again; once C stops, B is told.
        await until("B's next look has its answer", () => looks.answered() >= 2, { timeoutMs: 10_000 });
        assert.deepEqual(b.told, [], 'C still holds it');
        await c.leases.stop();
        b.leases.released('s6');
        assert.deepEqual(b.told, ['free s6']);
        assert.equal(await b.leases.hold('s6'), 'acquired');
      } finally {
        looks.answerAll();
        await a.leases.stop();
        await b.leases.stop();
        await c.leases.stop();
        await sc.close();
      }
    });
  }

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
