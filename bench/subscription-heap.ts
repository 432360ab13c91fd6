/**
 * Heap per subscription (issue 15: a million subscriptions under 2 GB): a Herald in this process
 * on a SQLite file, N websocket subscriptions created over HTTP by the eventpath scenario's own
 * bulk creation (one per patient, filtered by identifier, 1,000-entry transactions), and the main
 * thread's heap measured after full GCs before and after. RSS is printed too, but it holds freed
 * memory V8 has not returned and the writer thread's heap, so the heap is the figure to compare.
 *
 *   node --expose-gc --import tsx bench/subscription-heap.ts            # N=100000
 *   N=20000 SNAPSHOTS=/tmp node --expose-gc --import tsx bench/subscription-heap.ts
 *
 * AUTH=1 runs Herald with an external issuer (test/helpers/auth.ts) and creates the subscriptions
 * with one token, so that each has its owner recorded (D-22), as in a deployment with auth on.
 *
 * SNAPSHOTS=dir also writes a heap snapshot before and after (open them in Chrome's DevTools,
 * "Comparison" view, to see what each subscription holds).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import { startIssuer } from '../test/helpers/auth.ts';
import { startServer } from '../test/helpers/server.ts';
import { TOPIC, bulkSubscriptions } from './scenarios/eventpath.ts';

const N = Number(process.env.N ?? 100_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc (see the header)');
if (!Number.isInteger(N) || N < 1 || N > 1_000_000) throw new Error(`N must be an integer from 1 to 1,000,000, not '${process.env.N}'`);

const dir = mkdtempSync(join(tmpdir(), 'bench-subscription-heap-'));
writeFileSync(join(dir, 'topic.json'), JSON.stringify(TOPIC));

/** Memory after four full GCs, a turn of the event loop apart (finalizers and weak callbacks run between). */
async function settled(): Promise<NodeJS.MemoryUsage> {
  for (let i = 0; i < 4; i++) {
    gc!();
    await new Promise((r) => setTimeout(r, 50));
  }
  return process.memoryUsage();
}

const issuer = process.env.AUTH ? await startIssuer('herald-bench') : undefined;
const server = await startServer({
  HERALD_DB: `sqlite:${join(dir, 'herald.db')}`,
  HERALD_TOPICS: dir,
  HERALD_MAX_SUBSCRIPTIONS_PER_TOPIC: '1000000',
  HERALD_MAX_SUBSCRIPTIONS_PER_OWNER: '1000000',
  ...(issuer ? { HERALD_AUTH_ISSUER: issuer.issuer, HERALD_AUTH_JWKS: issuer.jwksUrl, HERALD_AUTH_AUDIENCE: 'herald-bench' } : {}),
});
const headers: Record<string, string> = { 'content-type': 'application/fhir+json' };
if (issuer) headers.authorization = `Bearer ${await issuer.mint({ sub: 'bench-app', scope: 'system/Patient.cruds system/Subscription.cruds' }, { expiresIn: 3600 })}`;
try {
  const base = server.fhir('R4');
  const before = await settled();
  if (process.env.SNAPSHOTS) writeHeapSnapshot(join(process.env.SNAPSHOTS, 'subscription-heap-before.heapsnapshot'));
  const t0 = performance.now();
  await bulkSubscriptions(base, N, () => {}, headers);
  const seconds = (performance.now() - t0) / 1000;
  const after = await settled();
  if (process.env.SNAPSHOTS) writeHeapSnapshot(join(process.env.SNAPSHOTS, 'subscription-heap-after.heapsnapshot'));
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MB`;
  console.log(`${N.toLocaleString('en-US')} subscriptions created in ${seconds.toFixed(1)} s`);
  console.log(`main thread heap: ${((after.heapUsed - before.heapUsed) / N).toFixed(0)} bytes per subscription (${mb(before.heapUsed)} → ${mb(after.heapUsed)})`);
  console.log(`RSS: ${mb(before.rss)} → ${mb(after.rss)}`);
} finally {
  await server.close();
  await issuer?.close();
  rmSync(dir, { recursive: true, force: true });
}
