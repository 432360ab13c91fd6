import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HeartbeatScheduler } from './heartbeats.ts';

/** Resolves when `n` beats have been recorded. */
function recorder() {
  const beats: { key: string; at: number }[] = [];
  let waiting: { n: number; resolve: () => void } | undefined;
  return {
    beats,
    beat: (key: string) => () => {
      beats.push({ key, at: Date.now() });
      if (waiting && beats.length >= waiting.n) waiting.resolve();
    },
    until: (n: number) => (beats.length >= n ? Promise.resolve() : new Promise<void>((resolve) => (waiting = { n, resolve }))),
  };
}

describe('HeartbeatScheduler (NT-3: one scheduler for every channel)', () => {
  it('beats once a key has been idle for its period, never earlier, and then stays disarmed', async () => {
    const h = new HeartbeatScheduler({ slotMs: 10, ref: true });
    const r = recorder();
    const armedAt = Date.now();
    h.arm('R4|a', 50, r.beat('a'));
    assert.equal(h.size(), 1);
    await r.until(1);
    assert.ok(r.beats[0]!.at - armedAt >= 50, 'not before its period');
    assert.equal(h.size(), 0, 'a beat disarms its key: the channel arms it again when it sends');
    await sleep(80);
    assert.equal(r.beats.length, 1);
    await h.stop();
  });

  it('re-arming postpones the beat (a notification sent is activity), and cancel drops it', async () => {
    const h = new HeartbeatScheduler({ slotMs: 10, ref: true });
    const r = recorder();
    h.arm('a', 60, r.beat('a'));
    h.arm('gone', 100, r.beat('gone'));
    await sleep(40);
    h.cancel('gone');
    const rearmedAt = Date.now();
    h.arm('a', 60, r.beat('a'));
    await r.until(1);
    assert.ok(r.beats[0]!.at - rearmedAt >= 60, 'counted from the last arm');
    await sleep(50);
    assert.deepEqual(r.beats.map((b) => b.key), ['a'], "'gone' was cancelled before its time");
    await h.stop();
  });

  it('runs many keys, each exactly once, in the order they fall due', async () => {
    // the clock stands still while they are armed, so each key's slot is known exactly
    let frozen: number | undefined = Date.now();
    const h = new HeartbeatScheduler({ slotMs: 5, ref: true, now: () => frozen ?? Date.now() });
    const r = recorder();
    const slot = new Map<string, number>();
    for (let i = 0; i < 500; i++) {
      const period = 10 + (500 - i) * 0.4; // due in reverse order of arming: k499 first
      h.arm(`k${i}`, period, r.beat(`k${i}`));
      slot.set(`k${i}`, Math.ceil((frozen + period) / 5));
    }
    frozen = undefined;
    await r.until(500);
    assert.equal(new Set(r.beats.map((b) => b.key)).size, 500);
    const order = r.beats.map((b) => slot.get(b.key)!);
    assert.deepEqual(order, [...order].sort((a, b) => a - b));
    await h.stop();
  });

  it('reports a beat that fails and goes on with the others', async () => {
    const failures: string[] = [];
    const h = new HeartbeatScheduler({ slotMs: 10, ref: true, onError: (key, err) => failures.push(`${key}: ${err.message}`) });
    const r = recorder();
    h.arm('bad', 20, async () => {
      throw new Error('store unavailable');
    });
    h.arm('good', 20, r.beat('good'));
    await r.until(1);
    await sleep(20);
    assert.deepEqual(failures, ['bad: store unavailable']);
    await h.stop();
  });

  it('a beat that arms again (it sent a heartbeat) beats again a period later', async () => {
    const h = new HeartbeatScheduler({ slotMs: 10, ref: true });
    const r = recorder();
    const beat = () => {
      r.beat('a')();
      if (r.beats.length < 3) h.arm('a', 20, beat);
    };
    h.arm('a', 20, beat);
    await r.until(3);
    assert.ok(r.beats[2]!.at - r.beats[0]!.at >= 40);
    await h.stop();
  });

  it('stop disarms everything and waits for the beats in flight', async () => {
    const h = new HeartbeatScheduler({ slotMs: 10, ref: true });
    let finished = false;
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    h.arm('slow', 10, async () => {
      started();
      await sleep(50);
      finished = true;
    });
    const r = recorder();
    h.arm('later', 1000, r.beat('later'));
    await running;
    await h.stop();
    assert.equal(finished, true, 'stop waited for the beat in flight');
    assert.equal(h.size(), 0);
    h.arm('after-stop', 10, r.beat('after-stop'));
    assert.equal(h.size(), 0, 'nothing is armed once stopped');
  });
});
