import { Worker } from 'node:worker_threads';
import { FhirError } from '../../fhir/errors.ts';
import type { Reads } from './connection.ts';
import { type WireError, fromWire } from './protocol.ts';

/** The reads a pool thread answers. */
export type ReadName = keyof Reads;

/** Messages between the pool (here) and one of its threads (read-thread.ts). */
export type ToReader = { id: number; name: ReadName; args: unknown[] };
export type FromReader =
  | { t: 'ready' }
  | { t: 'failed'; error: WireError }
  | { t: 'reply'; id: number; value?: unknown; error?: WireError };

export interface ReadPoolOptions {
  /** The database file (WAL): every thread opens its own read-only connection to it. */
  path: string;
  /** How many threads read at once. */
  size: number;
  /** How long a read may wait for a free thread (then 503), and then how long it may run (then 422). */
  timeoutMs: number;
  /**
   * Overrun threads still finishing their SQLite statement: live and abandoned threads together
   * never exceed `size + maxAbandoned`; at that bound an overrun thread is replaced only once an
   * abandoned one has ended (the pool runs smaller meanwhile). Default: `size`.
   */
  maxAbandoned?: number;
  /** The thread's module (tests use a slow one); default read-thread.ts. */
  thread?: URL;
}

export interface ReadPoolStats {
  /** Threads running or starting, not abandoned. */
  threads: number;
  busy: number;
  queued: number;
  /** Abandoned threads that have not ended yet. */
  abandoned: number;
  /** Threads abandoned since the pool started. */
  abandonedTotal: number;
}

interface Job {
  id: number;
  name: ReadName;
  args: unknown[];
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
  /** How long it may wait for a free thread (ms). */
  waitMs: number;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  job?: Job;
}

/**
 * Starts a worker thread on a TypeScript module: it registers tsx's loader before loading it,
 * so the thread runs the same sources as the rest of Herald.
 */
