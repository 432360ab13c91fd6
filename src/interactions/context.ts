import type { Compartments, Principal } from '../auth/index.ts';
import type { Definitions } from '../fhir/definitions/index.ts';
import type { VersionAdapter } from '../fhir/versions/index.ts';
import type { FhirVersion, OperationOutcome, Resource } from '../fhir/types.ts';
import type { SearchRegistry } from '../search/parameters.ts';
import type { SubscriptionEngine } from '../subscriptions/index.ts';
import type { HistoryPage, HistoryQuery, Store, StoreReader, Transaction } from '../store/store.ts';

/** What one FHIR base (/fhir/R4, /fhir/R4B, /fhir/R5) needs to serve requests. Built once at start. */
export interface BaseContext {
  version: FhirVersion;
  adapter: VersionAdapter;
  defs: Definitions;
  /** The version's search parameters, shared by search and the in-memory matcher. */
  registry: SearchRegistry;
  /** Topic-based subscriptions of this base: validates their writes, records events of every write. */
  subscriptions: SubscriptionEngine;
  /** Names of the operations this base serves (without `$`), for the CapabilityStatement. */
  operations: readonly string[];
  /** Where clients bind websocket subscriptions, and how long a binding token lives (D-2, D-4). */
  websocket: { url: string; tokenTtlMs: number; revoked(hash: string): void; maxSubscriptionsPerToken: number };
  /** Absolute public URL of this base, no trailing slash, e.g. http://127.0.0.1:8080/fhir/R4. */
  baseUrl: string;
  store: Store;
  now(): Date;
  /** Largest `_count` honoured for history; larger values are clamped. */
  maxPageSize: number;
  defaultPageSize: number;
  /** The version's Patient compartment, for patient-context tokens (and its index rows). */
  compartments: Compartments;
  /** Set in auth mode: the CapabilityStatement declares a SMART-on-FHIR service (and the embedded token endpoint). */
  security?: { tokenEndpoint?: string };
  /** The caller, set per request in auth mode (undefined in open mode). */
  principal?: Principal;
}

/**
 * Where an interaction reads and writes: the store itself, or (inside a transaction Bundle) an open
 * transaction whose `transaction()` simply joins it.
 */
export interface Db extends StoreReader {
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  history(fv: FhirVersion, query: HistoryQuery): Promise<HistoryPage>;
}

export function joined(tx: Transaction, store: Store): Db {
  return {
    read: (...a) => tx.read(...a),
    vread: (...a) => tx.vread(...a),
    search: (...a) => tx.search(...a),
    events: (...a) => tx.events(...a),
    eventRange: (...a) => tx.eventRange(...a),
    deliveryState: (...a) => tx.deliveryState(...a),
    bindingToken: (...a) => tx.bindingToken(...a),
    subscriptionOwners: (...a) => tx.subscriptionOwners(...a),
    transaction: (fn) => fn(tx),
    history: (fv, q) => store.history(fv, q),
  };
}

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A FHIR REST request with the HTTP details that matter, relative to its base. */
export interface FhirRequest {
  method: Method;
  /** Path below the base without leading slash: '', 'metadata', 'Patient', 'Patient/1/_history/2'. */
  path: string;
  query: URLSearchParams;
  body?: unknown;
  /** MIME type of the body without parameters, e.g. application/fhir+json. */
  contentType?: string;
  ifMatch?: string;
  ifNoneMatch?: string;
  ifNoneExist?: string;
  /** A Bundle entry's HEAD: run as its GET, answered without the resource. */
  head?: boolean;
  /** The Prefer header (return=…, handling=strict|lenient). */
  prefer?: string;
  /**
   * Inside a transaction: the id its entry was resolved to before any entry ran (a create's new
   * id; the match or new id of a conditional update), which fullUrls were replaced by. Criteria
   * that find otherwise when the entry runs (an earlier entry wrote a match) fail the transaction.
   */
  assignedId?: string;
  /** The authenticated caller (auth mode); its scopes are enforced by the interactions. */
  principal?: Principal;
}

/** The outcome of an interaction, before HTTP. */
export interface FhirResponse {
  status: number;
  /** The body: a resource, or `json` when the stored text can be sent as it is. */
  resource?: Resource;
  json?: string;
  location?: string;
  versionId?: number;
  lastUpdated?: string;
  /** With `location` (a version written, or a conditional create's match): what `Prefer: return=OperationOutcome` answers. */
  outcome?: OperationOutcome;
}

type ReturnPreference = 'minimal' | 'representation' | 'operationoutcome';

/** `Prefer: return=…` (RFC 7240; FHIR http.html#ops), its value in lower case. */
export function preferredReturn(prefer: string | undefined): ReturnPreference | undefined {
  return /return\s*=\s*"?(minimal|representation|OperationOutcome)\b/i.exec(prefer ?? '')?.[1]!.toLowerCase() as ReturnPreference | undefined;
}
