import { type Compartments, type Principal, forbidden, maskSubscriptionSecrets, principalOf, reach } from '../auth/index.ts';
import { FhirError, unprocessable } from '../fhir/errors.ts';
import { stringifyJson } from '../fhir/json.ts';
import { stamp } from '../fhir/meta.ts';
import type { SubscriptionSpec, SubscriptionStatusCode, Topic } from '../fhir/subscription-model.ts';
import type { FhirVersion, Resource } from '../fhir/types.ts';
import type { VersionAdapter } from '../fhir/versions/index.ts';
import { extractIndex } from '../search/extract.ts';
import type { SearchRegistry } from '../search/parameters.ts';
import type { IndexRows, SearchRequest } from '../search/types.ts';
import type { RemoteCommit, Store, StoredEvent, StoredVersion, SubscriptionOwner, Transaction, WriteMethod } from '../store/store.ts';
import { checkFilters } from './matching/filters.ts';
import type { ResourceChange } from './matching/trigger.ts';
import { type SubscriptionPolicy, checkChannel } from './policy.ts';
import { type ActiveSubscription, LIVE_STATUSES, SubscriptionRegistry, classicTopicUrl } from './registry.ts';
import { rememberFocus } from './focus.ts';
import { EventRecorder } from './recorder.ts';
import { checkTopic } from './topics.ts';

/** What the engine tells delivery, always after the commit that caused it. */
export interface Notifier {
  /**
   * New events were appended to these subscriptions' logs. `events`: those of this change, numbered,
   * when the store told them with the commit (absent: read the log).
   */
  eventsCommitted(subscriptions: ActiveSubscription[], events?: StoredEvent[]): void;
  /** A subscription was written (created, changed, reactivated) or removed (`undefined`). */
  subscriptionChanged(id: string, sub: ActiveSubscription | undefined): void;
  /** Several nodes: another node gave up delivering these subscriptions (a clean stop); take over. */
  leaseReleased?(subscriptions: ActiveSubscription[]): void;
}

/**
 * Where the subscription machinery says what it does in the background (one structured line per
 * event). A pino logger is one; the composition root binds the base to it.
 */
export interface Log {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface EngineDeps {
  version: FhirVersion;
  adapter: VersionAdapter;
  search: SearchRegistry;
  store: Store;
  /** Public URL of this base (e.g. http://host/fhir/R4). */
  baseUrl: string;
  policy: SubscriptionPolicy;
  now: () => Date;
  log: Log;
  /** The version's Patient compartment: notifications of patient-context owners stay within it. */
  compartments: Compartments;
  /** Most subscriptions one owner may have (auth mode). */
  maxSubscriptionsPerOwner?: number;
}

/** A change as the write path reports it; the previous version is parsed only when needed. */
export interface WriteChange extends Omit<ResourceChange, 'previous'> {
  previousJson?: string;
  /** The new version's JSON text, as stored (absent for a delete). */
  json?: string;
}

/** A version as written by SubscriptionEngine.writeVersion (`stored` and `json` absent for a deletion). */
export interface WrittenVersion {
  versionId: number;
  lastUpdated: string;
  stored?: Resource;
  json?: string;
  /** The resource had no live version before (a create, or a re-create after a deletion). */
  created: boolean;
}

/**
 * The topic-based subscription engine of one FHIR base: validates topic and Subscription writes,
 * matches every change inside its write transaction and appends the numbered events to the log
 * (REQUIREMENTS D-18), and tells delivery once the transaction has committed.
 */
export class SubscriptionEngine {
  readonly registry: SubscriptionRegistry;
  private readonly recorder: EventRecorder;
  private readonly notifiers: Notifier[] = [];
  /** D-17: a timer per subscription with an `end`, turning it off when the end passes. */
  private readonly endTimers = new Map<string, NodeJS.Timeout>();
  private readonly now: () => Date;
  /**
   * Every recorded owner's principal, by subscription id (also of deleted subscriptions: their
   * history stays theirs). The principal carries the owner, scope and patient context, so a
   * subscription costs this map's entry and nothing more (a record each cost 62–65 bytes more).
   */
  private readonly owners = new Map<string, Principal>();
  /**
   * The principals of recorded owners, one per owner, scope and patient context: every Subscription
   * an app makes with one token shares it (a principal's parsed grants take about 1.2 KB, a
   * million times over with auth on). Owners are never forgotten, so neither are these.
   */
  private readonly principals = new Map<string, Principal>();
  /** The subscriptions that exist now, by owner. */
  private readonly liveByOwner = new Map<string, Set<string>>();
  /** The url of each stored topic, by resource id (to forget a topic deleted on another node). */
  private readonly topicUrls = new Map<string, string>();
  /** Other nodes' commits, applied one at a time in the order the store told of them. */
  private remote: Promise<void> = Promise.resolve();

