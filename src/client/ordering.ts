/**
 * The per-subscription ordering buffer: turns events that arrive late, twice or out of order
 * (live frames, handshakes after a reconnect, `$events` catch-up pages, an overlap while a token
 * is renewed) into one gap-free, duplicate-free run in eventNumber order.
 *
 * It is pure bookkeeping, with no I/O: the listener offers what it receives, takes what may be
 * delivered, asks which numbers are missing (to fetch them with `$events`), and tells it about
 * numbers that can never be had (pruned by the server) so delivery can move past them.
 */

export interface Numbered {
  eventNumber: number;
}

export interface Gap {
  /** First missing event number (inclusive). */
  from: number;
  /** Last missing event number (inclusive). */
  to: number;
}

export type OfferResult = 'ready' | 'held' | 'duplicate' | 'before-baseline';

export class EventSequencer<E extends Numbered> {
  #delivered: number | undefined;
  #known = 0;
  readonly #held = new Map<number, E>();
  readonly #ready: E[] = [];

  /**
   * @param lastDelivered the last event number the consumer already has (0 for a new
   * subscription). Leave it undefined to set it later with {@link setBaseline} (typically from
   * the handshake's eventsSinceSubscriptionStart: "deliver only what happens from now on").
   */
  constructor(lastDelivered?: number) {
    if (lastDelivered !== undefined) this.#setDelivered(lastDelivered);
  }

  /** The last event number handed out (or skipped); undefined until a baseline is known. */
  get lastDelivered(): number | undefined {
    return this.#delivered;
  }

  /** The highest event number known to exist (from events seen or from eventsSinceSubscriptionStart). */
  get highestKnown(): number {
    return this.#known;
  }

  get hasBaseline(): boolean {
    return this.#delivered !== undefined;
  }

  /** Events held back, waiting for earlier numbers. */
  get heldCount(): number {
    return this.#held.size;
  }

  /** Sets where delivery starts if it is not known yet; a no-op once it is. */
  setBaseline(lastDelivered: number): void {
    if (this.#delivered !== undefined) return;
    this.#setDelivered(lastDelivered);
  }

  /** Records that the subscription has at least `count` events (a status's eventsSinceSubscriptionStart). */
  observe(count: number | undefined): void {
    if (count !== undefined && Number.isFinite(count) && count > this.#known) this.#known = count;
  }

  /** Adds one received event. Duplicates (already delivered, ready or held) are dropped. */
  offer(event: E): OfferResult {
    const n = event.eventNumber;
    this.observe(n);
    if (this.#delivered !== undefined && n <= this.#delivered) return 'duplicate';
    if (this.#held.has(n)) return 'duplicate';
    this.#held.set(n, event);
    if (this.#delivered === undefined) return 'before-baseline';
    this.#advance();
    return this.#delivered >= n ? 'ready' : 'held';
  }

  /** The events that may be delivered now, in order; each is returned exactly once. */
  take(): E[] {
    return this.#ready.splice(0, this.#ready.length);
  }

  /**
   * The first run of numbers known to exist but not received, to fetch with `$events`; undefined
   * when nothing is missing (or the baseline is not known yet).
   */
  missing(): Gap | undefined {
    if (this.#delivered === undefined) return undefined;
    const from = this.#delivered + 1;
    if (this.#known < from) return undefined;
    let to = this.#known;
    for (const n of this.#held.keys()) if (n > this.#delivered && n - 1 < to) to = n - 1;
    return to >= from ? { from, to } : undefined;
  }

  /**
   * Gives up on every number up to `upTo` that has not arrived (the server no longer holds it):
   * delivery continues after it. Returns the ranges that were skipped, for reporting.
   */
  skipTo(upTo: number): Gap[] {
    if (this.#delivered === undefined || upTo <= this.#delivered) return [];
    const lost: Gap[] = [];
    let n = this.#delivered + 1;
    while (n <= upTo) {
      if (this.#held.has(n)) {
        this.#ready.push(this.#held.get(n)!);
        this.#held.delete(n);
        this.#delivered = n;
        n++;
        continue;
      }
      const start = n;
      while (n <= upTo && !this.#held.has(n)) n++;
      lost.push({ from: start, to: n - 1 });
      this.#delivered = n - 1;
    }
    this.observe(upTo);
    this.#advance();
    return lost;
  }

  #setDelivered(n: number): void {
    this.#delivered = n;
    this.observe(n);
    for (const k of [...this.#held.keys()]) if (k <= n) this.#held.delete(k);
    this.#advance();
  }

  #advance(): void {
    if (this.#delivered === undefined) return;
    for (let next = this.#delivered + 1; this.#held.has(next); next++) {
      this.#ready.push(this.#held.get(next)!);
      this.#held.delete(next);
      this.#delivered = next;
    }
  }
}
