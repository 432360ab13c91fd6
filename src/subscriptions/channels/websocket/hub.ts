import { operationOutcome } from '../../../fhir/errors.ts';
import type { FhirVersion } from '../../../fhir/types.ts';
import type { Channel } from '../channel.ts';
import type { HeartbeatScheduler } from '../heartbeats.ts';
import type { NotificationType } from '../../../fhir/subscription-model.ts';
import type { StoredEvent } from '../../../store/store.ts';
import { type Dialect, type NotifyContext, renderNotificationText } from '../../notify.ts';
import { type LogReader, createLogReader } from '../log-reader.ts';
import { type Serial, serial } from '../serial.ts';
import { bindingTokenHash, bindingTokenMatches } from './binding-token.ts';
import { type ActiveSubscription, LIVE_STATUSES as LIVE } from '../../registry.ts';

/** A connected websocket as the hub sees it (http/websocket.ts adapts `ws` sockets to this). */
export interface Peer {
  /** Sends one text frame (a Buffer holds UTF-8 text encoded once for many peers). */
  send(text: string | Buffer): void;
  /** Optional: runs `fn` with the connection corked, so the frames it sends leave in one write. */
  corked?(fn: () => void): void;
  /** Bytes queued but not yet written to the network. */
  buffered(): number;
  close(code: number, reason: string): void;
}

export interface HubOptions {
  /** A peer with more unsent bytes than this is closed: it catches up with $events (slow reader). */
  maxBufferedBytes: number;
  /** Subscriptions one socket may have bound, over all its tokens (issue 14). */
  maxSubscriptionsPerSocket: number;
  /** Refused binds after which a socket is closed with 1008 (token guessing, a client gone astray). */
  maxFailedBinds: number;
  /** The process's heartbeat scheduler (NT-3), shared with rest-hook delivery. */
  heartbeats: HeartbeatScheduler;
}

interface Binding {
  fv: FhirVersion;
  subscriptions: string[];
  timer: NodeJS.Timeout;
}

interface Broadcaster {
  lastSent: number;
  sender: Serial;
}

const outcome = (code: string, text: string) => JSON.stringify(operationOutcome([{ severity: 'error', code, diagnostics: text }]));

/**
 * The websocket channel (REQUIREMENTS §6.2, D-1..D-5, D-9, D-10): sessions bind subscriptions with
 * tokens; each subscription's events are rendered once, in eventNumber order, and the same bytes
 * go to every socket bound to it. Expired tokens, deleted or switched-off subscriptions end their
 * bindings with an OperationOutcome frame; the socket stays open for a fresh bind.
 */
export class WebsocketHub {
  private readonly contexts = new Map<FhirVersion, NotifyContext>();
  private readonly bound = new Map<string, Set<Session>>();
  private readonly broadcasters = new Map<string, Broadcaster>();
  private readonly readers = new Map<FhirVersion, LogReader>();
  private stopped = false;

  constructor(private readonly options: HubOptions) {}

  /** Registers a base; returns its websocket channel (the hub is one for every base: one endpoint, D-4). */
  attach(ctx: NotifyContext): Channel {
    const fv = ctx.engine.version;
    this.contexts.set(fv, ctx);
    this.readers.set(fv, createLogReader(ctx.store, fv, SEND_BATCH));
    return {
      types: ['websocket'],
      eventsCommitted: (subs, events) => {
        // Numbered events of bound subscriptions are kept for the reads these wake-ups make.
        const reader = this.readers.get(fv)!;
        if (events) reader.prime(events.filter((e) => this.bound.has(`${fv}|${e.subscription}`)));
        else reader.forget(subs.map((s) => s.id));
        for (const s of subs) this.broadcast(fv, s.id);
      },
      subscriptionChanged: (id, sub) => this.changed(fv, id, sub),
    };
  }

  /** A new connection; `dialect` decides the shape of its notifications (see notify.ts). */
  open(peer: Peer, dialect: Dialect = 'ig'): Session {
    return new Session(this, peer, dialect);
  }

  /** Sockets currently bound (for tests and metrics). */
  bindingCount(): number {
    let n = 0;
    for (const set of this.bound.values()) n += set.size;
    return n;
  }

