import type { Filter, SubscriptionSpec, SubscriptionStatusCode, Topic } from '../fhir/subscription-model.ts';
import type { FhirVersion } from '../fhir/types.ts';
import type { Matcher, RowsMemo } from '../search/match.ts';
import type { SearchRegistry } from '../search/parameters.ts';
import type { SearchParam } from '../search/types.ts';
import { CriterionFault, TopicFaults } from './matching/faults.ts';
import { compileFilters, indexKeyOf, resourceKeys } from './matching/filters.ts';
import { type CompiledTrigger, type ResourceChange, compileTrigger } from './matching/trigger.ts';

/**
 * The live statuses: a subscription in one of them receives events (numbered and logged), is
 * delivered to (or retried), and may be bound by websocket clients, with a fresh binding token
 * too. `requested`: a rest-hook one awaiting its handshake loses nothing meanwhile. `error`: the
 * counter keeps running (EN-3) and the channel recovers by itself (D-8); a websocket subscription
 * can be in `error` only by inheriting it (a failing rest-hook one switched to websocket), and a
 * client reconnecting to it must be able to bind and catch up, as its existing tokens still can.
 * `off` and `entered-in-error` end it: no events, tokens revoked (D-2, D-5).
 * The one definition for the matcher, both channels, the engine and $get-ws-binding-token.
 */
export const LIVE_STATUSES: ReadonlySet<SubscriptionStatusCode> = new Set<SubscriptionStatusCode>(['requested', 'active', 'error']);

/** The URL of the topic a classic (R4 criteria) subscription has to itself: not a topic of the server's. */
const CLASSIC = 'classic:';
export const classicTopicUrl = (id: string) => `${CLASSIC}${id}`;

/** How many recompiled matchers of filed subscriptions are kept. */
const MATCHER_CACHE = 10_000;

/** A subscription the engine can deliver to, compiled once. */
export interface ActiveSubscription {
  id: string;
  spec: SubscriptionSpec;
  /** The topic URL, or `classic:<id>` for an R4 criteria-based subscription. */
  topicUrl: string;
  status: SubscriptionStatusCode;
  /**
   * One matcher per focus type (compiled when the subscription is). The registry drops them from a
   * subscription filed by an equality filter (most of a million per-patient subscriptions) and
   * recompiles them, through a small cache, only when a change reaches it by its key.
   */
  filters: Map<string, Matcher> | undefined;
  /** Epoch ms after which the subscription is off (D-17). */
  endsAt: number | undefined;
}

/**
 * The few distinct values of a subscription's codes and names (status, channel type, MIME type,
 * filter parameter, …), shared: JSON.parse makes a fresh string of each in every Subscription.
 * Values a client can vary freely (filter values, endpoints, headers) are not kept here.
 */
const shared = new Map<string, string>();
const SHARED_MAX = 10_000;
function share<T extends string | undefined>(s: T): T {
  if (s === undefined) return s;
  const known = shared.get(s);
  if (known !== undefined) return known as T;
  if (shared.size < SHARED_MAX && s.length <= 256) shared.set(s, s);
  return s;
}

const NO_HEADERS: SubscriptionSpec['channel']['headers'] = Object.freeze([]) as unknown as SubscriptionSpec['channel']['headers'];

/**
 * Channels without an endpoint or headers (websocket ones: a million per-patient subscriptions
 * have one channel between them) are one frozen object per distinct value; others keep their own
 * (an endpoint and headers may be secrets, which must not outlive their subscription here).
 */
const sharedChannels = new Map<string, SubscriptionSpec['channel']>();
function compactChannel(c: SubscriptionSpec['channel']): SubscriptionSpec['channel'] {
  const out = { ...c, type: share(c.type), contentType: share(c.contentType), content: share(c.content), headers: c.headers.length === 0 ? NO_HEADERS : c.headers };
  if (c.endpoint !== undefined || c.headers.length > 0) return out;
  const key = JSON.stringify(out);
  const known = sharedChannels.get(key);
  if (known) return known;
  Object.freeze(out);
  if (sharedChannels.size < SHARED_MAX && key.length <= 512) sharedChannels.set(key, out);
  return out;
}

/**
 * A flat copy of a string kept for the subscription's lifetime. A value cut from a longer string
 * (a filter value from its criteria) is a slice that keeps the whole of the longer one alive, and
 * one built by `+` (an index key) keeps its parts: 90 bytes where the flat string takes 40.
 */
function own(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}

