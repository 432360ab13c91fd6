import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { FhirError } from '../../fhir/errors.ts';
import type { FhirVersion } from '../../fhir/types.ts';
import type { NewEvent, RemoteCommit, Store, StoreReader, Transaction } from '../store.ts';
import * as reads from './reads.ts';
import { type Query, statement } from './reads.ts';
import { Analyzer } from './analyze.ts';
import { type Presence, enterDatabase } from './presence.ts';
import { announcement, CHANNEL, CommitListener, Touched, releasedPayload } from './signals.ts';
import * as writes from './writes.ts';
import { resourceKey, typeKey } from './writes.ts';
import { runSafely } from '../run-safely.ts';

export interface PostgresOptions {
  /** `postgres://user@host:port/db` (or `postgresql://`); the database must exist. */
  url: string;
  /** Connections for writes and reads by key; default 10. */
  poolSize?: number;
  /** Connections for searches and history (each with the statement deadline); default 2. */
  searchPoolSize?: number;
  /** Deadline of a search or history statement, in ms; default 10,000 (then 422 too-costly). */
  readTimeoutMs?: number;
  /** The clock (default: the system's): `ap` date searches are measured from it. */
  now?: () => Date;
  /** How often the connection is checked while idle, for failure() (/healthz); default 1,000 ms. */
  probeMs?: number;
  /** How often other nodes' commits are looked for in case a wake-up was lost; default 5,000 ms. */
  pollMs?: number;
  /** For tests: the schema this node is written for, its presence's reconnection pause and check (presence.ts). */
  presence?: { migrations?: readonly string[]; retryMs?: number; checkMs?: number };
}

/** int8 (counts, sequence numbers) as JS numbers: they stay far below 2^53 here. */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/** SQLSTATEs after which the transaction is simply run again: deadlock, serialization failure. */
const RETRY = new Set(['40P01', '40001']);
const ATTEMPTS = 5;

/**
 * Herald on PostgreSQL, for one node or many sharing the database.
 *
 * Transactions run concurrently, each on a pooled connection (READ COMMITTED), and are made as
 * safe as SQLite's one-at-a-time writer by advisory locks (pg_advisory_xact_lock, held until
 * COMMIT): a read inside a transaction first locks its resource key, so read-check-write
 * (If-Match, version numbers, create-on-PUT) is serialised per resource across every node; a
 * search inside a transaction (conditional criteria) first locks its resource type exclusively,
 * while every write holds its type's lock in shared mode, so no write of that type can slip in
 * between the criteria and the write they decide. Events are buffered and appended at commit
 * (or before the transaction reads its own log), numbered from per-subscription counter rows
 * that the transaction holds until it commits. A deadlock between lock orders is detected by
 * PostgreSQL and the transaction function run again (it only does store work: see Store).
 */
