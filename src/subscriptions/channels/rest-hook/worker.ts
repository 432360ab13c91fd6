import type { NotificationType } from '../../../fhir/subscription-model.ts';
import type { DeliveryState } from '../../../store/store.ts';
import type { Notifier } from '../../engine.ts';
import { type NotifyContext, renderNotificationText } from '../../notify.ts';
import { type ActiveSubscription, LIVE_STATUSES as LIVE } from '../../registry.ts';
import { type Serial, serial } from '../serial.ts';
import { HeartbeatScheduler } from '../heartbeats.ts';
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
  /** NT-3: the process's one heartbeat scheduler (app.ts); without it the worker keeps its own. */
  heartbeats?: HeartbeatScheduler;
}

interface SubState {
  worker: Serial;
  /** A handshake failed and has not succeeded since: retry it before anything else. */
  handshakePending?: boolean;
  /** A failed attempt (or a store error) waits for its retry. */
  retry?: NodeJS.Timeout;
  /** Another node holds the lease: look again when it could have expired (or when it is released). */
  leaseWait?: NodeJS.Timeout;
  /** The cursor as delivery stands, and when it moved (ISO); the stored one follows it (saveCursor). */
  delivered?: number;
  deliveredAt?: string;
  /** A save of the cursor in flight, and whether `delivered` moved on since it started. */
  saving?: Promise<void>;
  moved?: boolean;
  /** While this node holds the lease: until when it surely does (epoch ms, counted from the claim's start). */
  leaseUntil?: number;
  /** When a POST last succeeded (epoch ms; or when this node took the lease): heartbeats are timed from it. */
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
  const ownHeartbeats = options.heartbeats ? undefined : new HeartbeatScheduler();
  const heartbeats = options.heartbeats ?? ownHeartbeats!;
  const leaseMs = store.claimDelivery && options.leaseMs ? options.leaseMs : undefined;
  // The holder renews all its leases in one statement every third of the lease, whatever its
  // workers are doing (sending, backing off after a failure, idle between heartbeats).
  const renewal = leaseMs ? setInterval(() => void renewLeases(), leaseMs / 3) : undefined;
  renewal?.unref();
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
    if (!sub || sub.spec.channel.type !== 'rest-hook' || !LIVE.has(sub.status) || s.retry || s.leaseWait) return;
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
    s.delivered ??= (await store.deliveryState(fv, id)).deliveredThrough;
    for (;;) {
      if (stopped || !(await holdLease(id, s))) return;
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
    const due = (s.lastSentAt ?? Date.now()) + period * 1000;
    if (s.beatDue && Date.now() >= due) {
      s.beatDue = false;
      const result = await send(sub, s, 'heartbeat', []);
      if (!result) return;
      if (!result.ok) return failed(sub, s, `heartbeat failed: ${result.error}`, 'heartbeat');
      return heartbeat(sub, s);
    }
    s.beatDue = false;
    heartbeats.arm(beatKey(sub.id), Math.max(0, (s.lastSentAt ?? Date.now()) + period * 1000 - Date.now()), () => {
      const current = states.get(sub.id);
      if (!current || stopped) return;
      current.beatDue = true;
      kick(sub.id);
    });
  }

  const beatKey = (id: string) => `rest-hook|${fv}|${id}`;

  /**
   * Several nodes: deliver only while holding the subscription's lease. Held and renewed by the
   * renewal timer: go on. Otherwise claim it. Refused: another node delivers; look again once its
   * lease could have run out (or at once when it releases it). Acquired anew: the cursor may have
   * moved meanwhile, so it is re-read.
   */
  async function holdLease(id: string, s: SubState): Promise<boolean> {
    if (!leaseMs) return true;
    const started = Date.now();
    // A third of the lease to spare: a renewal may be late, or the clocks' rates differ a little.
    if (s.leaseUntil !== undefined && started < s.leaseUntil - leaseMs / 3) return true;
    const claim = await store.claimDelivery!(fv, id, leaseMs);
    if (claim.outcome === 'refused') {
      lost(id, s);
      waitForLease(id, s, claim.expiresInMs);
      return false;
    }
    if (claim.outcome === 'acquired' || s.leaseUntil === undefined) {
      await s.saving;
      s.delivered = undefined;
      s.deliveredAt = undefined;
      s.handshakePending = undefined;
      s.lastSentAt = Date.now();
    }
    s.leaseUntil = started + leaseMs;
    return true;
  }

