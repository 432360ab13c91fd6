/** Reconnect/retry delays: exponential from `initialDelayMs`, capped at `maxDelayMs`, with "equal jitter" (half fixed, half random). */
export interface BackoffOptions {
  initialDelayMs?: number;
  maxDelayMs?: number;
}

export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = options.initialDelayMs ?? 500;
  const max = options.maxDelayMs ?? 30_000;
  const ceiling = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
