import type { FhirVersion } from '../../../fhir/types.ts';
import type { DeliveryState, Store } from '../../../store/store.ts';

export interface LeaseOptions {
  store: Store;
  fv: FhirVersion;
  /** How long a claim lasts without renewal; undefined (or a store without leases): one process, no leases. */
  leaseMs?: number;
  /** This node lost the lease on `id` to another one (found by a renewal or a fenced write). */
  onLost(id: string): void;
  /** The lease on `id` may be free now (its holder's ran out, or was released): claim it again. */
  onFree(id: string): void;
  log: { warn(fields: object, message: string): void };
  /** How long waits that ran out are gathered before they are looked at together (default 50 ms). */
  lookBatchMs?: number;
}

interface Lease {
  /**
   * While held: until when this node surely holds it, counted from when the claim or renewal was
   * sent, on the monotonic clock (performance.now()). The store judges expiry by its own clock;
   * this is only the holder's elapsed-time margin, immune to steps of the wall clock.
   */
  until?: number;
  /** Refused: the timer that looks again once the holder's lease could have run out. */
  wait?: NodeJS.Timeout;
}

/** How long waits that ran out are gathered before they are looked at together (LeaseOptions.lookBatchMs). */
const LOOK_BATCH_MS = 50;

/**
 * Several nodes on one store: a node's leases on delivering rest-hook subscriptions (issue 16).
 * One node at a time holds a subscription's lease and alone sends its handshake, events and
 * heartbeats and writes its delivery state. The holder renews all its leases in one statement
 * every third of the lease, whatever its workers do (send, back off after a failure, sit idle
 * between heartbeats); the others look again when the holder's lease would run out, or at once
 * when it is released. Without leases (SQLite, one process) every subscription is always held.
 */
export class DeliveryLeases {
  private readonly leases = new Map<string, Lease>();
  private readonly leaseMs: number | undefined;
  private readonly renewal: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Waits that ran out, looked at together in one statement (see look()). */
  private readonly due = new Set<string>();
  /**
   * Those of them whose look is under way, with the number of that look (the latest, if a look
   * began before an earlier one answered): still waited for, and a release settles them at once.
   */
  private readonly looked = new Map<string, number>();
  private looks = 0;
  private looking: NodeJS.Timeout | undefined;

  constructor(private readonly o: LeaseOptions) {
    this.leaseMs = o.store.claimDelivery && o.leaseMs ? o.leaseMs : undefined;
    if (this.leaseMs) {
      this.renewal = setInterval(() => void this.renew(), this.leaseMs / 3);
      this.renewal.unref();
    }
  }

  /** Whether another node holds the lease on `id` and this node waits for it. */
  waiting(id: string): boolean {
    return this.leases.get(id)?.wait !== undefined || this.due.has(id) || this.looked.has(id);
  }

  /** The subscriptions whose lease this node holds. */
  held(): string[] {
    return [...this.leases].filter(([, l]) => l.until !== undefined).map(([id]) => id);
  }

  /**
   * Before sending anything: 'held' (go on), 'acquired' (newly this node's: another node may
   * have delivered meanwhile, so re-read the cursor) or 'refused' (another node delivers; this
   * one looks again when that node's lease could have run out, and calls onFree).
   */
  async hold(id: string): Promise<'held' | 'acquired' | 'refused'> {
    const leaseMs = this.leaseMs;
    if (!leaseMs) return 'held';
    const lease = this.leases.get(id) ?? {};
    const started = performance.now();
    // A third of the lease to spare: a renewal may be late, or the clocks' rates differ a little.
    if (lease.until !== undefined && started < lease.until - leaseMs / 3) return 'held';
    const claim = await this.o.store.claimDelivery!(this.o.fv, id, leaseMs);
    if (claim.outcome === 'refused') {
      lease.until = undefined;
      this.leases.set(id, lease);
      this.waitFor(id, lease, claim.expiresInMs);
      return 'refused';
    }
    const was = lease.until;
    lease.until = started + leaseMs;
    this.leases.set(id, lease);
    return claim.outcome === 'acquired' || was === undefined ? 'acquired' : 'held';
  }

  /** Another node released its lease on `id`: stop waiting and claim it. */
  released(id: string): void {
    const lease = this.leases.get(id);
    // Waiting, due to be looked at, or being looked at (the look, which may have read the lease
    // before it was released, then leaves it alone): whichever of them, all end here.
    const waited = [lease?.wait !== undefined, this.due.delete(id), this.looked.delete(id)];
    if (!waited.includes(true)) return;
    clearTimeout(lease?.wait);
    if (lease) lease.wait = undefined;
    this.o.onFree(id);
  }

