import type { FhirVersion } from '../fhir/types.ts';
import type { IndexRows, SearchRequest } from '../search/types.ts';

/**
 * Persistence behind one small interface. The store knows resources only as JSON text plus the
 * few columns it needs (type, id, version, time); FHIR rules live above it. Every method is
 * partitioned by FHIR version: the three bases share a store but never each other's data.
 *
 * Implementations must pass `store.contract.ts` unchanged.
 */

/** How a version came to be; it drives `Bundle.entry.request` in history. */
export type WriteMethod = 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One stored version of a resource. `json` is absent for a deletion. */
export interface StoredVersion {
  type: string;
  id: string;
  versionId: number;
  /** ISO 8601 instant, as in meta.lastUpdated. */
  lastUpdated: string;
  method: WriteMethod;
  deleted: boolean;
  json?: string;
  /** In history only: a PUT that made the resource again after its deletion. */
  recreated?: boolean;
}

export interface NewVersion {
  type: string;
  id: string;
  versionId: number;
  lastUpdated: string;
  method: WriteMethod;
  /** The resource as JSON text, meta already set; absent for a deletion. */
  json?: string;
  /** Search index rows of this version; they replace those of the previous version. */
  index?: IndexRows;
}

export interface HistoryQuery {
  type?: string;
  id?: string;
  /** Only versions with lastUpdated >= since (ISO instant). */
  since?: string;
  /** Page size. */
  count: number;
  /** Paging cursor from a previous page: only versions older than this position. */
  before?: number;
}

export interface HistoryPage {
  versions: StoredVersion[];
  /** Cursor for the next (older) page, when there may be one. */
  next?: number;
  /** Number of versions matching the query (ignoring paging). */
  total: number;
}

/**
 * Where a page of search results starts: after (next) or before (previous) the row whose sort key
 * values are `keys`. Opaque to clients; encoded into paging links.
 */
export interface SearchCursor {
  direction: 'next' | 'previous';
  keys: (string | number)[];
}

/** How far `_include:iterate` / `_revinclude:iterate` follow references, and how many resources they add to a page. */
export const INCLUDE_LIMITS = { iterations: 4, resources: 1000 } as const;

export interface SearchPage {
  /** The matches of this page, in sort order. */
  matches: StoredVersion[];
  /** Resources added by _include / _revinclude (current versions, no duplicates of matches). */
  included: StoredVersion[];
  /** Set when _include / _revinclude left references unfollowed (the bounds in search-run.ts). */
  includedCut?: true;
  /** Number of matches in all pages, unless the request said _total=none. */
  total?: number;
  next?: SearchCursor;
  previous?: SearchCursor;
}

/** One event of a subscription's durable log (REQUIREMENTS D-18, EN-1..EN-3). */
export interface StoredEvent {
  subscription: string;
  number: number;
  timestamp: string;
  focus: { type: string; id: string; versionId: number };
  interaction: 'create' | 'update' | 'delete';
}

export type NewEvent = Omit<StoredEvent, 'number'>;

/** Where a reader of a subscription's log stands: it wants the events numbered above `after`. */
export interface EventCursor {
  subscription: string;
  after: number;
}

/** Where delivery of a subscription stands: everything up to `deliveredThrough` has been sent. */
export interface DeliveryState {
  deliveredThrough: number;
  attempts: number;
  failingSince?: string;
  lastError?: string;
  /** ISO instant when the events through `deliveredThrough` had been delivered (the latest success). */
  deliveredAt?: string;
  /** ISO instant when a failing delivery is tried again (absent when nothing is scheduled). */
  nextAttemptAt?: string;
}

/** A websocket binding token as stored: never the token itself, only its hash (D-2). */
export interface BindingToken {
  hash: string;
  fv: FhirVersion;
  owner: string;
  subscriptions: string[];
  /** ISO instant. */
  expiresAt: string;
  revoked: boolean;
}

/**
 * Who created a Subscription, with the scopes and patient context of the creating token: what its
 * notifications may carry is judged with them (REQUIREMENTS D-22). Kept after the Subscription is
 * deleted, so that its history stays its owner's.
 */
export interface SubscriptionOwner {
  subscription: string;
  owner: string;
  scope: string;
  patient?: string;
}

/**
 * What the search index was built with: this Herald's extraction (INDEX_GENERATION in
 * search/extract.ts) and the base URL that absolute references into the server were indexed
 * against. A stored index built otherwise is rebuilt (store/reindex.ts).
 */
export interface IndexBuild {
  generation: number;
  base: string;
}

