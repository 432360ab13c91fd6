import type { FhirVersion } from '../fhir/types.ts';

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
}

/** A token-shaped index entry (search parameter code, system, value) written with a version. */
export interface TokenIndexEntry {
  code: string;
  system?: string;
  value: string;
}

export interface NewVersion {
  type: string;
  id: string;
  versionId: number;
  lastUpdated: string;
  method: WriteMethod;
  /** The resource as JSON text, meta already set; absent for a deletion. */
  json?: string;
  /** Search index entries for this version; replace those of the previous version. */
  tokens?: TokenIndexEntry[];
}

export interface TokenQuery {
  code: string;
  /** undefined: any system; '': no system; otherwise that system. */
  system?: string;
  value: string;
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

/** Reads, available both on the store and inside a transaction. */
export interface StoreReader {
  /** The latest version (possibly a deletion), or undefined if the resource never existed. */
  read(fv: FhirVersion, type: string, id: string): Promise<StoredVersion | undefined>;
  vread(fv: FhirVersion, type: string, id: string, versionId: number): Promise<StoredVersion | undefined>;
  /** Ids of current, non-deleted resources of a type having all of the given token entries. */
  findByTokens(fv: FhirVersion, type: string, tokens: TokenQuery[], limit: number): Promise<string[]>;
}

export interface Transaction extends StoreReader {
  /** Append a version; the caller has checked versionId = previous + 1. */
  write(fv: FhirVersion, version: NewVersion): Promise<void>;
}

export interface Store extends StoreReader {
  readonly kind: string;
  /**
   * Run `fn` in one atomic transaction. Either all its writes commit, durably, before the returned
   * promise resolves, or none do and the promise rejects with fn's error. `fn` must do only store
   * work and computation (no network waits): the store may batch several transactions into one commit.
   */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  history(fv: FhirVersion, query: HistoryQuery): Promise<HistoryPage>;
  close(): Promise<void>;
}