/**
 * A subscription's spec as the registry keeps it: shared codes, the topic's own URL string, flat
 * filter values. The spec and its filters are built with every member present (absent ones
 * undefined): V8 then keeps the members inside the object, where members added after it was made
 * go to a separate array (40 bytes more for each of the two, a million times over).
 */
function compactSpec(spec: SubscriptionSpec, topicUrl: string): SubscriptionSpec {
  // `satisfies EveryMember`: a member added to the spec or a filter later must be listed here, or
  // tsc fails (an optional member left out would be dropped silently).
  return {
    topic: spec.topic === topicUrl ? topicUrl : spec.topic,
    classicCriteria: spec.classicCriteria,
    status: share(spec.status),
    end: spec.end,
    filters: spec.filters.map((f) => ({
      resourceType: share(f.resourceType),
      filterParameter: share(f.filterParameter),
      comparator: share(f.comparator),
      modifier: share(f.modifier),
      value: own(f.value),
    }) satisfies EveryMember<Filter>),
    channel: compactChannel(spec.channel),
  } satisfies EveryMember<SubscriptionSpec>;
}

/** Every member of T, the optional ones too (as possibly undefined). */
type EveryMember<T> = { [K in keyof Required<T>]: T[K] };

/** The ids filed in a topic's indexes (one filed under several keys comes once per key). */
function* indexedIds(t: CompiledTopic): Iterable<string> {
  for (const index of t.indexes.values()) {
    for (const filed of index.ids.values()) {
      if (typeof filed === 'string') yield filed;
      else yield* filed;
    }
  }
}

/** Whether any subscription is filed in the topic (an index's emptied keys are deleted, the index itself stays). */
function hasFiled(t: CompiledTopic): boolean {
  if (t.unindexed.size > 0) return true;
  for (const index of t.indexes.values()) if (index.ids.size > 0) return true;
  return false;
}

interface CompiledTopic {
  topic: Topic;
  triggers: CompiledTrigger[];
  /** Subscriptions whose filters cannot be hashed, checked one by one. */
  unindexed: Set<string>;
  /** Subscriptions hashed by an equality filter: `${type}|${code}` → key → id (one) or ids. */
  indexes: Map<string, { type: string; param: SearchParam; ids: Map<string, string | Set<string>> }>;
}

/**
 * The active topics and subscriptions of one FHIR version, compiled and indexed so that a change
 * costs next to nothing for subscriptions that cannot match: topics are found by resource type,
 * a topic's triggers are tested once per change (not once per subscription), and subscriptions
 * with an equality filter on a token or reference parameter are found by hash lookup.
 */
export class SubscriptionRegistry {
  private readonly topics = new Map<string, CompiledTopic>();
  private readonly topicsByType = new Map<string, Set<string>>();
  private readonly subs = new Map<string, ActiveSubscription>();
  /**
   * Subscriptions whose topic is not registered (not yet, or no longer), by topic URL: filed when
   * it comes. The others are found through their topic's own filing when it changes, so that no
   * set of ids per topic costs every one of a million subscriptions 35 bytes.
   */
  private readonly waiting = new Map<string, Set<string>>();
  /** How many of each topic's subscriptions are live, kept as they change (a quota checked per write). */
  private readonly liveCounts = new Map<string, number>();
  private classicLive = 0;
  /** Criteria that failed on a change, by topic (D-20). */
  readonly faults: TopicFaults;
  /** Recompiled matchers of filed subscriptions, least recently used first (see ActiveSubscription.filters). */
  private readonly matcherCache = new Map<string, Map<string, Matcher>>();

  constructor(
    readonly version: FhirVersion,
    private readonly search: SearchRegistry,
    private readonly baseUrl: string,
    /** The server's clock (ms), for `ap` dates in criteria and filters. */
    private readonly now: () => number,
  ) {
    this.faults = new TopicFaults(now);
  }

  /** Compiles a topic (throws 422 if it cannot be evaluated); does not register it. */
  compileTopic(topic: Topic): CompiledTopic {
    const triggers = topic.resourceTriggers.map((t, i) => compileTrigger(t, i, this.version, this.search, this.now));
    return { topic, triggers, unindexed: new Set(), indexes: new Map() };
  }

  topic(url: string): Topic | undefined {
    return this.topics.get(url)?.topic;
  }

  allTopics(): Topic[] {
    return [...this.topics.values()].map((t) => t.topic).filter((t) => !t.url.startsWith(CLASSIC));
  }