  constructor(private readonly deps: EngineDeps) {
    this.registry = new SubscriptionRegistry(deps.version, deps.search, deps.baseUrl, () => deps.now().getTime());
    this.recorder = new EventRecorder(deps.version, this.registry, (id, focus) => this.ownerMayRead(id, focus));
    this.now = deps.now;
  }

  get version(): FhirVersion {
    return this.deps.version;
  }

  get adapter(): VersionAdapter {
    return this.deps.adapter;
  }

  get search(): SearchRegistry {
    return this.deps.search;
  }

  get log(): Log {
    return this.deps.log;
  }

  /** Adds a channel to be told about commits (rest-hook delivery, the websocket hub). */
  attach(notifier: Notifier): void {
    this.notifiers.push(notifier);
  }

  /** A Subscription's recorded owner with the authority of its creating token (D-22): owner id, scope, patient context. */
  ownerPrincipal(id: string): Principal | undefined {
    return this.owners.get(id);
  }

  /** The recorded owner of a Subscription (undefined: created in open mode, or not recorded). */
  ownerIdOf(id: string): string | undefined {
    return this.owners.get(id)?.id;
  }

  /** The ids of the existing subscriptions of an owner. */
  ownedBy(owner: string): string[] {
    return [...(this.liveByOwner.get(owner) ?? [])];
  }

  /**
   * D-22: whether a caller may see and manage a Subscription: its owner and the admin may; in
   * open mode (no principal) everyone. A Subscription without a recorded owner (created in open
   * mode) is the admin's only.
   */
  canManage(principal: Principal | undefined, id: string): boolean {
    return !principal || principal.admin || this.ownerIdOf(id) === principal.id;
  }

  /**
   * Whether a subscription's owner may read a resource, judged with the scopes and patient context
   * recorded from its creating token (SEC-1, D-22). Subscriptions without a recorded owner were
   * created in open mode and are not restricted.
   */
  ownerMayRead(id: string, resource: Resource): boolean {
    const owner = this.owners.get(id);
    if (!owner) return true;
    if (resource.resourceType === 'Subscription') return this.canManage(owner, resource.id!);
    const r = reach(owner, resource.resourceType, 'r');
    return r === 'all' || (r === 'patient' && this.deps.compartments.contains(resource, owner.patient!));
  }

  /** A resource as a subscription's owner may receive it: another owner's Subscription has its secrets masked. */
  forOwner(id: string, resource: Resource): Resource {
    if (resource.resourceType !== 'Subscription' || !this.owners.has(id)) return resource;
    return this.ownerIdOf(resource.id!) === this.ownerIdOf(id) ? resource : maskSubscriptionSecrets(resource);
  }

  private putOwner(o: SubscriptionOwner): void {
    const key = JSON.stringify([o.owner, o.scope, o.patient ?? null]);
    let principal = this.principals.get(key);
    if (!principal) this.principals.set(key, (principal = principalOf(o.owner, o.scope, o.patient, '\0')));
    this.owners.set(o.subscription, principal);
  }

