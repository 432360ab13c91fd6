import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import pg from 'pg';
import { openPostgresStore } from '../../src/store/postgres/index.ts';
import type { RemoteCommit, Store } from '../../src/store/store.ts';

/** The test server: PostgreSQL on loopback, trust auth (see .ci/run). HERALD_TEST_PG overrides it. */
export const PG_ADMIN_URL = process.env.HERALD_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A URL for database `name` on the test server. */
const urlOf = (name: string) => {
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
};

/** Runs `fn` on a connection of its own to `url`, closed afterwards. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const admin = <T>(fn: (client: pg.Client) => Promise<T>) => withClient(PG_ADMIN_URL, fn);

/** Creates a fresh, uniquely named database and returns its URL. */
export async function createDatabase(): Promise<string> {
  const name = `herald_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  return urlOf(name);
}

/** Drops a database made by createDatabase, closing whatever connections are left to it. */
export async function dropDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  if (!/^herald_test_[a-z0-9_]+$/.test(name)) throw new Error(`not a test database: ${name}`);
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

/**
 * A fresh database for the current test file, dropped when the file's tests are done. Call at
 * module level: the database is created at once (the URL resolves) and dropped in an `after`.
 */
export function usePostgresDatabase(): Promise<string> {
  const made = createDatabase();
  after(async () => dropDatabase(await made));
  return made;
}

/**
 * Two stores on database `url`, as two nodes see it; `toB` collects what B is told of the other's
 * commits (once B listens; B's low-rate poll of the log is off, so `toB` holds announcements only).
 */
async function openTwoNodes(url: string): Promise<{ a: Store; b: Store; toB: RemoteCommit[] }> {
  const [a, b] = await Promise.all([openPostgresStore({ url, poolSize: 2 }), openPostgresStore({ url, poolSize: 2, pollMs: 3_600_000 })]);
  const toB: RemoteCommit[] = [];
  await b.onRemoteCommit!((c) => toB.push(c));
  return { a, b, toB };
}

/**
 * Two nodes on a fresh database for the current suite (openTwoNodes), handed to `use` before its
 * tests and closed after them.
 */
export function useTwoNodes(use: (nodes: { a: Store; b: Store; toB: RemoteCommit[] }) => void): void {
  const database = usePostgresDatabase();
  let nodes: { a: Store; b: Store } | undefined;
  before(async () => use((nodes = await openTwoNodes(await database))));
  after(async () => {
    await nodes?.a.close();
    await nodes?.b.close();
  });
}
