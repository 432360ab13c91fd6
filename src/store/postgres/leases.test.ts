import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useTwoNodes } from '../../../test/helpers/postgres.ts';
import type { RemoteCommit, Store } from '../store.ts';

/** Delivery leases between two stores on one database: two nodes, as far as the leases can tell. */
describe('PostgreSQL delivery leases', () => {
  let a: Store;
  let b: Store;
  let toB: RemoteCommit[];
  useTwoNodes((nodes) => ({ a, b, toB } = nodes));
  const state = (n: number) => ({ deliveredThrough: n, attempts: 0 });

  it('one node acquires, renews; the other is refused and told how long the lease has left', async () => {
    assert.equal((await a.claimDelivery!('R4', 's1', 5_000)).outcome, 'acquired');
    assert.equal((await a.claimDelivery!('R4', 's1', 5_000)).outcome, 'renewed');
    const refused = await b.claimDelivery!('R4', 's1', 5_000);
    assert.equal(refused.outcome, 'refused');
    assert.ok(refused.expiresInMs > 3_000 && refused.expiresInMs <= 5_000, String(refused.expiresInMs));
  });

  it('renews only the leases it holds, in one call', async () => {
    assert.equal((await b.claimDelivery!('R4', 's2', 5_000)).outcome, 'acquired');
    assert.deepEqual(await a.renewDeliveries!('R4', ['s1', 's2', 'unknown'], 5_000), ['s1']);
    assert.deepEqual(await b.renewDeliveries!('R4', ['s1', 's2'], 5_000), ['s2']);
    assert.deepEqual(await a.renewDeliveries!('R4B', ['s1'], 5_000), [], 'leases are per FHIR version');
  });

  it('an expired lease goes to the first claimant; the old holder can then neither renew it nor write the cursor (fencing)', async () => {
    assert.equal((await a.claimDelivery!('R4', 's3', 50)).outcome, 'acquired');
    assert.equal(await a.setLeasedDeliveryState!('R4', 's3', state(4)), true);
    assert.equal(await b.setLeasedDeliveryState!('R4', 's3', state(9)), false, 'not the holder');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await b.claimDelivery!('R4', 's3', 5_000)).outcome, 'acquired');
    assert.equal((await b.deliveryState('R4', 's3')).deliveredThrough, 4, 'the new holder reads where the old one stood');
    assert.deepEqual(await a.renewDeliveries!('R4', ['s3'], 5_000), []);
    assert.equal(await a.setLeasedDeliveryState!('R4', 's3', state(5)), false);
    assert.equal(await b.setLeasedDeliveryState!('R4', 's3', state(6)), true);
    assert.equal((await a.deliveryState('R4', 's3')).deliveredThrough, 6);
  });

  it('a lease nobody took over is still its holder’s after expiry: renewing it keeps the cursor writable', async () => {
    assert.equal((await a.claimDelivery!('R4', 's4', 50)).outcome, 'acquired');
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await a.renewDeliveries!('R4', ['s4'], 5_000), ['s4']);
    assert.equal(await a.setLeasedDeliveryState!('R4', 's4', state(1)), true);
  });

  it('a released lease is free at once, and the other node is told', async () => {
    assert.equal((await a.claimDelivery!('R4', 's5', 60_000)).outcome, 'acquired');
    await b.releaseDeliveries!('R4', ['s5']); // not b's: nothing happens
    assert.equal((await b.claimDelivery!('R4', 's5', 5_000)).outcome, 'refused');
    await a.releaseDeliveries!('R4', ['s5']);
    const deadline = Date.now() + 5_000;
    while (!toB.some((c) => c.released?.includes('s5'))) {
      assert.ok(Date.now() < deadline, 'node B was told of the release');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal((await b.claimDelivery!('R4', 's5', 5_000)).outcome, 'acquired');
  });
});
