import pg from 'pg';
import { MIGRATIONS, RUNNING_LOCK, migrate, schemaVersion } from './schema.ts';

export interface PresenceOptions {
  /** The schema this node is written for (tests pass a later version's list); default MIGRATIONS. */
  migrations?: readonly string[];
  /** The pause before connecting again after the connection was lost; default 1,000 ms. */
  retryMs?: number;
  /** Told once, when the schema turns out to have changed under this node (see Presence.stale). */
  onStale?: (why: string) => void;
}

export interface Presence {
  /**
   * Why this node must not write any more, or undefined. Set when its connection was lost and,
   * once it was back, the schema had been migrated by a newer Herald meanwhile: this node's code
   * does not keep what the newer schema adds.
   */
  stale(): string | undefined;
  close(): Promise<void>;
}

/**
 * A node's presence on the database: a connection of its own, kept for as long as the node runs,
 * that migrates the schema at start (schema.ts) and then holds RUNNING_LOCK in shared mode. A node
 * of a later version, which would migrate, needs that lock exclusively, so it refuses to start
 * while any node of the schema before it runs: an upgrade stops every node first. Session locks go
 * with their connection, so when the connection is lost this node connects again, takes the lock
 * again and looks at the schema: if another node migrated it in the gap, this node is stale.
 */
export async function enterDatabase(url: string, options: PresenceOptions = {}): Promise<Presence> {
  const migrations = options.migrations ?? MIGRATIONS;
  const retryMs = options.retryMs ?? 1000;
  const open = () => new pg.Client({ connectionString: url, keepAlive: true, connectionTimeoutMillis: 5000 });
  let client: pg.Client | undefined = open();
  client.on('error', () => {}); // while starting, a failure is connect's or migrate's rejection
  let closed = false;
  let stale: string | undefined;
  let retry: NodeJS.Timeout | undefined;
  // Errors of the first connection surface as migrate's rejection; afterwards, as a lost connection.
  const watch = (c: pg.Client) => {
    const lost = () => {
      if (client !== c) return;
      client = undefined;
      c.end().catch(() => {});
      if (!closed && !stale) retry = setTimeout(() => void rejoin(), retryMs);
    };
    c.on('error', lost);
    c.on('end', lost);
  };

  async function rejoin(): Promise<void> {
    const c = open();
    c.on('error', () => {}); // until watched: a failure here is the catch below
    try {
      await c.connect();
      // Waits while a node migrates (it holds the lock exclusively), then reads what it left.
      await c.query('SELECT pg_advisory_lock_shared($1)', [RUNNING_LOCK]);
      const version = await schemaVersion(c);
      if (closed) {
        await c.end();
        return;
      }
      if (version !== migrations.length) {
        stale = `the database's schema was migrated to version ${version} by a newer Herald while this node (version ${migrations.length}) had lost its connection: this node no longer writes; stop it, and run the newer version`;
        await c.end().catch(() => {});
        options.onStale?.(stale);
        return;
      }
      client = c;
      watch(c);
    } catch {
      await c.end().catch(() => {});
      if (!closed) retry = setTimeout(() => void rejoin(), retryMs);
    }
  }

  try {
    await client.connect();
    await migrate(client, migrations);
  } catch (err) {
    await client.end().catch(() => {});
    throw err;
  }
  watch(client);
  return {
    stale: () => stale,
    async close() {
      closed = true;
      clearTimeout(retry);
      const c = client;
      client = undefined;
      await c?.end().catch(() => {});
    },
  };
}
