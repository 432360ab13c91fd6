import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeliverySlots } from './slots.ts';

describe('DeliverySlots (issue 14: a global cap on outbound deliveries)', () => {
  it('grants up to its size at once; the others wait, first come first served, and none is dropped', async () => {
    const slots = new DeliverySlots(2);
    const order: number[] = [];
    assert.equal(await slots.acquire(), true);
    assert.equal(await slots.acquire(), true);
    const waiting = [3, 4, 5].map((n) => slots.acquire().then((granted) => (order.push(n), granted)));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(slots.stats(), { inUse: 2, waiting: 3 });
    slots.release();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, [3]);
    assert.deepEqual(slots.stats(), { inUse: 2, waiting: 2 }, 'a released slot passes straight to the next in line');
    slots.release();
    slots.release();
    assert.deepEqual(await Promise.all(waiting), [true, true, true]);
    assert.deepEqual(order, [3, 4, 5]);
    slots.release();
    slots.release();
    assert.deepEqual(slots.stats(), { inUse: 0, waiting: 0 });
  });

  it('once closed, tells waiters and later callers false (nothing is sent while stopping)', async () => {
    const slots = new DeliverySlots(1);
    assert.equal(await slots.acquire(), true);
    const waiter = slots.acquire();
    slots.close();
    assert.equal(await waiter, false);
    assert.equal(await slots.acquire(), false);
  });
});
