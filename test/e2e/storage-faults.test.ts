import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { spawnHerald } from '../helpers/process.ts';
import { startReceiver } from '../helpers/receiver.ts';
import { call } from '../helpers/server.ts';
import { onPostgres } from '../helpers/store.ts';
import { readNotification, subscriptionResource, topicResource } from '../helpers/subscriptions.ts';

/**
 * Real storage faults, on a real small file system: a tmpfs mounted for the test (needs root, as
 * on the CI machines; skipped with a reason elsewhere), filled to the last byte, and remounted
 * read-only.
 */
const root = mkdtempSync(join(tmpdir(), 'herald-faults-'));
const mounted: string[] = [];
after(() => {
  for (const m of mounted) tryRun('umount', ['-l', m]);
  rmSync(root, { recursive: true, force: true });
});

function tryRun(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function smallDisk(name: string, size: string): string | undefined {
  const dir = join(root, name);
  mkdirSync(dir);
  if (!tryRun('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir])) return undefined;
  mounted.push(dir);
  return dir;
}

const canMount = (() => {
  const probe = smallDisk('probe', '64k');
  return probe !== undefined;
})();
const skip = onPostgres ? 'SQLite only: a full or read-only disk under the database file (a PostgreSQL server\'s disk is its own)' : canMount ? false : 'mounting a tmpfs needs root';

describe('storage faults', { skip }, () => {
  it('a full disk answers 503 transient with Retry-After, /healthz says why, the process lives, and writes resume once space returns; no acknowledged event is lost', async () => {
    const dir = smallDisk('full', '6m')!;
    const hook = await startReceiver();
    const herald = await spawnHerald({ HERALD_DB: `sqlite:${join(dir, 'h.db')}`, LOG_LEVEL: 'warn', HERALD_RETRY_BASE_MS: '50', HERALD_RETRY_CAP_MS: '200', HERALD_MIN_HEARTBEAT_S: '1' });
    try {
      const base = `${herald.url}/fhir/R4`;
      const url = 'http://example.org/topics/disk';
      assert.equal((await call('PUT', `${base}/Basic/disk`, topicResource('R4', { url, resource: 'Patient', interactions: ['create'] }, 'disk'))).status, 201);
      const sub = await call('POST', `${base}/Subscription`, subscriptionResource('R4', { topic: url, endpoint: hook.url, heartbeat: 1 }));
      assert.equal(sub.status, 201);
      // Leave just a little room, then fill it with writes (single and in transactions).
      writeFileSync(join(dir, 'filler'), Buffer.alloc(3_500_000));
      const big = 'x'.repeat(30_000);
      const acknowledged: string[] = [];
      const refusals: { status: number; retryAfter: string | null; code: string }[] = [];
      for (let i = 0; i < 120 && refusals.length < 20; i++) {
        const res =
          i % 3 === 2
            ? await call('POST', base, { resourceType: 'Bundle', type: 'transaction', entry: [1, 2, 3].map(() => ({ request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient', name: [{ family: big }] } })) })
            : await call('POST', `${base}/Patient`, { resourceType: 'Patient', name: [{ family: big }] });
        if (res.status === 201) acknowledged.push(`Patient/${res.body.id}`);
        else if (res.status === 200) for (const e of res.body.entry) acknowledged.push(/Patient\/[^/]+/.exec(e.response.location)![0]);
        else refusals.push({ status: res.status, retryAfter: res.headers.get('retry-after'), code: res.body?.issue?.[0]?.code });
      }
      assert.ok(refusals.length > 0, 'the disk filled up');
      for (const r of refusals) assert.deepEqual(r, { status: 503, retryAfter: '5', code: 'transient' });
      const health = await call('GET', `${herald.url}/healthz`);
      assert.equal(health.status, 503);
      assert.match(health.body.reason, /SQLITE_FULL/);
      // Heartbeats and delivery go on failing to store their state for a while: the process lives.
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(herald.child.exitCode, null, herald.output());

      rmSync(join(dir, 'filler'));
      const res = await call('POST', `${base}/Patient`, { resourceType: 'Patient', name: [{ family: 'after' }] });
      assert.equal(res.status, 201);
      acknowledged.push(`Patient/${res.body.id}`);
      assert.equal((await call('GET', `${herald.url}/healthz`)).status, 200);
      const focuses = () => new Set(hook.received.map((r) => readNotification(r.body)).filter((n) => n.type === 'event-notification').flatMap((n) => n.events.map((e) => e.focus!.split('/fhir/R4/')[1]!)));
      await hook.waitFor(() => acknowledged.every((a) => focuses().has(a)), 20_000);
    } finally {
      herald.child.kill('SIGTERM');
      await herald.exited;
      await hook.close();
    }
  });

  it('a read-only database refuses to start, saying why, instead of answering every write with an error', async () => {
    const dir = smallDisk('ro', '8m')!;
    const db = `sqlite:${join(dir, 'h.db')}`;
    const first = await spawnHerald({ HERALD_DB: db });
    first.child.kill('SIGTERM');
    assert.equal(await first.exited, 0);
    assert.ok(tryRun('mount', ['-o', 'remount,ro', dir]));
    await assert.rejects(spawnHerald({ HERALD_DB: db }), /Herald exited early[\s\S]*(read-only|readonly|cannot write)/i);
  });
});
