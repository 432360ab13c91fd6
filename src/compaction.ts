import { PerformanceObserver, constants } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

/** Below this much old space, fragmentation costs little memory and compaction no noticeable pause. */
const SMALL = 256 * 2 ** 20;
/** The next full GC compacts when less than this share of the old space is in use after the last one. */
const SPARSE = 0.5;

/**
 * Whether V8's next full GC should move every live object (compaction), judged from the old space
 * after the last one: only when it is large and mostly free space, which a bulk load leaves behind
 * (a million subscriptions created beside each request's transient objects: 481 MB live in 1,472
 * MB of old space, for good, without compaction).
 */
export function shouldCompact(old: { size: number; used: number }): boolean {
  return old.size > SMALL && old.used < old.size * SPARSE;
}

/**
 * Compacts V8's old space only when it is fragmented (issue 15). Compacting at every full GC kept
 * the old space as small as what lives in it, but with a million subscriptions (about 0.5 GB live)
 * each full GC then paused the event loop for up to 1.1 s, against 13 to 60 ms without. After
 * each full GC the old space is looked at, and the flag set for the next one. Returns a function
 * that stops watching.
 */
export function compactWhenFragmented(
  // For tests: where the flag goes, and where the old space's figures come from.
  setFlags: (flags: string) => void = setFlagsFromString,
  oldSpace: () => { size: number; used: number } = oldSpaceNow,
): () => void {
  let compacting: boolean | undefined;
  const decide = () => {
    const on = shouldCompact(oldSpace());
    if (on === compacting) return;
    setFlags(on ? '--compact-on-every-full-gc' : '--no-compact-on-every-full-gc');
    compacting = on;
  };
  decide();
  const observer = new PerformanceObserver((list) => {
    if (list.getEntries().some((e) => (e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)) decide();
  });
  observer.observe({ entryTypes: ['gc'] });
  return () => observer.disconnect();
}

function oldSpaceNow(): { size: number; used: number } {
  const old = getHeapSpaceStatistics().find((s) => s.space_name === 'old_space');
  return { size: old?.space_size ?? 0, used: old?.space_used_size ?? 0 };
}
