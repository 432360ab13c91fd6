import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { call, useServer } from '../helpers/server.ts';

const APP = 'https://app.example.org';

/** What a browser sends before a cross-origin PUT with the headers FHIR clients use. */
const preflight = (origin: string) => ({
  origin,
  'access-control-request-method': 'PUT',
  'access-control-request-headers': 'authorization, content-type, if-match, prefer',
});

describe('CORS (HERALD_CORS_ORIGINS)', () => {
  describe('with exact origins', () => {
    const server = useServer({ HERALD_CORS_ORIGINS: `${APP},http://localhost:3000` });

    it('answers a preflight from a listed origin with the methods and headers FHIR clients need', async () => {
      const res = await call('OPTIONS', `${server.fhir('R4')}/Patient/1`, undefined, preflight(APP));
      assert.ok(res.status === 204 || res.status === 200, String(res.status));
      assert.equal(res.headers.get('access-control-allow-origin'), APP);
      assert.match(res.headers.get('vary') ?? '', /origin/i);
      const methods = res.headers.get('access-control-allow-methods')!.split(',').map((m) => m.trim());
      for (const m of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']) assert.ok(methods.includes(m), m);
      const allowed = res.headers.get('access-control-allow-headers')!.toLowerCase().split(',').map((h) => h.trim());
      for (const h of ['authorization', 'if-match', 'if-none-exist', 'if-none-match', 'prefer', 'content-type']) assert.ok(allowed.includes(h), h);
    });

    it('lets a listed origin read ETag, Location, Content-Location and Last-Modified of a create', async () => {
      const res = await call('POST', `${server.fhir('R4')}/Patient`, { resourceType: 'Patient' }, { origin: 'http://localhost:3000' });
      assert.equal(res.status, 201);
      assert.equal(res.headers.get('access-control-allow-origin'), 'http://localhost:3000');
      const exposed = res.headers.get('access-control-expose-headers')!.toLowerCase().split(',').map((h) => h.trim());
      for (const h of ['etag', 'location', 'content-location', 'last-modified', 'preference-applied', 'allow']) assert.ok(exposed.includes(h), h);
    });

    it('gives an unlisted origin no CORS headers (the browser then withholds the answer)', async () => {
      const res = await call('GET', `${server.fhir('R4')}/metadata`, undefined, { origin: 'https://evil.example' });
      assert.equal(res.headers.get('access-control-allow-origin'), null);
      const pre = await call('OPTIONS', `${server.fhir('R4')}/Patient/1`, undefined, preflight('https://evil.example'));
      assert.equal(pre.headers.get('access-control-allow-origin'), null);
    });
  });

  describe('with *', () => {
    const server = useServer({ HERALD_CORS_ORIGINS: '*' });

    it('lets any origin call the API in open mode', async () => {
      const res = await call('GET', `${server.fhir('R5')}/metadata`, undefined, { origin: 'https://anywhere.example' });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
    });
  });

  describe('not set', () => {
    const server = useServer();

    it('sends no CORS headers', async () => {
      const res = await call('GET', `${server.fhir('R4')}/metadata`, undefined, { origin: APP });
      assert.equal(res.headers.get('access-control-allow-origin'), null);
    });
  });

  it('refuses * in auth mode, and * beside other origins, at start', () => {
    assert.throws(() => loadConfig([], { HERALD_CORS_ORIGINS: '*', HERALD_AUTH_CLIENTS: 'clients.json' }), /HERALD_CORS_ORIGINS=\* is refused in auth mode/);
    assert.throws(() => loadConfig([], { HERALD_CORS_ORIGINS: `*,${APP}` }), /stands alone/);
    assert.throws(() => loadConfig([], { HERALD_CORS_ORIGINS: 'app.example.org' }), /not an origin/);
    assert.deepEqual(loadConfig([], { HERALD_CORS_ORIGINS: `${APP}/` }).corsOrigins, [APP]);
  });
});
