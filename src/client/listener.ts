/**
 * The websocket listener (REQUIREMENTS §6.2, §7.2, §7.3, D-1..D-5, D-9, D-10): finds or creates
 * websocket Subscriptions, gets a binding token, connects and binds, and hands every event to
 * the consumer exactly once and in eventNumber order per subscription, across everything that
 * can go wrong on a long-lived socket:
 *
 * - token renewal: at `renewFraction` (80 %) of the token's lifetime a new token is fetched and
 *   bound on the same socket; the old token is unbound once the new binding has sent its
 *   handshakes. If the websocket-url changed, the listener moves to a socket there instead;
 * - drops: the socket closing, or going silent (no answer to a JSON ping), leads to a reconnect
 *   with exponential backoff and jitter and a fresh token;
 * - gaps: a handshake or heartbeat whose eventsSinceSubscriptionStart is ahead of what was
 *   delivered, or an event number that jumps, makes the listener fetch the missing numbers with
 *   `$events` before it delivers later ones (see ordering.ts); duplicates are dropped;
 * - server errors: an OperationOutcome frame (expired token, subscription deleted or off) makes
 *   the listener get a new token, dropping subscriptions that are gone.
 */
import { backoffDelay, type BackoffOptions } from './backoff.ts';
import { eventsOf, type ParsedNotification, parseFrame, parseNotification } from './notifications.ts';
import { EventSequencer, type Gap } from './ordering.ts';
import { type BindingToken, FhirHttpError, FhirRestClient, isTransient } from './rest.ts';
import { EPHEMERAL_REASON, isReusable, summarizeSubscription, websocketSubscription, type WebsocketSubscriptionRequest } from './subscriptions.ts';
import type { FetchLike, FhirVersion, PayloadContent, Resource, SubscriptionEvent, WebSocketConstructor, WebSocketLike } from './types.ts';

export interface ListenerOptions {
  /** A FHIR base, e.g. `http://127.0.0.1:8080/fhir/R4`. */
  baseUrl: string;
  /** Skip version detection (otherwise from the base URL's last segment, else the CapabilityStatement). */
  fhirVersion?: FhirVersion;
  /** Bind these existing websocket Subscriptions. */
  subscriptionIds?: string[];
  /** Or: listen to this topic (reusing an active websocket Subscription with the same topic, filters and content, or creating one). */
  topic?: string;
  /** Filters in backport form: `Patient?identifier=x`, `Patient.identifier=x` or `identifier=x`. */
  filters?: string[];
  /** Payload content of a created Subscription (default `id-only`). */
  content?: PayloadContent;
  /** Heartbeat period (seconds) asked for on a created Subscription. */
  heartbeatPeriod?: number;
  /** Look for an existing Subscription to reuse before creating one (default true). */
  reuse?: boolean;
  /**
   * With `topic`: always create a Subscription (never reuse one; its `reason` marks it so that
   * other listeners do not reuse it either) and delete it on `close()`.
   */
  ephemeral?: boolean;
  /**
   * The last event number already processed, per subscription id: delivery resumes after it
   * (events in between are fetched with `$events`). Without it, a created subscription starts at
   * its first event and an existing one at the events that happen from now on.
   */
  resumeAfter?: Record<string, number>;

  /** Called for every event exactly once, in eventNumber order per subscription; a returned promise is awaited before the next event. */
  onEvent: (event: SubscriptionEvent) => void | Promise<void>;
  onStatus?: (status: ListenerStatus) => void;
  onError?: (error: Error) => void;
  /** Every notification as received (handshakes, heartbeats, events), before ordering. */
  onNotification?: (notification: ParsedNotification) => void;

  /** Defaults to `globalThis.fetch`. */
  fetch?: FetchLike;
  /** Defaults to `globalThis.WebSocket` (in Node 20 pass the `ws` package's WebSocket). */
  WebSocket?: WebSocketConstructor;
  /** Extra headers on every REST call (e.g. `Authorization`). */
  headers?: Record<string, string>;
  /** Renew the binding token at this fraction of its lifetime (default 0.8). */
  renewFraction?: number;
  /** Reconnect and retry delays (default 500 ms doubling up to 30 s, with jitter). */
  backoff?: BackoffOptions;
  /** Send a JSON ping when nothing arrived for this long; no frame by the next tick means the socket is dead (default 30 s; 0 = off). */
  pingIntervalMs?: number;
  /** How long to wait for handshakes after a bind before carrying on without them (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Per REST request (default 30 s). */
  requestTimeoutMs?: number;
}