export async function openPostgresStore(options: PostgresOptions): Promise<Store> {
  const base = { connectionString: options.url, types, connectionTimeoutMillis: 5000, keepAlive: true };
  const pool = new pg.Pool({ ...base, max: options.poolSize ?? 10 });
  const timeoutMs = options.readTimeoutMs ?? 10_000;
  const searchPool = new pg.Pool({ ...base, max: options.searchPoolSize ?? 2, statement_timeout: timeoutMs });
  const now = options.now ?? (() => new Date());
  const health = new Health();
  for (const p of [pool, searchPool]) {
    p.on('error', (err) => health.down(err));
    // A checked-out client whose connection drops emits 'error' as well as failing its query, and
    // the pool listens only to idle ones: unheard, it would end the process (a transaction in
    // flight when the database went away). The failed query is answered where it was asked.
    p.on('connect', (client) => client.on('error', (err) => health.down(err)));
  }
  let presence: Presence;
  try {
    presence = await enterDatabase(options.url, {
      ...options.presence,
      onStale: (why) => process.emitWarning(`PostgreSQL store: ${why}`),
    });
  } catch (err) {
    await Promise.all([pool.end(), searchPool.end()]);
    throw new Error(`cannot open the PostgreSQL database ${redact(options.url)}: ${(err as Error).message}`);
  }

  const on =
    (p: pg.Pool): Query =>
    async (sql, args, prepared) => {
      try {
        const res = await p.query(statement(sql, args, prepared));
        health.up();
        return res.rows;
      } catch (err) {
        throw health.fail(err);
      }
    };
  const q = on(pool);
  const costly = on(searchPool);
  /**
   * A node without its running lock (presence.ts) writes nothing: a 503, as for an outage. For a
   * moment while its connection is made again; for good if the schema changed meanwhile.
   */
  const refusal = () => {
    const why = presence.unable();
    return why ? new FhirError(503, 'transient', `This node cannot write: ${why}`) : undefined;
  };
  const refuseIfStale = () => {
    const err = refusal();
    if (err) throw err;
  };
  /** Statements that write outside a transaction (delivery leases, shared secrets). */
  const w: Query = async (sql, args, prepared) => {
    refuseIfStale();
    return q(sql, args, prepared);
  };
  const probe = setInterval(() => {
    pool.query('SELECT 1').then(
      () => health.up(),
      (err: Error) => health.down(err),
    );
  }, options.probeMs ?? 1000);
  probe.unref();

  // This node's name in commit announcements (it ignores its own); see signals.ts.
  const node = randomUUID();
  const listeners: ((c: RemoteCommit) => void)[] = [];
  let listener: CommitListener | undefined;
  const onRemoteCommit = (fn: (c: RemoteCommit) => void) => {
    listeners.push(fn);
    listener ??= new CommitListener(options.url, node, (c) => listeners.forEach((l) => runSafely(() => l(c))), options.pollMs ?? 5000);
    return listener.listening;
  };

  const analyzer = new Analyzer(
    (sql) => pool.query(sql),
    () => undefined, // statistics are an optimisation: a failed run is retried at the next threshold
  );
  let closed = false;
  async function transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    if (closed) throw new FhirError(503, 'transient', 'the store has been closed');
    refuseIfStale();
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw health.fail(err);
      }
      const tx = new PgTransaction(client, health, now, node);
      let broken: Error | undefined;
      let refused: FhirError | undefined;
      try {
        await tx.q('BEGIN');
        const value = await fn(tx);
        await tx.flush();
        // A lock lost while the transaction ran: nothing of it is committed.
        refused = refusal();
        if (refused) throw refused;
        await tx.q('COMMIT');
        announce(client, tx.announcement());
        analyzer.wrote(tx.versions);
        for (const hook of tx.hooks) runSafely(hook);
        return value;
      } catch (err) {
        // (A refusal is a 503 too, but its connection is sound: rolled back and reused.)
        broken = err !== refused && isConnectionError(err) ? (err as Error) : undefined;
        if (!broken) await client.query('ROLLBACK').catch((e: Error) => (broken = e));
        client.release(broken);
        const code = (err as { code?: string }).code;
        if (code && RETRY.has(code) && attempt < ATTEMPTS) continue;
        throw err;
      }
    }
  }

  const reader: StoreReader = {
    read: (fv, type, id) => reads.read(q, fv, type, id),
    vread: (fv, type, id, v) => reads.vread(q, fv, type, id, v),
    search: (fv, req, cursor) => reads.search(costly, fv, req, now().getTime(), cursor).catch((err) => Promise.reject(tooCostly(err, 'search', timeoutMs))),
    events: (fv, sub, from, to, limit) => reads.events(q, fv, sub, from, to, limit),
    eventRange: (fv, sub) => reads.eventRange(q, fv, sub),
    deliveryState: (fv, sub) => reads.deliveryState(q, fv, sub),
    bindingToken: (hash) => reads.bindingToken(q, hash),
    subscriptionOwners: (fv, subscription) => reads.subscriptionOwners(q, fv, subscription),
  };
  return {
    kind: 'postgres',
    ...reader,
    transaction,
    onRemoteCommit,
    claimDelivery: (fv, subscription, leaseMs) => writes.claimDelivery(w, fv, subscription, node, leaseMs),
    renewDeliveries: (fv, subscriptions, leaseMs) => writes.renewDeliveries(w, fv, subscriptions, node, leaseMs),
    deliveryLeasesHeld: (fv, subscriptions) => writes.deliveryLeasesHeld(q, fv, subscriptions, node),
    async releaseDeliveries(fv, subscriptions) {
      const released = await writes.releaseDeliveries(q, fv, subscriptions, node);
      if (released.length > 0) await q('SELECT pg_notify($1, $2)', [CHANNEL, releasedPayload(node, fv, released)]);
    },
    setLeasedDeliveryState: (fv, subscription, state) => writes.setLeasedDeliveryState(w, fv, subscription, node, state),
    sharedSecret: (name, candidate) => writes.sharedSecret(w, name, candidate, now().toISOString()),
    indexState: (fv) => reads.indexState(q, fv),
    currentVersions: (fv, after, limit) => reads.currentVersions(q, fv, after, limit),
    history: (fv, query) => reads.history(costly, fv, query).catch((err) => Promise.reject(tooCostly(err, 'history', timeoutMs))),
    pruneEvents: (before, keep) => transaction((tx) => writes.prune((tx as PgTransaction).q, before, now().toISOString(), keep)),
    failure: () => (closed ? 'the store has been closed' : (presence.unable() ?? health.failure())),
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(probe);
      await analyzer.idle();
      await listener?.close();
      await Promise.all([pool.end(), searchPool.end(), presence.close()]);
    },
  };
}