  /** The lease is another node's now: forget what this node knew of delivery. */
  function lost(id: string, s: SubState): void {
    s.leaseUntil = undefined;
    s.delivered = undefined;
    s.handshakePending = undefined;
    s.beatDue = false;
    heartbeats.cancel(beatKey(id));
  }

  function waitForLease(id: string, s: SubState, expiresInMs: number): void {
    if (stopped || s.leaseWait) return;
    // Just after the holder's lease would expire; a little jitter so that the others do not all claim at once.
    s.leaseWait = setTimeout(
      () => {
        s.leaseWait = undefined;
        kick(id);
      },
      expiresInMs + 50 + Math.random() * 200,
    );
    s.leaseWait.unref();
  }

  async function renewLeases(): Promise<void> {
    const held = [...states].filter(([, s]) => s.leaseUntil !== undefined).map(([id]) => id);
    if (held.length === 0 || stopped) return;
    const started = Date.now();
    let renewed: Set<string>;
    try {
      renewed = new Set(await store.renewDeliveries!(fv, held, leaseMs!));
    } catch (err) {
      // The database is away: delivery stops once the leases run out (holdLease then claims).
      log.warn({ err }, 'could not renew rest-hook delivery leases');
      return;
    }
    for (const id of held) {
      const s = states.get(id);
      if (!s || s.leaseUntil === undefined) continue;
      if (renewed.has(id)) s.leaseUntil = started + leaseMs!;
      else {
        log.warn({ subscription: id }, 'rest-hook delivery lease lost to another node');
        lost(id, s);
      }
    }
  }

  /**
   * Writes the delivery state; with leases, only while this node holds the subscription's (a
   * node that lost it must not move the cursor or record failures). False: it was lost.
   */
  async function writeState(id: string, s: SubState, state: DeliveryState): Promise<boolean> {
    if (!leaseMs) {
      await store.transaction((tx) => tx.setDeliveryState(fv, id, state));
      return true;
    }
    if (await store.setLeasedDeliveryState!(fv, id, state)) return true;
    if (s.leaseUntil !== undefined) {
      log.warn({ subscription: id }, 'rest-hook delivery lease lost to another node');
      lost(id, s);
    }
    return false;
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
      if (result.ok) s.lastSentAt = Date.now();
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
        if (!(await writeState(id, s, state))) break;
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
    return writeState(id, s, { deliveredThrough, attempts: 0, ...(deliveredAt ? { deliveredAt } : {}) });
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
    if (!(await writeState(sub.id, s, record))) return;
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
    clearTimeout(s.leaseWait);
    heartbeats.cancel(beatKey(id));
    states.delete(id);
    // Gone off or away: the lease goes too, so that a reactivation elsewhere need not wait for it.
    if (s.leaseUntil !== undefined && !stopped) {
      void s.worker
        .idle()
        .then(() => s.saving)
        .then(() => store.releaseDeliveries!(fv, [id]))
        .catch((err: Error) => log.warn({ subscription: id, err }, 'could not release the rest-hook delivery lease'));
    }
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
      for (const sub of subs) {
        const s = states.get(sub.id);
        if (!s?.leaseWait) continue;
        clearTimeout(s.leaseWait);
        s.leaseWait = undefined;
        kick(sub.id);
      }
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
    /**
     * Stops scheduling and waits for attempts in flight (each bounded by its timeout) and cursor
     * saves; then gives up this node's leases, so that another node takes over at once.
     */
    async stop(): Promise<void> {
      stopped = true;
      clearInterval(renewal);
      const ids = [...states.keys()];
      const all = ids.map((id) => states.get(id)!);
      for (const id of [...states.keys()]) forget(id);
      await Promise.allSettled(all.map((s) => s.worker.idle()));
      // Then the cursor saves, those the runs started last included.
      await Promise.allSettled(all.map((s) => s.saving));
      const held = [...all.entries()].filter(([, s]) => s.leaseUntil !== undefined).map(([i]) => ids[i]!);
      if (held.length > 0) await store.releaseDeliveries!(fv, held).catch((err: Error) => log.warn({ err }, 'could not release the rest-hook delivery leases'));
      await ownHeartbeats?.stop();
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
