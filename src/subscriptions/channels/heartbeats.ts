/**
 * NT-3 for every channel: a heartbeat goes out when a subscription's channel has been idle for its
 * heartbeatPeriod. One scheduler for the process, shared by rest-hook and websocket on every base,
 * instead of a timer per subscription per channel: arming happens on every notification sent, so it
 * must be cheap (O(1): the key moves to the slot of its new due time), and only one timer runs, and
 * only while something is armed.
 *
 * Times are rounded up to a slot (`slotMs`, 100 ms): a heartbeat is never early, and at most one
 * slot late. A beat is disarmed before it runs; the channel arms it again when it sends anything,
 * the heartbeat included, so a channel that decides not to beat (not the lease holder, a retry
 * pending) simply leaves it disarmed until its next delivery.
 */
export type Beat = () => Promise<void> | void;

export interface HeartbeatOptions {
  /** Granularity of due times (ms). */
  slotMs?: number;
  /**
   * The clock the due times are counted on (ms), monotonic by default (performance.now()): a
   * period is elapsed time, never a wall-clock instant. Tests may give their own.
   */
  now?: () => number;
  /** A beat that threw or rejected (it stays disarmed; the channel's next send arms it again). */
  onError?: (key: string, err: Error) => void;
  /** Whether the timer keeps the process alive (default false: heartbeats alone never do). */
  ref?: boolean;
}

interface Armed {
  slot: number;
  beat: Beat;
}

export class HeartbeatScheduler {
  private readonly slotMs: number;
  private readonly now: () => number;
  private readonly onError: (key: string, err: Error) => void;
  private readonly ref: boolean;
  private readonly armed = new Map<string, Armed>();
  private readonly slots = new Map<number, Set<string>>();
  /** The last slot whose beats have run. */
  private done: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly running = new Set<Promise<void>>();

  constructor(options: HeartbeatOptions = {}) {
    this.slotMs = options.slotMs ?? 100;
    this.now = options.now ?? (() => performance.now());
    this.onError = options.onError ?? ((key, err) => process.emitWarning(`heartbeat of ${key} failed: ${err.message}`));
    this.ref = options.ref ?? false;
    this.done = this.slotOf(this.now()) - 1;
  }

  /** (Re)arms `key`: `beat` runs once `periodMs` pass without another arm or a cancel. */
  arm(key: string, periodMs: number, beat: Beat): void {
    if (this.stopped) return;
    this.cancel(key);
    // Rounded up, and never into a slot that has already run.
    const slot = Math.max(Math.ceil((this.now() + periodMs) / this.slotMs), this.done + 1);
    this.armed.set(key, { slot, beat });
    let set = this.slots.get(slot);
    if (!set) this.slots.set(slot, (set = new Set()));
    set.add(key);
    this.tick();
  }

  cancel(key: string): void {
    const a = this.armed.get(key);
    if (!a) return;
    this.armed.delete(key);
    const set = this.slots.get(a.slot);
    set?.delete(key);
    if (set?.size === 0) this.slots.delete(a.slot);
  }

  /** Keys armed now (for tests and metrics). */
  size(): number {
    return this.armed.size;
  }

  /** Disarms everything and waits for beats in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armed.clear();
    this.slots.clear();
    await Promise.allSettled([...this.running]);
  }

  private slotOf(t: number): number {
    return Math.floor(t / this.slotMs);
  }

  /** Runs the beats of every slot that has come, then sleeps until the next slot while anything is armed. */
  private tick(): void {
    if (this.timer || this.stopped) return;
    const current = this.slotOf(this.now());
    if (current > this.done) {
      // Normally one slot; after a long stall, the slots in between (or the armed ones, if fewer).
      const due = current - this.done > this.slots.size ? [...this.slots.keys()].filter((s) => s <= current).sort((a, b) => a - b) : range(this.done + 1, current);
      this.done = current;
      for (const slot of due) this.fire(slot);
    }
    // A beat may have armed (and so scheduled) already.
    if (this.timer || this.armed.size === 0) return;
    const wait = (this.done + 1) * this.slotMs - this.now();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.tick();
    }, Math.max(wait, 1));
    if (!this.ref) this.timer.unref();
  }

  private fire(slot: number): void {
    const keys = this.slots.get(slot);
    if (!keys) return;
    this.slots.delete(slot);
    for (const key of keys) {
      const a = this.armed.get(key)!;
      this.armed.delete(key);
      const run = (async () => a.beat())().catch((err: Error) => this.onError(key, err));
      this.running.add(run);
      void run.finally(() => this.running.delete(run));
    }
  }
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let s = from; s <= to; s++) out.push(s);
  return out;
}
