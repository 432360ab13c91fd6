import { join } from 'node:path';
import { after } from 'node:test';
import { createDatabase, dropDatabase } from './postgres.ts';

/**
 * Which store the e2e suite runs on: SQLite (`npm test`) or PostgreSQL (`npm run test:postgres`,
 * HERALD_TEST_STORE=postgres). Tests that restart a server on the same data ask for a database
 * here; tests of SQLite itself say so with `sqliteOnly`.
 */
export const onPostgres = process.env.HERALD_TEST_STORE === 'postgres';

/**
 * Options for a `describe` or `it` about SQLite itself (its file, lock, WAL, writer or read
 * threads): skipped on PostgreSQL, with the reason in the test report.
 */
export function sqliteOnly(why: string): { skip?: string } {
  return onPostgres ? { skip: `SQLite only: ${why}` } : {};
}

const made = new Map<string, Promise<string>>();
after(async () => {
  for (const url of made.values()) await dropDatabase(await url);
});

/**
 * A HERALD_DB that outlives one server, for restarts: a SQLite file `name`.db in `dir`, or on
 * PostgreSQL a fresh database (the same one for the same dir and name), dropped when the test
 * file's tests are done.
 */
export function persistentDb(dir: string, name: string): Promise<string> {
  if (!onPostgres) return Promise.resolve(`sqlite:${join(dir, `${name}.db`)}`);
  const key = join(dir, name);
  let url = made.get(key);
  if (!url) made.set(key, (url = createDatabase()));
  return url;
}
