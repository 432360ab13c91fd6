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
 */
export function createLogReader(store: Store, fv: FhirVersion, batch: number) {
  let asks: Ask[] = [];

  async function flush(): Promise<void> {
    const group = asks;
    asks = [];
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