export function startTsWorker(module: URL, workerData: unknown): Worker {
  const source = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(module.href)}); })`;
  return new Worker(source, { eval: true, workerData });
}

/**
 * Reads that may cost a lot (searches, history) run on a pool of threads, each with its own
 * read-only connection, so neither the event loop nor the writer thread ever waits for them. In
 * WAL mode each connection sees only committed data.
 *
 * Every read has a deadline. One that waits longer than `timeoutMs` for a free thread fails with
 * 503 (the server is busy: try again); one that runs longer than `timeoutMs` fails with 422
 * `too-costly` at once. better-sqlite3 cannot interrupt a statement, so the overrun thread is
 * terminated and abandoned: it ends when its current SQLite call returns (and until then the
 * process cannot exit). A new thread takes its place at once, within a bound on live and
 * abandoned threads together, so a flood of costly queries cannot multiply threads.
 */
export class ReadPool {
  readonly #options: Required<ReadPoolOptions>;
  readonly #slots = new Set<Slot>();
  readonly #queue: Job[] = [];
  #lastJob = 0;
  #abandoned = 0;
  #abandonedTotal = 0;
  #closed = false;

  constructor(options: ReadPoolOptions) {
    this.#options = { maxAbandoned: options.size, thread: new URL('./read-thread.ts', import.meta.url), ...options };
  }

  /** `waitMs`: how long it may wait for a free thread, when less than `timeoutMs` (the caller has waited already). */
  run<T>(name: ReadName, args: unknown[], waitMs = this.#options.timeoutMs): Promise<T> {
    if (this.#closed) return Promise.reject(closedError());
    return new Promise<T>((resolve, reject) => {
      const job: Job = { id: ++this.#lastJob, name, args, resolve: resolve as (v: unknown) => void, reject, timer: undefined!, waitMs: Math.max(1, Math.min(waitMs, this.#options.timeoutMs)) };
      this.#queue.push(job);
      this.#waitFor(job);
      this.#dispatch();
    });
  }

  /** A queued job gives up after its `waitMs` of every thread being busy (waiting for one to start does not count). */
  #waitFor(job: Job): void {
    job.timer = setTimeout(() => {
      if ([...this.#slots].some((s) => !s.ready)) return this.#waitFor(job);
      this.#queue.splice(this.#queue.indexOf(job), 1);
      job.reject(new FhirError(503, 'transient', `No read thread became free in time (a read waits at most ${this.#options.timeoutMs} ms before it starts): the server is busy; try again later`));
    }, job.waitMs);
  }

  stats(): ReadPoolStats {
    const slots = [...this.#slots];
    return {
      threads: slots.length,
      busy: slots.filter((s) => s.job).length,
      queued: this.#queue.length,
      abandoned: this.#abandoned,
      abandonedTotal: this.#abandonedTotal,
    };
  }

  /** Fails what is queued or running, and stops the threads (abandoned ones end by themselves). */
  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) fail(job, closedError());
    const stopping: Promise<number>[] = [];
    for (const slot of this.#slots) {
      if (slot.job) fail(slot.job, closedError());
      slot.worker.unref();
      // A busy thread ends only when its statement returns: not worth waiting for.
      const stopped = slot.worker.terminate();
      if (!slot.job) stopping.push(stopped);
    }
    this.#slots.clear();
    await Promise.all(stopping);
  }

  /** Gives queued jobs to idle threads, starting threads while the pool is below its size. */
  #dispatch(): void {
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) return;
      if (slot.ready && !slot.job) this.#assign(slot, this.#queue.shift()!);
    }
    const starting = [...this.#slots].filter((s) => !s.ready).length;
    let wanted = this.#queue.length - starting;
    while (wanted-- > 0 && this.#mayStart()) this.#start();
  }

  /** Below its size, and live and abandoned threads together below `size + maxAbandoned`. */
  #mayStart(): boolean {
    const { size, maxAbandoned } = this.#options;
    return !this.#closed && this.#slots.size < size && this.#slots.size + this.#abandoned < size + maxAbandoned;
  }

  #assign(slot: Slot, job: Job): void {
    clearTimeout(job.timer);
    slot.job = job;
    job.timer = setTimeout(() => this.#overrun(slot), this.#options.timeoutMs);
    slot.worker.ref();
    slot.worker.postMessage({ id: job.id, name: job.name, args: job.args } satisfies ToReader);
  }

  #overrun(slot: Slot): void {
    const job = slot.job!;
    slot.job = undefined;
    job.reject(tooCostly(job.name, this.#options.timeoutMs));
    this.#slots.delete(slot);
    this.#abandoned++;
    this.#abandonedTotal++;
    slot.worker.removeAllListeners('exit');
    slot.worker.once('exit', () => {
      this.#abandoned--;
      if (!this.#closed) this.#dispatch();
    });
    slot.worker.unref();
    void slot.worker.terminate();
    if (this.#mayStart()) this.#start();
    process.emitWarning(
      `a ${job.name} overran ${this.#options.timeoutMs} ms; its read thread is abandoned until its SQLite statement ends (${this.#abandoned} such now, ${this.#abandonedTotal} in all)`,
    );
  }

  #start(): void {
    const worker = startTsWorker(this.#options.thread, { path: this.#options.path });
    const slot: Slot = { worker, ready: false };
    this.#slots.add(slot);
    // The thread cannot start (the file cannot be opened for reading, say): what waits fails with
    // the cause, rather than waiting for a thread that will never come.
    const lost = (cause: string) => {
      if (!this.#slots.delete(slot)) return;
      const error = new FhirError(503, 'transient', `A read thread of the store stopped: ${cause}`);
      if (slot.job) fail(slot.job, error);
      else if (!slot.ready) for (const job of this.#queue.splice(0)) fail(job, error);
      void worker.terminate();
      if (!this.#closed) this.#dispatch();
    };
    worker.on('message', (m: FromReader) => {
      if (m.t === 'ready') {
        slot.ready = true;
        worker.unref();
        this.#dispatch();
      } else if (m.t === 'failed') lost(fromWire(m.error).message);
      else if (slot.job?.id === m.id) {
        const job = slot.job;
        slot.job = undefined;
        clearTimeout(job.timer);
        worker.unref();
        if (m.error) job.reject(fromWire(m.error));
        else job.resolve(m.value);
        this.#dispatch();
      }
    });
    worker.on('error', (err) => lost(err.message));
    worker.on('exit', (code) => lost(`exit code ${code}`));
  }
}

function fail(job: Job, error: Error): void {
  clearTimeout(job.timer);
  job.reject(error);
}

/** A read that ran past its deadline: the query is too costly for this server, as asked. */
export const tooCostly = (name: ReadName, ms: number) =>
  new FhirError(
    422,
    'too-costly',
    `The ${name} ran longer than ${ms} ms and was stopped: narrow it (fewer or more selective parameters, fewer includes or sort keys)`,
  );

const closedError = () => new FhirError(503, 'transient', 'the store has been closed');
