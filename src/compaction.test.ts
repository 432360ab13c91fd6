import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { shouldCompact } from './compaction.ts';

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
});