  /**
   * Loads every stored topic and subscription of this version (at start), then follows what other
   * nodes sharing the store commit (PostgreSQL): their topic and Subscription changes reach the
   * registry, and their events wake this node's channels.
   */
  async load(): Promise<void> {
    // Listen first, then load: a commit made elsewhere meanwhile is either loaded or told
    // (followed once the load is done), never missed.
    let loaded!: () => void;
    this.remote = new Promise<void>((resolve) => (loaded = resolve));
    try {
      await this.deps.store.onRemoteCommit?.((c) => {
        if (c.fv !== this.deps.version) return;
        this.remote = this.remote.then(() => this.followRemote(c)).catch((err: Error) => this.deps.log.error({ err }, "following another node's commit failed"));
      });
      await this.loadAll();
    } finally {
      loaded();
    }
  }

  private async loadAll(): Promise<void> {
    for (const o of await this.deps.store.subscriptionOwners(this.deps.version)) this.putOwner(o);
    const topicType = this.deps.adapter.subscriptions.topicResourceType;
    const gone = new Set(this.topicUrls.keys());
    for await (const r of this.all(topicType)) {
      gone.delete(r.id!);
      this.applyTopic(r.id!, r);
    }
    for (const id of gone) this.applyTopic(id, undefined);
    const before = new Set(this.registry.allSubscriptions().map((x) => x.id));
    for await (const r of this.all('Subscription')) {
      before.delete(r.id!);
      this.applySubscription(r.id!, r);
    }
    for (const id of before) this.applySubscription(id, undefined);
  }

  /** Another node committed: re-read the topics and Subscriptions it wrote, then wake the channels. */
  private async followRemote(c: RemoteCommit): Promise<void> {
    const topicType = this.deps.adapter.subscriptions.topicResourceType;
    if (c.resources === 'all') await this.loadAll();
    else {
      const own = c.resources.filter((r) => r.type === 'Subscription' || r.type === topicType);
      for (const r of own) {
        // Its owner may have been recorded on that node: read that one (not every owner again).
        if (r.type === 'Subscription') for (const o of await this.deps.store.subscriptionOwners(this.deps.version, r.id)) this.putOwner(o);
        const v = await this.deps.store.read(this.deps.version, r.type, r.id);
        const resource = v && !v.deleted ? (JSON.parse(v.json!) as Resource) : undefined;
        if (r.type === 'Subscription') this.applySubscription(r.id, resource);
        else this.applyTopic(r.id, resource);
      }
    }
    const subs =
      c.subscriptions === 'all'
        ? this.registry.allSubscriptions()
        : c.subscriptions.map((id) => this.registry.subscription(id)).filter((x): x is ActiveSubscription => x !== undefined);
    if (subs.length > 0) for (const n of this.notifiers) n.eventsCommitted(subs);
    const released = (c.released ?? []).map((id) => this.registry.subscription(id)).filter((x): x is ActiveSubscription => x !== undefined);
    if (released.length > 0) for (const n of this.notifiers) n.leaseReleased?.(released);
  }

  /** Puts a stored topic in the registry (or forgets it: deleted, or no longer readable). */
  private applyTopic(id: string, resource: Resource | undefined): void {
    const before = this.topicUrls.get(id);
    const after = resource && this.readTopicSafely(resource);
    if (before && before !== after?.url) this.registry.removeTopic(before);
    if (after) {
      this.loadTopic(after);
      this.topicUrls.set(id, after.url);
    } else this.topicUrls.delete(id);
  }

  /**
   * A stored topic that this Herald refuses (one written before a limit of D-20 existed) is left
   * out, with a warning, rather than stopping the start; updating it brings it back.
   */
  private loadTopic(topic: Topic): void {
    try {
      this.registry.putTopic(topic);
    } catch (err) {
      process.emitWarning(`topic ${topic.url} is not loaded: ${(err as Error).message}`, { code: 'HERALD_TOPIC_FAULT' });
    }
  }

  /** Every stored resource of a type, a page at a time (a million Subscriptions are never all parsed at once). */
  private async *all(type: string): AsyncIterable<Resource> {
    const req: SearchRequest = { types: [type], conditions: [], sort: [], count: 1000, include: [], revinclude: [], total: 'none', ignored: [] };
    let page = await this.deps.store.search(this.deps.version, req);
    for (;;) {
      for (const m of page.matches) yield JSON.parse(m.json!) as Resource;
      if (!page.next) return;
      page = await this.deps.store.search(this.deps.version, req, page.next);
    }
  }