/** Where the search index of one FHIR version stands (store/reindex.ts). */
export interface IndexState {
  /** What every current version's rows were last built with (absent: never recorded). */
  built?: IndexBuild;
  /**
   * A rebuild under way: what it builds, the last resource done in (type, id) order, and whether
   * it extracts every body (`full`; else only those naming either base: store/reindex.ts).
   */
  building?: IndexBuild & { after?: ResourceKey; full?: true };
}

/** The index rows a rebuild made for one version of a resource (Transaction.replaceIndex). */
export interface IndexReplacement {
  type: string;
  id: string;
  versionId: number;
  index: IndexRows;
}

export interface ResourceKey {
  type: string;
  id: string;
}

/** Reads, available both on the store and inside a transaction. */
export interface StoreReader {
  /** The latest version (possibly a deletion), or undefined if the resource never existed. */
  read(fv: FhirVersion, type: string, id: string): Promise<StoredVersion | undefined>;
  vread(fv: FhirVersion, type: string, id: string, versionId: number): Promise<StoredVersion | undefined>;
  /** One page of a FHIR search over current, live resources (see search/types.ts). */
  search(fv: FhirVersion, request: SearchRequest, cursor?: SearchCursor): Promise<SearchPage>;
  /** Events of a subscription with from <= number <= to, in order, at most `limit`. */
  events(fv: FhirVersion, subscription: string, from: number, to: number, limit: number): Promise<StoredEvent[]>;
  /** The highest event number of a subscription so far (0 if none), and the lowest still kept. */
  eventRange(fv: FhirVersion, subscription: string): Promise<{ last: number; first: number | undefined }>;
  deliveryState(fv: FhirVersion, subscription: string): Promise<DeliveryState>;
  bindingToken(hash: string): Promise<BindingToken | undefined>;
  /** Every recorded Subscription owner of a version, in subscription id order (or that of one subscription). */
  subscriptionOwners(fv: FhirVersion, subscription?: string): Promise<SubscriptionOwner[]>;
}

export interface Transaction extends StoreReader {
  /** Append a version; the caller has checked versionId = previous + 1. */
  write(fv: FhirVersion, version: NewVersion): Promise<void>;
  /**
   * Append events to their subscriptions' logs, each numbered next in its subscription's
   * sequence (from 1, no gaps, never reused) where the write is applied, in the order appended.
   * Returns nothing, so a store may number them without a round trip mid-transaction: the
   * numbers are read back from the log (`events`, `eventRange`) once committed.
   */
  appendEvents(fv: FhirVersion, events: NewEvent[]): Promise<void>;
  setDeliveryState(fv: FhirVersion, subscription: string, state: DeliveryState): Promise<void>;
  putBindingToken(token: BindingToken): Promise<void>;
  /** Revokes one token (a no-op for an unknown hash). */
  revokeBindingToken(hash: string): Promise<void>;
  /** Revokes every token covering the subscription; returns their hashes. */
  revokeBindingTokens(fv: FhirVersion, subscription: string): Promise<string[]>;
  /** Records (or replaces) the owner of a Subscription. */
  putSubscriptionOwner(fv: FhirVersion, owner: SubscriptionOwner): Promise<void>;
  /**
   * Replaces the search index rows of resources, rebuilt from their stored bodies: each one's only
   * if its `versionId` is still its current, live version (else nothing: the write that came since
   * indexed it itself). Writes no version: history, events and lastUpdated stay as they are.
   */
  replaceIndex(fv: FhirVersion, entries: IndexReplacement[]): Promise<void>;
  indexState(fv: FhirVersion): Promise<IndexState>;
  setIndexState(fv: FhirVersion, state: IndexState): Promise<void>;
  /** Run `fn` once this transaction has committed (never if it rolls back). */
  onCommit(fn: () => void): void;
  /**
   * Optional, once committed (in an onCommit function): the events of one appendEvents call (the
   * same array), numbered, when the store has the numbers at hand without a read (SQLite's writer
   * returns them with the commit). Undefined otherwise: read them from the log.
   */
  numbered?(events: NewEvent[]): StoredEvent[] | undefined;
}

/**
 * What a commit made elsewhere (another process on the same database) touched: the subscriptions
 * it appended events to, and the resources it wrote of the types other processes follow
 * (FOLLOWED_TYPES: Subscriptions and topics). A commit with neither is not announced. `'all'` when
 * the store cannot say (a wake-up may have been lost, or there was too much to tell): the listener
 * then looks at everything.
 */
/** The resource types whose writes other processes follow (Subscription, and topics: R4B/R5 SubscriptionTopic, R4 Basic). */
export const FOLLOWED_TYPES: ReadonlySet<string> = new Set(['Subscription', 'SubscriptionTopic', 'Basic']);

export interface RemoteCommit {
  fv: FhirVersion;
  subscriptions: string[] | 'all';
  resources: { type: string; id: string }[] | 'all';
  /** Subscriptions whose delivery lease the other process has just given up (releaseDeliveries). */
  released?: string[];
}

