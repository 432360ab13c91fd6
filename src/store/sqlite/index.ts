import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { NewEvent, Store, StoredEvent, Transaction } from '../store.ts';
import { FhirError } from '../../fhir/errors.ts';
import { type Reads, createReads } from './connection.ts';
import { lockDatabase } from './lock.ts';
import { type Call, type CallName, type FromThread, type Op, type ToThread, asTransient, fromWire, packEvents } from './protocol.ts';
import { ReadPool, startTsWorker, tooCostly } from './read-pool.ts';
import { runSafely } from '../run-safely.ts';

const READS = ['read', 'vread', 'search', 'events', 'eventRange', 'eventsAfter', 'deliveryState', 'bindingToken', 'subscriptionOwners', 'history', 'indexState', 'currentVersions'] as const satisfies readonly (keyof Reads)[];
/** Reads whose cost the client decides (any query, any size of result): never on the event loop. */
const COSTLY = new Set<keyof Reads>(['search', 'history', 'currentVersions']);

export interface SqliteOptions {
  /** A file path, or ':memory:'. */
  path: string;
  /** Called with the writer thread once it is up (tests use it to see what a dead writer does). */
  onWriter?: (worker: Worker) => void;
  /** The clock (default: the system's): `ap` date searches and event retention are measured from it. */
  now?: () => Date;
  /** Threads for searches and history (read-pool.ts); default 2. */
  readThreads?: number;
  /** Deadline of a search or history read, in ms (see read-pool.ts); default 10,000. */
  readTimeoutMs?: number;
}

/**
 * The embedded default store: better-sqlite3 in WAL mode, its writes on a thread of their own.
 *
 * The writer thread (thread.ts) owns the one read-write connection and commits transactions in
 * groups, acknowledging each only once its commit has been fsynced (writer.ts). Transaction
 * functions still run here, on the event loop, one at a time in arrival order: their writes are
 * shipped to the thread and applied there while the event loop moves on to the next request, and
 * their reads are answered by the thread, so they see every earlier transaction's writes. Reads
 * outside transactions see only committed data (WAL): searches and history, whose cost the client
 * decides, run on a pool of read threads with a deadline (read-pool.ts); the cheap reads by key use
 * a read-only connection of this thread. (A ':memory:' database cannot be shared between
 * connections, so there the writer thread answers those reads too: a search past its deadline
 * still fails at once, but the writer finishes it before it writes again.) A file database is held
 * exclusively (lock.ts): a second process opening it fails with the holder's pid.
 */
