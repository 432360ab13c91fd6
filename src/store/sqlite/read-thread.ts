/**
 * One thread of the read pool (read-pool.ts): its own read-only connection, one read at a time.
 * In WAL mode it sees only committed data, and it never holds up the writer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { createReads } from './connection.ts';
import { toWire } from './protocol.ts';
import type { FromReader, ToReader } from './read-pool.ts';

const port = parentPort!;
const { path } = workerData as { path: string };
const post = (m: FromReader) => port.postMessage(m);

try {
  const db = new Database(path, { readonly: true });
  db.pragma('busy_timeout = 5000');
  const reads = createReads(db);
  port.on('message', ({ id, name, args }: ToReader) => {
    try {
      post({ t: 'reply', id, value: (reads[name] as (...a: unknown[]) => unknown)(...args) });
    } catch (err) {
      post({ t: 'reply', id, error: toWire(err) });
    }
  });
  post({ t: 'ready' });
} catch (err) {
  post({ t: 'failed', error: toWire(err) });
  port.close();
}