  /** Registers (or replaces) a topic; subscriptions to it are re-filed. */
  putTopic(topic: Topic): void {
    let compiled: CompiledTopic;
    try {
      compiled = this.compileTopic(topic);
    } catch (err) {
      // A version that does not compile replaces the old one all the same: none is registered,
      // and the subscriptions wait for a version that does.
      this.removeTopic(topic.url);
      throw err;
    }
    const old = this.topics.get(topic.url);
    if (old) this.unregisterTopic(old);
    this.topics.set(topic.url, compiled);
    for (const t of topic.resourceTriggers) {
      let set = this.topicsByType.get(t.resource);
      if (!set) this.topicsByType.set(t.resource, (set = new Set()));
      set.add(topic.url);
    }
    // Its subscriptions (those filed in the version it replaces, and those that came before it)
    // are filed afresh, straight from the old filing: their matchers were compiled against another
    // version. One filed under several keys is met once per key in the old filing: only those are
    // remembered (below), so that each is filed once, its keys parsed once and not once per key.
    const waiting = this.waiting.get(topic.url);
    this.waiting.delete(topic.url);
    for (const id of waiting ?? []) this.refile(id);
    if (!old) return;
    for (const id of old.unindexed) this.refile(id);
    // Filed again under one key: not met again (its filter's values are the same, so one key is
    // one key in the old filing too). Under several, or none (no longer indexed): remembered.
    const several = new Set<string>();
    for (const id of indexedIds(old)) {
      if (several.has(id)) continue;
      if (this.refile(id) !== 1) several.add(id);
    }
  }

  /** Files a subscription afresh; how many index keys it is filed under. */
  private refile(id: string): number {
    const sub = this.subs.get(id)!;
    sub.filters = undefined;
    this.matcherCache.delete(id);
    return this.file(sub);
  }

  /** A subscription's matchers, or none when its filters do not compile against the topic (passes() then records why, D-20). */
  private compiledOrNone(topic: Topic, sub: ActiveSubscription): Map<string, Matcher> | undefined {
    try {
      return compileFilters(topic, sub.spec.filters, this.search, this.now, this.baseUrl);
    } catch {
      return undefined;
    }
  }

  removeTopic(url: string): void {
    const t = this.topics.get(url);
    if (!t) return;
    this.unregisterTopic(t);
    // Its subscriptions wait for a topic of that URL again.
    for (const id of t.unindexed) this.wait(url, id);
    for (const id of indexedIds(t)) this.wait(url, id);
  }

  private unregisterTopic(t: CompiledTopic): void {
    const url = t.topic.url;
    this.topics.delete(url);
    this.faults.clear(url);
    for (const trig of t.topic.resourceTriggers) this.topicsByType.get(trig.resource)?.delete(url);
  }

  private wait(url: string, id: string): void {
    let ids = this.waiting.get(url);
    if (!ids) this.waiting.set(url, (ids = new Set()));
    ids.add(id);
  }

  subscription(id: string): ActiveSubscription | undefined {
    return this.subs.get(id);
  }

  allSubscriptions(): ActiveSubscription[] {
    return [...this.subs.values()];
  }

  /** Compiles a subscription's filters against its topic (throws 422 if they do not compile). */
  compileSubscription(id: string, spec: SubscriptionSpec, topic: Topic): ActiveSubscription {
    const endsAt = spec.end ? Date.parse(spec.end) : undefined;
    // Every subscription object has the same shape (no optional member added or deleted later),
    // which V8 stores compactly: a registry holds up to millions of them.
    return {
      id,
      spec: compactSpec(spec, topic.url),
      topicUrl: topic.url,
      status: spec.status,
      filters: compileFilters(topic, spec.filters, this.search, this.now, this.baseUrl),
      endsAt: endsAt !== undefined && !Number.isNaN(endsAt) ? endsAt : undefined,
    };
  }

  /** Registers (or replaces) a compiled subscription. */
  putSubscription(sub: ActiveSubscription): void {
    const old = this.unregister(sub.id);
    this.subs.set(sub.id, sub);
    this.countLive(sub, 1);
    this.file(sub);
    if (old && old.topicUrl !== sub.topicUrl) this.dropOwnTopic(old);
  }

  /** Forgets a subscription, and its own topic if it was a classic one. */
  removeSubscription(id: string): void {
    const old = this.unregister(id);
    if (old) this.dropOwnTopic(old);
  }

  private unregister(id: string): ActiveSubscription | undefined {
    const sub = this.subs.get(id);
    this.matcherCache.delete(id);
    if (sub) {
      this.unfile(sub);
      this.countLive(sub, -1);
    }
    this.subs.delete(id);
    return sub;
  }

