import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * WAL checkpoints on a thread of their own. SQLite's automatic checkpoint runs inside the commit
 * that crosses the threshold, copying pages into the database file and syncing it on the writer's
 * thread. A passive checkpoint from another connection does the same work concurrently with the
 * writer, so commits only append (and sync) the WAL.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 5000');
const timer = setInterval(() => {
  try {
    // PASSIVE copies what it can without waiting for anyone. Under a steady stream of commits it
    // never catches up with the end of the WAL, so the WAL could not restart and would grow without
    // bound; once it is past the limit, a RESTART finishes the (now short) remainder, waiting for
    // the writer between two commits, so that the next commit starts the WAL from its beginning.
    const [{ log }] = db.pragma('wal_checkpoint(PASSIVE)');
    if (log > workerData.restartPages) db.pragma('wal_checkpoint(RESTART)');
    failing = undefined;
  } catch (err) {
    // Busy: the next tick tries again. Anything else (disk full, I/O error) is reported once.
    if (err.code !== 'SQLITE_BUSY' && err.code !== failing) parentPort.postMessage({ failed: err.code + ': ' + err.message });
    failing = err.code;
  }
}, workerData.intervalMs);
let failing;
parentPort.on('message', () => {
  clearInterval(timer);
  db.close();
  parentPort.postMessage({ closed: true });
});
`;

export interface Checkpointer {
  stop(): Promise<void>;
}

/**
 * `restartPages`: WAL size (in pages) past which a checkpoint also restarts the WAL. SQLite's own
 * automatic checkpoint uses 1,000 pages; more keeps the restarts (which pause the writer for a
 * moment) rare under load.
 */
export function startCheckpointer(path: string, intervalMs = 200, restartPages = 4096): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER, { eval: true, workerData: { path, intervalMs, restartPages, driver } });
  worker.unref();
  worker.on('message', (m: { failed?: string }) => {
    if (m.failed) process.emitWarning(`WAL checkpoint of ${path} failing: ${m.failed}`);
  });
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        worker.on('message', (m: { closed?: boolean }) => {
          if (m.closed) void worker.terminate().then(() => resolve());
        });
        worker.once('error', () => resolve());
        worker.postMessage('stop');
      }),
  };
}
