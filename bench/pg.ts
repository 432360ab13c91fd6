/**
 * The PostgreSQL server the bench measures Herald on (`BENCH_PG`, default the test server:
 * postgres://postgres@127.0.0.1:5432, trust auth): whether it answers, and fresh databases,
 * each created for one Herald (or one group of nodes) and dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const PG_ADMIN_URL = process.env.BENCH_PG || 'postgres://postgres@127.0.0.1:5432/postgres';
const PREFIX = 'herald_bench_';

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Undefined when the server answers, else why not. */
export async function pgUnavailable(): Promise<string | undefined> {
  try {
    await admin((c) => c.query('SELECT 1'));
    return undefined;
  } catch (err) {
    return (err as Error).message || String(err);
  }
}

/** A fresh, uniquely named database: its URL and its name (which names its backends in /proc). */
export async function createDatabase(): Promise<{ url: string; name: string }> {
  const name = `${PREFIX}${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), name };
}

/** Drops a database made by createDatabase, closing whatever connections are left to it. */
export async function dropDatabase(name: string): Promise<void> {
  if (!new RegExp(`^${PREFIX}[a-z0-9_]+$`).test(name)) throw new Error(`not a bench database: ${name}`);
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

/**
 * Gathers the planner's statistics of a database (ANALYZE), as autovacuum would after a bulk load;
 * says whether autovacuum is off on the server (then nothing else ever gathers them).
 */
export async function analyze(url: string): Promise<{ autovacuum: boolean; ms: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ autovacuum: string }>('SHOW autovacuum');
    const t0 = performance.now();
    await client.query('ANALYZE');
    return { autovacuum: rows[0]?.autovacuum === 'on', ms: performance.now() - t0 };
  } finally {
    await client.end();
  }
}