  /**
   * A classic subscription's own topic goes with it (deleted, or no longer classic): its criteria
   * would otherwise be tested on every change of its type for good.
   */
  private dropOwnTopic(old: ActiveSubscription): void {
    if (old.topicUrl === classicTopicUrl(old.id)) this.removeTopic(old.topicUrl);
  }

  /** How a topic's subscriptions are filed: index keys held, subscriptions checked one by one, and those waiting for the topic (for tests). */
  filing(url: string): { keys: number; unindexed: number; waiting: number } {
    const t = this.topics.get(url);
    let keys = 0;
    for (const index of t?.indexes.values() ?? []) keys += index.ids.size;
    return { keys, unindexed: t?.unindexed.size ?? 0, waiting: this.waiting.get(url)?.size ?? 0 };
  }

  /** How many subscriptions to this topic are live (a quota, issue 14). */
  liveOnTopic(url: string): number {
    return this.liveCounts.get(url) ?? 0;
  }

  setStatus(id: string, status: SubscriptionStatusCode): void {
    const sub = this.subs.get(id);
    if (!sub) return;
    const was = LIVE_STATUSES.has(sub.status);
    const live = LIVE_STATUSES.has(status);
    // Out of its topic's filing while not live, and filed afresh (its topic may have changed
    // meanwhile) when live again.
    if (was && !live) this.unfile(sub);
    this.countLive(sub, -1);
    sub.status = status;
    this.countLive(sub, 1);
    if (!was && live) this.refile(id);
  }

  /** Live classic subscriptions (each a topic of its own): their count is a quota too. */
  liveClassic(): number {
    return this.classicLive;
  }

  private countLive(sub: ActiveSubscription, delta: 1 | -1): void {
    if (!LIVE_STATUSES.has(sub.status)) return;
    if (sub.spec.classicCriteria !== undefined) this.classicLive += delta;
    const n = (this.liveCounts.get(sub.topicUrl) ?? 0) + delta;
    if (n === 0) this.liveCounts.delete(sub.topicUrl);
    else this.liveCounts.set(sub.topicUrl, n);
  }

  /** True when some topic has a trigger on this resource type. */
  watches(type: string): boolean {
    // A topic with nothing live filed (nobody subscribes, or only off ones: an off classic
    // subscription's own topic stays registered) watches nothing, so its type's writes cost no
    // parsing of the previous version and no recording at all.
    const urls = this.topicsByType.get(type);
    if (urls) for (const url of urls) if (hasFiled(this.topics.get(url)!)) return true;
    return false;
  }

  /**
   * The subscriptions a committed change notifies (pure: no I/O). Never throws for a criterion
   * (D-20): one that cannot be evaluated does not trigger, and is recorded against its topic, so
   * no topic can fail a write (nor the writes of topics and Subscriptions that would repair it).
   */
  match(change: ResourceChange): ActiveSubscription[] {
    const urls = this.topicsByType.get(change.type);
    if (!urls || urls.size === 0) return [];
    const focus = change.current ?? change.previous;
    const out: ActiveSubscription[] = [];
    const now = Date.parse(change.timestamp);
    // The focus's rows, extracted once for all the subscriptions that filter on the same parameters.
    const memo: RowsMemo = new Map();
    for (const url of urls) {
      const t = this.topics.get(url)!;
      // No live subscription filed (none, or only off ones: a classic one's own topic stays
      // registered while it is off): its triggers are not even tested.
      if (!hasFiled(t)) continue;
      if (!t.triggers.some((trig) => this.triggers(url, trig, change))) continue;
      for (const id of this.candidates(t, focus)) {
        const sub = this.subs.get(id);
        if (!sub || !LIVE_STATUSES.has(sub.status) || (sub.endsAt !== undefined && sub.endsAt <= now)) continue;
        if (focus && !this.passes(url, t.topic, sub, focus, memo)) continue;
        out.push(sub);
      }
    }
    return out;
  }

  private triggers(url: string, trigger: CompiledTrigger, change: ResourceChange): boolean {
    try {
      return trigger.test(change);
    } catch (err) {
      this.faults.record(url, err);
      return false;
    }
  }

  private passes(url: string, topic: Topic, sub: ActiveSubscription, focus: NonNullable<ResourceChange['current']>, memo: RowsMemo): boolean {
    if (sub.spec.filters.length === 0) return true;
    try {
      const filter = this.matchersOf(topic, sub).get(focus.resourceType);
      return !filter || filter.matches(focus, memo);
    } catch (err) {
      this.faults.record(url, new CriterionFault(`the filters of Subscription/${sub.id}`, err));
      return false;
    }
  }

