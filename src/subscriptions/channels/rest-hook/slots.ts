/**
 * A counting semaphore for outbound rest-hook POSTs, shared by every base (issue 14): at most
 * `size` attempts are in flight at once; others wait their turn, first come first served, and are
 * never dropped. A waiting attempt's timeout starts when it gets its slot, so waiting never counts
 * as the endpoint being slow. Once closed (at shutdown), waiters are told `false` and send nothing:
 * their events stay in the log and go out after the restart.
 */
export class DeliverySlots {
  private inUse = 0;
  private readonly waiting: ((granted: boolean) => void)[] = [];
  private closed = false;

  constructor(readonly size: number) {}

  /** Resolves `true` with a slot (give it back with `release`), or `false` once closed. */
  acquire(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.inUse < this.size) {
      this.inUse += 1;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next(true); // the slot passes straight to the next in line
    else this.inUse -= 1;
  }

  /** Attempts in flight and waiting (for tests and logs). */
  stats(): { inUse: number; waiting: number } {
    return { inUse: this.inUse, waiting: this.waiting.length };
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w(false);
  }
}
