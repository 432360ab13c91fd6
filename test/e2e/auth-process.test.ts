/**
 * Issue 13 (REQUIREMENTS §10) against the real process, as `npm start` runs it: open mode stays on
 * loopback unless HERALD_ALLOW_OPEN=true, auth mode may listen anywhere; and whatever happens, the
 * log lines carry who did it but never a bearer token, a binding token or a client secret.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { type HeraldProcess, spawnHerald } from '../helpers/process.ts';
import { bearer } from '../helpers/auth.ts';
import { call } from '../helpers/server.ts';
import { persistentDb } from '../helpers/store.ts';
import { subscriptionResource } from '../helpers/subscriptions.ts';
import { connectWs } from '../helpers/ws.ts';

const TOPICS_DIR = fileURLToPath(new URL('../fixtures/topics', import.meta.url));
const TOPIC = 'http://example.org/topics/patient-created';
const dir = mkdtempSync(join(tmpdir(), 'herald-auth-process-'));
const SECRET = 'lab-feed-secret-0123456789';
const READER_SECRET = 'reader-secret-0123456789';
const clients = join(dir, 'clients.json');
writeFileSync(
  clients,
  JSON.stringify({
    clients: [
      { id: 'lab-feed', secret: SECRET, scope: 'system/Patient.cruds system/Subscription.cruds' },
      { id: 'reader', secret: READER_SECRET, scope: 'system/Patient.rs' },
    ],
  }),
);

async function stop(h: HeraldProcess): Promise<void> {
  h.child.kill('SIGTERM');
  await h.exited;
}

/** The JSON log lines a process wrote. */
const lines = (h: HeraldProcess) =>
  h.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);

async function waitForLine(h: HeraldProcess, match: (l: Record<string, any>) => boolean): Promise<Record<string, any>> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const found = lines(h).find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no such log line in:\n${h.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('open mode and HOST (issue 13)', () => {
  it('refuses to start on a non-loopback HOST without HERALD_ALLOW_OPEN=true, saying why', async () => {
    await assert.rejects(spawnHerald({ HOST: '0.0.0.0', HERALD_DB: 'sqlite::memory:' }), (err: Error) => {
      assert.match(err.message, /exited early with code 1/);
      assert.match(err.message, /Open mode .* unless HERALD_ALLOW_OPEN=true/);
      return true;
    });
  });

  it('starts there with HERALD_ALLOW_OPEN=true, and warns that it is open', async () => {
    const h = await spawnHerald({ HOST: '0.0.0.0', HERALD_DB: 'sqlite::memory:', HERALD_ALLOW_OPEN: 'true' });
    try {
      const warning = await waitForLine(h, (l) => /^Open mode/.test(l.msg ?? ''));
      assert.equal(warning.level, 40);
      assert.equal((await call('GET', `${h.url}/fhir/R4/Patient`)).status, 200);
    } finally {
      await stop(h);
    }
  });

  it('warns on loopback too', async () => {
    const h = await spawnHerald({ HERALD_DB: 'sqlite::memory:' });
    try {
      await waitForLine(h, (l) => /^Open mode/.test(l.msg ?? ''));
    } finally {
      await stop(h);
    }
  });
});

describe('auth mode in the real process (issue 13)', () => {
  let h: HeraldProcess;
  before(async () => {
    // Auth mode may listen on every interface without HERALD_ALLOW_OPEN.
    h = await spawnHerald({ HOST: '0.0.0.0', HERALD_DB: await persistentDb(dir, 'herald'), HERALD_AUTH_CLIENTS: clients, HERALD_TOPICS: TOPICS_DIR });
  });
  after(() => stop(h));

  it('does not warn about open mode', () => {
    assert.ok(!h.output().includes('Open mode'));
  });

  it('logs who wrote and who was refused, and never a bearer token, a binding token or a client secret', async () => {
    const token = async (id: string, secret: string) => {
      const res = await call('POST', `${h.url}/auth/token`, new URLSearchParams({ grant_type: 'client_credentials', client_id: id, client_secret: secret }).toString(), {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      });
      assert.equal(res.status, 200, res.text);
      return res.body.access_token as string;
    };
    const feed = await token('lab-feed', SECRET);
    const reader = await token('reader', READER_SECRET);
    const base = `${h.url}/fhir/R5`;
    const id = (rid: string) => ({ ...bearer(feed), 'x-request-id': rid });

    const sub = await call('POST', `${base}/Subscription`, subscriptionResource('R5', { topic: TOPIC, channel: 'websocket' }), id('write-1'));
    assert.equal(sub.status, 201, sub.text);
    const bound = await call('GET', `${base}/Subscription/${sub.body.id}/$get-ws-binding-token`, undefined, id('bind-1'));
    const binding = bound.body.parameter.find((p: any) => p.name === 'token').valueString as string;
    const ws = await connectWs(`${h.url.replace('http', 'ws')}/ws`);
    ws.send(`bind-with-token ${binding}`);
    await ws.next((f) => f?.resourceType === 'Bundle');
    ws.send(`bind-with-token ${binding}x`); // an unknown token: refused on the socket
    await ws.next((f) => f?.resourceType === 'OperationOutcome');
    assert.equal((await call('POST', `${base}/Patient`, { resourceType: 'Patient' }, id('write-2'))).status, 201);
    assert.equal((await call('POST', `${base}/Patient`, { resourceType: 'Patient' }, { ...bearer(reader), 'x-request-id': 'denied-1' })).status, 403);
    const tampered = `${feed.slice(0, -4)}AAAA`;
    assert.equal((await call('GET', `${base}/Patient`, undefined, { ...bearer(tampered), 'x-request-id': 'refused-1' })).status, 401);
    assert.equal((await call('GET', `${base}/Patient?access_token=${feed}`, undefined, { 'x-request-id': 'query-1' })).status, 401);
    const revoke = { resourceType: 'Parameters', parameter: [{ name: 'token', valueString: binding }] };
    assert.equal((await call('POST', `${base}/Subscription/$revoke-ws-binding-token`, revoke, id('revoke-1'))).status, 200);
    await ws.next((f) => f?.resourceType === 'OperationOutcome' && /revoked/.test(JSON.stringify(f)));
    await ws.close();

    const byId = async (rid: string) => waitForLine(h, (l) => l.reqId === rid && l.msg === 'request');
    assert.equal((await byId('write-1')).principal, 'lab-feed');
    assert.equal((await byId('write-2')).principal, 'lab-feed');
    const denied = await byId('denied-1');
    assert.deepEqual([denied.status, denied.principal], [403, 'reader']);
    const refused = await byId('refused-1');
    assert.equal(refused.status, 401);
    assert.match(refused.refused, /signature/);
    assert.deepEqual((await byId('query-1')).params, ['access_token']);
    await byId('revoke-1');

    const out = h.output();
    const signature = (jwt: string) => jwt.split('.')[2]!;
    for (const [what, secret] of [
      ['lab-feed access token', feed],
      ['its signature', signature(feed)],
      ['reader access token', reader],
      ['the tampered token', tampered],
      ['binding token', binding],
      ['client secret', SECRET],
    ] as const) {
      assert.ok(!out.includes(secret), `the log holds the ${what}`);
    }
  });
});