  /**
   * Writes the delivery state; with leases only while this node holds the lease (fencing: a node
   * that lost it must neither move the cursor nor record failures). False: it was lost.
   */
  async write(id: string, state: DeliveryState): Promise<boolean> {
    const { store, fv } = this.o;
    if (!this.leaseMs) {
      await store.transaction((tx) => tx.setDeliveryState(fv, id, state));
      return true;
    }
    if (await store.setLeasedDeliveryState!(fv, id, state)) return true;
    this.lose(id);
    return false;
  }

  /**
   * This node is done with `id` (gone off, deleted, no longer rest-hook): no more waiting, and
   * the lease, if held, is released once `after` settles (the last run and cursor save).
   */
  async drop(id: string, after?: Promise<unknown>): Promise<void> {
    const lease = this.leases.get(id);
    if (!lease) return;
    clearTimeout(lease.wait);
    this.due.delete(id);
    this.looked.delete(id);
    this.leases.delete(id);
    if (lease.until === undefined || this.stopped) return;
    await after?.catch(() => {});
    await this.release([id]);
  }

  /** A clean stop: no more renewals; every lease held is released, so other nodes take over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.renewal);
    clearTimeout(this.looking);
    this.due.clear();
    this.looked.clear();
    const held = this.held();
    for (const l of this.leases.values()) clearTimeout(l.wait);
    this.leases.clear();
    await this.release(held);
  }

  private async release(ids: string[]): Promise<void> {
    if (ids.length === 0 || !this.leaseMs) return;
    try {
      await this.o.store.releaseDeliveries!(this.o.fv, ids);
    } catch (err) {
      // They run out by themselves.
      this.o.log.warn({ err, subscriptions: ids.length }, 'could not release rest-hook delivery leases');
    }
  }

  private waitFor(id: string, lease: Lease, expiresInMs: number): void {
    if (this.stopped || lease.wait) return;
    // Just after the holder's lease would run out; with jitter, so that the others do not all claim at once.
    lease.wait = setTimeout(
      () => {
        lease.wait = undefined;
        this.due.add(id);
        this.looking ??= setTimeout(() => void this.look(), this.o.lookBatchMs ?? LOOK_BATCH_MS);
      },
      expiresInMs + 50 + Math.random() * 200,
    );
    lease.wait.unref();
  }

  /**
   * The leases whose wait ran out, in one statement: a holder that renewed (the usual case: it
   * renews all its leases at once) is waited for again; the others are free, so claim them. With
   * thousands of subscriptions held by another node this is one read per batch instead of one
   * claim per subscription.
   */
  private async look(): Promise<void> {
    this.looking = undefined;
    const ids = [...this.due];
    this.due.clear();
    if (ids.length === 0 || this.stopped) return;
    const look = ++this.looks;
    for (const id of ids) this.looked.set(id, look);
    let held: Map<string, number>;
    try {
      held = await this.o.store.deliveryLeasesHeld!(this.o.fv, ids);
    } catch {
      held = new Map(); // claim each then: the claim tells
    }
    for (const id of ids) {
      // Settled meanwhile (released and told free already, dropped, or the node stopped), or
      // looked at again by a later look, whose newer read decides.
      if (this.looked.get(id) !== look) continue;
      this.looked.delete(id);
      const lease = this.leases.get(id);
      // Held now, or waited for again (a claim meanwhile was refused), or due again (that wait
      // ran out meanwhile): that decides.
      if (!lease || lease.wait || this.due.has(id) || lease.until !== undefined) continue;
      const left = held.get(id);
      if (left !== undefined) this.waitFor(id, lease, left);
      else this.o.onFree(id);
    }
  }

  private lose(id: string): void {
    const lease = this.leases.get(id);
    if (lease?.until === undefined) return;
    lease.until = undefined;
    this.o.log.warn({ subscription: id }, 'rest-hook delivery lease lost to another node');
    this.o.onLost(id);
  }

  private async renew(): Promise<void> {
    const held = this.held();
    if (held.length === 0 || this.stopped) return;
    const started = performance.now();
    let renewed: Set<string>;
    try {
      renewed = new Set(await this.o.store.renewDeliveries!(this.o.fv, held, this.leaseMs!));
    } catch (err) {
      // The database is away: delivery stops once the leases run out (hold() then claims again).
      this.o.log.warn({ err }, 'could not renew rest-hook delivery leases');
      return;
    }
    for (const id of held) {
      const lease = this.leases.get(id);
      if (lease?.until === undefined) continue;
      if (renewed.has(id)) lease.until = started + this.leaseMs!;
      else this.lose(id);
    }
  }
}
