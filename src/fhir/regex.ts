/**
 * Regular expressions written by clients (in topic FHIRPath) run on RE2 (re2-wasm), whose time is
 * linear in the input: no backtracking, so `^(a+)+$` cannot stall the event loop. RE2 has no
 * backreferences or lookaround; such a pattern throws, like any invalid one.
 *
 * The package (~150 ms with its WebAssembly) is loaded on first use. A compiled pattern costs
 * ~0.5 ms and lives in WebAssembly memory until freed, so the most recently used ones are kept
 * and the one pushed out is freed.
 */
import { createRequire } from 'node:module';
import type { RE2 as Re2 } from 're2-wasm';

/** Compiled patterns kept for reuse. */
const CACHE_SIZE = 256;

let RE2: typeof Re2 | undefined;
const cache = new Map<string, Re2>();

/**
 * Loads RE2 now (~250 ms, once) and runs it a little, so that the first patterns a caller runs
 * do not spend its time budget on loading and on WebAssembly's first, slow tier.
 */
export function loadRegexEngine(): void {
  if (RE2 === undefined) linearRegex('^(a+)+$').test(`${'a'.repeat(4096)}b`);
}

/**
 * A compiled pattern for `flags` (JavaScript flags; `u` is always added, as RE2 needs it). The
 * result is shared: callers must not depend on `lastIndex` (use `test`, or `replace` with `g`).
 */
export function linearRegex(pattern: string, flags = ''): Re2 {
  const key = `${flags}/${pattern}`;
  const hit = cache.get(key);
  if (hit !== undefined) {
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  RE2 ??= (createRequire(import.meta.url)('re2-wasm') as { RE2: typeof Re2 }).RE2;
  const re = new RE2(pattern, flags.includes('u') ? flags : `${flags}u`);
  cache.set(key, re);
  if (cache.size > CACHE_SIZE) {
    const [oldest, evicted] = cache.entries().next().value!;
    cache.delete(oldest);
    // re2-wasm frees a pattern's WebAssembly object only when asked (embind `delete`).
    (evicted as unknown as { wrapper: { delete(): void } }).wrapper.delete();
  }
  return re;
}