  // --- used by sessions ---------------------------------------------------------------------

  async bind(session: Session, token: string): Promise<Binding | string> {
    for (const ctx of this.contexts.values()) {
      const t = await ctx.store.bindingToken(bindingTokenHash(token));
      if (!t) continue;
      if (t.revoked) return 'This token has been revoked';
      const left = Date.parse(t.expiresAt) - ctx.now().getTime();
      if (left <= 0) return `This token expired at ${t.expiresAt}`;
      const engine = this.contexts.get(t.fv)?.engine;
      const subs = t.subscriptions.map((id) => engine?.registry.subscription(id)).filter((s): s is ActiveSubscription => !!s && LIVE.has(s.status));
      if (subs.length === 0) return 'None of the subscriptions of this token is active';
      if (session.tokenCount() >= MAX_TOKENS_PER_SOCKET) {
        return `This connection has ${MAX_TOKENS_PER_SOCKET} tokens bound, the most one may: unbind some (unbind-with-token), or open another connection`;
      }
      const adding = session.newSubscriptions(t.fv, subs.map((x) => x.id));
      const max = this.options.maxSubscriptionsPerSocket;
      if (session.subscriptionCount() + adding > max) {
        return `This connection would have ${session.subscriptionCount() + adding} subscriptions bound, more than ${max} (HERALD_WS_MAX_SUBSCRIPTIONS_PER_SOCKET): unbind some, or open another connection`;
      }
      const timer = setTimeout(() => session.expired(token, t.expiresAt), Math.min(left, 2 ** 31 - 1));
      timer.unref();
      for (const sub of subs) await this.join(session, t.fv, sub);
      return { fv: t.fv, subscriptions: subs.map((s) => s.id), timer };
    }
    return 'Unknown token: get one with $get-ws-binding-token';
  }

  /** Adds a session to a subscription's audience and sends it the handshake (HS-1). */
  private async join(session: Session, fv: FhirVersion, sub: ActiveSubscription): Promise<void> {
    const key = `${fv}|${sub.id}`;
    const ctx = this.contexts.get(fv)!;
    if (!this.broadcasters.has(key)) {
      const { last } = await ctx.store.eventRange(fv, sub.id);
      const b: Broadcaster = {
        lastSent: last,
        sender: serial(
          () => this.sendNew(fv, sub.id, b),
          (err) => process.emitWarning(`websocket broadcast for Subscription/${sub.id} failed: ${err.message}`),
          () => this.stopped,
        ),
      };
      this.broadcasters.set(key, b);
    }
    let set = this.bound.get(key);
    if (!set) this.bound.set(key, (set = new Set()));
    set.add(session);
    session.deliver(await render(ctx, sub, 'handshake', [], session.dialect));
    this.armHeartbeat(fv, sub);
  }

  leave(session: Session, fv: FhirVersion, id: string): void {
    const key = `${fv}|${id}`;
    const set = this.bound.get(key);
    set?.delete(session);
    if (set && set.size === 0) this.bound.delete(key);
  }

  // --- delivery ------------------------------------------------------------------------------

  /**
   * Sends a subscription's new events to its audience, one notification per event, in order. The
   * senders woken by commits start on later turns of the event loop, KICKS_PER_TURN at a time, with
   * the event loop's I/O between turns: the writer's answer goes out first, and a change matched by
   * many subscriptions does not hold up the requests behind it while its notifications go out (the
   * next write reaches the writer thread and commits while they do).
   */
  private broadcast(fv: FhirVersion, id: string): void {
    const key = `${fv}|${id}`;
    if (!this.bound.has(key) || !this.broadcasters.has(key)) return;
    this.due.add(key);
    this.turn ??= setImmediate(() => this.kickDue());
  }

  private readonly due = new Set<string>();
  private turn: NodeJS.Immediate | undefined;

