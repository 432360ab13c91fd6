import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useTwoNodes } from '../../../test/helpers/postgres.ts';
import type { NewVersion, RemoteCommit, Store } from '../store.ts';

/** What one node tells the others of its commits (LISTEN/NOTIFY): only what they follow. */
describe('PostgreSQL commit announcements', () => {
  let a: Store;
  let toB: RemoteCommit[];
  useTwoNodes((nodes) => ({ a, toB } = nodes));
  const v = (type: string, id: string): NewVersion => ({
    type,
    id,
    versionId: 1,
    lastUpdated: new Date().toISOString(),
    method: 'POST',
    json: JSON.stringify({ resourceType: type, id, meta: { versionId: '1' } }),
  });
  const waitFor = async (n: number) => {
    const deadline = Date.now() + 5_000;
    while (toB.length < n) {
      assert.ok(Date.now() < deadline, `node B was told ${toB.length} commits, not ${n}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  it('a plain write is not announced; a Subscription or topic write and a commit with events are, naming them', async () => {
    await a.transaction((tx) => tx.write('R4', v('Patient', 'plain')));
    await a.transaction((tx) => tx.write('R4', v('Subscription', 'sub1')));
    await waitFor(1);
    await a.transaction(async (tx) => {
      await tx.write('R5', v('Observation', 'o1'));
      await tx.appendEvents('R5', [{ subscription: 's9', timestamp: new Date().toISOString(), focus: { type: 'Observation', id: 'o1', versionId: 1 }, interaction: 'create' }]);
    });
    await a.transaction((tx) => tx.write('R5', v('SubscriptionTopic', 't1')));
    await waitFor(3);
    // Announcements are sent after each commit, so they may arrive in another order; compare as a set.
    const seen = toB.map((c) => JSON.stringify({ fv: c.fv, s: c.subscriptions, r: c.resources })).sort();
    assert.deepEqual(seen, [
      JSON.stringify({ fv: 'R4', s: [], r: [{ type: 'Subscription', id: 'sub1' }] }),
      JSON.stringify({ fv: 'R5', s: [], r: [{ type: 'SubscriptionTopic', id: 't1' }] }),
      JSON.stringify({ fv: 'R5', s: ['s9'], r: [] }),
    ].sort());
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(toB.length, 3, 'nothing about the plain Patient write');
  });
});
