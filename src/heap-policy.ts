import { PerformanceObserver, constants } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

const MB = 2 ** 20;
/** Below this much old space, fragmentation costs little memory: V8 decides when to compact. */
const LARGE = 256 * MB;
/** The next full GC compacts when less than this share of a large old space is in use after the last one. */
const SPARSE = 0.5;
/**
 * From this much old space in use, the growth factor between full GCs is set (GROWING_PERCENT).
 * Lower than LARGE: a new factor takes effect only from the full GC after the one that crossed the
 * line (whose limit V8 has already set, up to four times what it left), so a heap that grows fast,
 * as in a bulk load, would otherwise reach four times 256 MB and more first.
 */
const FIXED_GROWTH = 128 * MB;
/**
 * How far such an old space may grow past what was live after the last full GC before the next
 * one: 100% (a factor of 2), where V8's own factor goes up to 300% (4) on a machine with this much
 * memory. The flag replaces V8's factor rather than bounding it, so where V8 would choose less
 * (1.1 to 1.3 when idle or near its heap limit) this is 2 as well.
 */
const GROWING_PERCENT = 100;

/** V8's old space (large objects, such as a big Map's backing store, live in another space and are not counted). */
export interface OldSpace {
  /** Bytes V8 holds for the old space. */
  size: number;
  /** Bytes of it in use (what the last full GC left live, plus what was promoted since). */
  used: number;
}

export interface HeapPolicy {
  /** Whether the next full GC moves every live object (compaction). */
  compact: boolean;
  /** V8's `--heap-growing-percent` from the next full GC on (0: V8's own factor, 10% to 300%). */
  growingPercent: number;
}

/**
 * What the next full GC should do, judged from the old space after the last one. Both rules act
 * only on a large old space, which is what a million subscriptions make (about 0.5 GB live); a
 * smaller one is left to V8's heuristics. Measured in docs/benchmark-log.md (2026-12-07, sixth
 * and seventh sessions).
 *
 * - Compact only when it is also mostly free space, as a bulk load leaves it (481 MB live in 1,472
 *   MB of old space, for good, without compaction). Compacting at every full GC kept the old space
 *   as small as what lives in it, but paused the event loop for up to 1.1 s each time as the
 *   million grew.
 * - Let it grow to twice what is live before the next full GC: V8 chose four with 0.48 GB live,
 *   and the server's highest RSS sample under load then landed anywhere from 1.4 to 2.4 GB (1.2 to
 *   1.35 GB at twice).
 */
export function heapPolicy(old: OldSpace): HeapPolicy {
  return { compact: old.size > LARGE && old.used < old.size * SPARSE, growingPercent: old.used > FIXED_GROWTH ? GROWING_PERCENT : 0 };
}

export interface TuneOptions {
  /** Where the flags go (tests watch them). */
  setFlags?: (flags: string) => void;
  /** Where the old space's figures come from. */
  oldSpace?: () => OldSpace;
  /** The process's own flags (main.ts passes `process.execArgv`): a V8 flag set there is left as given. */
  execArgv?: readonly string[];
}

/**
 * Applies `heapPolicy` to this process (issue 15): decides at start, and again after each full GC
 * of the main thread (a `gc` performance entry of the major kind), setting a V8 flag only when its
 * answer changes. V8's flags are the process's, so they apply to the worker threads' small heaps
 * too. A flag given on the command line (`node --heap-growing-percent=…`,
 * `--compact-on-every-full-gc` or its `--no-` form) is the operator's choice and is not touched.
 * Returns a function that stops watching.
 */
export function tuneHeap({ setFlags = setFlagsFromString, oldSpace = oldSpaceNow, execArgv = [] }: TuneOptions = {}): () => void {
  // V8 reads `-x` as `--x`, `_` as `-`, and `--nox` or `--no-x` as x off.
  const given = (name: string) => execArgv.some((a) => a.replace(/_/g, '-').replace(/^--?/, '--').replace(/^--no-?/, '--').split('=')[0] === `--${name}`);
  const own = { compact: !given('compact-on-every-full-gc'), growing: !given('heap-growing-percent') };
  let last: HeapPolicy | undefined;
  const decide = () => {
    const next = heapPolicy(oldSpace());
    if (own.compact && next.compact !== last?.compact) setFlags(next.compact ? '--compact-on-every-full-gc' : '--no-compact-on-every-full-gc');
    if (own.growing && next.growingPercent !== last?.growingPercent) setFlags(`--heap-growing-percent=${next.growingPercent}`);
    last = next;
  };
  decide();
  if (!own.compact && !own.growing) return () => {};
  const observer = new PerformanceObserver((list) => {
    if (list.getEntries().some((e) => (e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)) decide();
  });
  observer.observe({ entryTypes: ['gc'] });
  return () => observer.disconnect();
}

function oldSpaceNow(): OldSpace {
  const old = getHeapSpaceStatistics().find((s) => s.space_name === 'old_space');
  return { size: old?.space_size ?? 0, used: old?.space_used_size ?? 0 };
}
