import { FhirError } from '../../fhir/errors.ts';
import type { OperationOutcomeIssue } from '../../fhir/types.ts';
import type { NewEvent } from '../store.ts';
import type { Reads, Writes } from './connection.ts';

/**
 * Messages between the store's front (index.ts, on the event loop) and the writer thread
 * (thread.ts), which owns the only read-write connection.
 *
 * A transaction is a job. The front runs the transaction's function; its writes that return
 * nothing are buffered as ops and travel with the job's next message; anything that returns a
 * value (a read, revoking tokens) is a call, answered by a `reply`. The job
 * ends with `end` (commit it with the group) or `abort` (roll it back). Once its group has been
 * committed (and synced) the thread answers `done`. Jobs reach the thread in the order the front
 * ran them, one after another, so each one's calls see every earlier job's writes.
 */

/** Writes that return nothing: buffered on the front, applied in order by the thread. */
export type OpName =
  | 'write'
  | 'appendEvents'
  | 'appendPacked'
  | 'setDeliveryState'
  | 'putBindingToken'
  | 'revokeBindingToken'
  | 'putSubscriptionOwner'
  | 'replaceIndex'
  | 'setIndexState';
/** Everything that returns a value: answered one at a time. */
export type CallName = keyof Reads | 'revokeBindingTokens' | 'prune';

export interface Op {
  name: OpName;
  args: unknown[];
}

export interface Call {
  id: number;
  name: CallName;
  args: unknown[];
}

export type ToThread =
  | { t: 'step'; job: number; ops: Op[]; call: Call }
  | { t: 'end'; job: number; ops: Op[] }
  | { t: 'abort'; job: number }
  /** A read outside any transaction (only for ':memory:', where the front has no connection). */
  | { t: 'call'; call: Call }
  /** A search waits for the index to catch up: move the pending rows now (deferred-index.ts). */
  | { t: 'index' }
  | { t: 'close' };

export type FromThread =
  | { t: 'ready' }
  | { t: 'failed'; error: WireError }
  | { t: 'reply'; id: number; value?: unknown; error?: WireError }
  /**
   * Jobs committed (or failed), those of one group commit in one message; `numbers`: those a
   * job's appended events got, in the order appended. `group`: groups committed so far;
   * `indexed`: every group up to this one has its search index rows in the index
   * (deferred-index.ts).
   */
  | { t: 'done'; jobs: Done[]; group: number; indexed: number }
  /** More groups have their index rows in the index. */
  | { t: 'indexed'; indexed: number }
  | { t: 'closed' };

export interface Done {
  job: number;
  error?: WireError;
  numbers?: number[];
}

/** What every op and call resolves to on the thread. */
export type Target = Pick<Writes, OpName | 'revokeBindingTokens' | 'prune'> & Reads;

/** An error as it crosses the thread boundary: FHIR errors keep their status and issues. */
export interface WireError {
  message: string;
  name?: string;
  code?: string;
  status?: number;
  issues?: OperationOutcomeIssue[];
}

export function toWire(err: unknown): WireError {
  if (err instanceof FhirError) return { message: err.message, name: err.name, status: err.status, issues: err.issues };
  const e = err as { message?: unknown; name?: unknown; code?: unknown };
  return {
    message: typeof e?.message === 'string' ? e.message : String(err),
    ...(typeof e?.name === 'string' ? { name: e.name } : {}),
    ...(typeof e?.code === 'string' ? { code: e.code } : {}),
  };
}

export function fromWire(w: WireError): Error {
  if (w.status !== undefined && w.issues) return FhirError.withIssues(w.status, w.issues);
  const transient = asTransient(w);
  if (transient) return transient;
  const err = new Error(w.message) as Error & { code?: string };
  if (w.name) err.name = w.name;
  if (w.code) err.code = w.code;
  return err;
}

/**
 * SQLite result codes that say "the database cannot do this right now" rather than "this request
 * is wrong": a full disk, a read-only or failing file system, another process's lock. The client
 * gets a 503 `transient` (with Retry-After) and can try again; the writer carries on and recovers
 * by itself once the cause is gone.
 */
const TRANSIENT = /^SQLITE_(FULL|READONLY|IOERR|BUSY|LOCKED|CANTOPEN|NOMEM|PROTOCOL)/;

export function asTransient(err: { code?: unknown; message?: unknown }): FhirError | undefined {
  if (typeof err.code !== 'string' || !TRANSIENT.test(err.code)) return undefined;
  return new FhirError(503, 'transient', `The database cannot serve this right now (${err.code}: ${String(err.message)}); try again later`);
}

/**
 * Events as shipped to the writer thread: the matches of one change differ only in their
 * subscription, so each distinct rest (time, focus, interaction) travels once, with the
 * subscriptions and the index of their rest. A message of 100 matches costs a sixth as much to
 * copy across threads as 100 event objects (issue 15).
 */
export interface PackedEvents {
  subscriptions: string[];
  of: number[];
  rests: Omit<NewEvent, 'subscription'>[];
}

export function packEvents(events: NewEvent[]): PackedEvents {
  const packed: PackedEvents = { subscriptions: [], of: [], rests: [] };
  let last: Omit<NewEvent, 'subscription'> | undefined;
  for (const { subscription, ...rest } of events) {
    if (!last || !sameRest(last, rest)) packed.rests.push((last = rest));
    packed.subscriptions.push(subscription);
    packed.of.push(packed.rests.length - 1);
  }
  return packed;
}

function sameRest(a: Omit<NewEvent, 'subscription'>, b: Omit<NewEvent, 'subscription'>): boolean {
  return a.timestamp === b.timestamp && a.interaction === b.interaction && a.focus.type === b.focus.type && a.focus.id === b.focus.id && a.focus.versionId === b.focus.versionId;
}
