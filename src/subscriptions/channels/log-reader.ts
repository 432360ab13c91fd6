import type { FhirVersion } from '../../fhir/types.ts';
import type { Store, StoredEvent } from '../../store/store.ts';

export interface NewEvents {
  events: StoredEvent[];
  /** The read was cut short: ask again once these are sent. */
  more: boolean;
}

interface Ask {
  id: string;
  after: number;
  resolve: (v: NewEvents) => void;
  reject: (e: unknown) => void;
}

/**
 * The events above a subscription's cursor, for a channel's senders. A commit wakes every
 * subscription it matched at once, and each sender asks in that same turn of the event loop: the
 * asks are gathered and answered with one store read (Store.eventsAfter) instead of one per
 * subscription (issue 15). A store without eventsAfter is read per subscription.
 *
 * Better still, a commit's events come numbered with it when the store can tell (SQLite: the
 * writer returns the numbers), and are kept here until the senders they woke have asked (prime,
 * then release: the websocket hub starts its senders over a few turns of the event loop): an ask
 * whose next event is the first one kept, and which the kept ones answer whole, needs no read at
 * all. A commit told without its events (another node's, or a store that cannot tell) drops what
 * is kept for its subscriptions (forget), so an ask never stops short of an event it was woken for.
 */
export function createLogReader(store: Store, fv: FhirVersion, batch: number) {
  let asks: Ask[] = [];
  const primed = new Map<string, StoredEvent[]>();

  /**
   * Answers the ask from the primed events, when they answer it whole. A subscription's kept
   * events run up to the last it has been told of (a commit told without them drops them), so a
   * cursor at or past the last of them has nothing new: a sender woken twice before the release (a
   * group commit's jobs each wake it) asks again for nothing, and is answered without a read.
   */
  function fromPrimed(a: Ask): boolean {
    const kept = primed.get(a.id);
    if (!kept) return false;
    if (kept[kept.length - 1]!.number <= a.after) {
      a.resolve({ events: [], more: false });
      return true;
    }
    if (kept[0]!.number > a.after + 1) return false;
    const events = kept.filter((e) => e.number > a.after);
    a.resolve({ events: events.slice(0, batch), more: events.length > batch });
    return true;
  }

  async function flush(): Promise<void> {
    // Decided here, a microtask after the first ask: the commits told in the same message (a group
    // commit's) have all primed their events by then.
    const group = asks.filter((a) => !fromPrimed(a));
    asks = [];
    if (group.length === 0) return;
    if (!store.eventsAfter || group.length === 1) {
      await Promise.all(group.map(async (a) => {
        try {
          const events = await store.events(fv, a.id, a.after + 1, Number.MAX_SAFE_INTEGER, batch);
          a.resolve({ events, more: events.length === batch });
        } catch (err) {
          a.reject(err);
        }
      }));
      return;
    }
    const limit = Math.max(batch, 4 * group.length);
    let events: StoredEvent[];
    try {
      events = await store.eventsAfter(fv, group.map((a) => ({ subscription: a.id, after: a.after })), limit);
    } catch (err) {
      for (const a of group) a.reject(err);
      return;
    }
    const bySub = new Map<string, StoredEvent[]>();
    for (const e of events) {
      let list = bySub.get(e.subscription);
      if (!list) bySub.set(e.subscription, (list = []));
      list.push(e);
    }
    const more = events.length === limit;
    for (const a of group) a.resolve({ events: bySub.get(a.id) ?? [], more });
  }

  return {
    /** Newly committed events, numbered (each subscription's in order), kept for asks until `release`. */
    prime(events: StoredEvent[]): void {
      for (const e of events) {
        const list = primed.get(e.subscription);
        const last = list?.[list.length - 1]?.number;
        if (!list || last === undefined) primed.set(e.subscription, [e]);
        else if (e.number === last + 1) list.push(e);
        else if (e.number > last + 1) primed.set(e.subscription, [e]);
      }
    },
    /** The senders the kept events woke have asked: later asks read the log. */
    release(): void {
      primed.clear();
    },
    /** These subscriptions have events that were not primed: their asks read the log. */
    forget(ids: Iterable<string>): void {
      for (const id of ids) primed.delete(id);
    },
    /** The events of subscription `id` numbered above `after`, in order (one ask per subscription at a time). */
    read(id: string, after: number): Promise<NewEvents> {
      return new Promise<NewEvents>((resolve, reject) => {
        if (asks.length === 0) queueMicrotask(() => void flush());
        asks.push({ id, after, resolve, reject });
      });
    },
  };
}

export type LogReader = ReturnType<typeof createLogReader>;
