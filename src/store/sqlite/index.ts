import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { FhirVersion } from '../../fhir/types.ts';
import type { BindingToken, DeliveryState, NewEvent, NewVersion, Store, StoredEvent, Transaction } from '../store.ts';
import { type Reads, createReads } from './connection.ts';
import { type Call, type CallName, type FromThread, type Op, type ToThread, fromWire } from './protocol.ts';

const READS = ['read', 'vread', 'search', 'events', 'eventRange', 'deliveryState', 'bindingToken', 'history'] as const satisfies readonly (keyof Reads)[];

export interface SqliteOptions {
  /** A file path, or ':memory:'. */
  path: string;
  /** Called with the writer thread once it is up (tests use it to see what a dead writer does). */
  onWriter?: (worker: Worker) => void;
}

/**
 * The embedded default store: better-sqlite3 in WAL mode, its writes on a thread of their own.
 *
 * The writer thread (thread.ts) owns the one read-write connection and commits transactions in
 * groups, acknowledging each only once its commit has been fsynced (writer.ts). Transaction
 * functions still run here, on the event loop, one at a time in arrival order: their writes are
 * shipped to the thread and applied there while the event loop moves on to the next request, and
 * their reads are answered by the thread, so they see every earlier transaction's writes. Reads
 * outside transactions use a read-only connection of this thread: in WAL mode it sees only
 * committed data. (A ':memory:' database cannot be shared between connections, so there the
 * thread answers those reads too.)
 */
export async function openSqliteStore(options: SqliteOptions): Promise<Store> {
  const memory = options.path === ':memory:';
  if (!memory) mkdirSync(dirname(options.path), { recursive: true });
  const link = await WriterLink.start(options.path);
  options.onWriter?.(link.worker);
  const readDb = memory ? undefined : new Database(options.path, { readonly: true });
  readDb?.pragma('busy_timeout = 5000');
  const local = readDb ? createReads(readDb) : undefined;
  const reads = {} as { [K in keyof Reads]: (...args: Parameters<Reads[K]>) => Promise<ReturnType<Reads[K]>> };
  for (const name of READS) {
    const fn = async (...args: unknown[]) => (local ? (local[name] as (...a: unknown[]) => unknown)(...args) : link.call(name, args));
    (reads as Record<string, unknown>)[name] = fn;
  }

  // Transaction functions run one at a time, in the order they were asked for.
  let tail: Promise<void> = Promise.resolve();
  async function transaction<T>(fn: (tx: Transaction & Remote) => Promise<T>): Promise<T> {
    const before = tail;
    let next!: () => void;
    tail = new Promise<void>((resolve) => (next = resolve));
    await before;
    const tx = new RemoteTransaction(link);
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
    ...reads,
    transaction,
    failure: () => link.failure(),
    pruneEvents: (before) => transaction((tx) => tx.call<number>('prune', [before, new Date().toISOString()])),
    async close() {
      await tail;
      readDb?.close();
      await link.close();
    },
  };
}

/** What a transaction here can do beyond the Store interface: call the thread directly. */
interface Remote {
  call<T>(name: CallName, args: unknown[]): Promise<T>;
}

/** A transaction as the event loop sees it: writes buffered for the thread, reads asked of it. */
class RemoteTransaction implements Transaction, Remote {
  readonly hooks: (() => void)[] = [];
  readonly #link: WriterLink;
  readonly #job: number;
  #ops: Op[] = [];
  /** Whether the thread has heard of this job (it then holds a savepoint open for it). */
  #started = false;

  constructor(link: WriterLink) {
    this.#link = link;
    this.#job = link.nextJob();
  }

  call<T>(name: CallName, args: unknown[]): Promise<T> {
    this.#started = true;
    const ops = this.#ops;
    this.#ops = [];
    return this.#link.step<T>(this.#job, ops, name, args);
  }

  #op(name: Op['name'], args: unknown[]): Promise<void> {
    this.#ops.push({ name, args });
    return Promise.resolve();
  }

  /** Commits with the thread's next group; resolves once that group is on disk. */
  end(): Promise<void> {
    this.#started = true;
    return this.#link.end(this.#job, this.#ops);
  }

  abort(): void {
    if (this.#started) this.#link.abort(this.#job);
  }

  read(...a: Parameters<Reads['read']>) {
    return this.call<ReturnType<Reads['read']>>('read', a);
  }
  vread(...a: Parameters<Reads['vread']>) {
    return this.call<ReturnType<Reads['vread']>>('vread', a);
  }
  search(...a: Parameters<Reads['search']>) {
    return this.call<ReturnType<Reads['search']>>('search', a);
  }
  events(...a: Parameters<Reads['events']>) {
    return this.call<ReturnType<Reads['events']>>('events', a);
  }
  eventRange(...a: Parameters<Reads['eventRange']>) {
    return this.call<ReturnType<Reads['eventRange']>>('eventRange', a);
  }
  deliveryState(...a: Parameters<Reads['deliveryState']>) {
    return this.call<ReturnType<Reads['deliveryState']>>('deliveryState', a);
  }
  bindingToken(...a: Parameters<Reads['bindingToken']>) {
    return this.call<ReturnType<Reads['bindingToken']>>('bindingToken', a);
  }
  write(fv: FhirVersion, version: NewVersion): Promise<void> {
    return this.#op('write', [fv, version]);
  }
  appendEvents(fv: FhirVersion, events: NewEvent[]): Promise<StoredEvent[]> {
    return this.call('appendEvents', [fv, events]);
  }
  setDeliveryState(fv: FhirVersion, subscription: string, state: DeliveryState): Promise<void> {
    return this.#op('setDeliveryState', [fv, subscription, state]);
  }
  putBindingToken(token: BindingToken): Promise<void> {
    return this.#op('putBindingToken', [token]);
  }
  revokeBindingTokens(fv: FhirVersion, subscription: string): Promise<string[]> {
    return this.call('revokeBindingTokens', [fv, subscription]);
  }
  onCommit(fn: () => void): void {
    this.hooks.push(fn);
  }
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
    // The thread is TypeScript like the rest of Herald: it registers tsx's loader before loading it.
    const url = new URL('./thread.ts', import.meta.url).href;
    const source = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(url)}); })`;
    const worker = new Worker(source, { eval: true, workerData: { path } });
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
          reject(fromWire(m.error));
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
      else if (m.t === 'done') settle(this.#dones, m.job, m.error ? fromWire(m.error) : undefined, undefined);
    });
    this.#worker.on('error', (err) => this.#fail(new Error(`the store's writer thread failed: ${err.message}`)));
    this.#worker.on('exit', (code) =>
      this.#fail(new Error(this.#closed ? 'the store has been closed' : `the store's writer thread stopped unexpectedly (exit code ${code})`)),
    );
  }

  #fail(err: Error): void {
    this.#broken ??= err;
    for (const w of [...this.#replies.values(), ...this.#dones.values()]) w.reject(err);
    this.#replies.clear();
    this.#dones.clear();
  }

  failure(): string | undefined {
    return this.#broken?.message;
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

  end(job: number, ops: Op[]): Promise<void> {
    const done = this.#await<void>(this.#dones, job);
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

function runSafely(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    // A failing after-commit hook must not undo the commit nor block the other writers.
    process.emitWarning(`after-commit hook failed: ${(err as Error).message}`);
  }
}
