import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { heapPolicy, tuneHeap } from './heap-policy.ts';

const MB = 2 ** 20;

describe('heap policy (issue 15)', () => {
  it('compacts the next full GC only when the old space is large and less than half in use', () => {
    const compact = (size: number, used: number) => heapPolicy({ size: size * MB, used: used * MB }).compact;
    // After a bulk load of a million subscriptions without compaction: 481 MB live in 1,472 MB.
    assert.equal(compact(1472, 481), true);
    // Under steady load after one compaction: 482 MB live in 679 MB, each full GC then pauses 20-50 ms, not 1 s.
    assert.equal(compact(679, 482), false);
    // Small heaps are left to V8: little memory to win.
    assert.equal(compact(200, 20), false);
    assert.equal(compact(257, 128), true);
    assert.equal(compact(512, 256), false, 'half in use is enough');
  });

  it('lets an old space of more than 128 MB in use grow to twice that, and leaves a smaller one to V8', () => {
    const growing = (size: number, used: number) => heapPolicy({ size: size * MB, used: used * MB }).growingPercent;
    assert.equal(growing(679, 482), 100);
    assert.equal(growing(1472, 481), 100);
    assert.equal(growing(300, 129), 100);
    assert.equal(growing(1472, 128), 0, 'what is in use decides, not what is held');
    assert.equal(growing(100, 20), 0);
  });

  it('decides at start, and again after each full GC (not after a scavenge), setting a flag only when its answer changes', async () => {
    const flags: string[] = [];
    let old = { size: 100 * MB, used: 90 * MB };
    const stop = tuneHeap({ setFlags: (f) => flags.push(f), oldSpace: () => old, execArgv: [] });
    try {
      assert.deepEqual(flags, ['--no-compact-on-every-full-gc', '--heap-growing-percent=0']);
      setFlagsFromString('--expose-gc');
      // gc() is a full GC; gc({ type: 'minor' }) a scavenge.
      const gc = runInNewContext('gc') as (options?: { type: 'minor' }) => void;
      // The flags a GC of that kind made the watcher set (it hears of a GC a moment after).
      const flagsAfter = async (collect: () => void, expected: number, settleMs = 30) => {
        const mark = flags.length;
        collect();
        for (let i = 0; i < 100 && flags.length < mark + expected; i++) await sleep(10);
        await sleep(settleMs);
        return flags.slice(mark);
      };
      old = { size: 1472 * MB, used: 481 * MB };
      assert.deepEqual(await flagsAfter(() => gc({ type: 'minor' }), 0, 50), [], 'a scavenge changes nothing');
      // Large and mostly free: both change.
      assert.deepEqual(await flagsAfter(() => gc(), 2), ['--compact-on-every-full-gc', '--heap-growing-percent=100']);
      assert.deepEqual(await flagsAfter(() => gc(), 0), [], 'the same answers set nothing');
      // Compacted: still large, no longer mostly free; only the compaction changes.
      old = { size: 679 * MB, used: 482 * MB };
      assert.deepEqual(await flagsAfter(() => gc(), 1), ['--no-compact-on-every-full-gc']);
      // Most of it freed (the subscriptions deleted): compacted to give the space back, and V8's own growth again.
      old = { size: 679 * MB, used: 60 * MB };
      assert.deepEqual(await flagsAfter(() => gc(), 2), ['--compact-on-every-full-gc', '--heap-growing-percent=0']);
    } finally {
      stop();
    }
  });

  it('leaves a flag given on the command line as it was given, at start and after full GCs', async () => {
    const old = { size: 1472 * MB, used: 481 * MB };
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const watch = async (execArgv: string[]) => {
      const flags: string[] = [];
      const stop = tuneHeap({ setFlags: (f) => flags.push(f), oldSpace: () => old, execArgv });
      try {
        const first = [...flags];
        // Small again: both answers change after the next full GC.
        Object.assign(old, { size: 200 * MB, used: 100 * MB });
        gc();
        for (let i = 0; i < 100 && flags.length === first.length; i++) await sleep(10);
        await sleep(30);
        return { first, later: flags.slice(first.length) };
      } finally {
        stop();
        Object.assign(old, { size: 1472 * MB, used: 481 * MB });
      }
    };
    // V8 reads `_` as `-`, a single dash as two, and `--nox` as `--no-x`.
    assert.deepEqual(await watch(['--heap_growing_percent=30']), { first: ['--compact-on-every-full-gc'], later: ['--no-compact-on-every-full-gc'] });
    assert.deepEqual(await watch(['--nocompact-on-every-full-gc', '--max-old-space-size=4096']), { first: ['--heap-growing-percent=100'], later: ['--heap-growing-percent=0'] });
    assert.deepEqual(await watch(['-heap-growing-percent=30', '--compact-on-every-full-gc']), { first: [], later: [] });
  });

  it('sets flags V8 knows', () => {
    // V8 answers an unknown flag with a line on stderr, not an error: run the real setter in a
    // process of its own and read what it printed.
    const code = `import { tuneHeap } from './src/heap-policy.ts';
      tuneHeap({ oldSpace: () => ({ size: 1472 * 2 ** 20, used: 481 * 2 ** 20 }) })();
      tuneHeap({ oldSpace: () => ({ size: 100 * 2 ** 20, used: 90 * 2 ** 20 }) })();
      process.stdout.write('done');`;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8' });
    assert.equal(run.stdout, 'done', run.stderr);
    assert.doesNotMatch(run.stderr, /flag/i);
  });
});
