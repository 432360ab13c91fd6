import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, fetch as undiciFetch } from 'undici';
import { WebSocket } from 'ws';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import type { HeraldServer } from '../../src/http/server.ts';
import { freePort } from '../helpers/server.ts';

/** A self-signed certificate for 127.0.0.1, made with the openssl command line. */
function selfSigned(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

describe('TLS (HERALD_TLS_CERT, HERALD_TLS_KEY)', () => {
  let dir: string;
  let app: HeraldServer;
  let base: string;
  let agent: Agent;
  let ca: Buffer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-tls-'));
    const { cert, key } = selfSigned(dir);
    ca = readFileSync(cert);
    const port = await freePort();
    const config = loadConfig([], { PORT: String(port), HERALD_DB: 'sqlite::memory:', LOG_LEVEL: 'silent', HERALD_TLS_CERT: cert, HERALD_TLS_KEY: key });
    assert.equal(config.baseUrl, `https://127.0.0.1:${port}`);
    app = await buildApp(config);
    await app.listen({ port, host: '127.0.0.1' });
    base = config.baseUrl;
    agent = new Agent({ connect: { ca } });
  });
  after(async () => {
    await app?.close();
    await agent?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves FHIR over https on the port, with https links', async () => {
    const created = await undiciFetch(`${base}/fhir/R4/Patient`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/fhir+json', 'accept-encoding': 'identity' },
      body: JSON.stringify({ resourceType: 'Patient' }),
    });
    assert.equal(created.status, 201);
    assert.match(created.headers.get('location')!, new RegExp(`^${base}/fhir/R4/Patient/`));
    const search = (await (await undiciFetch(`${base}/fhir/R4/Patient`, { dispatcher: agent })).json()) as { link: { url: string }[] };
    assert.ok(search.link.every((l) => l.url.startsWith(`${base}/fhir/R4/`)));
  });

  it('does not answer plain http on that port', async () => {
    await assert.rejects(fetch(`${base.replace('https', 'http')}/healthz`));
  });

  it('takes websocket connections over wss on the same port, and hands out wss:// URLs', async () => {
    const topic = await undiciFetch(`${base}/fhir/R5/SubscriptionTopic`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'SubscriptionTopic', url: 'http://example.org/topics/tls', status: 'active', resourceTrigger: [{ resource: 'Patient', supportedInteraction: ['create'] }] }),
    });
    assert.equal(topic.status, 201);
    const created = await undiciFetch(`${base}/fhir/R5/Subscription`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Subscription', status: 'requested', topic: 'http://example.org/topics/tls', channelType: { code: 'websocket' }, content: 'id-only' }),
    });
    assert.equal(created.status, 201);
    const { id } = (await created.json()) as { id: string };
    const tokenRes = await undiciFetch(`${base}/fhir/R5/Subscription/${id}/$get-ws-binding-token`, { dispatcher: agent });
    const params = (await tokenRes.json()) as { parameter: { name: string; valueString?: string; valueUrl?: string }[] };
    const url = params.parameter.find((p) => p.name === 'websocket-url')!.valueUrl!;
    const token = params.parameter.find((p) => p.name === 'token')!.valueString!;
    assert.equal(url, `${base.replace('https', 'wss')}/ws`);
    const ws = new WebSocket(url, { ca });
    try {
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      const frames: any[] = [];
      ws.on('message', (d: Buffer) => frames.push(JSON.parse(d.toString('utf8'))));
      ws.send(`bind-with-token ${token}`);
      const deadline = Date.now() + 15_000;
      while (!frames.some((f) => f.resourceType === 'Bundle') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok(frames.some((f) => f.resourceType === 'Bundle'), 'a handshake Bundle over wss');
    } finally {
      ws.close();
    }
  });

  it('refuses to start with only one of the two settings, or an unreadable file', async () => {
    assert.throws(() => loadConfig([], { HERALD_TLS_CERT: join(dir, 'cert.pem') }), /go together/);
    const config = loadConfig([], { HERALD_DB: 'sqlite::memory:', LOG_LEVEL: 'silent', HERALD_TLS_CERT: join(dir, 'missing.pem'), HERALD_TLS_KEY: join(dir, 'key.pem') });
    await assert.rejects(buildApp(config), /HERALD_TLS_CERT: cannot read/);
  });
});