  private readTopicSafely(r: Resource): Topic | undefined {
    try {
      return this.deps.adapter.subscriptions.readTopic(r);
    } catch {
      return undefined;
    }
  }

  /**
   * Checks a topic or Subscription about to be written and returns what to store: topics as
   * given, Subscriptions with the status the server decides (D-7: websocket active, rest-hook
   * requested until its handshake; a client may set off, or ask for reactivation).
   */
  prepareWrite(resource: Resource, previousJson: string | undefined, principal?: Principal): Resource {
    if (resource.resourceType === this.deps.adapter.subscriptions.topicResourceType) {
      const topic = this.deps.adapter.subscriptions.readTopic(resource);
      if (topic) checkTopic(topic, this.registry, this.deps.search);
      return resource;
    }
    if (resource.resourceType !== 'Subscription') return resource;
    const spec = this.deps.adapter.subscriptions.readSubscription(resource);
    const paths = this.deps.adapter.subscriptions.paths;
    const topic = this.topicOf(spec, resource.id);
    if (principal) this.checkOwner(topic, resource.id, previousJson !== undefined, principal);
    this.checkQuotas(spec, topic, resource);
    checkFilters(topic, spec.filters, this.deps.search, () => this.now().getTime(), (i) => paths.filter(resource, i));
    checkChannel(spec, this.deps.policy, this.deps.adapter.mimeVersion, this.now().getTime(), paths);
    this.registry.compileSubscription(resource.id ?? 'new', spec, topic);
    const status = this.initialStatus(spec, previousJson ? (JSON.parse(previousJson) as Resource) : undefined);
    return this.deps.adapter.subscriptions.withState(resource, { status });
  }

  /**
   * Before a write, outside its transaction (no network waits inside one): the rest-hook endpoints
   * of a Subscription body, or of the Subscriptions in a transaction Bundle, whose host names
   * resolve to addresses they may not reach (issue 13). A batch entry or a patched Subscription
   * is judged at its first connection instead, as every delivery is.
   */
  async screenEndpoints(body: unknown): Promise<void> {
    const b = body as { resourceType?: unknown; type?: unknown; entry?: { resource?: unknown }[] } | undefined;
    const resources = b?.resourceType === 'Bundle' && b.type === 'transaction' && Array.isArray(b.entry) ? b.entry.map((e) => e?.resource) : [body];
    for (const r of resources) {
      if ((r as Resource | undefined)?.resourceType !== 'Subscription') continue;
      let endpoint: string | undefined;
      try {
        const ch = this.deps.adapter.subscriptions.readSubscription(r as Resource).channel;
        endpoint = ch.type === 'rest-hook' ? ch.endpoint : undefined;
      } catch {
        continue; // the write reports what is wrong with it
      }
      if (endpoint) await this.deps.policy.endpoints.screen(endpoint);
    }
  }

  /**
   * Auth mode: the owner (the creator, or the recorded owner on an update) must be able to read
   * some trigger resource of the topic (SEC-1), and may have only so many subscriptions.
   */
  private checkOwner(topic: Topic, id: string | undefined, update: boolean, principal: Principal): void {
    const owner = update && id !== undefined ? (this.owners.get(id) ?? principal) : principal;
    if (topic.resourceTriggers.every((t) => reach(owner, t.resource, 'r') === 'none')) {
      const types = [...new Set(topic.resourceTriggers.map((t) => t.resource))].join(', ');
      throw forbidden(`The subscription's owner may not read the resources its topic is about (${types})`);
    }
    const max = this.deps.maxSubscriptionsPerOwner;
    if (!update && max !== undefined && (this.liveByOwner.get(principal.id)?.size ?? 0) >= max) {
      throw new FhirError(422, 'business-rule', `An owner may have at most ${max} subscriptions (this server's limit, HERALD_MAX_SUBSCRIPTIONS_PER_OWNER): delete some first`);
    }
  }

