import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';

/**
 * Holds a database file exclusively for this process: a second Herald on the same file would
 * serve with subscriptions of its own (events matched by one, not the other; deliveries twice).
 *
 * The lock is `<db>.lock`, a small SQLite file that this process opens in exclusive locking mode
 * and writes its pid into (the header's user_version): SQLite then holds an OS file lock on it
 * until the connection closes. The operating system drops that lock when the process dies, even
 * by `kill -9`, so there is no stale lock to detect and no pid to be reused. The file stays after
 * close; only the lock on it counts. (File locks are only reliable on a local file system.)
 */
export function lockDatabase(path: string): { release(): void } {
  const lockPath = `${path}.lock`;
  const db = new Database(lockPath, { timeout: 0 });
  try {
    db.pragma('journal_mode = MEMORY');
    db.pragma('locking_mode = EXCLUSIVE');
    // The first write takes the exclusive lock, and exclusive locking mode keeps it.
    db.pragma(`user_version = ${process.pid}`);
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
    const holder = holderOf(lockPath);
    throw new Error(
      `the database ${path} is in use by another Herald (pid ${holder ?? 'unknown'}), which holds the lock ${lockPath}; ` +
        'stop it first, or give this one another --db',
    );
  }
  return { release: () => db.close() };
}

/** The pid the holder wrote: the SQLite header's user_version (4 bytes big-endian at offset 60). */
function holderOf(lockPath: string): number | undefined {
  try {
    const header = readFileSync(lockPath);
    return header.length >= 64 ? header.readInt32BE(60) || undefined : undefined;
  } catch {
    return undefined;
  }
}