  /** Kicks the next KICKS_PER_TURN due senders; a turn with none due releases what the readers keep. */
  private kickDue(): void {
    this.turn = undefined;
    if (this.due.size === 0) {
      // Every sender woken has asked for its events (in the last kicks' microtasks).
      for (const reader of this.readers.values()) reader.release();
      return;
    }
    let n = 0;
    for (const key of this.due) {
      if (n++ === KICKS_PER_TURN) break;
      this.due.delete(key);
      this.broadcasters.get(key)?.sender.kick();
    }
    this.turn = setImmediate(() => this.kickDue());
  }

  private async sendNew(fv: FhirVersion, id: string, b: Broadcaster): Promise<void> {
    const ctx = this.contexts.get(fv)!;
    // One read for every subscription the same commit woke: the events after the last one sent.
    const { events, more } = await this.readers.get(fv)!.read(id, b.lastSent);
    // One notification per event; each socket gets a wake-up's frames in one write (the events of
    // a group commit come together), FRAMES_PER_WRITE at a time so that a backlog is never all in
    // memory (a socket too slow for them is closed as it falls behind). A subscription gone off
    // stops at the next batch.
    for (let i = 0; i < events.length; i += FRAMES_PER_WRITE) {
      const sub = ctx.engine.registry.subscription(id);
      if (!sub || !LIVE.has(sub.status)) return;
      const batch = events.slice(i, i + FRAMES_PER_WRITE);
      await sendToAll(this.bound.get(`${fv}|${id}`), batch.map((e) => (dialect) => render(ctx, sub, 'event-notification', [e], dialect)));
      b.lastSent = batch[batch.length - 1]!.number;
    }
    if (events.length > 0) {
      const sub = ctx.engine.registry.subscription(id);
      if (sub) this.armHeartbeat(fv, sub);
    }
    // A shared read cut short may have left this subscription's events out altogether.
    if (more) b.sender.kick();
  }

  /** NT-3: a heartbeat to the audience whenever the subscription has been idle for its period. */
  private armHeartbeat(fv: FhirVersion, sub: ActiveSubscription): void {
    const key = `${fv}|${sub.id}`;
    const period = sub.spec.channel.heartbeatPeriod;
    if (!this.broadcasters.has(key) || !period) return;
    this.options.heartbeats.arm(`websocket|${key}`, period * 1000, async () => {
      const ctx = this.contexts.get(fv)!;
      const current = ctx.engine.registry.subscription(sub.id);
      const audience = this.bound.get(key);
      if (!current || !audience?.size || !LIVE.has(current.status) || this.stopped) return;
      try {
        await sendToAll(audience, [(dialect) => render(ctx, current, 'heartbeat', [], dialect)]);
      } catch (err) {
        // Rendering reads the store, which may fail for a moment (disk full): beat again next period.
        process.emitWarning(`websocket heartbeat of Subscription/${sub.id} failed: ${(err as Error).message}`);
      }
      this.armHeartbeat(fv, current);
    });
  }

  /** A deleted, switched-off or re-channelled subscription ends its bindings (D-2, D-5). */
  private changed(fv: FhirVersion, id: string, sub: ActiveSubscription | undefined): void {
    if (sub && sub.spec.channel.type === 'websocket' && LIVE.has(sub.status)) return;
    const key = `${fv}|${id}`;
    const audience = this.bound.get(key);
    this.options.heartbeats.cancel(`websocket|${key}`);
    this.broadcasters.delete(key);
    this.bound.delete(key);
    const why = sub ? `is ${sub.status === 'off' ? 'off' : `no longer a live websocket subscription`}` : 'was deleted';
    // Its tokens were revoked in the transaction that made the change (SubscriptionEngine.record).
    for (const session of audience ?? []) session.lost(fv, id, `Subscription/${id} ${why}: notifications for it have stopped`);
  }

  /** A token revoked by its holder ($revoke-ws-binding-token): every binding made with it ends. */
  revoked(hash: string): void {
    const sessions = new Set([...this.bound.values()].flatMap((set) => [...set]));
    for (const session of sessions) session.revoked(hash);
  }

  get maxBufferedBytes(): number {
    return this.options.maxBufferedBytes;
  }

  get maxFailedBinds(): number {
    return this.options.maxFailedBinds;
  }