  /**
   * Issue 14: the operator's quotas on filters and on subscriptions per topic. A subscription
   * already live on the topic (an update) is not counted twice; Subscriptions of one transaction
   * Bundle are counted against those that existed before it.
   */
  private checkQuotas(spec: SubscriptionSpec, topic: Topic, resource: Resource): void {
    const { maxFiltersPerSubscription: maxFilters, maxSubscriptionsPerTopic: maxPerTopic } = this.deps.policy.quotas;
    if (spec.filters.length > maxFilters) {
      const at = this.deps.adapter.subscriptions.paths.filter(resource, maxFilters);
      throw new FhirError(422, 'business-rule', `A subscription may have at most ${maxFilters} filters (this server's limit, HERALD_MAX_FILTERS_PER_SUBSCRIPTION), not ${spec.filters.length}`, [at]);
    }
    if (!LIVE_STATUSES.has(spec.status)) return;
    const before = resource.id !== undefined ? this.registry.subscription(resource.id) : undefined;
    if (spec.classicCriteria !== undefined) {
      if (before?.spec.classicCriteria !== undefined && LIVE_STATUSES.has(before.status)) return;
      const max = this.deps.policy.quotas.maxClassicSubscriptions;
      if (this.registry.liveClassic() >= max) {
        throw new FhirError(422, 'business-rule', `This base has its maximum of ${max} live subscriptions with classic criteria (this server's limit, HERALD_MAX_CLASSIC_SUBSCRIPTIONS; each is tested on every write of its type): delete some or set them off first, or subscribe to a topic`, ['Subscription.criteria']);
      }
      return;
    }
    if (before && before.topicUrl === topic.url && LIVE_STATUSES.has(before.status)) return;
    const live = this.registry.liveOnTopic(topic.url);
    if (live >= maxPerTopic) {
      throw new FhirError(422, 'business-rule', `The topic ${topic.url} has its maximum of ${maxPerTopic} live subscriptions (this server's limit, HERALD_MAX_SUBSCRIPTIONS_PER_TOPIC): delete some or set them off first`, [this.deps.adapter.subscriptions.paths.topic]);
    }
  }

  private topicOf(spec: SubscriptionSpec, id: string | undefined): Topic {
    if (spec.classicCriteria !== undefined) return classicTopic(spec.classicCriteria, id ?? 'new');
    const topic = spec.topic ? this.registry.topic(spec.topic) : undefined;
    const at = this.deps.adapter.subscriptions.paths.topic;
    if (!topic) throw unprocessable(`topic '${spec.topic}' is not known to this server`, [at]);
    if (topic.status !== 'active') throw unprocessable(`topic '${spec.topic}' is ${topic.status}, not active`, [at]);
    return topic;
  }

  private initialStatus(spec: SubscriptionSpec, previous: Resource | undefined): SubscriptionStatusCode {
    if (spec.status === 'off' || spec.status === 'entered-in-error') return spec.status;
    const before = previous ? this.deps.adapter.subscriptions.readSubscription(previous).status : undefined;
    // An update that leaves a live subscription live keeps the server's status.
    if (before && before !== 'off' && before !== 'entered-in-error' && spec.status === before) return before;
    // D-7: a rest-hook subscription waits for its handshake; classic R4 ones have none.
    return spec.channel.type === 'rest-hook' && spec.classicCriteria === undefined ? 'requested' : 'active';
  }

  /** Inside the write transaction: match the change, append its events, schedule the aftermath. */
  private async record(tx: Transaction, change: WriteChange, principal?: Principal): Promise<void> {
    const own = change.type === 'Subscription' || change.type === this.deps.adapter.subscriptions.topicResourceType;
    // Most writes concern types no topic watches: they cost one map lookup, no parsing.
    if (!own && !this.registry.watches(change.type)) return;
    const full: ResourceChange = { ...change, ...(change.previousJson ? { previous: JSON.parse(change.previousJson) as Resource } : {}) };
    if (principal && change.type === 'Subscription' && change.interaction === 'create' && !this.owners.has(change.id)) {
      const owner: SubscriptionOwner = { subscription: change.id, owner: principal.id, scope: principal.scope, ...(principal.patient ? { patient: principal.patient } : {}) };
      await tx.putSubscriptionOwner(this.deps.version, owner);
      tx.onCommit(() => this.putOwner(owner));
    }
    if (own) this.watchOwnTypes(tx, full);
    // D-2, D-5: a websocket subscription that is deleted, set off or given another channel loses its
    // binding tokens in the same transaction, so no bind can slip in between the change and the revocation.
    if (change.type === 'Subscription' && this.wasWebsocket(full.previous) && !this.bindable(full.current)) {
      await tx.revokeBindingTokens(this.deps.version, change.id);
    }
    const { matched, events } = await this.recorder.record(tx, full);
    if (matched.length === 0) return;
    const { current, json } = change;
    const shown = current && json !== undefined && matched.some((s) => s.spec.channel.content === 'full-resource');
    tx.onCommit(() => {
      // The notifications' focus and events, as written and numbered: the live path reads neither back.
      if (shown) rememberFocus(this.deps.store, this.deps.version, change.type, change.id, change.versionId, current, json);
      const numbered = tx.numbered?.(events);
      for (const n of this.notifiers) n.eventsCommitted(matched, numbered);
    });
  }

