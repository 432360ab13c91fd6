/**
 * `herald listen --ephemeral` and `herald subscriptions` (issue 17), as the real CLI in a child
 * process (bin/herald.js) against a real Herald.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { call, startServer, type TestServer } from '../helpers/server.ts';
import { until } from '../helpers/until.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TOPICS_DIR = fileURLToPath(new URL('../fixtures/topics', import.meta.url));
const TOPIC = 'http://example.org/topics/patient-created';

/** How long a CLI in a child process gets to start or to print. */
const WAIT = { timeoutMs: 30_000 };

/** A running `herald …` with its output so far. */
function herald(args: string[]): { child: ChildProcess; out: () => string; err: () => string; exited: Promise<unknown[]> } {
  const child = spawn(process.execPath, ['bin/herald.js', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  return { child, out: () => out, err: () => err, exited: once(child, 'exit') };
}

/** Runs `herald …` to its end. */
async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const h = herald(args);
  const [code] = await h.exited;
  return { code: code as number, out: h.out(), err: h.err() };
}

describe('herald listen --ephemeral and herald subscriptions', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ HERALD_TOPICS: TOPICS_DIR });
  });
  after(() => server.close());
  const base = () => server.fhir('R4B');
  const createdId = (stderr: string) => /created Subscription\/([\w.-]+)/.exec(stderr)?.[1];

  it('--ephemeral deletes the subscription it created on SIGTERM; without it the listener names the one it leaves', { timeout: 120_000 }, async () => {
    const ephemeral = herald(['listen', '--base', base(), '--topic', TOPIC, '--ephemeral', '--json']);
    await until(`the ephemeral listener to start (stderr: ${ephemeral.err()})`, () => ephemeral.err().includes('listening to'), WAIT);
    const id = createdId(ephemeral.err());
    assert.ok(id, ephemeral.err());
    const read = await call('GET', `${base()}/Subscription/${id}`);
    assert.match(read.body.reason, /^herald listen --ephemeral/, 'marked so that no other listener reuses it');
    await call('POST', `${base()}/Patient`, { resourceType: 'Patient' });
    await until(`an event (stdout: ${ephemeral.out()})`, () => ephemeral.out().includes('"eventNumber":1'), WAIT);

    // A second, plain listener does not reuse the ephemeral subscription.
    const plain = herald(['listen', '--base', base(), '--topic', TOPIC]);
    await until(`the plain listener to start (stderr: ${plain.err()})`, () => plain.err().includes('listening to'), WAIT);
    const plainId = createdId(plain.err());
    assert.ok(plainId && plainId !== id, plain.err());

    ephemeral.child.kill('SIGTERM');
    const [code] = await ephemeral.exited;
    assert.equal(code, 0, ephemeral.err());
    assert.match(ephemeral.err(), new RegExp(`deleted Subscription/${id} \\(ephemeral\\)`));
    assert.doesNotMatch(ephemeral.err(), /left Subscription/);
    assert.equal((await call('GET', `${base()}/Subscription/${id}`)).status, 410, 'the ephemeral subscription is gone');

    plain.child.kill('SIGINT');
    const [plainCode] = await plain.exited;
    assert.equal(plainCode, 0, plain.err());
    assert.ok(plain.err().includes(`left Subscription/${plainId} on ${base()}`), plain.err());
    assert.ok(plain.err().includes(`herald subscriptions --base ${base()} --delete ${plainId}`), plain.err());
    assert.equal((await call('GET', `${base()}/Subscription/${plainId}`)).status, 200, 'without --ephemeral it stays');
  });

  it('herald subscriptions lists status and event counts, --delete removes one, --all the rest', { timeout: 120_000 }, async () => {
    const v = 'R4';
    const r4 = server.fhir(v);
    const ws = await call('POST', `${r4}/Subscription`, { resourceType: 'Subscription', status: 'active', reason: 'list me', criteria: 'Patient', channel: { type: 'websocket' } });
    assert.equal(ws.status, 201, JSON.stringify(ws.body));
    const other = await call('POST', `${r4}/Subscription`, { resourceType: 'Subscription', status: 'active', reason: 'and me', criteria: 'Observation', channel: { type: 'websocket' } });
    assert.equal(other.status, 201, JSON.stringify(other.body));
    for (let i = 0; i < 2; i++) await call('POST', `${r4}/Patient`, { resourceType: 'Patient' });

    const table = await run(['subscriptions', '--base', r4]);
    assert.equal(table.code, 0, table.err);
    const lines = table.out.trim().split('\n');
    assert.match(lines[0]!, /^ID\s+STATUS\s+EVENTS\s+CHANNEL\s+TOPIC OR CRITERIA$/);
    const row = lines.find((l) => l.startsWith(ws.body.id));
    assert.ok(row, table.out);
    assert.match(row, /\sactive\s+2\s+websocket\s+Patient$/, 'status and event count from $status');

    const json = await run(['subscriptions', '--base', r4, '--json']);
    const objects = json.out.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(
      objects.find((o) => o.id === other.body.id),
      { id: other.body.id, status: 'active', events: 0, channel: 'websocket', criteria: 'Observation', content: 'empty', reason: 'and me' },
    );

    const deleted = await run(['subscriptions', '--base', r4, '--delete', ws.body.id]);
    assert.equal(deleted.code, 0, deleted.err);
    assert.equal(deleted.out.trim(), `deleted Subscription/${ws.body.id}`);
    assert.equal((await call('GET', `${r4}/Subscription/${ws.body.id}`)).status, 410);

    const all = await run(['subscriptions', '--base', r4, '--all']);
    assert.equal(all.code, 0, all.err);
    assert.ok(all.out.includes(`deleted Subscription/${other.body.id}`), all.out);
    const empty = await run(['subscriptions', '--base', r4]);
    assert.equal(empty.out.trim(), 'no subscriptions');

    const bad = await run(['subscriptions', '--base', r4, '--all', '--delete', 'x']);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /give --delete or --all, not both/);
  });
});
