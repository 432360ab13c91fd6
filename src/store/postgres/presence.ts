import pg from 'pg';
import { MIGRATIONS, RUNNING_LOCK, migrate, schemaVersion } from './schema.ts';

export interface PresenceOptions {
  /** The schema this node is written for (tests pass a later version's list); default MIGRATIONS. */
  migrations?: readonly string[];
  /** The pause between attempts to connect again (the first is at once); default 1,000 ms. */
  retryMs?: number;
  /** How often the connection is checked to still hold the lock; default 1,000 ms. */
  checkMs?: number;
  /** How long the check may take before the connection counts as lost; default 5,000 ms. */
  checkTimeoutMs?: number;
  /** Told once, when the schema turns out to have changed under this node (see Presence.unable). */
  onStale?: (why: string) => void;
}

export interface Presence {
  /**
   * Why this node must not write now, or undefined. For a while, when its connection (and so its
   * lock) is lost: until it holds the lock again and has found the schema unchanged. For good, when
   * it then finds the schema changed: its code does not keep what another schema needs.
   */
  unable(): string | undefined;
  close(): Promise<void>;
}

/**
 * A node's presence on the database: a connection of its own, kept for as long as the node runs,
 * that migrates the schema at start (schema.ts) and then holds RUNNING_LOCK in shared mode. A node
 * of a later version, which would migrate, needs that lock exclusively, so it refuses to start
 * while any node of the schema before it runs: an upgrade stops every node first.
 *
 * A session's lock goes with its connection. So the connection is checked every `checkMs` (a
 * statement that must come back within `checkTimeoutMs`, which also keeps a NAT from dropping an
 * idle flow), and while it is lost the node writes nothing: it connects again, takes the lock again
 * (waiting out a migration under way) and reads the schema version. The same version: it writes
 * again. Another: it never writes again (stale), and says why.
 */
export async function enterDatabase(url: string, options: PresenceOptions = {}): Promise<Presence> {
  const migrations = options.migrations ?? MIGRATIONS;
  const retryMs = options.retryMs ?? 1000;
  const open = () => {
    const c = new pg.Client({
      connectionString: url,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      connectionTimeoutMillis: 5000,
    });
    c.on('error', () => {}); // every failure also ends a query or the connection: handled there
    return c;
  };
  /**
   * Connects, and has the server end the session in about 25 s if this node goes silent, and its
   * lock with it (else it would count as a running node for hours after every node stopped). Set
   * as statements, not startup options, which a pooler such as PgBouncer may refuse.
   */
  const connect = async (c: pg.Client) => {
    await c.connect();
    await c.query('SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3');
  };
  /** The connection holding the lock (undefined while lost). */
  let client: pg.Client | undefined = open();
  /** A connection being made to take the lock again. */
  let joining: pg.Client | undefined;
  let closed = false;
  let stale: string | undefined;
  let lostBecause = '';
  let retry: NodeJS.Timeout | undefined;
  let checking = false;
  let lostAt = -Infinity;

  const lose = (c: pg.Client, why: string) => {
    if (client !== c) return;
    client = undefined;
    lostBecause = why;
    c.end().catch(() => {});
    // At once (a session ended while the server is up is back in a moment), then every retryMs;
    // a connection lost again soon after it was made waits too (no tight loop of reconnections).
    const soon = performance.now() - lostAt < retryMs;
    lostAt = performance.now();
    if (!closed) retry = setTimeout(() => void rejoin(), soon ? retryMs : 0);
  };
  const watch = (c: pg.Client) => {
    c.on('error', (err) => lose(c, err.message));
    c.on('end', () => lose(c, 'the connection ended'));
  };

  async function rejoin(): Promise<void> {
    const c = (joining = open());
    try {
      await connect(c);
      await c.query('SELECT pg_advisory_lock_shared($1)', [RUNNING_LOCK]);
      const version = await schemaVersion(c);
      if (closed) throw new Error('closed');
      joining = undefined;
      if (version !== migrations.length) {
        stale = `the database's schema is at version ${version}, not this node's ${migrations.length} (another Herald migrated it, or it was restored, while this node had lost its connection): this node no longer writes; stop it, and run the version the schema is at`;
        await c.end().catch(() => {});
        options.onStale?.(stale);
        return;
      }
      client = c;
      watch(c);
    } catch (err) {
      if (joining === c) joining = undefined;
      await c.end().catch(() => {});
      if (closed) return;
      lostBecause = (err as Error).message;
      retry = setTimeout(() => void rejoin(), retryMs);
    }
  }

  try {
    await connect(client);
    await migrate(client, migrations);
  } catch (err) {
    closed = true;
    await client.end().catch(() => {});
    throw err;
  }
  watch(client);
  // Checked from here on only: the lock is held once migrate() has ended, and a migration may take long.
  const check: NodeJS.Timeout = setInterval(() => {
    const c = client;
    if (!c || checking) return;
    checking = true;
    c.query<{ n: number }>({
      text: "SELECT count(*)::int AS n FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND classid = 0 AND objid = $1 AND objsubid = 1 AND granted",
      values: [RUNNING_LOCK],
      query_timeout: options.checkTimeoutMs ?? 5000,
    } as pg.QueryConfig).then(
      (r) => {
        checking = false;
        if (r.rows[0]?.n !== 1) lose(c, 'its lock was no longer held');
      },
      (err: Error) => {
        checking = false;
        lose(c, err.message);
      },
    );
  }, options.checkMs ?? 1000);
  check.unref();
  return {
    unable: () =>
      stale ?? (client ? undefined : `this node's own connection to the database, which holds its running lock, was lost (${lostBecause}): it writes again once it holds the lock again`),
    async close() {
      closed = true;
      clearTimeout(retry);
      clearInterval(check);
      const held = [client, joining];
      client = joining = undefined;
      await Promise.all(held.map((c) => c?.end().catch(() => {})));
    },
  };
}
