import type { ChannelType } from '../../fhir/subscription-model.ts';
import type { Notifier } from '../engine.ts';
import type { ActiveSubscription } from '../registry.ts';
import type { StoredEvent } from '../../store/store.ts';

/**
 * A delivery channel as the rest of the module sees it (REQUIREMENTS §6): told after each commit
 * of the subscriptions whose logs grew and of every Subscription that changed, started once the
 * server listens, stopped before the store closes. rest-hook (channels/rest-hook/worker.ts) and
 * websocket (channels/websocket/hub.ts) are channels; email and messaging would be more.
 */
export interface Channel extends Notifier {
  /** The `channel.type` codes it delivers: it is told of events of these subscriptions only. */
  readonly types: readonly ChannelType[];
  /** Resumes what is pending (handshakes, undelivered events) after a start. */
  start?(): void;
  stop?(): Promise<void>;
}

/**
 * After the commit, per base: routes the engine's news to the channels. Events go to the channel
 * of each subscription's type only; a Subscription change goes to every channel, so that one a
 * subscription has moved away from (a new channel type, off, deleted) lets it go.
 */
export class Dispatcher implements Notifier {
  private readonly byType = new Map<ChannelType, Channel>();

  constructor(private readonly channels: readonly Channel[]) {
    for (const c of channels) {
      for (const t of c.types) {
        if (this.byType.has(t)) throw new Error(`two channels deliver '${t}'`);
        this.byType.set(t, c);
      }
    }
  }

  eventsCommitted(subscriptions: ActiveSubscription[], events?: StoredEvent[]): void {
    for (const [c, list] of this.byChannel(subscriptions)) c.eventsCommitted(list, events);
  }

  subscriptionChanged(id: string, sub: ActiveSubscription | undefined): void {
    for (const c of this.channels) c.subscriptionChanged(id, sub);
  }

  /** Several nodes: another node let these subscriptions' delivery go; their channels may take it. */
  leaseReleased(subscriptions: ActiveSubscription[]): void {
    for (const [c, list] of this.byChannel(subscriptions)) c.leaseReleased?.(list);
  }

  /** The subscriptions grouped by the channel that delivers their type (none are left empty). */
  private byChannel(subscriptions: ActiveSubscription[]): Map<Channel, ActiveSubscription[]> {
    const groups = new Map<Channel, ActiveSubscription[]>();
    for (const s of subscriptions) {
      const c = this.byType.get(s.spec.channel.type);
      if (!c) continue; // a type no channel delivers was refused at creation (policy.ts)
      const list = groups.get(c);
      if (list) list.push(s);
      else groups.set(c, [s]);
    }
    return groups;
  }

  start(): void {
    for (const c of this.channels) c.start?.();
  }

  async stop(): Promise<void> {
    for (const c of this.channels) await c.stop?.();
  }
}