export async function openSqliteStore(options: SqliteOptions): Promise<Store> {
  const memory = options.path === ':memory:';
  if (!memory) mkdirSync(dirname(options.path), { recursive: true });
  const lock = memory ? undefined : lockDatabase(options.path);
  let link: WriterLink;
  try {
    link = await WriterLink.start(options.path);
  } catch (err) {
    lock?.release();
    throw err;
  }
  options.onWriter?.(link.worker);
  const timeoutMs = options.readTimeoutMs ?? 10_000;
  const readDb = memory ? undefined : new Database(options.path, { readonly: true });
  readDb?.pragma('busy_timeout = 5000');
  const local = readDb ? createReads(readDb) : undefined;
  const now = options.now ?? (() => new Date());
  // A search is evaluated at the store's clock, handed over as data since a thread may run it.
  const clocked = (name: CallName, args: unknown[]) => (name === 'search' ? [args[0], args[1], args[2], now().getTime()] : args);
  const pool = memory ? undefined : new ReadPool({ path: options.path, size: options.readThreads ?? 2, timeoutMs });
  const reads: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const name of READS) {
    reads[name] = async (...args) => {
      // A search waits at most `timeoutMs` before it runs: for the index and a read thread together.
      let waitMs = timeoutMs;
      if (name === 'search' && pool) {
        // Every write acknowledged so far is searchable once its index rows are in (deferred-index.ts).
        // A writer that cannot move them (a full disk) makes the search a 503, like the writes.
        const since = performance.now();
        const behind = link.indexed(timeoutMs, indexBehind);
        if (behind) await behind;
        waitMs -= performance.now() - since;
      }
      if (COSTLY.has(name)) return pool ? pool.run(name, clocked(name, args), waitMs) : withDeadline(link.call(name, clocked(name, args)), timeoutMs, (ms) => tooCostly(name, ms));
      if (!local) return link.call(name, clocked(name, args));
      try {
        return (local[name] as (...a: unknown[]) => unknown)(...clocked(name, args));
      } catch (err) {
        throw asTransient(err as Error) ?? err;
      }
    };
  }

  // Transaction functions run one at a time, in the order they were asked for.
  let tail: Promise<void> = Promise.resolve();
  async function transaction<T>(fn: (tx: RemoteTransaction) => Promise<T>): Promise<T> {
    const before = tail;
    let next!: () => void;
    tail = new Promise<void>((resolve) => (next = resolve));
    await before;
    const tx = remoteTransaction(link, clocked);
    let value: T;
    try {
      link.assertOpen();
      value = await fn(tx);
    } catch (err) {
      tx.abort();
      next();
      throw err;
    }
    const done = tx.end();
    next();
    await done;
    for (const hook of tx.hooks) runSafely(hook);
    return value;
  }

  return {
    kind: 'sqlite',
    ...(reads as unknown as Omit<Store, 'kind' | 'transaction' | 'failure' | 'pruneEvents' | 'close'>),
    transaction,
    failure: () => link.failure(),
    pruneEvents: (before, keep) => transaction((tx) => tx.call<number>('prune', [before, now().toISOString(), ...(keep !== undefined ? [keep] : [])])),
    async close() {
      await tail;
      await pool?.close();
      readDb?.close();
      await link.close();
      lock?.release();
    },
  };
}

/** A transaction as the event loop sees it: writes buffered for the thread, the rest asked of it. */
interface RemoteTransaction extends Transaction {
  /** Ask the thread (sending the buffered writes first); answers once the thread has replied. */
  call<T>(name: CallName, args: unknown[]): Promise<T>;
  /** Commits with the thread's next group; resolves once that group is on disk (then `numbered` answers). */
  end(): Promise<void>;
  /** Rolls the job back on the thread, if the thread has heard of it. */
  abort(): void;
  readonly hooks: (() => void)[];
}

/** Transaction methods the thread answers (every read, and the writes that return something). */
const CALLS: readonly CallName[] = [...READS.filter((name) => name !== 'history' && name !== 'currentVersions'), 'revokeBindingTokens'];
/** Transaction methods that return nothing: buffered until the job's next message. */
const OPS = ['write', 'appendEvents', 'setDeliveryState', 'putBindingToken', 'revokeBindingToken', 'putSubscriptionOwner', 'replaceIndex', 'setIndexState'] as const satisfies readonly Op['name'][];

function remoteTransaction(link: WriterLink, clocked: (name: CallName, args: unknown[]) => unknown[]): RemoteTransaction {
  const job = link.nextJob();
  let ops: Op[] = [];
  // Once the thread has heard of this job it holds a savepoint open for it, until end or abort.
  let started = false;
  const hooks: (() => void)[] = [];
  // Each appendEvents call's events, to be numbered when the job is done (Transaction.numbered).
  const appended: NewEvent[][] = [];
  const numbered = new Map<NewEvent[], StoredEvent[]>();
  const call = <T>(name: CallName, args: unknown[]): Promise<T> => {
    started = true;
    const sent = ops;
    ops = [];
    return link.step<T>(job, sent, name, args);
  };
  const methods: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const name of CALLS) methods[name] = (...args) => call(name, clocked(name, args));
  for (const name of OPS) {
    methods[name] =
      name === 'appendEvents'
        ? async (fv, events) => {
            appended.push(events as NewEvent[]);
            ops.push({ name: 'appendPacked', args: [fv, packEvents(events as NewEvent[])] });
          }
        : async (...args) => {
            ops.push({ name, args });
          };
  }
  return {
    ...(methods as unknown as Omit<Transaction, 'onCommit'>),
    hooks,
    call,
    onCommit: (fn) => hooks.push(fn),
    numbered: (events) => numbered.get(events),
    end: async () => {
      started = true;
      const numbers = await link.end(job, ops);
      if (!numbers) return;
      let i = 0;
      for (const list of appended) numbered.set(list, list.map(({ subscription, timestamp, focus, interaction }) => ({ subscription, number: numbers[i++]!, timestamp, focus, interaction })));
    },
    abort: () => {
      if (started) link.abort(job);
    },
  };
}

