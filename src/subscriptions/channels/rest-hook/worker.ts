import type { NotificationType } from '../../../fhir/subscription-model.ts';
import type { Notifier } from '../../engine.ts';
import { type NotifyContext, renderNotificationText } from '../../notify.ts';
import { type ActiveSubscription, LIVE_STATUSES as LIVE } from '../../registry.ts';
import { type Serial, serial } from '../serial.ts';
import type { EndpointGuard } from '../../endpoints.ts';
import { type DeliveryResult, createSender } from './sender.ts';
import type { DeliverySlots } from './slots.ts';

export interface RestHookOptions {
  /** Judges every connection's endpoint and address (issue 13). */
  endpoints: EndpointGuard;
  /** Per-attempt timeout when the subscription sets none (D-6: 10 s). */
  defaultTimeoutMs: number;
  /** Exponential backoff with jitter from `retryBaseMs` up to `retryCapMs` (D-9: 1 s to 5 min). */
  retryBaseMs: number;
  retryCapMs: number;
  /** After failing this long a subscription goes off (D-8: 24 h). */
  failureWindowMs: number;
  /** The POSTs in flight at once, shared by every base (issue 14); closed at shutdown. */
  slots: DeliverySlots;
  /**
   * Several nodes on one store: how long this node's claim on delivering a subscription lasts
   * without renewal (store.claimDelivery). One node at a time delivers, heartbeats included.
   */
  leaseMs?: number;
}

interface SubState {
  worker: Serial;
  /** A handshake failed and has not succeeded since: retry it before anything else. */
  handshakePending?: boolean;
  retry?: NodeJS.Timeout;
  heartbeat?: NodeJS.Timeout;
  /** The cursor as delivery stands, and when it moved (ISO); the stored one follows it (saveCursor). */
  delivered?: number;
  deliveredAt?: string;
  /** A save of the cursor in flight, and whether `delivered` moved on since it started. */
  saving?: Promise<void>;
  moved?: boolean;
  /** When this node last claimed or renewed its delivery lease (epoch ms). */
  leasedAt?: number;
}

/** How long cursor moves gather before one write stores them (saveCursor). */
const CURSOR_SAVE_MS = 100;
const HANDSHAKE_FAILED = 'handshake failed';
/** How soon a worker tries again after the store failed it (a full disk, an I/O error). */
const STORE_RETRY_MS = 1000;

/**
 * rest-hook delivery (REQUIREMENTS §6.1, D-6..D-10): per subscription one worker that sends the
 * handshake, then the event log in eventNumber order (never N+1 before N), one event per
 * notification or up to maxCount when catching up a backlog. A failed attempt sets `error` with
 * the reason and retries with backoff; success sets `active` again; failing for longer than the
 * window sets `off`. The cursor (`deliveredThrough`) is durable, so a restart resumes where
 * delivery stood. Workers never block writes: they run after commits, on their own. Every failed
 * attempt is logged (never the channel headers, nor more of the endpoint than its origin).
 */