/** One transaction on its own connection; see openPostgresStore for the locking rules. */
class PgTransaction implements Transaction {
  readonly hooks: (() => void)[] = [];
  readonly q: Query;
  /** How many versions it wrote (for the Analyzer, once committed). */
  versions = 0;
  /** Events appended but not yet written (written at commit, or before reading the log). */
  #events = new Map<FhirVersion, NewEvent[]>();
  readonly #locked = new Set<string>();
  /** What this transaction wrote, announced to the other nodes when it commits. */
  readonly #touched = new Touched();

  constructor(
    client: pg.PoolClient,
    health: Health,
    private readonly now: () => Date,
    private readonly node: string,
  ) {
    this.q = async (sql, args, prepared) => {
      try {
        return (await client.query(statement(sql, args, prepared))).rows;
      } catch (err) {
        throw health.fail(err);
      }
    };
  }

  /** Takes a transaction-level advisory lock once (exclusive). */
  async #lock(key: string): Promise<void> {
    if (this.#locked.has(key)) return;
    await this.q('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [key], true);
    this.#locked.add(key);
  }

  /**
   * Takes several such locks in one statement, in key order (a writer holding one of them and
   * waiting for another is a deadlock PostgreSQL breaks; the transaction runs again).
   */
  async #lockAll(keys: Iterable<string>): Promise<void> {
    const missing = [...new Set(keys)].filter((k) => !this.#locked.has(k)).sort();
    if (missing.length === 0) return;
    await this.q('SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest($1::text[]) AS k ORDER BY k', [missing]);
    for (const k of missing) this.#locked.add(k);
  }

  /** What to announce to the other nodes once this transaction has committed (see announce()). */
  announcement(): string | undefined {
    return this.#touched.payload(this.node);
  }

  async flush(): Promise<void> {
    const pending = this.#events;
    this.#events = new Map();
    for (const [fv, events] of pending) await writes.appendEvents(this.q, fv, events);
  }

  async read(fv: FhirVersion, type: string, id: string) {
    await this.#lock(resourceKey(fv, type, id));
    return reads.read(this.q, fv, type, id);
  }
  vread(fv: FhirVersion, type: string, id: string, versionId: number) {
    return reads.vread(this.q, fv, type, id, versionId);
  }
  async search(fv: FhirVersion, request: Parameters<Transaction['search']>[1], cursor?: Parameters<Transaction['search']>[2]) {
    for (const type of [...request.types].sort()) await this.#lock(typeKey(fv, type));
    return reads.search(this.q, fv, request, this.now().getTime(), cursor);
  }
  async events(fv: FhirVersion, subscription: string, from: number, to: number, limit: number) {
    await this.flush();
    return reads.events(this.q, fv, subscription, from, to, limit);
  }
  async eventRange(fv: FhirVersion, subscription: string) {
    await this.flush();
    return reads.eventRange(this.q, fv, subscription);
  }
  deliveryState(fv: FhirVersion, subscription: string) {
    return reads.deliveryState(this.q, fv, subscription);
  }
  bindingToken(hash: string) {
    return reads.bindingToken(this.q, hash);
  }
  subscriptionOwners(fv: FhirVersion, subscription?: string) {
    return reads.subscriptionOwners(this.q, fv, subscription);
  }
  async write(fv: FhirVersion, version: Parameters<Transaction['write']>[1]) {
    this.versions++;
    this.#touched.resource(fv, version.type, version.id);
    // A later version replaces index rows: under the resource's lock, held already when the
    // caller read the resource first, as every write path does (no statement then); a bare write
    // takes it here, so that an index rebuild's page (replaceIndex) never interleaves its rows
    // with this write's delete and insert. A first version has no rows a rebuild could touch.
    if (version.versionId > 1) await this.#lock(resourceKey(fv, version.type, version.id));
    return writes.writeVersion(this.q, fv, version);
  }
  async appendEvents(fv: FhirVersion, events: NewEvent[]) {
    this.#touched.subscriptions(fv, events.map((e) => e.subscription));
    const list = this.#events.get(fv);
    if (list) list.push(...events);
    else this.#events.set(fv, [...events]);
  }
  setDeliveryState(fv: FhirVersion, subscription: string, state: Parameters<Transaction['setDeliveryState']>[2]) {
    return writes.setDeliveryState(this.q, fv, subscription, state);
  }
  putBindingToken(token: Parameters<Transaction['putBindingToken']>[0]) {
    return writes.putBindingToken(this.q, token);
  }
  revokeBindingToken(hash: string) {
    return writes.revokeBindingToken(this.q, hash);
  }
  revokeBindingTokens(fv: FhirVersion, subscription: string) {
    return writes.revokeBindingTokens(this.q, fv, subscription);
  }
  putSubscriptionOwner(fv: FhirVersion, owner: Parameters<Transaction['putSubscriptionOwner']>[1]) {
    return writes.putSubscriptionOwner(this.q, fv, owner);
  }
  /** Locked until the commit, so that a rebuild's compare-and-set (reindex.ts) is one across nodes. */
  async indexState(fv: FhirVersion) {
    await this.#lock(`index|${fv}`);
    return reads.indexState(this.q, fv);
  }
  async replaceIndex(fv: FhirVersion, entries: Parameters<Transaction['replaceIndex']>[1]) {
    await this.#lockAll(entries.map((e) => resourceKey(fv, e.type, e.id)));
    return writes.replaceIndex(this.q, fv, entries);
  }
  setIndexState(fv: FhirVersion, state: Parameters<Transaction['setIndexState']>[1]) {
    return writes.setIndexState(this.q, fv, state);
  }
  onCommit(fn: () => void): void {
    this.hooks.push(fn);
  }
}

/**
 * Announces a committed transaction to the other nodes, then returns its connection to the pool;
 * the caller does not wait. Not from inside the writing transaction: a transaction that NOTIFYs
 * holds PostgreSQL's cluster-wide notify-queue lock from just before its commit until its commit
 * record is flushed, so every writer's WAL flush would run one after another, never grouped
 * (about 275 commits/s at 16 writers on this project's machine, against about 2,600 without
 * NOTIFY; see bench/README.md). A transaction of its own with synchronous_commit off holds that
 * lock only briefly. It is a wake-up, not data: lost (a crash, a dropped connection), it costs
 * latency, and the poll finds the events (signals.ts).
 */
function announce(client: pg.PoolClient, payload: string | undefined): void {
  if (payload === undefined) return client.release();
  client.query(announcement(payload, (text) => client.escapeLiteral(text))).then(
    () => client.release(),
    (err: Error) => client.release(err),
  );
}

/**
 * Whether the database answers, for failure() (and so /healthz): down after a connection error
 * or a failed probe, up again after the next statement or probe that succeeds. The pool replaces
 * broken connections by itself, so a node recovers once the database is back.
 */
class Health {
  #down: string | undefined;
  up(): void {
    this.#down = undefined;
  }
  down(err: Error): void {
    this.#down = `the database is unreachable: ${err.message}`;
  }
  failure(): string | undefined {
    return this.#down;
  }
  /** The error a failed statement becomes: a 503 for a connection failure, else as it is. */
  fail(err: unknown): Error {
    if (!isConnectionError(err)) return err as Error;
    this.down(err as Error);
    return new FhirError(503, 'transient', `The database cannot serve this right now (${(err as Error).message}); try again later`);
  }
}

/** Errors that say the connection or the server is gone, not that the statement was wrong. */
function isConnectionError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  if (err instanceof FhirError) return err.status === 503;
  if (typeof e?.code === 'string') {
    if (/^(08|57P0[1-3]|53300)/.test(e.code)) return true;
    if (/^E(CONNREFUSED|CONNRESET|PIPE|TIMEDOUT|HOSTUNREACH|NETUNREACH|AI_AGAIN)$|^ENOTFOUND$/.test(e.code)) return true;
  }
  return typeof e?.message === 'string' && /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/.test(e.message);
}

/** A statement stopped by its deadline (57014) becomes the same 422 as on SQLite. */
function tooCostly(err: unknown, name: string, ms: number): unknown {
  if ((err as { code?: string }).code !== '57014') return err;
  return new FhirError(
    422,
    'too-costly',
    `The ${name} ran longer than ${ms} ms and was stopped: narrow it (fewer or more selective parameters, fewer includes or sort keys)`,
  );
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}