  private wasWebsocket(resource: Resource | undefined): boolean {
    return this.readSubscriptionSafely(resource)?.channel.type === 'websocket';
  }

  /** Whether a websocket client may (still) bind to this version of a Subscription. */
  private bindable(resource: Resource | undefined): boolean {
    const spec = this.readSubscriptionSafely(resource);
    return spec?.channel.type === 'websocket' && LIVE_STATUSES.has(spec.status);
  }

  private readSubscriptionSafely(resource: Resource | undefined): SubscriptionSpec | undefined {
    if (!resource) return undefined;
    try {
      return this.deps.adapter.subscriptions.readSubscription(resource);
    } catch {
      return undefined;
    }
  }

  /** Topic and Subscription writes update the registry once committed. */
  private watchOwnTypes(tx: Transaction, change: ResourceChange): void {
    if (change.type === this.deps.adapter.subscriptions.topicResourceType) {
      const before = change.previous && this.readTopicSafely(change.previous);
      const after = change.current && this.readTopicSafely(change.current);
      tx.onCommit(() => {
        if (before && before.url !== after?.url) this.registry.removeTopic(before.url);
        if (after) this.registry.putTopic(after);
        if (after) this.topicUrls.set(change.id, after.url);
        else this.topicUrls.delete(change.id);
      });
    } else if (change.type === 'Subscription') {
      tx.onCommit(() => this.applySubscription(change.id, change.current));
    }
  }

  /** Registers the stored Subscription (or forgets it when deleted or unusable). */
  private applySubscription(id: string, resource: Resource | undefined): void {
    let sub: ActiveSubscription | undefined;
    if (resource) {
      try {
        const spec = this.deps.adapter.subscriptions.readSubscription(resource);
        sub = this.registry.compileSubscription(id, spec, this.topicOf(spec, id));
        if (spec.classicCriteria !== undefined) this.registry.putTopic(classicTopic(spec.classicCriteria, id));
      } catch {
        sub = undefined;
      }
    }
    if (sub) this.registry.putSubscription(sub);
    else this.registry.removeSubscription(id);
    const owner = this.ownerIdOf(id);
    if (owner !== undefined) {
      let ids = this.liveByOwner.get(owner);
      if (!ids) this.liveByOwner.set(owner, (ids = new Set()));
      if (resource) ids.add(id);
      else ids.delete(id);
    }
    this.scheduleEnd(id, sub);
    for (const n of this.notifiers) n.subscriptionChanged(id, sub);
  }

  private scheduleEnd(id: string, sub: ActiveSubscription | undefined): void {
    clearTimeout(this.endTimers.get(id));
    this.endTimers.delete(id);
    if (!sub || sub.endsAt === undefined || sub.status === 'off' || sub.status === 'entered-in-error') return;
    // setTimeout takes at most ~24.8 days; a later end is re-armed when the timer fires.
    const delay = Math.min(Math.max(sub.endsAt - this.now().getTime(), 0), 2 ** 31 - 1);
    const timer = setTimeout(() => {
      this.endTimers.delete(id);
      if (sub.endsAt! > this.now().getTime()) return this.scheduleEnd(id, this.registry.subscription(id));
      void this.setStatus(id, 'off', 'the subscription end has passed').catch(() => undefined);
    }, delay);
    timer.unref();
    this.endTimers.set(id, timer);
  }

