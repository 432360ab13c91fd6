export interface UntilOptions {
  /** How long to keep trying before failing (default 20 s). */
  timeoutMs?: number;
  /** The pause between two tries (default 20 ms). */
  intervalMs?: number;
}

/**
 * Calls `check` until it returns a truthy value and returns that value. If none comes within
 * `timeoutMs`, it throws an Error naming `what` (what was waited for) and the time waited; a
 * `check` that throws ends the wait with its error. The deadline is looked at after each try, so
 * the last try ends past it.
 */
export async function until<T>(
  what: string,
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  { timeoutMs = 20_000, intervalMs = 20 }: UntilOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
