import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay } from './backoff.ts';
import { EventSequencer } from './ordering.ts';

const ev = (n: number, tag = '') => ({ eventNumber: n, tag });
const numbers = (xs: { eventNumber: number }[]) => xs.map((x) => x.eventNumber);

describe('EventSequencer', () => {
  it('delivers consecutive events at once, in order', () => {
    const s = new EventSequencer<ReturnType<typeof ev>>(0);
    assert.equal(s.offer(ev(1)), 'ready');
    assert.equal(s.offer(ev(2)), 'ready');
    assert.deepEqual(numbers(s.take()), [1, 2]);
    assert.deepEqual(s.take(), []);
    assert.equal(s.lastDelivered, 2);
    assert.equal(s.missing(), undefined);
  });

  it('holds events after a gap, reports the gap, and releases them when it is filled', () => {
    const s = new EventSequencer<ReturnType<typeof ev>>(0);
    s.offer(ev(1));
    assert.equal(s.offer(ev(4)), 'held');
    assert.equal(s.offer(ev(5)), 'held');
    assert.deepEqual(numbers(s.take()), [1]);
    assert.deepEqual(s.missing(), { from: 2, to: 3 });
    assert.equal(s.heldCount, 2);
    s.offer(ev(3));
    assert.deepEqual(s.take(), []);
    assert.deepEqual(s.missing(), { from: 2, to: 2 });
    s.offer(ev(2));
    assert.deepEqual(numbers(s.take()), [2, 3, 4, 5]);
    assert.equal(s.missing(), undefined);
    assert.equal(s.heldCount, 0);
  });

  it('drops duplicates: delivered, ready but not taken, and held', () => {
    const s = new EventSequencer<ReturnType<typeof ev>>(0);
    s.offer(ev(1, 'a'));
    assert.equal(s.offer(ev(1, 'b')), 'duplicate');
    s.offer(ev(3, 'a'));
    assert.equal(s.offer(ev(3, 'b')), 'duplicate');
    assert.deepEqual(s.take().map((x) => x.tag), ['a']);
    assert.equal(s.offer(ev(1, 'c')), 'duplicate');
    s.offer(ev(2));
    assert.deepEqual(s.take().map((x) => `${x.eventNumber}${x.tag}`), ['2', '3a']);
  });

  it('learns of missing events from a count alone (handshake or heartbeat eventsSinceSubscriptionStart)', () => {
    const s = new EventSequencer<ReturnType<typeof ev>>(3);
    s.observe(3);
    assert.equal(s.missing(), undefined);
    s.observe(7);
    assert.deepEqual(s.missing(), { from: 4, to: 7 });
    s.observe(5); // counts only grow
    assert.equal(s.highestKnown, 7);
    s.offer(ev(6));
    assert.deepEqual(s.missing(), { from: 4, to: 5 });
  });

  it('without a baseline holds everything and reports no gap; the baseline drops what is older', () => {
    const s = new EventSequencer<ReturnType<typeof ev>>();
    assert.equal(s.hasBaseline, false);
    assert.equal(s.offer(ev(9)), 'before-baseline');
    assert.equal(s.offer(ev(11)), 'before-baseline');
    s.observe(12);
    assert.equal(s.missing(), undefined);
    assert.deepEqual(s.take(), []);
    s.setBaseline(9);
    assert.deepEqual(s.take(), []);
    assert.deepEqual(s.missing(), { from: 10, to: 10 });
    s.setBaseline(0); // no-op once set
    assert.equal(s.lastDelivered, 9);
    s.offer(ev(10));
    assert.deepEqual(numbers(s.take()), [10, 11]);
    assert.deepEqual(s.missing(), { from: 12, to: 12 });
  });

  it('a baseline can release held events at once', () => {
    const s = new EventSequencer<ReturnType<typeof ev>>();
    s.offer(ev(5));
    s.offer(ev(6));
    s.setBaseline(4);
    assert.deepEqual(numbers(s.take()), [5, 6]);
  });

  it('skips numbers that can never arrive, delivering held ones in between, and reports the lost ranges', () => {
    const s = new EventSequencer<ReturnType<typeof ev>>(0);
    s.offer(ev(3));
    s.offer(ev(6));
    s.observe(8);
    assert.deepEqual(s.missing(), { from: 1, to: 2 });
    const lost = s.skipTo(7);
    assert.deepEqual(lost, [
      { from: 1, to: 2 },
      { from: 4, to: 5 },
      { from: 7, to: 7 },
    ]);
    assert.deepEqual(numbers(s.take()), [3, 6]);
    assert.equal(s.lastDelivered, 7);
    assert.deepEqual(s.missing(), { from: 8, to: 8 });
    assert.deepEqual(s.skipTo(3), []);
  });

  it('interleaves live events with catch-up pages and duplicates from a token-renewal overlap', () => {
    const s = new EventSequencer<ReturnType<typeof ev>>(0);
    const delivered: number[] = [];
    const feed = (...ns: number[]) => {
      for (const n of ns) s.offer(ev(n));
      delivered.push(...numbers(s.take()));
    };
    feed(1, 2);
    s.observe(10); // reconnect handshake: 10 events so far
    feed(11, 12); // live frames after the reconnect
    assert.deepEqual(s.missing(), { from: 3, to: 10 });
    feed(3, 4, 5); // first $events page
    feed(12, 11); // duplicates from a second binding
    feed(6, 7, 8, 9, 10);
    feed(13, 13, 14);
    assert.deepEqual(delivered, Array.from({ length: 14 }, (_, i) => i + 1));
  });
});

describe('backoffDelay', () => {
  it('doubles from the initial delay up to the cap, with up to half of it random', () => {
    const lo = (a: number) => backoffDelay(a, { initialDelayMs: 100, maxDelayMs: 1000 }, () => 0);
    const hi = (a: number) => backoffDelay(a, { initialDelayMs: 100, maxDelayMs: 1000 }, () => 1);
    assert.deepEqual([0, 1, 2, 3, 4, 10].map(lo), [50, 100, 200, 400, 500, 500]);
    assert.deepEqual([0, 1, 2, 3, 4, 10].map(hi), [100, 200, 400, 800, 1000, 1000]);
    assert.ok(backoffDelay(1000) <= 30_000);
  });
});