/** The answer to a claim on a subscription's delivery lease (Store.claimDelivery). */
export interface DeliveryClaim {
  outcome: 'acquired' | 'renewed' | 'refused';
  /** How long the lease lasts from now unless renewed (the holder's, when refused). */
  expiresInMs: number;
}

export interface Store extends StoreReader {
  readonly kind: string;
  /**
   * Stores shared by several processes (PostgreSQL) tell of commits made by the others, after
   * they committed; a store only one process uses (SQLite) has none to tell. Settles once the
   * store hears them: what was committed before may not be told, so read the state after that.
   */
  onRemoteCommit?(listener: (commit: RemoteCommit) => void): Promise<void>;
  /**
   * Stores shared by several processes: claims (or renews) this process's lease on delivering a
   * subscription's events, for `leaseMs`. 'acquired': the lease is newly this process's (another
   * may have delivered meanwhile: re-read the cursor); 'renewed': it held the lease without a
   * break; 'refused': another process holds an unexpired lease, for `expiresInMs` more unless
   * renewed. A store without it has one process. The other lease methods come with it.
   */
  claimDelivery?(fv: FhirVersion, subscription: string, leaseMs: number): Promise<DeliveryClaim>;
  /**
   * Renews, in one statement, this process's leases on these subscriptions for `leaseMs`; returns
   * those it still held (a lease nobody else took is still held, even past its expiry).
   */
  renewDeliveries?(fv: FhirVersion, subscriptions: string[], leaseMs: number): Promise<string[]>;
  /**
   * Gives up this process's leases on these subscriptions (a clean stop, a subscription gone off)
   * and tells the other processes at once (RemoteCommit.released), so one of them takes over.
   */
  releaseDeliveries?(fv: FhirVersion, subscriptions: string[]): Promise<void>;
  /**
   * In one statement: of these subscriptions, those whose lease another process holds unexpired,
   * with the milliseconds left (absent: free, expired or this process's). Lets a waiting process
   * look at many leases at once instead of claiming each.
   */
  deliveryLeasesHeld?(fv: FhirVersion, subscriptions: string[]): Promise<Map<string, number>>;
  /**
   * The delivery state written only if this process holds the subscription's lease (fencing: a
   * process that lost it can neither move the cursor nor record a failure); false if it does not.
   */
  setLeasedDeliveryState?(fv: FhirVersion, subscription: string, state: DeliveryState): Promise<boolean>;
  /**
   * Stores shared by several processes: the value kept under `name`, storing `candidate` first
   * when there is none. The first candidate stored wins and every process, now or after a
   * restart, gets that one (the embedded auth issuer's signing key: a token minted by one node
   * verifies on every node). A store without it has one process, which keeps its own.
   */
  sharedSecret?(name: string, candidate: string): Promise<string>;
  /**
   * Run `fn` in one atomic transaction. Either all its writes commit, durably, before the returned
   * promise resolves, or none do and the promise rejects with fn's error. `fn` must do only store
   * work and computation (no network waits): the store may batch several transactions into one commit.
   */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  history(fv: FhirVersion, query: HistoryQuery): Promise<HistoryPage>;
  /**
   * The current, live versions after `after` in (type, id) order (code-point order of each), at
   * most `limit`: how a rebuild of the index walks every resource of a FHIR version.
   */
  currentVersions(fv: FhirVersion, after: ResourceKey | undefined, limit: number): Promise<StoredVersion[]>;
  /** Where the search index stands (committed data; a transaction reads its own with Transaction.indexState). */
  indexState(fv: FhirVersion): Promise<IndexState>;
  /**
   * Drop events older than `before` (ISO instant) from every log, and, when `keepPerSubscription`
   * is given, each subscription's events beyond its newest that many; and expired tokens. Returns
   * how many events were dropped. Counters stay: numbers are never reused.
   */
  pruneEvents(before: string, keepPerSubscription?: number): Promise<number>;
  /**
   * Optional (a store without it is read per subscription with `events`): the events above each
   * cursor, grouped by cursor in the order given, each subscription's in number order, at most
   * `limit` in all (the last cursors' events are the ones cut). One read serves every subscription
   * a commit woke (issue 15).
   */
  eventsAfter?(fv: FhirVersion, cursors: EventCursor[], limit: number): Promise<StoredEvent[]>;
  /** Why the store cannot take writes any more (its writer died, or it was closed); undefined while it can. */
  failure(): string | undefined;
  close(): Promise<void>;
}

/** The search index rebuilt in the background when it was built otherwise (reindex.ts). */
export { type RebuildOptions, type RebuildOutcome, keepRebuilding, rebuildIndex } from './reindex.ts';
