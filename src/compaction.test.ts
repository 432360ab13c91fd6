import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { compactWhenFragmented, shouldCompact } from './compaction.ts';

const MB = 2 ** 20;

describe('old-space compaction (issue 15)', () => {
  it('compacts the next full GC only when the old space is large and less than half in use', () => {
    // After a bulk load of a million subscriptions without compaction: 481 MB live in 1,472 MB.
    assert.equal(shouldCompact({ size: 1472 * MB, used: 481 * MB }), true);
    // Under steady load after one compaction: 482 MB live in 679 MB, each full GC then pauses 20-50 ms, not 1 s.
    assert.equal(shouldCompact({ size: 679 * MB, used: 482 * MB }), false);
    // Small heaps are left to V8: little memory to win.
    assert.equal(shouldCompact({ size: 200 * MB, used: 20 * MB }), false);
    assert.equal(shouldCompact({ size: 257 * MB, used: 128 * MB }), true);
    assert.equal(shouldCompact({ size: 512 * MB, used: 256 * MB }), false, 'half in use is enough');
  });

  it('decides at start, and again after each full GC (not after a scavenge), setting the flag only when the answer changes', async () => {
    const flags: string[] = [];
    let old = { size: 100 * MB, used: 90 * MB };
    const stop = compactWhenFragmented((f) => flags.push(f), () => old);
    try {
      assert.deepEqual(flags, ['--no-compact-on-every-full-gc']);
      setFlagsFromString('--expose-gc');
      // gc() is a full GC; gc({ type: 'minor' }) a scavenge.
      const gc = runInNewContext('gc') as (options?: { type: 'minor' }) => void;
      old = { size: 1472 * MB, used: 481 * MB };
      gc({ type: 'minor' });
      await sleep(50);
      assert.deepEqual(flags, ['--no-compact-on-every-full-gc'], 'a scavenge changes nothing');
      gc();
      for (let i = 0; i < 100 && flags.length < 2; i++) await sleep(10);
      assert.deepEqual(flags, ['--no-compact-on-every-full-gc', '--compact-on-every-full-gc']);
      gc();
      await sleep(50);
      assert.equal(flags.length, 2, 'the same answer sets nothing');
      old = { size: 679 * MB, used: 482 * MB };
      gc();
      for (let i = 0; i < 100 && flags.length < 3; i++) await sleep(10);
      assert.deepEqual(flags.slice(2), ['--no-compact-on-every-full-gc']);
    } finally {
      stop();
    }
  });
});