export type ListenerStatusType =
  | 'subscription-created'
  | 'subscription-reused'
  | 'subscription-ended'
  | 'subscription-deleted'
  | 'connecting'
  | 'connected'
  | 'bound'
  | 'heartbeat'
  | 'token-renewed'
  | 'disconnected'
  | 'reconnecting'
  | 'catching-up'
  | 'caught-up'
  | 'closed';

export interface ListenerStatus {
  type: ListenerStatusType;
  message: string;
  subscriptionId?: string;
}

export interface Listener {
  /** Resolves with the subscription ids once each has been bound (its handshake received); rejects if the listener cannot start. */
  readonly ready: Promise<string[]>;
  /** Resolves when the listener has stopped (after `close()`, or a fatal error). */
  readonly closed: Promise<void>;
  /** The subscriptions being listened to (known once started). */
  readonly subscriptionIds: readonly string[];
  readonly fhirVersion: FhirVersion | undefined;
  /** The Subscription this listener created (with `topic`, when none was reused). */
  readonly createdSubscriptionId: string | undefined;
  /** The last event number handed to `onEvent` for a subscription. */
  lastEventNumber(subscriptionId: string): number | undefined;
  /** Stops: closes the socket, stops timers, and waits for `onEvent` calls in progress. */
  close(): Promise<void>;
}

/** An OperationOutcome the server sent over the websocket. */
export class ServerOutcomeError extends Error {
  override name = 'ServerOutcomeError';
  constructor(
    message: string,
    readonly outcome: Resource,
  ) {
    super(message);
  }
}

/** Events that can never be delivered: the server no longer holds them (`$events` answered 410). */
export class EventsLostError extends Error {
  override name = 'EventsLostError';
  constructor(
    readonly subscriptionId: string,
    readonly from: number,
    readonly to: number,
    reason: string,
  ) {
    super(`Subscription/${subscriptionId}: events ${from}..${to} are lost (${reason})`);
  }
}

export function createListener(options: ListenerOptions): Listener {
  return new SubscriptionListener(options);
}

interface SubState {
  id: string;
  seq: EventSequencer<SubscriptionEvent>;
  bound: boolean;
  handshakeMissed: boolean;
  catchingUp: boolean;
  ended: boolean;
  delivered: number | undefined;
}

interface Connection {
  socket: WebSocketLike;
  url: string;
  tokens: string[];
  open: boolean;
  closedByUs: boolean;
  lastFrameAt: number;
  lastPingAt: number;
  pingTimer?: ReturnType<typeof setInterval>;
  handshakeTimer?: ReturnType<typeof setTimeout>;
  /** Old tokens to unbind once these subscriptions have handshaken on the new binding. */
  pendingUnbind?: { tokens: string[]; awaiting: Set<string>; timer: ReturnType<typeof setTimeout> };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

class SubscriptionListener implements Listener {
  readonly ready: Promise<string[]>;
  readonly closed: Promise<void>;
  fhirVersion: FhirVersion | undefined;
  createdSubscriptionId: string | undefined;

  readonly #o: ListenerOptions;
  readonly #rest: FhirRestClient;
  readonly #WebSocket: WebSocketConstructor;
  readonly #subs = new Map<string, SubState>();
  #conn: Connection | undefined;
  readonly #resume: Record<string, number>;
  #isClosed = false;
  #started = false;
  #attempt = 0;
  #renewTimer: ReturnType<typeof setTimeout> | undefined;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #recheckTimer: ReturnType<typeof setTimeout> | undefined;
  #lastRecheck = 0;
  #renewing = false;
  readonly #queue: SubscriptionEvent[] = [];
  #draining: Promise<void> | undefined;
  #resolveReady!: (ids: string[]) => void;
  #rejectReady!: (err: Error) => void;
  #resolveClosed!: () => void;