  /** Stops heartbeats and waits for broadcasts in flight, so nothing touches a closed store. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearImmediate(this.turn);
    this.turn = undefined;
    this.due.clear();
    for (const reader of this.readers.values()) reader.release();
    for (const key of this.broadcasters.keys()) this.options.heartbeats.cancel(`websocket|${key}`);
    await Promise.allSettled([...this.broadcasters.values()].map((b) => b.sender.idle()));
  }
}

/**
 * Tokens one socket may have bound at once. Its subscriptions are capped apart (a token for
 * subscriptions already bound adds none), and each binding is walked when the socket closes or a
 * token is revoked.
 */
const MAX_TOKENS_PER_SOCKET = 100;

/** Subscriptions whose senders start in one turn of the event loop (see WebsocketHub.broadcast). */
const KICKS_PER_TURN = 16;

/** Events read from the log per pass of a subscription's sender. */
const SEND_BATCH = 1000;

/**
 * A notification in a dialect, as JSON text. Medplum's server always sends the resource with the focus, and its
 * client's Subscription (classic R4 criteria, no payload: D-19) asks for nothing else, so on the
 * Medplum path a classic subscription gets its resource; a topic-based one keeps its content level.
 */
function render(ctx: NotifyContext, sub: ActiveSubscription, type: NotificationType, events: StoredEvent[], dialect: Dialect) {
  const content = dialect === 'medplum' && sub.spec.classicCriteria !== undefined ? 'full-resource' : sub.spec.channel.content;
  return renderNotificationText(ctx, sub, type, events, content, dialect);
}

/** Frames rendered, then written to each socket in one go, at most this many at a time. */
const FRAMES_PER_WRITE = 32;

/**
 * Notifications to an audience: each rendered once per dialect among its sockets (the same bytes
 * go to every socket of a dialect), then each socket's frames written in one go.
 */
async function sendToAll(audience: Iterable<Session> | undefined, texts: ((dialect: Dialect) => Promise<string>)[]): Promise<void> {
  const sessions = [...(audience ?? [])];
  const frames = new Map<Dialect, Buffer[]>();
  for (const s of sessions) if (!frames.has(s.dialect)) frames.set(s.dialect, []);
  for (const [dialect, list] of frames) for (const text of texts) list.push(Buffer.from(await text(dialect)));
  for (const s of sessions) s.deliverAll(frames.get(s.dialect)!);
}

/** One websocket connection: its token bindings, its messages, its back-pressure. */
export class Session {
  private readonly bindings = new Map<string, Binding>();
  private closed = false;
  private failedBinds = 0;
  /** Messages are handled one after the other, so that concurrent binds cannot pass a cap together. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly hub: WebsocketHub,
    private readonly peer: Peer,
    readonly dialect: Dialect,
  ) {}

  /** Handles one text frame (D-1: both framing forms), after the frames before it. */
  message(text: string): Promise<void> {
    const next = this.queue.then(() => (this.closed ? undefined : this.handle(text)));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async handle(text: string): Promise<void> {
    const cmd = parseCommand(text);
    if (!cmd) return this.deliver(outcome('invalid', 'Unknown message: send `bind-with-token <token>`, `unbind-with-token <token>` or {"type":"ping"}'));
    if (cmd.kind === 'ping') return this.deliver('{"type":"pong"}');
    if (cmd.kind === 'unbind') return this.unbind(cmd.token);
    if (this.bindings.has(cmd.token)) return this.bindFailed('duplicate', 'This token is already bound on this connection');
    const result = await this.hub.bind(this, cmd.token);
    if (typeof result === 'string') return this.bindFailed('security', result);
    if (this.closed) return this.unbindAll();
    this.bindings.set(cmd.token, result);
  }

  /** A refused bind: said in a frame; too many of them close the socket (issue 14). */
  private bindFailed(code: string, text: string): void {
    this.deliver(outcome(code, text));
    this.failedBinds += 1;
    const max = this.hub.maxFailedBinds;
    if (this.failedBinds < max || this.closed) return;
    this.peer.close(1008, `${max} binds failed on this connection (HERALD_WS_MAX_FAILED_BINDS)`);
    this.close();
  }

  /** How many tokens are bound on this socket. */
  tokenCount(): number {
    return this.bindings.size;
  }

  /** How many distinct subscriptions are bound on this socket. */
  subscriptionCount(): number {
    const ids = new Set<string>();
    for (const b of this.bindings.values()) for (const id of b.subscriptions) ids.add(`${b.fv}|${id}`);
    return ids.size;
  }

  /** How many of these subscriptions are not bound on this socket yet. */
  newSubscriptions(fv: FhirVersion, ids: string[]): number {
    return ids.filter((id) => !this.coveredElsewhere(fv, id)).length;
  }

  private unbind(token: string): void {
    const b = this.bindings.get(token);
    if (!b) return this.deliver(outcome('not-found', 'This token is not bound on this connection'));
    this.drop(token, b);
  }

  private drop(token: string, b: Binding): void {
    clearTimeout(b.timer);
    this.bindings.delete(token);
    for (const id of b.subscriptions) if (!this.coveredElsewhere(b.fv, id)) this.hub.leave(this, b.fv, id);
  }

  private coveredElsewhere(fv: FhirVersion, id: string): boolean {
    for (const other of this.bindings.values()) if (other.fv === fv && other.subscriptions.includes(id)) return true;
    return false;
  }

  /** D-2: on expiry, an OperationOutcome naming it; the socket stays open for a fresh bind. */
  expired(token: string, at: string): void {
    const b = this.bindings.get(token);
    if (!b) return;
    this.drop(token, b);
    this.deliver(outcome('expired', `The binding token expired at ${at}: get a new one with $get-ws-binding-token and bind it`));
  }

  revoked(hash: string): void {
    for (const [token, b] of [...this.bindings]) {
      if (!bindingTokenMatches(token, hash)) continue;
      this.drop(token, b);
      this.deliver(outcome('security', 'The binding token was revoked: notifications for its subscriptions have stopped on this connection'));
    }
  }

  lost(fv: FhirVersion, id: string, why: string): void {
    for (const [token, b] of this.bindings) {
      if (b.fv !== fv || !b.subscriptions.includes(id)) continue;
      b.subscriptions = b.subscriptions.filter((s) => s !== id);
      if (b.subscriptions.length === 0) {
        clearTimeout(b.timer);
        this.bindings.delete(token);
      }
    }
    this.deliver(outcome('not-found', why));
  }

  /** Sends a frame unless the peer is too far behind: then it is closed (bounded memory). */
  deliver(text: string | Buffer): void {
    if (this.closed) return;
    if (this.peer.buffered() > this.hub.maxBufferedBytes) {
      this.peer.close(1013, 'Too slow: reconnect and catch up with $events');
      this.close();
      return;
    }
    this.peer.send(text);
  }

  /** Several frames, in order, in one write when the connection can be corked. */
  deliverAll(frames: Buffer[]): void {
    if (frames.length === 1 || !this.peer.corked) {
      for (const f of frames) this.deliver(f);
      return;
    }
    this.peer.corked(() => {
      for (const f of frames) this.deliver(f);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unbindAll();
  }

  private unbindAll(): void {
    for (const [token, b] of [...this.bindings]) this.drop(token, b);
  }
}

type Command = { kind: 'bind' | 'unbind'; token: string } | { kind: 'ping' };

function parseCommand(text: string): Command | undefined {
  const t = text.trim();
  const plain = /^(bind-with-token|unbind-with-token)\s+(\S+)$/.exec(t);
  if (plain) return { kind: plain[1] === 'bind-with-token' ? 'bind' : 'unbind', token: plain[2]! };
  if (!t.startsWith('{')) return undefined;
  try {
    const msg = JSON.parse(t) as { type?: unknown; payload?: { token?: unknown } };
    if (msg.type === 'ping') return { kind: 'ping' };
    const token = msg.payload?.token;
    if (typeof token !== 'string' || token === '') return undefined;
    if (msg.type === 'bind-with-token') return { kind: 'bind', token };
    if (msg.type === 'unbind-from-token' || msg.type === 'unbind-with-token') return { kind: 'unbind', token };
  } catch {
    return undefined;
  }
  return undefined;
}
