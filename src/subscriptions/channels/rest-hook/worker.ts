import type { NotificationType } from '../../../fhir/subscription-model.ts';
import type { Notifier } from '../../engine.ts';
import { type NotifyContext, renderNotificationText } from '../../notify.ts';
import { type ActiveSubscription, LIVE_STATUSES as LIVE } from '../../registry.ts';
import { type Serial, serial } from '../serial.ts';
import type { HeartbeatScheduler } from '../heartbeats.ts';
import type { EndpointGuard } from '../../endpoints.ts';
import { DeliveryLeases } from './lease.ts';
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
  /** NT-3: the process's one heartbeat scheduler (app.ts), shared with the websocket hub. */
  heartbeats: HeartbeatScheduler;
}

interface SubState {
  worker: Serial;
  /** A handshake failed and has not succeeded since: retry it before anything else. */
  handshakePending?: boolean;
  /** A failed attempt (or a store error) waits for its retry. */
  retry?: NodeJS.Timeout;
  /** The cursor as delivery stands, and when it moved (ISO); the stored one follows it (saveCursor). */
  delivered?: number;
  deliveredAt?: string;
  /** A save of the cursor in flight, and whether `delivered` moved on since it started. */
  saving?: Promise<void>;
  moved?: boolean;
  /**
   * When a POST last succeeded (or this node took the lease), on the monotonic clock
   * (performance.now()): heartbeats are timed from it. It is never stored nor compared with a
   * stored time, only with later readings of the same clock, so a step of the wall clock cannot
   * advance or hold back a heartbeat.
   */
  lastSentAt?: number;
  /** The heartbeat scheduler fired: the next step sends one if nothing else went out meanwhile. */
  beatDue?: boolean;
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
  const heartbeats = options.heartbeats;
  const leases = new DeliveryLeases({
    store,
    fv,
    ...(options.leaseMs ? { leaseMs: options.leaseMs } : {}),
    log,
    onLost: (id) => {
      const s = states.get(id);
      if (s) lost(id, s);
    },
    onFree: (id) => kick(id),
  });
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
    if (!sub || sub.spec.channel.type !== 'rest-hook' || !LIVE.has(sub.status) || s.retry || leases.waiting(id)) return;
    if (!(await holdLease(id, s))) return;
    if (sub.endsAt !== undefined && sub.endsAt <= ctx.now().getTime()) {
      await engine.setStatus(id, 'off', 'the subscription end has passed');
      return;
    }
    // After a restart, a subscription whose handshake failed still owes one.
    s.handshakePending ??= sub.status === 'error' && ((await store.deliveryState(fv, id)).lastError ?? '').startsWith(HANDSHAKE_FAILED);
    if ((sub.status === 'requested' || s.handshakePending) && !sub.spec.classicCriteria) {
      const result = await send(sub, s, 'handshake', []);
      if (!result) return;
      if (!result.ok) {
        s.handshakePending = true;
        return failed(sub, s, `${HANDSHAKE_FAILED}: ${result.error}`, 'handshake');
      }
      s.handshakePending = false;
      if (!(await recovered(id, s))) return;
      await engine.setStatus(id, 'active');
      return; // the status change re-kicks this worker with the active subscription
    }
    for (;;) {
      if (stopped || !(await holdLease(id, s))) return;
      s.delivered ??= (await store.deliveryState(fv, id)).deliveredThrough;
      const range = await store.eventRange(fv, id);
      if (s.delivered >= range.last) break;
      const from = Math.max(s.delivered + 1, range.first ?? 1);
      const batch = range.last - from + 1 > 1 ? (sub.spec.channel.maxCount ?? 1) : 1;
      const events = await store.events(fv, id, from, range.last, batch);
      const result = await send(sub, s, 'event-notification', events);
      if (!result) return;
      if (!result.ok) return failed(sub, s, result.error, 'notification');
      saveCursor(id, s, events[events.length - 1]!.number);
      if (sub.status === 'error') {
        await engine.setStatus(id, 'active');
        return;
      }
    }
    await heartbeat(sub, s);
  }

  /**
   * NT-3: a heartbeat once the channel has been idle for heartbeatPeriod since the last successful
   * POST (a wake-up that finds nothing to send does not postpone it). The scheduler only marks it
   * due and kicks the worker, so a heartbeat never races a delivery; only the lease holder steps.
   */
  async function heartbeat(sub: ActiveSubscription, s: SubState): Promise<void> {
    const period = sub.spec.channel.heartbeatPeriod;
    if (!period || sub.spec.classicCriteria !== undefined || sub.status === 'requested') {
      heartbeats.cancel(beatKey(sub.id));
      return;
    }
    // Nothing sent yet by this process (after a restart): timed from now.
    s.lastSentAt ??= performance.now();
    const due = s.lastSentAt + period * 1000;
    if (s.beatDue && performance.now() >= due) {
      s.beatDue = false;
      const result = await send(sub, s, 'heartbeat', []);
      if (!result) return;
      if (!result.ok) return failed(sub, s, `heartbeat failed: ${result.error}`, 'heartbeat');
      return heartbeat(sub, s);
    }
    s.beatDue = false;
    heartbeats.arm(beatKey(sub.id), Math.max(0, due - performance.now()), () => {
      const current = states.get(sub.id);
      if (!current || stopped) return;
      current.beatDue = true;
      kick(sub.id);
    });
  }

  const beatKey = (id: string) => `rest-hook|${fv}|${id}`;

  /**
   * Several nodes: deliver only while holding the subscription's lease (lease.ts). Acquired
   * anew: another node may have moved the cursor meanwhile, so it is re-read.
   */
  async function holdLease(id: string, s: SubState): Promise<boolean> {
    const lease = await leases.hold(id);
    if (lease === 'refused') {
      lost(id, s);
      return false;
    }
    if (lease === 'acquired') {
      await s.saving;
      lost(id, s);
      // Heartbeats are timed from taking the lease: when the last node last sent is not known.
      s.lastSentAt = performance.now();
    }
    return true;
  }

  /** The lease is (or may have been) another node's: forget what this node knew of delivery. */
  function lost(id: string, s: SubState): void {
    s.delivered = undefined;
    s.deliveredAt = undefined;
    s.handshakePending = undefined;
    s.beatDue = false;
    heartbeats.cancel(beatKey(id));
  }

  /**
   * One attempt, once one of the shared slots is free (the timeout runs from then). Undefined
   * when nothing was sent because Herald is stopping: the events stay for after the restart.
   */
  async function send(sub: ActiveSubscription, s: SubState, type: NotificationType, events: Awaited<ReturnType<typeof store.events>>): Promise<DeliveryResult | undefined> {
    const ch = sub.spec.channel;
    const body = sub.spec.classicCriteria !== undefined ? await classicBody(sub, events) : await renderNotificationText(ctx, sub, type, events);
    if (!(await options.slots.acquire())) return undefined;
    try {
      const result = await sender.post({
        url: ch.endpoint!,
        contentType: ch.contentType,
        headers: ch.headers,
        body,
        timeoutMs: (ch.timeout ?? 0) * 1000 || options.defaultTimeoutMs,
      });
      if (result.ok) s.lastSentAt = performance.now();
      return result;
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
        // Lost the lease meanwhile: the new holder re-read the cursor; this node's moves are moot.
        if (s.delivered === undefined) break;
        const state = { deliveredThrough: s.delivered, attempts: 0, deliveredAt: s.deliveredAt! };
        if (!(await leases.write(id, state))) break;
      } while (s.moved);
    })()
      .catch((err: Error) => log.error({ subscription: id, err }, 'could not store the rest-hook delivery cursor'))
      .finally(() => (s.saving = undefined));
  }

  /** A success clears the failure record (the cursor stays). False: the lease was lost meanwhile. */
  async function recovered(id: string, s: SubState): Promise<boolean> {
    const state = await store.deliveryState(fv, id);
    if (state.attempts === 0 && !state.failingSince) return true;
    const { deliveredThrough, deliveredAt } = state;
    return leases.write(id, { deliveredThrough, attempts: 0, ...(deliveredAt ? { deliveredAt } : {}) });
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
    if (!(await leases.write(sub.id, record))) return;
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

  function forget(id: string): void {
    const s = states.get(id);
    if (!s) return;
    clearTimeout(s.retry);
    heartbeats.cancel(beatKey(id));
    states.delete(id);
    // Gone off or away: the lease goes too (once the last run and save are done), so that a
    // reactivation elsewhere need not wait for it to run out.
    if (!stopped) void leases.drop(id, s.worker.idle().then(() => s.saving));
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
    leaseReleased(subs) {
      for (const sub of subs) leases.released(sub.id);
    },
  };

  return {
    types: ['rest-hook'] as const,
    ...notifier,
    /** Resumes every subscription: pending handshakes and undelivered events (after a restart). */
    start(): void {
      for (const sub of engine.registry.allSubscriptions()) notifier.subscriptionChanged(sub.id, sub);
    },
    /**
     * Stops scheduling and waits for attempts in flight (each bounded by its timeout) and cursor
     * saves; then gives up this node's leases, so that another node takes over at once.
     */
    async stop(): Promise<void> {
      stopped = true;
      const all = [...states.values()];
      for (const id of [...states.keys()]) forget(id);
      await Promise.allSettled(all.map((s) => s.worker.idle()));
      // Then the cursor saves, those the runs started last included; then the leases go.
      await Promise.allSettled(all.map((s) => s.saving));
      await leases.stop();
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