  constructor(options: ListenerOptions) {
    if (!options.subscriptionIds?.length && !options.topic) throw new Error('createListener needs subscriptionIds or a topic');
    if (typeof options.onEvent !== 'function') throw new Error('createListener needs onEvent');
    const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new Error('no WebSocket available: pass options.WebSocket (in Node 20, the `ws` package)');
    this.#o = options;
    this.#WebSocket = WS;
    this.#rest = new FhirRestClient({
      baseUrl: options.baseUrl,
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.headers ? { headers: options.headers } : {}),
      ...(options.requestTimeoutMs ? { timeoutMs: options.requestTimeoutMs } : {}),
    });
    this.fhirVersion = options.fhirVersion;
    this.#resume = { ...options.resumeAfter };
    this.ready = new Promise<string[]>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.ready.catch(() => {}); // reported through onError as well; awaiting it still sees the rejection
    this.closed = new Promise<void>((resolve) => (this.#resolveClosed = resolve));
    void this.#start();
  }

  get subscriptionIds(): readonly string[] {
    return [...this.#subs.values()].filter((s) => !s.ended).map((s) => s.id);
  }

  lastEventNumber(subscriptionId: string): number | undefined {
    return this.#subs.get(subscriptionId)?.delivered;
  }

  async close(): Promise<void> {
    if (this.#isClosed) return this.closed;
    this.#isClosed = true;
    for (const t of [this.#renewTimer, this.#reconnectTimer, this.#recheckTimer]) if (t) clearTimeout(t);
    if (this.#conn) this.#closeConnection(this.#conn, 1000, 'client closing');
    this.#conn = undefined;
    this.#rejectReady(new Error('the listener was closed'));
    await this.#draining;
    if (this.#o.ephemeral && this.createdSubscriptionId) await this.#deleteCreated(this.createdSubscriptionId);
    this.#status('closed', 'listener closed');
    this.#resolveClosed();
  }

  async #deleteCreated(id: string): Promise<void> {
    try {
      await this.#rest.deleteSubscription(id);
      this.#status('subscription-deleted', `deleted Subscription/${id} (ephemeral)`, id);
    } catch (err) {
      this.#error(new Error(`could not delete Subscription/${id}: ${(err as Error).message}`));
    }
  }

  // ---- start-up ----

  async #start(): Promise<void> {
    try {
      this.fhirVersion ??= await this.#rest.fhirVersion();
      const ids = this.#o.subscriptionIds?.length ? [...new Set(this.#o.subscriptionIds)] : [await this.#findOrCreate()];
      for (const id of ids) if (!this.#subs.has(id)) this.#addSub(id, this.#resume[id]);
    } catch (err) {
      return this.#fail(err as Error);
    }
    if (this.#isClosed) return;
    await this.#connect();
  }

  async #findOrCreate(): Promise<string> {
    const req: WebsocketSubscriptionRequest = {
      topic: this.#o.topic!,
      ...(this.#o.filters ? { filters: this.#o.filters } : {}),
      ...(this.#o.content ? { content: this.#o.content } : {}),
      ...(this.#o.heartbeatPeriod !== undefined ? { heartbeatPeriod: this.#o.heartbeatPeriod } : {}),
      reason: this.#o.ephemeral ? `${EPHEMERAL_REASON}: deleted when the listener stops` : 'herald listen',
    };
    if (this.#o.reuse !== false && !this.#o.ephemeral) {
      try {
        const found = (await this.#rest.searchSubscriptions(req.topic)).map(summarizeSubscription).find((s) => s && isReusable(s, req));
        if (found) {
          this.#status('subscription-reused', `reusing Subscription/${found.id} (${found.content}) for ${req.topic}`, found.id);
          return found.id;
        }
      } catch (err) {
        if (!(err instanceof FhirHttpError)) throw err;
        this.#error(new Error(`could not search for an existing subscription, creating one: ${(err as Error).message}`));
      }
    }
    const created = await this.#rest.createSubscription(websocketSubscription(this.fhirVersion!, req));
    if (typeof created.id !== 'string') throw new Error('the server created a Subscription without an id');
    this.createdSubscriptionId = created.id;
    this.#status('subscription-created', `created Subscription/${created.id} (status ${String(created.status)}) for ${req.topic}`, created.id);
    // A new subscription's events are numbered from 1: deliver all of them.
    this.#resume[created.id] ??= 0;
    return created.id;
  }

  #addSub(id: string, resumeAfter: number | undefined): void {
    this.#subs.set(id, { id, seq: new EventSequencer<SubscriptionEvent>(resumeAfter), bound: false, handshakeMissed: false, catchingUp: false, ended: false, delivered: resumeAfter });
  }

  // ---- connecting ----

  /** Gets a token and opens a socket; on failure schedules the next attempt. */
  async #connect(): Promise<void> {
    if (this.#isClosed) return;
    const ids = this.subscriptionIds;
    this.#status('connecting', `getting a binding token for ${ids.map((i) => `Subscription/${i}`).join(', ')}`);
    let token: BindingToken;
    try {
      token = await this.#rest.bindingToken(ids);
    } catch (err) {
      if (this.#isClosed) return;
      if (!isTransient(err)) {
        if (!this.#started) return this.#fail(err as Error);
        this.#error(err as Error);
        await this.#pruneSubscriptions();
      } else this.#error(err as Error);
      return this.#scheduleReconnect();
    }
    if (this.#isClosed) return;
    this.#open(token);
    this.#scheduleRenew(token);
  }

  #scheduleReconnect(): void {
    if (this.#isClosed || this.#reconnectTimer) return;
    const delay = backoffDelay(this.#attempt++, this.#o.backoff);
    this.#status('reconnecting', `reconnecting in ${delay} ms`);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      void this.#connect();
    }, delay);
  }

  #open(token: BindingToken): Connection {
    this.#status('connecting', `connecting to ${token.websocketUrl}`);
    const socket = new this.#WebSocket(token.websocketUrl);
    const now = Date.now();
    const conn: Connection = { socket, url: token.websocketUrl, tokens: [token.token], open: false, closedByUs: false, lastFrameAt: now, lastPingAt: now };
    this.#conn = conn;
    socket.addEventListener('open', () => {
      if (conn.closedByUs) return;
      conn.open = true;
      this.#status('connected', `connected to ${conn.url}`);
      this.#bind(conn, token.token);
      this.#startPing(conn);
    });
    socket.addEventListener('message', (ev) => {
      if (conn.closedByUs) return;
      conn.lastFrameAt = Date.now();
      this.#onFrame(conn, decode(ev.data));
    });
    socket.addEventListener('error', () => {
      // 'close' follows; the error event carries nothing portable worth reporting.
    });
    socket.addEventListener('close', (ev) => {
      this.#stopConnectionTimers(conn);
      if (conn.closedByUs || this.#isClosed) return;
      conn.closedByUs = true;
      if (this.#conn !== conn) return;
      this.#conn = undefined;
      for (const s of this.#subs.values()) s.bound = false;
      if (this.#renewTimer) clearTimeout(this.#renewTimer);
      this.#status('disconnected', `websocket closed${ev?.code ? ` (${ev.code}${ev.reason ? ` ${ev.reason}` : ''})` : ''}`);
      this.#scheduleReconnect();
    });
    return conn;
  }

  #bind(conn: Connection, token: string): void {
    this.#send(conn, `bind-with-token ${token}`);
    if (conn.handshakeTimer) clearTimeout(conn.handshakeTimer);
    conn.handshakeTimer = setTimeout(() => this.#handshakeTimeout(), this.#o.handshakeTimeoutMs ?? 10_000);
  }

  #handshakeTimeout(): void {
    const missing = [...this.#subs.values()].filter((s) => !s.ended && !s.bound);
    if (missing.length === 0 || this.#isClosed) return;
    for (const s of missing) s.handshakeMissed = true;
    this.#error(new Error(`no handshake received for ${missing.map((s) => `Subscription/${s.id}`).join(', ')}; carrying on`));
    this.#checkReady(true);
  }

  #startPing(conn: Connection): void {
    const every = this.#o.pingIntervalMs ?? 30_000;
    if (every <= 0) return;
    conn.pingTimer = setInterval(() => {
      if (conn.closedByUs) return;
      const now = Date.now();
      if (conn.lastPingAt > conn.lastFrameAt && now - conn.lastPingAt >= every) {
        // Nothing arrived, not even a pong, for a whole interval after a ping: the socket is dead.
        this.#status('disconnected', `no answer from ${conn.url} for ${now - conn.lastFrameAt} ms`);
        this.#drop(conn);
        return;
      }
      if (now - conn.lastFrameAt >= every && conn.lastPingAt <= conn.lastFrameAt) {
        conn.lastPingAt = now;
        this.#send(conn, JSON.stringify({ type: 'ping' }));
      }
    }, Math.max(50, Math.floor(every / 2)));
  }

  /** Abandons a connection that is not working and reconnects. */
  #drop(conn: Connection): void {
    this.#closeConnection(conn, 4000, 'unresponsive');
    if (this.#conn === conn) {
      this.#conn = undefined;
      for (const s of this.#subs.values()) s.bound = false;
      if (this.#renewTimer) clearTimeout(this.#renewTimer);
      this.#scheduleReconnect();
    }
  }

  #closeConnection(conn: Connection, code: number, reason: string): void {
    conn.closedByUs = true;
    this.#stopConnectionTimers(conn);
    try {
      conn.socket.close(code, reason);
    } catch {
      // already closed
    }
  }

  #stopConnectionTimers(conn: Connection): void {
    if (conn.pingTimer) clearInterval(conn.pingTimer);
    if (conn.handshakeTimer) clearTimeout(conn.handshakeTimer);
    if (conn.pendingUnbind) clearTimeout(conn.pendingUnbind.timer);
  }

  #send(conn: Connection, text: string): void {
    try {
      conn.socket.send(text);
    } catch (err) {
      this.#error(new Error(`websocket send failed: ${(err as Error).message}`));
    }
  }

  // ---- token renewal ----

  #scheduleRenew(token: BindingToken): void {
    if (this.#renewTimer) clearTimeout(this.#renewTimer);
    const lifetime = Number.isFinite(token.expiresAt) ? token.expiresAt - Date.now() : 3_600_000;
    const delay = Math.max(250, lifetime * (this.#o.renewFraction ?? 0.8));
    this.#renewTimer = setTimeout(() => void this.#renew('renewal'), delay);
  }

  /** Gets a new token and binds it (same socket if the websocket-url is unchanged), then unbinds the old one. */
  async #renew(why: string): Promise<void> {
    if (this.#isClosed || this.#renewing) return;
    const conn = this.#conn;
    if (!conn) return; // a reconnect is under way and gets its own token
    this.#renewing = true;
    try {
      const token = await this.#rest.bindingToken(this.subscriptionIds);
      if (this.#isClosed || this.#conn !== conn) return;
      if (token.websocketUrl === conn.url && conn.open) {
        const old = conn.tokens.filter((t) => t !== token.token);
        conn.tokens = [token.token];
        this.#bind(conn, token.token);
        this.#unbindLater(conn, old);
      } else {
        // Another websocket-url: move there as on a reconnect (the handshakes show anything missed).
        this.#closeConnection(conn, 1000, 'moving to a new websocket-url');
        for (const sub of this.#subs.values()) sub.bound = false;
        this.#open(token);
      }
      this.#scheduleRenew(token);
      this.#status('token-renewed', `new binding token (${why}), valid until ${Number.isFinite(token.expiresAt) ? new Date(token.expiresAt).toISOString() : 'unknown'}`);
    } catch (err) {
      this.#error(new Error(`token renewal failed: ${(err as Error).message}`));
      if (!isTransient(err)) await this.#pruneSubscriptions();
      if (this.#isClosed || this.#conn !== conn) return;
      if (this.#renewTimer) clearTimeout(this.#renewTimer);
      this.#renewTimer = setTimeout(() => void this.#renew(why), backoffDelay(1, this.#o.backoff));
    } finally {
      this.#renewing = false;
    }
  }

  /** Unbinds old tokens once every subscription has handshaken on the new binding (or after the handshake timeout). */
  #unbindLater(conn: Connection, tokens: string[]): void {
    if (tokens.length === 0) return;
    if (conn.pendingUnbind) {
      clearTimeout(conn.pendingUnbind.timer);
      tokens = [...conn.pendingUnbind.tokens, ...tokens];
    }
    const awaiting = new Set(this.subscriptionIds);
    const timer = setTimeout(() => this.#flushUnbind(conn), this.#o.handshakeTimeoutMs ?? 10_000);
    conn.pendingUnbind = { tokens, awaiting, timer };
  }

  #flushUnbind(conn: Connection): void {
    const p = conn.pendingUnbind;
    if (!p) return;
    clearTimeout(p.timer);
    conn.pendingUnbind = undefined;
    if (conn.closedByUs) return;
    for (const t of p.tokens) this.#send(conn, `unbind-with-token ${t}`);
  }

  // ---- frames ----

  #onFrame(conn: Connection, text: string): void {
    const frame = parseFrame(text);
    switch (frame.kind) {
      case 'notification':
        return this.#onNotification(conn, frame.notification);
      case 'outcome':
        this.#error(new ServerOutcomeError(`server: ${frame.message}`, frame.outcome));
        return this.#scheduleRecheck();
      case 'pong':
      case 'keepalive':
        return;
      case 'unknown':
        return this.#error(new Error(`unrecognised websocket frame (${frame.reason}): ${frame.text.slice(0, 120)}`));
    }
  }

  #onNotification(conn: Connection, n: ParsedNotification): void {
    const sub = this.#subs.get(n.subscriptionId);
    if (!sub || sub.ended) return;
    try {
      this.#o.onNotification?.(n);
    } catch (err) {
      this.#error(err as Error);
    }
    if (n.type === 'handshake') {
      if (!sub.seq.hasBaseline) sub.seq.setBaseline(this.#resume[sub.id] ?? n.eventsSinceSubscriptionStart ?? 0);
      if (sub.delivered === undefined) sub.delivered = sub.seq.lastDelivered;
      sub.bound = true;
      this.#attempt = 0;
      this.#status('bound', `bound Subscription/${sub.id} (${n.status ?? 'status unknown'}, ${n.eventsSinceSubscriptionStart ?? '?'} events so far)`, sub.id);
      if (conn.pendingUnbind) {
        conn.pendingUnbind.awaiting.delete(sub.id);
        if (conn.pendingUnbind.awaiting.size === 0) this.#flushUnbind(conn);
      }
      this.#checkReady(false);
    } else if (n.type === 'heartbeat') {
      this.#status('heartbeat', `heartbeat for Subscription/${sub.id} (${n.eventsSinceSubscriptionStart ?? '?'} events so far)`, sub.id);
    }
    if (n.status === 'off' || n.status === 'entered-in-error') {
      this.#endSubscription(sub, `the server says it is ${n.status}`);
      return;
    }
    sub.seq.observe(n.eventsSinceSubscriptionStart);
    this.#accept(sub, eventsOf(n));
  }

  #accept(sub: SubState, events: SubscriptionEvent[]): void {
    if (!sub.seq.hasBaseline && sub.handshakeMissed && events.length) {
      // No handshake told us where "now" is: start with the first event seen.
      sub.seq.setBaseline(Math.min(...events.map((e) => e.eventNumber)) - 1);
    }
    for (const e of events) sub.seq.offer(e);
    this.#flush(sub);
  }

  #flush(sub: SubState): void {
    if (this.#isClosed) return;
    const ready = sub.seq.take();
    if (ready.length) {
      this.#queue.push(...ready);
      this.#drain();
    }
    if (!sub.catchingUp && !sub.ended && sub.seq.missing()) void this.#catchUp(sub);
  }

  // ---- catching up with $events ----

  async #catchUp(sub: SubState): Promise<void> {
    sub.catchingUp = true;
    let failures = 0;
    let stalls = 0;
    let announced = false;
    try {
      for (let gap = sub.seq.missing(); gap && !this.#isClosed && !sub.ended; gap = sub.seq.missing()) {
        if (!announced) {
          this.#status('catching-up', `fetching events ${gap.from}..${gap.to} of Subscription/${sub.id} with $events`, sub.id);
          announced = true;
        }
        const before = sub.seq.lastDelivered;
        try {
          const bundle = await this.#rest.events(sub.id, gap.from, gap.to);
          const n = parseNotification(bundle);
          if (n.subscriptionId !== sub.id) throw new Error(`$events for Subscription/${sub.id} answered for Subscription/${n.subscriptionId}`);
          failures = 0;
          this.#accept(sub, eventsOf(n).filter((e) => e.eventNumber <= gap!.to));
          if (sub.seq.lastDelivered === before) {
            // The server did not return the first missing number. Try again a little later (it may
            // still be committing), then accept that it is not there.
            if (++stalls >= 3) this.#lost(sub, { from: gap.from, to: Math.min(gap.to, firstAbove(n, gap.from) - 1) }, 'the server did not return them');
            else await sleep(backoffDelay(stalls, { initialDelayMs: 100, maxDelayMs: 2000 }));
          } else stalls = 0;
        } catch (err) {
          if (err instanceof FhirHttpError && err.status === 410) {
            const oldest = /oldest[^0-9]*(\d+)/i.exec(err.message)?.[1];
            const upTo = oldest ? Math.min(Number(oldest) - 1, gap.to) : gap.to;
            this.#lost(sub, { from: gap.from, to: Math.max(upTo, gap.from) }, 'no longer held by the server');
          } else if (err instanceof FhirHttpError && (err.status === 404 || err.status === 403)) {
            this.#endSubscription(sub, err.message);
          } else {
            this.#error(new Error(`$events for Subscription/${sub.id} failed: ${(err as Error).message}`));
            await sleep(backoffDelay(failures++, this.#o.backoff));
          }
        }
      }
    } finally {
      sub.catchingUp = false;
    }
    if (announced && !this.#isClosed && !sub.ended) this.#status('caught-up', `Subscription/${sub.id} caught up to event ${sub.seq.lastDelivered}`, sub.id);
    if (!this.#isClosed && !sub.ended) this.#flush(sub);
  }

  #lost(sub: SubState, gap: Gap, reason: string): void {
    for (const g of sub.seq.skipTo(gap.to)) this.#error(new EventsLostError(sub.id, g.from, g.to, reason));
    this.#flush(sub);
  }

  // ---- delivery ----

  #drain(): void {
    if (this.#draining) return;
    this.#draining = (async () => {
      while (this.#queue.length) {
        const event = this.#queue.shift()!;
        const sub = this.#subs.get(event.subscriptionId);
        if (sub) sub.delivered = event.eventNumber;
        try {
          await this.#o.onEvent(event);
        } catch (err) {
          this.#error(err as Error);
        }
      }
      this.#draining = undefined;
    })();
  }

  // ---- server errors and gone subscriptions ----

  #scheduleRecheck(): void {
    if (this.#recheckTimer || this.#isClosed) return;
    const wait = Math.max(100, 2000 - (Date.now() - this.#lastRecheck));
    this.#recheckTimer = setTimeout(() => {
      this.#recheckTimer = undefined;
      this.#lastRecheck = Date.now();
      void this.#renew('after a server error');
    }, wait);
  }

  /** Reads each subscription; ones that are gone (404/410) or off stop being listened to. */
  async #pruneSubscriptions(): Promise<void> {
    for (const sub of [...this.#subs.values()].filter((s) => !s.ended)) {
      try {
        const s = summarizeSubscription(await this.#rest.readSubscription(sub.id));
        if (s?.status === 'off' || s?.status === 'entered-in-error') this.#endSubscription(sub, `it is ${s.status}`);
        else if (s?.channelType && s.channelType !== 'websocket') this.#endSubscription(sub, `its channel is ${s.channelType}, not websocket`);
      } catch (err) {
        if (err instanceof FhirHttpError && (err.status === 404 || err.status === 410 || err.status === 403)) this.#endSubscription(sub, `it is gone (HTTP ${err.status})`);
      }
    }
  }

  #endSubscription(sub: SubState, why: string): void {
    if (sub.ended) return;
    sub.ended = true;
    this.#status('subscription-ended', `no longer listening to Subscription/${sub.id}: ${why}`, sub.id);
    if (this.subscriptionIds.length === 0) void this.#fail(new Error('no subscriptions left to listen to'));
    else this.#checkReady(false);
  }

  // ---- bookkeeping ----

  #checkReady(force: boolean): void {
    if (this.#started) return;
    const live = [...this.#subs.values()].filter((s) => !s.ended);
    if (force || live.every((s) => s.bound)) {
      this.#started = true;
      this.#resolveReady(live.map((s) => s.id));
    }
  }

  async #fail(err: Error): Promise<void> {
    this.#error(err);
    this.#rejectReady(err);
    await this.close();
  }

  #status(type: ListenerStatusType, message: string, subscriptionId?: string): void {
    try {
      this.#o.onStatus?.({ type, message, ...(subscriptionId ? { subscriptionId } : {}) });
    } catch {
      // a status callback's failure is not ours to handle
    }
  }

  #error(err: Error): void {
    try {
      this.#o.onError?.(err);
    } catch {
      // ignore
    }
  }
}

/** The lowest event number in a notification above `n` (Infinity if none), to bound what is given up. */
function firstAbove(n: ParsedNotification, from: number): number {
  const above = n.events.map((e) => e.eventNumber).filter((x) => x > from);
  return above.length ? Math.min(...above) : Infinity;
}

function decode(data: unknown): string {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return new TextDecoder().decode(data as ArrayBuffer);
  return String(data);
}