  /** Stops the end timers (at shutdown). */
  stop(): void {
    for (const t of this.endTimers.values()) clearTimeout(t);
    this.endTimers.clear();
  }

  /**
   * Server-side status change (handshake done, delivery failing, recovered, end passed): a new
   * version of the Subscription with the status and (R4/R4B) `error`, matched like any change, so
   * that the stored resource says what `$status` says. A call that changes neither writes nothing,
   * so a delivery retrying with the same error adds no versions. A status change is logged.
   */
  async setStatus(id: string, status: SubscriptionStatusCode, error?: string): Promise<void> {
    const subscriptions = this.deps.adapter.subscriptions;
    const from = await this.deps.store.transaction(async (tx) => {
      const current = await tx.read(this.deps.version, 'Subscription', id);
      if (!current || current.deleted) return undefined;
      const resource = JSON.parse(current.json!) as Resource;
      // A subscription its owner set off (or entered-in-error) meanwhile stays so: a delivery
      // that was already in flight must not bring it back as `error` or `active`.
      const stored = this.readSubscriptionSafely(resource)?.status;
      if (stored === 'off' || stored === 'entered-in-error') return undefined;
      const next = subscriptions.withState(resource, { status, ...(error ? { error } : {}) });
      if (JSON.stringify(next) === current.json) return undefined;
      await this.writeVersion(tx, 'Subscription', id, next, current, 'PUT');
      return this.readSubscriptionSafely(resource)?.status;
    });
    if (from !== undefined && from !== status) {
      this.deps.log.info({ subscription: id, from, to: status, ...(error ? { reason: error } : {}) }, 'subscription status changed');
    }
  }

  /** The search index rows stored with a version of `resource` (and rebuilt from it: store/reindex.ts). */
  indexRows(resource: Resource): IndexRows {
    const index = extractIndex(this.deps.search, resource, { baseUrl: this.deps.baseUrl });
    // Patient-context searches find a resource by the compartment it belongs to (one row each).
    index.reference.push(...this.deps.compartments.rows(resource, index));
    return index;
  }

  /**
   * Writes the next version of a resource (`undefined`: a deletion) after `current`, with its
   * search index, and records the events it causes: the one place a version is made, for client
   * writes (interactions/crud.ts) and server status changes (setStatus) alike.
   */
  async writeVersion(
    tx: Transaction,
    type: string,
    id: string,
    resource: Resource | undefined,
    current: StoredVersion | undefined,
    method: WriteMethod,
    principal?: Principal,
  ): Promise<WrittenVersion> {
    const live = current && !current.deleted ? current : undefined;
    const versionId = (current?.versionId ?? 0) + 1;
    const lastUpdated = this.now().toISOString();
    const previous = live ? { previousJson: live.json! } : {};
    if (!resource) {
      await tx.write(this.deps.version, { type, id, versionId, lastUpdated, method });
      await this.record(tx, { type, id, versionId, interaction: 'delete', ...previous, timestamp: lastUpdated }, principal);
      return { versionId, lastUpdated, created: false };
    }
    const stored = stamp(resource, id, versionId, lastUpdated);
    const json = stringifyJson(stored);
    const index = this.indexRows(stored);
    await tx.write(this.deps.version, { type, id, versionId, lastUpdated, method, json, index });
    await this.record(tx, { type, id, versionId, interaction: live ? 'update' : 'create', current: stored, json, ...previous, timestamp: lastUpdated }, principal);
    return { versionId, lastUpdated, stored, json, created: !live };
  }
}

/** An R4 criteria-based subscription runs as a topic of its own: creates and updates that match. */
export function classicTopic(criteria: string, id: string): Topic {
  const type = criteria.split('?')[0]!;
  return {
    url: classicTopicUrl(id),
    status: 'active',
    resourceTriggers: [{ resource: type, supportedInteraction: ['create', 'update'], queryCriteria: { current: criteria } }],
    canFilterBy: [],
    notificationShape: [],
  };
}