interface Waiter {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** The event loop's end of the conversation with the writer thread (protocol.ts). */
class WriterLink {
  readonly #worker: Worker;
  get worker(): Worker {
    return this.#worker;
  }
  readonly #replies = new Map<number, Waiter>();
  readonly #dones = new Map<number, Waiter>();
  #lastJob = 0;
  #lastCall = 0;
  /** Set when the thread has died or been closed: nothing more can be written. */
  #broken: Error | undefined;
  #closed: Promise<void> | undefined;

  private constructor(worker: Worker) {
    this.#worker = worker;
  }

  static start(path: string): Promise<WriterLink> {
    const worker = startTsWorker(new URL('./thread.ts', import.meta.url), { path });
    const link = new WriterLink(worker);
    return new Promise((resolve, reject) => {
      const early = (err: Error) => reject(err);
      const exited = (code: number) => reject(new Error(`the store's writer thread exited with ${code} while starting`));
      worker.once('error', early);
      worker.once('exit', exited);
      worker.once('message', (m: FromThread) => {
        worker.off('error', early);
        worker.off('exit', exited);
        if (m.t === 'failed') {
          const { code, message } = m.error;
          const hint = code && /READONLY|CANTOPEN|PERM|IOERR/.test(code) ? ': is its file or file system read-only?' : '';
          reject(new Error(`cannot open the database ${path} for writing (${code ? `${code}: ` : ''}${message})${hint}`));
          return;
        }
        link.#listen();
        resolve(link);
      });
    });
  }

