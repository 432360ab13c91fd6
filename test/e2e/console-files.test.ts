/**
 * The console's files (issue 18): the committed bundle is what `npm run console:build` makes from
 * src/console/app and src/client now; the page is public, self-contained (a Content-Security-Policy
 * of this origin only, no external URL in its files) and still under the Host check.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { BUNDLE, bundleConsole } from '../../scripts/build-console.ts';
import { call, useServer } from '../helpers/server.ts';

describe('console files', () => {
  const server = useServer();

  it('the committed console.js is not stale (run `npm run console:build`)', async () => {
    assert.ok(readFileSync(BUNDLE, 'utf8') === (await bundleConsole()), 'src/console/console.js differs from a fresh build: run `npm run console:build` and commit it');
  });

  it('serves the page, script, stylesheet and settings with a same-origin CSP, and no external URL', async () => {
    for (const [path, type] of [
      ['/console/', 'text/html'],
      ['/console/console.js', 'text/javascript'],
      ['/console/console.css', 'text/css'],
      ['/console/config.json', 'application/json'],
    ] as const) {
      const res = await call('GET', `${server.url}${path}`);
      assert.equal(res.status, 200, path);
      assert.ok(res.headers.get('content-type')!.startsWith(type), path);
      assert.match(res.headers.get('content-security-policy')!, /default-src 'none'; script-src 'self'/);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      if (path !== '/console/console.js') assert.doesNotMatch(res.text, /https?:\/\/(?!example\.org|hl7\.org|terminology\.hl7\.org)/, path);
    }
    const settings = await call('GET', `${server.url}/console/config.json`);
    assert.deepEqual(settings.body, { bases: ['R4', 'R4B', 'R5'].map((v) => ({ version: v, path: `/fhir/${v}` })), auth: 'off' });
  });

  it('redirects /console to /console/ and answers other names under it with a 404 OperationOutcome', async () => {
    const res = await fetch(`${server.url}/console`, { redirect: 'manual' });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), '/console/');
    const missing = await call('GET', `${server.url}/console/..%2Fapp.ts`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.resourceType, 'OperationOutcome');
  });

  it('is refused under a Host that is not Herald (DNS rebinding)', async () => {
    const { request } = await import('node:http');
    const url = new URL(`${server.url}/console/`);
    const status = await new Promise<number>((resolve, reject) => {
      request({ host: url.hostname, port: url.port, path: url.pathname, headers: { host: 'attacker.example' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      })
        .on('error', reject)
        .end();
    });
    assert.equal(status, 421);
  });
});