export function createRestHookDelivery(ctx: NotifyContext, options: RestHookOptions) {
  const { engine, store } = ctx;
  const log = engine.log;
  const fv = engine.version;
  const states = new Map<string, SubState>();
  const sender = createSender(options.endpoints);
  let stopped = false;

  function kick(id: string): void {
    let s = states.get(id);
    if (!s) {
      const created: SubState = {
        worker: serial(
          () => step(id, created),
          (err) => {
            log.error({ subscription: id, err }, 'rest-hook worker failed');
            // The store could not be read or written (disk full, …): nothing was lost, try again.
            retryLater(id, created);
          },
          () => stopped,
        ),
      };
      states.set(id, (s = created));
    }
    s.worker.kick();
  }

  async function step(id: string, s: SubState): Promise<void> {
    const sub = engine.registry.subscription(id);
    if (!sub || sub.spec.channel.type !== 'rest-hook' || !LIVE.has(sub.status) || s.retry) return;
    if (!(await holdLease(id, s, true))) return;
    if (sub.endsAt !== undefined && sub.endsAt <= ctx.now().getTime()) {
      await engine.setStatus(id, 'off', 'the subscription end has passed');
      return;
    }
    // After a restart, a subscription whose handshake failed still owes one.
    s.handshakePending ??= sub.status === 'error' && ((await store.deliveryState(fv, id)).lastError ?? '').startsWith(HANDSHAKE_FAILED);
    if ((sub.status === 'requested' || s.handshakePending) && !sub.spec.classicCriteria) {
      const result = await send(sub, 'handshake', []);
      if (!result) return;
      if (!result.ok) {
        s.handshakePending = true;
        return failed(sub, s, `${HANDSHAKE_FAILED}: ${result.error}`, 'handshake');
      }
      s.handshakePending = false;
      await recovered(id);
      await engine.setStatus(id, 'active');
      return; // the status change re-kicks this worker with the active subscription
    }
    s.delivered ??= (await store.deliveryState(fv, id)).deliveredThrough;
    for (;;) {
      if (stopped || !(await holdLease(id, s, false))) return;
      const range = await store.eventRange(fv, id);
      if (s.delivered >= range.last) break;
      const from = Math.max(s.delivered + 1, range.first ?? 1);
      const batch = range.last - from + 1 > 1 ? (sub.spec.channel.maxCount ?? 1) : 1;
      const events = await store.events(fv, id, from, range.last, batch);
      const result = await send(sub, 'event-notification', events);
      if (!result) return;
      if (!result.ok) return failed(sub, s, result.error, 'notification');
      saveCursor(id, s, events[events.length - 1]!.number);
      if (sub.status === 'error') {
        await engine.setStatus(id, 'active');
        return;
      }
    }
    armHeartbeat(sub, s);
  }

  /**
   * Several nodes: deliver only while holding the subscription's lease (renewed when a third of
   * it has passed, or always when `now`). Refused: another node delivers; look again once its
   * lease could have run out. Acquired anew: the cursor may have moved meanwhile, so re-read it.
   */
  async function holdLease(id: string, s: SubState, now: boolean): Promise<boolean> {
    const leaseMs = options.leaseMs;
    if (!store.claimDelivery || !leaseMs) return true;
    if (!now && s.leasedAt !== undefined && Date.now() - s.leasedAt < leaseMs / 3) return true;
    const claim = await store.claimDelivery(fv, id, leaseMs);
    if (claim === 'refused') {
      s.leasedAt = undefined;
      s.delivered = undefined;
      s.handshakePending = undefined;
      if (s.heartbeat) clearTimeout(s.heartbeat);
      if (!stopped && !s.retry) {
        s.retry = setTimeout(() => {
          s.retry = undefined;
          kick(id);
        }, leaseMs);
        s.retry.unref();
      }
      return false;
    }
    if (claim === 'acquired') {
      await s.saving;
      s.delivered = undefined;
      s.handshakePending = undefined;
    }
    s.leasedAt = Date.now();
    return true;
  }

  /**
   * One attempt, once one of the shared slots is free (the timeout runs from then). Undefined
   * when nothing was sent because Herald is stopping: the events stay for after the restart.
   */
  async function send(sub: ActiveSubscription, type: NotificationType, events: Awaited<ReturnType<typeof store.events>>): Promise<DeliveryResult | undefined> {
    const ch = sub.spec.channel;
    const body = sub.spec.classicCriteria !== undefined ? await classicBody(sub, events) : await renderNotificationText(ctx, sub, type, events);
    if (!(await options.slots.acquire())) return undefined;
    try {
      return await sender.post({
        url: ch.endpoint!,
        contentType: ch.contentType,
        headers: ch.headers,
        body,
        timeoutMs: (ch.timeout ?? 0) * 1000 || options.defaultTimeoutMs,
      });
    } finally {
      options.slots.release();
    }
  }

  /** R4 classic rest-hook: the focus resource itself when a payload type is set, else no body. */
  async function classicBody(sub: ActiveSubscription, events: Awaited<ReturnType<typeof store.events>>): Promise<string> {
    const e = events[events.length - 1];
    if (!e || sub.spec.channel.content === 'empty') return '';
    const v = await store.vread(fv, e.focus.type, e.focus.id, e.focus.versionId);
    return v?.json ?? '';
  }

  /**
   * Moves the cursor on and stores it without holding up the next delivery: the next events go
   * out while the store commits, and every move within CURSOR_SAVE_MS collapses into one write
   * (a busy subscription costs ten cursor commits a second, not one per event). Delivery is
   * at-least-once (D-10): after a crash the stored cursor may trail by the events of the last
   * moment, which are then sent again, in order; it never runs ahead of what was sent.
   */
  function saveCursor(id: string, s: SubState, delivered: number): void {
    s.delivered = delivered;
    s.deliveredAt = ctx.now().toISOString();
    if (s.saving) {
      s.moved = true;
      return;
    }
    s.saving = (async () => {
      do {
        if (!stopped) await new Promise((resolve) => setTimeout(resolve, CURSOR_SAVE_MS).unref());
        s.moved = false;
        const state = { deliveredThrough: s.delivered!, attempts: 0, deliveredAt: s.deliveredAt! };
        await store.transaction((tx) => tx.setDeliveryState(fv, id, state));
      } while (s.moved);
    })()
      .catch((err: Error) => log.error({ subscription: id, err }, 'could not store the rest-hook delivery cursor'))
      .finally(() => (s.saving = undefined));
  }

  /** A success clears the failure record (the cursor stays). */
  async function recovered(id: string): Promise<void> {
    const state = await store.deliveryState(fv, id);
    if (state.attempts === 0 && !state.failingSince) return;
    const { deliveredThrough, deliveredAt } = state;
    await store.transaction((tx) => tx.setDeliveryState(fv, id, { deliveredThrough, attempts: 0, ...(deliveredAt ? { deliveredAt } : {}) }));
  }

  /**
   * A failed attempt: recorded (the `$status` error), logged, retried later, or the subscription
   * set off once it has failed for longer than the window. The stored Subscription's status and
   * error follow the latest failure (setStatus writes no version while they stay the same).
   */
  async function failed(sub: ActiveSubscription, s: SubState, reason: string, stage: 'handshake' | 'notification' | 'heartbeat'): Promise<void> {
    await s.saving; // so that the failure record is written after the cursor, not overwritten by it
    const state = await store.deliveryState(fv, sub.id);
    const now = ctx.now().getTime();
    const failingSince = state.failingSince ?? new Date(now).toISOString();
    const attempts = state.attempts + 1;
    const expired = now - Date.parse(failingSince) > options.failureWindowMs;
    const error = expired ? `delivery failing since ${failingSince}: ${reason}` : reason;
    const delay = Math.min(options.retryCapMs, options.retryBaseMs * 2 ** (attempts - 1)) * (0.5 + Math.random() / 2);
    const { nextAttemptAt: _, ...rest } = state;
    const record = { ...rest, attempts, failingSince, lastError: error, ...(expired ? {} : { nextAttemptAt: new Date(now + delay).toISOString() }) };
    await store.transaction((tx) => tx.setDeliveryState(fv, sub.id, record));
    const fields = { subscription: sub.id, endpoint: originOf(sub.spec.channel.endpoint), stage, attempt: attempts, reason: error };
    if (expired) {
      log.warn(fields, 'rest-hook delivery failed for longer than the failure window: the subscription goes off');
      await engine.setStatus(sub.id, 'off', error);
      return;
    }
    log.warn({ ...fields, retryInMs: Math.round(delay) }, `rest-hook ${stage} failed`);
    s.retry = setTimeout(() => {
      s.retry = undefined;
      kick(sub.id);
    }, delay);
    s.retry.unref();
    await engine.setStatus(sub.id, 'error', error);
  }

  function retryLater(id: string, s: SubState): void {
    if (stopped || s.retry) return;
    s.retry = setTimeout(() => {
      s.retry = undefined;
      kick(id);
    }, Math.max(options.retryBaseMs, STORE_RETRY_MS));
    s.retry.unref();
  }

  /** NT-3: a heartbeat whenever the channel has been idle for heartbeatPeriod. */
  function armHeartbeat(sub: ActiveSubscription, s: SubState): void {
    if (s.heartbeat) clearTimeout(s.heartbeat);
    const period = sub.spec.channel.heartbeatPeriod;
    if (!period || sub.spec.classicCriteria !== undefined) return;
    const beat = async () => {
      const current = engine.registry.subscription(sub.id);
      if (!current || stopped || s.worker.busy() || s.retry || !LIVE.has(current.status) || current.status === 'requested') return;
      // NT-3 from one node only: the lease holder's.
      if (!(await holdLease(sub.id, s, true))) return;
      const result = await send(current, 'heartbeat', []);
      if (!result) return;
      if (!result.ok) return failed(current, s, `heartbeat failed: ${result.error}`, 'heartbeat');
      armHeartbeat(current, s);
    };
    s.heartbeat = setTimeout(() => {
      beat().catch((err: Error) => {
        log.error({ subscription: sub.id, err }, 'rest-hook heartbeat failed');
        retryLater(sub.id, s);
      });
    }, period * 1000);
    s.heartbeat.unref();
  }

  function forget(id: string): void {
    const s = states.get(id);
    if (s?.retry) clearTimeout(s.retry);
    if (s?.heartbeat) clearTimeout(s.heartbeat);
    states.delete(id);
  }

  const notifier: Notifier = {
    eventsCommitted(subs) {
      for (const sub of subs) if (sub.spec.channel.type === 'rest-hook') kick(sub.id);
    },
    subscriptionChanged(id, sub) {
      if (!sub || sub.spec.channel.type !== 'rest-hook' || !LIVE.has(sub.status)) {
        forget(id);
        return;
      }
      kick(id);
    },
  };

  return {
    types: ['rest-hook'] as const,
    ...notifier,
    /** Resumes every subscription: pending handshakes and undelivered events (after a restart). */
    start(): void {
      for (const sub of engine.registry.allSubscriptions()) notifier.subscriptionChanged(sub.id, sub);
    },
    /** Stops scheduling and waits for attempts in flight (each bounded by its timeout). */
    async stop(): Promise<void> {
      stopped = true;
      const runs = [...states.values()].flatMap((s) => [s.worker.idle(), s.saving]);
      for (const id of [...states.keys()]) forget(id);
      await Promise.allSettled(runs);
      await sender.close();
    },
  };
}

export type RestHookDelivery = ReturnType<typeof createRestHookDelivery>;

/** What a log may say of an endpoint: scheme, host and port (userinfo, path and query can be secrets). */
function originOf(endpoint: string | undefined): string | undefined {
  try {
    return endpoint === undefined ? undefined : new URL(endpoint).origin;
  } catch {
    return undefined;
  }
}