  #listen(): void {
    this.#worker.on('message', (m: FromThread) => {
      if (m.t === 'reply') settle(this.#replies, m.id, m.error ? fromWire(m.error) : undefined, m.value);
      else if (m.t === 'indexed') this.#noteIndexed(m.indexed);
      else if (m.t === 'done') {
        this.#group = Math.max(this.#group, m.group);
        this.#noteIndexed(m.indexed);
        for (const d of m.jobs) {
          const error = d.error ? fromWire(d.error) : undefined;
          // A commit that failed for want of disk (or the like) makes the store unhealthy until one succeeds.
          if (error instanceof FhirError && error.status === 503) this.#degraded = error.message;
          else if (!error) this.#degraded = undefined;
          settle(this.#dones, d.job, error, d.numbers);
        }
      }
    });
    // A store that cannot write is a 503 for the client (and for /healthz), not an internal error.
    const unavailable = (why: string) => new FhirError(503, 'transient', why);
    this.#worker.on('error', (err) => this.#fail(unavailable(`the store's writer thread failed: ${err.message}`)));
    this.#worker.on('exit', (code) =>
      this.#fail(unavailable(this.#closed ? 'the store has been closed' : `the store's writer thread stopped unexpectedly (exit code ${code})`)),
    );
  }

  #fail(err: Error): void {
    this.#broken ??= err;
    for (const w of [...this.#replies.values(), ...this.#dones.values(), ...this.#behind.map((b) => b.waiter)]) w.reject(err);
    this.#replies.clear();
    this.#dones.clear();
    this.#behind = [];
  }

  /** Groups committed, as the thread has told; the last of them whose index rows are all in. */
  #group = 0;
  #indexed = 0;
  /** Searches waiting for the index to reach the groups committed when they came. */
  #behind: { group: number; waiter: Waiter }[] = [];

  #noteIndexed(indexed: number): void {
    if (indexed <= this.#indexed) return;
    this.#indexed = indexed;
    if (this.#behind.length === 0) return;
    const still = [];
    for (const b of this.#behind) {
      if (b.group <= indexed) b.waiter.resolve(undefined);
      else still.push(b);
    }
    this.#behind = still;
  }

  /**
   * Undefined when every group committed so far has its index rows in the index; otherwise asks
   * the writer to move them (unless a search waiting already has) and resolves once it has (at
   * once if it is idle, else before its next group), or fails with `late(ms)` after `ms`. A search
   * that gives up stops waiting here, so the next one asks again (a move that failed is otherwise
   * only retried on the writer's back-off, up to a second later).
   */
  indexed(ms: number, late: (ms: number) => Error): Promise<void> | undefined {
    if (this.#indexed >= this.#group) return undefined;
    if (this.#broken) return Promise.reject(this.#broken);
    if (this.#behind.length === 0) this.#send({ t: 'index' });
    return new Promise<void>((resolve, reject) => {
      const entry = {
        group: this.#group,
        waiter: {
          resolve: (v: unknown) => (clearTimeout(timer), resolve(v as undefined)),
          reject: (e: unknown) => (clearTimeout(timer), reject(e)),
        },
      };
      const timer = setTimeout(() => {
        this.#behind = this.#behind.filter((b) => b !== entry);
        reject(late(ms));
      }, ms);
      this.#behind.push(entry);
    });
  }

  /** Set while the last write failed for a transient cause (disk full, I/O error); cleared by a success. */
  #degraded: string | undefined;

  failure(): string | undefined {
    return this.#broken?.message ?? this.#degraded;
  }

  assertOpen(): void {
    if (this.#broken) throw this.#broken;
  }

  nextJob(): number {
    return ++this.#lastJob;
  }

  #send(m: ToThread): void {
    this.#worker.postMessage(m);
  }

  #await<T>(map: Map<number, Waiter>, key: number): Promise<T> {
    if (this.#broken) return Promise.reject(this.#broken);
    return new Promise<T>((resolve, reject) => map.set(key, { resolve: resolve as (v: unknown) => void, reject }));
  }

  /** A call outside any transaction. */
  call<T>(name: CallName, args: unknown[]): Promise<T> {
    const call: Call = { id: ++this.#lastCall, name, args };
    const answer = this.#await<T>(this.#replies, call.id);
    if (!this.#broken) this.#send({ t: 'call', call });
    return answer;
  }

  step<T>(job: number, ops: Op[], name: CallName, args: unknown[]): Promise<T> {
    const call: Call = { id: ++this.#lastCall, name, args };
    const answer = this.#await<T>(this.#replies, call.id);
    if (!this.#broken) this.#send({ t: 'step', job, ops, call });
    return answer;
  }

  /** Resolves once the job's group is on disk, with the numbers its appended events got. */
  end(job: number, ops: Op[]): Promise<number[] | undefined> {
    const done = this.#await<number[] | undefined>(this.#dones, job);
    if (!this.#broken) this.#send({ t: 'end', job, ops });
    return done;
  }

  abort(job: number): void {
    // Its `done` (a rejection) is of no interest: the transaction has already failed here.
    this.#dones.set(job, { resolve: () => {}, reject: () => {} });
    if (!this.#broken) this.#send({ t: 'abort', job });
  }

  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      if (this.#broken) return resolve();
      this.#worker.once('exit', () => resolve());
      this.#send({ t: 'close' });
    });
    return this.#closed;
  }
}

function settle(map: Map<number, Waiter>, key: number, error: Error | undefined, value: unknown): void {
  const w = map.get(key);
  if (!w) return;
  map.delete(key);
  if (error) w.reject(error);
  else w.resolve(value);
}

/** The caller stops waiting at the deadline; the work itself cannot be stopped. */
const indexBehind = (ms: number) =>
  new FhirError(503, 'transient', `The search index has not caught up with the writes acknowledged before this search within ${ms} ms: try again shortly`);

function withDeadline<T>(work: Promise<T>, ms: number, late: (ms: number) => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const missed = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(late(ms)), ms)));
  return Promise.race([work, missed]).finally(() => clearTimeout(timer));
}