  private matchersOf(topic: Topic, sub: ActiveSubscription): Map<string, Matcher> {
    if (sub.filters) return sub.filters;
    let m = this.matcherCache.get(sub.id);
    if (m) this.matcherCache.delete(sub.id);
    else m = compileFilters(topic, sub.spec.filters, this.search, this.now, this.baseUrl);
    this.matcherCache.set(sub.id, m);
    if (this.matcherCache.size > MATCHER_CACHE) this.matcherCache.delete(this.matcherCache.keys().next().value!);
    return m;
  }

  private *candidates(t: CompiledTopic, focus: ResourceChange['current']): Iterable<string> {
    yield* t.unindexed;
    if (!focus) return;
    for (const index of t.indexes.values()) {
      if (index.type !== focus.resourceType) continue;
      const seen = new Set<string>();
      for (const key of resourceKeys(this.search, focus, index.param, this.baseUrl)) {
        const ids = index.ids.get(key);
        if (typeof ids === 'string') seen.add(ids);
        else for (const id of ids ?? []) seen.add(id);
      }
      yield* seen;
    }
  }

  /**
   * Files a subscription in its topic: by the keys of an equality filter, or among those checked
   * one by one. Where it is filed is not kept (a million entries): unfile works it out again from
   * the same topic and filters.
   */
  private file(sub: ActiveSubscription): number {
    // Not live (off, entered-in-error): not filed, so that no change looks at it and no new topic
    // version files it again; any number of them cost the writes nothing (setStatus files it when
    // it is live again).
    if (!LIVE_STATUSES.has(sub.status)) {
      sub.filters = undefined; // compiled again when filed
      return 0;
    }
    // Not filed anywhere now: a new subscription, or its topic compiled afresh (putTopic).
    const t = this.topics.get(sub.topicUrl);
    if (!t) {
      this.wait(sub.topicUrl, sub.id);
      return 0;
    }
    const key = indexKeyOf(t.topic, sub.spec.filters as Filter[], this.search, this.baseUrl);
    if (!key) {
      // Checked one by one, so it holds its matchers (a new subscription comes with them).
      sub.filters ??= this.compiledOrNone(t.topic, sub);
      t.unindexed.add(sub.id);
      return 0;
    }
    const name = `${key.type}|${key.param.code}`;
    let index = t.indexes.get(name);
    if (!index) t.indexes.set(name, (index = { type: key.type, param: key.param, ids: new Map() }));
    for (const k of key.keys) {
      const ids = index.ids.get(k);
      if (ids === undefined) index.ids.set(own(k), sub.id);
      else if (ids === sub.id) continue;
      else if (typeof ids === 'string') index.ids.set(k, new Set([ids, sub.id]));
      else ids.add(sub.id);
    }
    // Reached by its key only: its matchers are recompiled on demand instead of held (set to
    // undefined, not deleted: a deleted member turns the object into a slow, larger dictionary).
    sub.filters = undefined;
    this.matcherCache.delete(sub.id);
    return key.keys.length;
  }

  /**
   * Takes a subscription out of its topic's index: its keys are those file found, as neither the
   * topic (a changed topic is compiled afresh, with empty indexes) nor the filters (a new spec is
   * a new subscription object, put after the old one is removed) can have changed in between.
   */
  private unfile(sub: ActiveSubscription): void {
    if (!LIVE_STATUSES.has(sub.status)) return; // never filed (see file)
    const t = this.topics.get(sub.topicUrl);
    if (!t) {
      const ids = this.waiting.get(sub.topicUrl);
      ids?.delete(sub.id);
      if (ids?.size === 0) this.waiting.delete(sub.topicUrl);
      return;
    }
    t.unindexed.delete(sub.id);
    if (t.indexes.size === 0) return;
    const key = indexKeyOf(t.topic, sub.spec.filters as Filter[], this.search, this.baseUrl);
    if (!key) return;
    const index = t.indexes.get(`${key.type}|${key.param.code}`);
    for (const k of key.keys) {
      const ids = index?.ids.get(k);
      if (ids === sub.id) index!.ids.delete(k);
      else if (typeof ids === 'object') {
        ids.delete(sub.id);
        if (ids.size === 1) index!.ids.set(k, ids.values().next().value!);
      }
    }
  }
}
