import type { FhirVersion, Resource } from '../fhir/types.ts';
import type { NewEvent, Transaction } from '../store/store.ts';
import type { ResourceChange } from './matching/trigger.ts';
import type { ActiveSubscription, SubscriptionRegistry } from './registry.ts';

/**
 * Inside the transaction that writes a change (REQUIREMENTS D-18): finds the subscriptions it
 * notifies and appends one event per subscription to the log. The store numbers the events where
 * it applies the write (one counter per subscription, gap-free, in commit order), so recording is
 * a buffered write with no round trip; if the transaction rolls back, no number is used.
 * What happens after the commit (waking the channels) is the caller's: the engine hands the
 * returned subscriptions to the Dispatcher from `tx.onCommit`.
 */
export class EventRecorder {
  constructor(
    private readonly version: FhirVersion,
    private readonly registry: SubscriptionRegistry,
    /** D-22: whether the subscription's owner may read the focus; a change it may not read is no event for it. */
    private readonly mayRead: (subscription: string, focus: Resource) => boolean,
  ) {}

  /** The subscriptions the change was recorded for (empty: nothing written), and the events appended. */
  async record(tx: Transaction, change: ResourceChange): Promise<{ matched: ActiveSubscription[]; events: NewEvent[] }> {
    const focus = change.current ?? change.previous;
    const matched = this.registry.match(change).filter((s) => !focus || this.mayRead(s.id, focus));
    if (matched.length === 0) return { matched, events: [] };
    const events = matched.map((s) => ({
      subscription: s.id,
      timestamp: change.timestamp,
      focus: { type: change.type, id: change.id, versionId: change.versionId },
      interaction: change.interaction,
    }));
    await tx.appendEvents(this.version, events);
    return { matched, events };
  }
}
