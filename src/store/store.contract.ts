import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Condition, type IndexRows, type SearchParam, type SearchRequest, emptyIndexRows } from '../search/types.ts';
import type { NewVersion, Store } from './store.ts';

/**
 * The behaviour every Store must have. Each implementation's test file calls this with a factory
 * for a fresh, empty store; nothing here may know which implementation it is testing.
 */
const searchAll = (type: string): SearchRequest => ({
  types: [type],
  conditions: [],
  sort: [],
  count: 100,
  include: [],
  revinclude: [],
  total: 'accurate',
  ignored: [],
});

/** Code-point order, as the stores sort keys (SQLite's BINARY, PostgreSQL's COLLATE "C"). */
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function storeContract(name: string, open: () => Promise<Store>): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    before(async () => {
      store = await open();
    });
    after(async () => {
      await store.close();
    });

    it('reports no failure while it is open', () => {
      assert.equal(store.failure(), undefined);
    });

    const v = (id: string, versionId: number, extra: Partial<NewVersion> = {}): NewVersion => ({
      type: 'Patient',
      id,
      versionId,
      lastUpdated: new Date(Date.UTC(2024, 0, 1, 0, 0, versionId)).toISOString(),
      method: versionId === 1 ? 'POST' : 'PUT',
      json: JSON.stringify({ resourceType: 'Patient', id, meta: { versionId: String(versionId) } }),
      ...extra,
    });

    it('reads back what a committed transaction wrote, latest version first', async () => {
      await store.transaction(async (tx) => {
        await tx.write('R4', v('a', 1));
        await tx.write('R4', v('a', 2));
      });
      const latest = await store.read('R4', 'Patient', 'a');
      assert.equal(latest?.versionId, 2);
      assert.equal(latest?.deleted, false);
      assert.equal(JSON.parse(latest!.json!).meta.versionId, '2');
      assert.equal((await store.vread('R4', 'Patient', 'a', 1))?.versionId, 1);
      assert.equal(await store.vread('R4', 'Patient', 'a', 3), undefined);
      assert.equal(await store.read('R4', 'Patient', 'nope'), undefined);
    });

    it('keeps FHIR versions apart', async () => {
      await store.transaction(async (tx) => tx.write('R5', v('shared', 1)));
      assert.equal(await store.read('R4', 'Patient', 'shared'), undefined);
      assert.equal(await store.read('R4B', 'Patient', 'shared'), undefined);
      assert.equal((await store.read('R5', 'Patient', 'shared'))?.versionId, 1);
    });

    it('rolls back every write of a transaction whose function throws', async () => {
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.write('R4', v('rollback', 1));
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.equal(await store.read('R4', 'Patient', 'rollback'), undefined);
    });

    it('sees its own uncommitted writes inside the transaction', async () => {
      const seen = await store.transaction(async (tx) => {
        await tx.write('R4', v('own', 1));
        return tx.read('R4', 'Patient', 'own');
      });
      assert.equal(seen?.versionId, 1);
    });

    it('refuses a second write of the same version number', async () => {
      await store.transaction(async (tx) => tx.write('R4', v('dup', 1)));
      await assert.rejects(store.transaction(async (tx) => tx.write('R4', v('dup', 1))));
      assert.equal((await store.read('R4', 'Patient', 'dup'))?.versionId, 1);
    });

    it('isolates concurrent transactions: one failing does not undo the others', async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) =>
          store.transaction(async (tx) => {
            await tx.write('R4', v(`c${i}`, 1));
            if (i % 5 === 0) throw new Error(`fail ${i}`);
          }),
        ),
      );
      assert.equal(results.filter((r) => r.status === 'rejected').length, 4);
      for (let i = 0; i < 20; i++) {
        const got = await store.read('R4', 'Patient', `c${i}`);
        assert.equal(got === undefined, i % 5 === 0, `c${i}`);
      }
    });

    it('records a deletion as a version without content', async () => {
      await store.transaction(async (tx) => {
        await tx.write('R4', v('del', 1));
        await tx.write('R4', { ...v('del', 2), method: 'DELETE', json: undefined });
      });
      const latest = await store.read('R4', 'Patient', 'del');
      assert.equal(latest?.deleted, true);
      assert.equal(latest?.json, undefined);
      assert.equal(latest?.method, 'DELETE');
      assert.equal((await store.vread('R4', 'Patient', 'del', 1))?.deleted, false);
    });

    it('searches current, live resources by index rows, ANDed, forgetting rows of replaced versions', async () => {
      const rows = (value: string) => ({
        ...emptyIndexRows(),
        token: [
          { code: 'identifier', system: 'urn:sys', value, text: null },
          { code: 'identifier', system: null, value: 'nosys', text: null },
        ],
      });
      await store.transaction(async (tx) => {
        await tx.write('R4B', { ...v('t1', 1), index: rows('x') });
        await tx.write('R4B', { ...v('t2', 1), index: rows('y') });
      });
      const identifier: SearchParam = { code: 'identifier', type: 'token', url: 'urn:test', targets: [] };
      const tokenCond = (system: string | null | undefined, value: string): Condition => ({
        kind: 'param',
        param: identifier,
        values: [{ kind: 'token', ...(system === undefined ? {} : { system }), value }],
      });
      const find = (fv: 'R4' | 'R4B', ...conditions: Condition[]) =>
        store.search(fv, { ...searchAll('Patient'), conditions }).then((p) => p.matches.map((m) => m.id).sort());
      assert.deepEqual(await find('R4B', tokenCond('urn:sys', 'x')), ['t1']);
      assert.deepEqual(await find('R4B', tokenCond(undefined, 'x')), ['t1']);
      assert.deepEqual(await find('R4B', tokenCond(null, 'nosys')), ['t1', 't2']);
      assert.deepEqual(await find('R4B', tokenCond('other', 'x')), []);
      assert.deepEqual(await find('R4B', tokenCond(undefined, 'x'), tokenCond(undefined, 'nosys')), ['t1']);
      await store.transaction(async (tx) => tx.write('R4B', { ...v('t1', 2), index: rows('z') }));
      assert.deepEqual(await find('R4B', tokenCond(undefined, 'x')), []);
      await store.transaction(async (tx) => tx.write('R4B', { ...v('t2', 2), method: 'DELETE', json: undefined }));
      assert.deepEqual(await find('R4B', tokenCond(undefined, 'nosys')), ['t1']);
      assert.deepEqual(await find('R4', tokenCond(undefined, 'z')), []);
    });

    it('pages search results with cursors in both directions, stable under inserts', async () => {
      await store.transaction(async (tx) => {
        for (let i = 0; i < 7; i++) await tx.write('R5', { ...v(`p${i}`, 1), type: 'Group' });
      });
      const req = { ...searchAll('Group'), count: 3 };
      const first = await store.search('R5', req);
      assert.deepEqual(first.matches.map((m) => m.id), ['p0', 'p1', 'p2']);
      assert.equal(first.total, 7);
      assert.equal(first.previous, undefined);
      await store.transaction(async (tx) => tx.write('R5', { ...v('p00', 1), type: 'Group' }));
      const second = await store.search('R5', req, first.next);
      assert.deepEqual(second.matches.map((m) => m.id), ['p3', 'p4', 'p5']);
      const third = await store.search('R5', req, second.next);
      assert.deepEqual(third.matches.map((m) => m.id), ['p6']);
      assert.equal(third.next, undefined);
      const back = await store.search('R5', req, second.previous);
      // The page before p3 now holds the resource inserted since the first page.
      assert.deepEqual(back.matches.map((m) => m.id), ['p00', 'p1', 'p2']);
      const start = await store.search('R5', req, back.previous);
      assert.deepEqual(start.matches.map((m) => m.id), ['p0']);
      assert.equal(start.previous, undefined);
    });

    it('numbers events per subscription from 1 without gaps; a rolled-back append uses no number (D-18, EN-1)', async () => {
      const ev = (subscription: string, id: string) => ({
        subscription,
        timestamp: '2024-01-01T00:00:00.000Z',
        focus: { type: 'Encounter', id, versionId: 1 },
        interaction: 'create' as const,
      });
      await store.transaction((tx) => tx.appendEvents('R4', [ev('s1', 'a'), ev('s2', 'a'), ev('s1', 'b')]));
      assert.deepEqual((await store.events('R4', 's1', 1, 100, 100)).map((e) => [e.subscription, e.number, e.focus.id]), [['s1', 1, 'a'], ['s1', 2, 'b']]);
      assert.deepEqual((await store.events('R4', 's2', 1, 100, 100)).map((e) => [e.subscription, e.number, e.focus.id]), [['s2', 1, 'a']]);
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.appendEvents('R4', [ev('s1', 'c')]);
          throw new Error('rollback');
        }),
      );
      await store.transaction(async (tx) => {
        await tx.appendEvents('R4', [ev('s1', 'd')]);
        // Within the transaction the new numbers are visible to its own reads.
        assert.deepEqual(await tx.eventRange('R4', 's1'), { last: 3, first: 1 });
      });
      const got = await store.events('R4', 's1', 1, 100, 100);
      assert.deepEqual(got.map((e) => [e.number, e.focus.id]), [[1, 'a'], [2, 'b'], [3, 'd']]);
      assert.deepEqual((await store.events('R4', 's1', 2, 2, 10)).map((e) => e.number), [2]);
      assert.deepEqual(await store.eventRange('R4', 's1'), { last: 3, first: 1 });
      assert.deepEqual(await store.eventRange('R5', 's1'), { last: 0, first: undefined });
    });

    it('reads the events above several cursors at once, grouped by cursor, in number order, cut at the limit (issue 15, optional)', async (t) => {
      if (!store.eventsAfter) return t.skip('this store reads per subscription');
      const ev = (subscription: string, id: string) => ({ subscription, timestamp: '2024-01-01T00:00:00.000Z', focus: { type: 'Encounter', id, versionId: 1 }, interaction: 'create' as const });
      await store.transaction((tx) => tx.appendEvents('R4', [ev('m1', 'a'), ev('m2', 'a'), ev('m1', 'b'), ev('m1', 'c'), ev('m2', 'b')]));
      const pairs = (es: { subscription: string; number: number; focus: { id: string } }[]) => es.map((e) => [e.subscription, e.number, e.focus.id]);
      const cursors = [{ subscription: 'm2', after: 0 }, { subscription: 'm1', after: 1 }, { subscription: 'none', after: 0 }];
      assert.deepEqual(pairs(await store.eventsAfter('R4', cursors, 100)), [['m2', 1, 'a'], ['m2', 2, 'b'], ['m1', 2, 'b'], ['m1', 3, 'c']]);
      assert.deepEqual(pairs(await store.eventsAfter('R4', cursors, 3)), [['m2', 1, 'a'], ['m2', 2, 'b'], ['m1', 2, 'b']]);
      assert.deepEqual(await store.eventsAfter('R5', cursors, 100), []);
      assert.deepEqual(await store.eventsAfter('R4', [], 100), []);
    });

    it('runs after-commit callbacks only for transactions that commit', async () => {
      const ran: string[] = [];
      await store.transaction(async (tx) => tx.onCommit(() => ran.push('ok')));
      await assert.rejects(
        store.transaction(async (tx) => {
          tx.onCommit(() => ran.push('rolled-back'));
          throw new Error('no');
        }),
      );
      assert.deepEqual(ran, ['ok']);
    });

    it('keeps delivery state per subscription and prunes old events, keeping the counter', async () => {
      assert.deepEqual(await store.deliveryState('R4B', 'd1'), { deliveredThrough: 0, attempts: 0 });
      const failing = { deliveredThrough: 4, attempts: 2, failingSince: '2024-01-01T00:00:00.000Z', lastError: 'HTTP 500', deliveredAt: '2023-12-31T23:59:59.000Z', nextAttemptAt: '2024-01-01T00:00:04.000Z' };
      await store.transaction((tx) => tx.setDeliveryState('R4B', 'd1', failing));
      assert.deepEqual(await store.deliveryState('R4B', 'd1'), failing);
      // A success clears the failure record and the scheduled attempt.
      await store.transaction((tx) => tx.setDeliveryState('R4B', 'd1', { deliveredThrough: 5, attempts: 0, deliveredAt: '2024-01-01T00:00:05.000Z' }));
      assert.deepEqual(await store.deliveryState('R4B', 'd1'), { deliveredThrough: 5, attempts: 0, deliveredAt: '2024-01-01T00:00:05.000Z' });
      const old = { subscription: 'p1', focus: { type: 'Patient', id: 'x', versionId: 1 }, interaction: 'update' as const };
      await store.transaction((tx) =>
        tx.appendEvents('R4B', [
          { ...old, timestamp: '2000-01-01T00:00:00.000Z' },
          { ...old, timestamp: '2099-01-01T00:00:00.000Z' },
        ]),
      );
      assert.ok((await store.pruneEvents('2020-01-01T00:00:00.000Z')) >= 1);
      assert.deepEqual(await store.eventRange('R4B', 'p1'), { last: 2, first: 2 });
    });

    it('prunes by size too: each subscription keeps its newest events, the counters stay (issue 14)', async () => {
      const event = (subscription: string) => ({ subscription, timestamp: '2099-01-01T00:00:00.000Z', focus: { type: 'Patient', id: 'x', versionId: 1 }, interaction: 'create' as const });
      await store.transaction((tx) => tx.appendEvents('R4', [...Array.from({ length: 7 }, () => event('big')), event('small'), event('small')]));
      assert.equal(await store.pruneEvents('2000-01-01T00:00:00.000Z', 3), 4);
      assert.deepEqual(await store.eventRange('R4', 'big'), { last: 7, first: 5 });
      assert.deepEqual((await store.events('R4', 'big', 1, 7, 10)).map((e) => e.number), [5, 6, 7]);
      assert.deepEqual(await store.eventRange('R4', 'small'), { last: 2, first: 1 });
      assert.equal(await store.pruneEvents('2000-01-01T00:00:00.000Z', 3), 0, 'nothing more to do');
      await store.transaction((tx) => tx.appendEvents('R4', [event('big')]));
      assert.deepEqual(await store.eventRange('R4', 'big'), { last: 8, first: 5 });
    });

    it('reads any span of a long log, shared with other subscriptions, and prunes it by age and by size (issue 15)', async () => {
      // 300 changes over time: every one matches L1, every third also L2, every other one L3 (in
      // another append order), so each log is long and its events are spread among the others'.
      const at = (i: number) => new Date(Date.UTC(2100, 0, 1, 0, 0, i)).toISOString();
      await store.pruneEvents(at(0)); // what earlier tests left (all before 2100), so the counts below are this test's
      for (let i = 1; i <= 300; i += 30) {
        await store.transaction(async (tx) => {
          for (let j = i; j < i + 30; j++) {
            const rest = { timestamp: at(j), focus: { type: 'Observation', id: `o${j}`, versionId: 1 }, interaction: 'create' as const };
            const subs = [...(j % 2 === 0 ? ['L3'] : []), 'L1', ...(j % 3 === 0 ? ['L2'] : [])];
            await tx.appendEvents('R4', subs.map((subscription) => ({ subscription, ...rest })));
          }
        });
      }
      const log = { L1: Array.from({ length: 300 }, (_, i) => i + 1), L2: [] as number[], L3: [] as number[] };
      for (let j = 1; j <= 300; j++) {
        if (j % 3 === 0) log.L2.push(j);
        if (j % 2 === 0) log.L3.push(j);
      }
      const ids = async (sub: keyof typeof log, from: number, to: number, limit: number) =>
        (await store.events('R4', sub, from, to, limit)).map((e) => [e.number, Number(e.focus.id.slice(1))]);
      const want = (sub: keyof typeof log, first: number, from: number, to: number, limit: number) =>
        log[sub].map((j, i) => [i + 1, j]).filter(([n]) => n! >= Math.max(from, first) && n! <= to).slice(0, limit);
      const spans: [number, number, number][] = [[1, 300, 1000], [1, 300, 10], [60, 70, 100], [63, 65, 100], [64, 64, 5], [65, 200, 7], [127, 129, 2], [140, 1000, 1000], [150, 150, 1], [100, 100, 1], [299, 300, 5], [300, 1000, 5], [301, 400, 5]];
      for (const sub of ['L1', 'L2', 'L3'] as const) {
        for (const [from, to, limit] of spans) assert.deepEqual(await ids(sub, from, to, limit), want(sub, 1, from, to, limit), `${sub} [${from}, ${to}] limit ${limit}`);
      }
      assert.deepEqual(await store.eventRange('R4', 'L2'), { last: 100, first: 1 });
      if (store.eventsAfter) {
        // A cursor one behind (the newest event), one far behind, one at the head, one unknown.
        const cursors = [{ subscription: 'L3', after: 149 }, { subscription: 'L2', after: 90 }, { subscription: 'L3', after: 150 }, { subscription: 'nope', after: 0 }, { subscription: 'L1', after: 5 }];
        const got = await store.eventsAfter('R4', cursors, 26);
        assert.deepEqual(got.map((e) => [e.subscription, e.number, e.focus.id, e.timestamp]).slice(0, 1), [['L3', 150, 'o300', at(300)]]);
        assert.deepEqual(got.map((e) => [e.subscription, e.number]), [
          ['L3', 150],
          ...Array.from({ length: 10 }, (_, i) => ['L2', 91 + i]),
          ...Array.from({ length: 15 }, (_, i) => ['L1', 6 + i]),
        ]);
      }
      // By age: the changes before second 100 go, so L1 keeps 100.., L2 34.., L3 50.. (their numbers stay).
      assert.equal(await store.pruneEvents(at(100), undefined), 99 + 33 + 49);
      const firsts = { L1: 100, L2: 34, L3: 50 };
      for (const sub of ['L1', 'L2', 'L3'] as const) {
        assert.deepEqual(await store.eventRange('R4', sub), { last: log[sub].length, first: firsts[sub] }, sub);
        for (const [from, to, limit] of spans) assert.deepEqual(await ids(sub, from, to, limit), want(sub, firsts[sub], from, to, limit), `${sub} [${from}, ${to}] limit ${limit} after the age prune`);
      }
      // By size: each keeps its newest 70 (L2 has only 67 left).
      assert.equal(await store.pruneEvents(at(0), 70), 201 - 70 + (150 - 49) - 70);
      const kept = { L1: 231, L2: 34, L3: 81 };
      for (const sub of ['L1', 'L2', 'L3'] as const) {
        assert.deepEqual(await store.eventRange('R4', sub), { last: log[sub].length, first: kept[sub] }, sub);
        for (const [from, to, limit] of spans) assert.deepEqual(await ids(sub, from, to, limit), want(sub, kept[sub], from, to, limit), `${sub} [${from}, ${to}] limit ${limit} after the size prune`);
      }
      // Numbering goes on from the counters, and the new events are read like the old.
      await store.transaction((tx) => tx.appendEvents('R4', [{ subscription: 'L2', timestamp: at(400), focus: { type: 'Observation', id: 'o400', versionId: 1 }, interaction: 'create' }]));
      assert.deepEqual(await ids('L2', 99, 200, 10), [[99, 297], [100, 300], [101, 400]]);
      // Everything older than the newest change: each log keeps nothing, or that one event.
      await store.pruneEvents(at(350));
      assert.deepEqual(await store.eventRange('R4', 'L1'), { last: 300, first: undefined });
      assert.deepEqual(await store.eventRange('R4', 'L2'), { last: 101, first: 101 });
      assert.deepEqual(await ids('L1', 1, 1000, 1000), []);
    });

    it('numbers a subscription listed twice for one change, and the changes after it, in order', async () => {
      const ev = (subscription: string, id: string) => ({ subscription, timestamp: '2024-01-01T00:00:00.000Z', focus: { type: 'Patient', id, versionId: 1 }, interaction: 'create' as const });
      await store.transaction((tx) => tx.appendEvents('R4', [ev('twice', 'a'), ev('twice', 'a'), ev('other', 'a'), ev('twice', 'b')]));
      assert.deepEqual((await store.events('R4', 'twice', 1, 10, 10)).map((e) => [e.number, e.focus.id]), [[1, 'a'], [2, 'a'], [3, 'b']]);
      assert.deepEqual((await store.events('R4', 'other', 1, 10, 10)).map((e) => [e.number, e.focus.id]), [[1, 'a']]);
    });

    it('keeps binding tokens by hash with their subscriptions, and revokes them per subscription (D-2)', async () => {
      const token = { hash: 'h1', fv: 'R4' as const, owner: 'anonymous', subscriptions: ['a', 'b'], expiresAt: '2099-01-01T00:00:00.000Z', revoked: false };
      await store.transaction((tx) => tx.putBindingToken(token));
      await store.transaction((tx) => tx.putBindingToken({ ...token, hash: 'h2', subscriptions: ['b'] }));
      assert.deepEqual(await store.bindingToken('h1'), token);
      assert.equal(await store.bindingToken('nope'), undefined);
      const revoked = await store.transaction((tx) => tx.revokeBindingTokens('R4', 'b'));
      assert.deepEqual(revoked.sort(), ['h1', 'h2']);
      assert.equal((await store.bindingToken('h1'))?.revoked, true);
      await store.transaction((tx) => tx.putBindingToken({ ...token, hash: 'h3' }));
      await store.transaction((tx) => tx.revokeBindingToken('h3'));
      await store.transaction((tx) => tx.revokeBindingToken('unknown'));
      assert.equal((await store.bindingToken('h3'))?.revoked, true);
      await store.transaction((tx) => tx.putBindingToken({ ...token, hash: 'old', expiresAt: '2000-01-01T00:00:00.000Z' }));
      await store.pruneEvents('2000-01-01T00:00:00.000Z');
      assert.equal(await store.bindingToken('old'), undefined);
    });

    it('keeps Subscription owners per version, replacing on a second put (D-22)', async () => {
      await store.transaction(async (tx) => {
        await tx.putSubscriptionOwner('R4', { subscription: 's2', owner: 'bob', scope: 'system/*.rs' });
        await tx.putSubscriptionOwner('R4', { subscription: 's1', owner: 'alice', scope: 'patient/*.rs', patient: 'p1' });
        await tx.putSubscriptionOwner('R5', { subscription: 's1', owner: 'carol', scope: '' });
      });
      await store.transaction((tx) => tx.putSubscriptionOwner('R4', { subscription: 's2', owner: 'bob', scope: 'system/Observation.rs' }));
      assert.deepEqual(await store.subscriptionOwners('R4'), [
        { subscription: 's1', owner: 'alice', scope: 'patient/*.rs', patient: 'p1' },
        { subscription: 's2', owner: 'bob', scope: 'system/Observation.rs' },
      ]);
      assert.deepEqual(await store.transaction((tx) => tx.subscriptionOwners('R5')), [{ subscription: 's1', owner: 'carol', scope: '' }]);
      assert.deepEqual(await store.subscriptionOwners('R5', 's1'), [{ subscription: 's1', owner: 'carol', scope: '' }], 'one subscription\'s owner');
      assert.deepEqual(await store.subscriptionOwners('R5', 'nobody'), []);
    });

    it('pages history newest first with a stable cursor, by instance, type and system', async () => {
      await store.transaction(async (tx) => {
        for (let i = 1; i <= 5; i++) await tx.write('R4B', { ...v('h', i), type: 'Observation' });
      });
      const first = await store.history('R4B', { type: 'Observation', id: 'h', count: 2 });
      assert.deepEqual(first.versions.map((x) => x.versionId), [5, 4]);
      assert.equal(first.total, 5);
      assert.ok(first.next !== undefined);
      // A write after the first page does not shift the next pages.
      await store.transaction(async (tx) => tx.write('R4B', { ...v('h', 6), type: 'Observation' }));
      const second = await store.history('R4B', { type: 'Observation', id: 'h', count: 2, before: first.next });
      assert.deepEqual(second.versions.map((x) => x.versionId), [3, 2]);
      const third = await store.history('R4B', { type: 'Observation', id: 'h', count: 2, before: second.next });
      assert.deepEqual(third.versions.map((x) => x.versionId), [1]);
      assert.equal(third.next, undefined);

      const since = await store.history('R4B', { type: 'Observation', count: 10, since: v('h', 5).lastUpdated });
      assert.deepEqual(since.versions.map((x) => x.versionId), [6, 5]);
      const system = await store.history('R4B', { count: 100 });
      assert.ok(system.versions.some((x) => x.type === 'Patient'));
      assert.ok(system.versions.some((x) => x.type === 'Observation'));
    });

    it('walks current, live versions in (type, id) order from a key, a page at a time (index rebuilds)', async () => {
      const e = (id: string, versionId: number, extra: Partial<NewVersion> = {}): NewVersion => ({ ...v(id, versionId), type: 'Endpoint', json: JSON.stringify({ resourceType: 'Endpoint', id, n: versionId }), ...extra });
      await store.transaction(async (tx) => {
        for (const id of ['b', 'a', 'c', 'B', 'd']) await tx.write('R5', e(id, 1));
        await tx.write('R5', e('a', 2));
        await tx.write('R5', { ...e('c', 2), method: 'DELETE', json: undefined });
        await tx.write('R4', e('other-version', 1));
      });
      const walk = async (limit: number) => {
        const seen: string[] = [];
        let after = { type: 'Endpoint', id: '' };
        for (;;) {
          const page = (await store.currentVersions('R5', after, limit)).filter((x) => x.type === 'Endpoint');
          if (page.length === 0) return seen;
          seen.push(...page.map((x) => `${x.id}/${x.versionId}/${JSON.parse(x.json!).n}`));
          after = { type: 'Endpoint', id: page[page.length - 1]!.id };
        }
      };
      // Code-point order ('B' before 'a'), the current version only, deletions and other FHIR versions left out.
      assert.deepEqual(await walk(2), ['B/1/1', 'a/2/2', 'b/1/1', 'd/1/1']);
      assert.deepEqual(await walk(100), ['B/1/1', 'a/2/2', 'b/1/1', 'd/1/1']);
      const fromStart = await store.currentVersions('R5', undefined, 1_000);
      assert.ok(fromStart.some((x) => x.type === 'Endpoint' && x.id === 'B'));
      const keys = fromStart.map((x) => [x.type, x.id]);
      assert.deepEqual(keys, [...keys].sort((x, y) => (x[0] === y[0] ? cmp(x[1]!, y[1]!) : cmp(x[0]!, y[0]!))));
    });

    it('replaces the index rows of the current version only, writing no version (index rebuilds)', async () => {
      const rows = (value: string) => ({ ...emptyIndexRows(), token: [{ code: 'identifier', system: 'urn:re', value, text: null }] });
      const identifier: SearchParam = { code: 'identifier', type: 'token', url: 'urn:test', targets: [] };
      const find = (value: string) =>
        store
          .search('R5', { ...searchAll('Device'), conditions: [{ kind: 'param', param: identifier, values: [{ kind: 'token', system: 'urn:re', value }] }] })
          .then((p) => p.matches.map((m) => `${m.id}/${m.versionId}`).sort());
      const d = (id: string, versionId: number, extra: Partial<NewVersion> = {}): NewVersion => ({ ...v(id, versionId), type: 'Device', json: JSON.stringify({ resourceType: 'Device', id }), ...extra });
      await store.transaction(async (tx) => {
        await tx.write('R5', d('one', 1, { index: rows('old') }));
        await tx.write('R5', d('two', 1, { index: rows('old') }));
        await tx.write('R5', d('two', 2, { index: rows('old') }));
        await tx.write('R5', d('gone', 1, { index: rows('old') }));
        await tx.write('R5', d('gone', 2, { method: 'DELETE', json: undefined }));
      });
      assert.deepEqual(await find('old'), ['one/1', 'two/2']);
      const entry = (id: string, versionId: number, index: IndexRows) => ({ type: 'Device', id, versionId, index });
      await store.transaction(async (tx) => {
        // A version that is no longer current (a write came since), and a deleted resource: left alone.
        await tx.replaceIndex('R5', [entry('one', 1, rows('new')), entry('two', 1, rows('new')), entry('gone', 1, rows('new')), entry('never', 1, rows('new'))]);
        await tx.replaceIndex('R5', []);
      });
      assert.deepEqual(await find('new'), ['one/1']);
      assert.deepEqual(await find('old'), ['two/2']);
      const history = await store.history('R5', { type: 'Device', id: 'one', count: 10 });
      assert.deepEqual(history.versions.map((x) => x.versionId), [1]);
      assert.equal((await store.read('R5', 'Device', 'one'))?.lastUpdated, d('one', 1).lastUpdated);
      // Rolled back with its transaction.
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.replaceIndex('R5', [entry('one', 1, rows('rolled-back'))]);
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.deepEqual(await find('rolled-back'), []);
      assert.deepEqual(await find('new'), ['one/1']);
      // In the transaction that wrote the version: the write's own rows give way.
      await store.transaction(async (tx) => {
        await tx.write('R5', d('same-tx', 1, { index: rows('written') }));
        await tx.replaceIndex('R5', [entry('same-tx', 1, rows('replaced'))]);
      });
      assert.deepEqual(await find('written'), []);
      assert.deepEqual(await find('replaced'), ['same-tx/1']);
      assert.equal(store.failure(), undefined);
      // Several resources of one type with values of one date parameter, in one call; their
      // values reach further than anything written before, and a search still finds them.
      const day = Date.UTC(2031, 0, 1);
      const dated = (lo: number, hi: number) => ({ ...emptyIndexRows(), date: [{ code: 'when', lo, hi }, { code: 'when', lo, hi: lo }] });
      await store.transaction(async (tx) => {
        await tx.write('R5', d('d1', 1, { index: emptyIndexRows() }));
        await tx.write('R5', d('d2', 1, { index: emptyIndexRows() }));
      });
      await store.transaction((tx) => tx.replaceIndex('R5', [entry('d1', 1, dated(day, day + 400 * 86_400_000)), entry('d2', 1, dated(day, day + 10 * 86_400_000))]));
      const when: SearchParam = { code: 'when', type: 'date', url: 'urn:test', targets: [] };
      const onDay = (ms: number, prefix: 'eq' | 'ge' = 'eq') =>
        store
          .search('R5', { ...searchAll('Device'), conditions: [{ kind: 'param', param: when, values: [{ kind: 'date', prefix, lo: ms, hi: ms + 86_400_000 - 1 }] }] })
          .then((p) => p.matches.map((m) => m.id).sort());
      assert.deepEqual(await onDay(day), ['d1', 'd2']);
      assert.deepEqual(await onDay(day + 300 * 86_400_000, 'ge'), ['d1']);
    });

    it('keeps where the index stands per FHIR version, read inside its transaction (index rebuilds)', async () => {
      assert.deepEqual(await store.indexState('R4B'), {});
      const building = { built: { generation: 1, base: 'http://a' }, building: { generation: 2, base: 'http://a', after: { type: 'Patient', id: 'x' } } };
      const seen = await store.transaction(async (tx) => {
        await tx.setIndexState('R4B', building);
        return tx.indexState('R4B');
      });
      assert.deepEqual(seen, building);
      assert.deepEqual(await store.indexState('R4B'), building);
      assert.deepEqual(await store.indexState('R4'), {});
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.setIndexState('R4B', { built: { generation: 9, base: 'http://b' } });
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.deepEqual(await store.indexState('R4B'), building);
      await store.transaction((tx) => tx.setIndexState('R4B', { built: { generation: 2, base: 'http://a' } }));
      assert.deepEqual(await store.indexState('R4B'), { built: { generation: 2, base: 'http://a' } });
    });

    it('marks in history a PUT that made a resource again after its deletion', async () => {
      await store.transaction(async (tx) => {
        await tx.write('R4B', v('again', 1));
        await tx.write('R4B', { ...v('again', 2), method: 'DELETE', json: undefined });
        await tx.write('R4B', v('again', 3));
        await tx.write('R4B', v('again', 4));
      });
      const page = await store.history('R4B', { type: 'Patient', id: 'again', count: 10 });
      assert.deepEqual(page.versions.map((x) => [x.versionId, x.method, x.recreated === true]), [[4, 'PUT', false], [3, 'PUT', true], [2, 'DELETE', false], [1, 'POST', false]]);
    });
  });
}
