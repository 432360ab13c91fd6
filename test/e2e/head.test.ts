import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { call, useServer, VERSIONS } from '../helpers/server.ts';

/** HEAD answers every GET with the same status and headers, and no body (RFC 9110 §9.3.2). */
describe('HEAD', () => {
  const server = useServer();

  for (const v of VERSIONS) {
    it(`on /fhir/${v}: read, vread, search, history and metadata answer as GET does, without a body`, async () => {
      const base = server.fhir(v);
      const created = await call('POST', `${base}/Patient`, { resourceType: 'Patient', name: [{ family: 'Head' }] });
      assert.equal(created.status, 201);
      const id = created.body.id as string;
      for (const path of [`Patient/${id}`, `Patient/${id}/_history/1`, 'Patient?name=Head', `Patient/${id}/_history`, '_history', 'metadata', '']) {
        const url = `${base}/${path}`;
        const get = await call('GET', url);
        const head = await call('HEAD', url);
        assert.equal(head.status, get.status, path);
        assert.equal(head.text, '', path);
        assert.equal(head.headers.get('content-type'), get.headers.get('content-type'), path);
        assert.equal(head.headers.get('etag'), get.headers.get('etag'), path);
        assert.equal(head.headers.get('last-modified'), get.headers.get('last-modified'), path);
        // A read sends the stored bytes, so HEAD announces exactly the length GET sends.
        if (path.startsWith('Patient/')) assert.equal(head.headers.get('content-length'), get.headers.get('content-length'), path);
      }
    });

    it(`on /fhir/${v}: errors keep their status, with no body (404, 410, 304)`, async () => {
      const base = server.fhir(v);
      assert.equal((await call('HEAD', `${base}/Patient/nope`)).status, 404);
      const created = await call('POST', `${base}/Patient`, { resourceType: 'Patient' });
      assert.equal((await call('HEAD', `${base}/Patient/${created.body.id}`, undefined, { 'if-none-match': 'W/"1"' })).status, 304);
      assert.equal((await call('DELETE', `${base}/Patient/${created.body.id}`)).status, 204);
      const gone = await call('HEAD', `${base}/Patient/${created.body.id}`);
      assert.equal(gone.status, 410);
      assert.equal(gone.text, '');
      assert.equal((await call('HEAD', `${base}/NoSuchType`)).status, 404);
    });
  }

  it('HEAD /healthz answers 200', async () => {
    const res = await call('HEAD', `${server.url}/healthz`);
    assert.equal(res.status, 200);
    assert.equal(res.text, '');
  });
});
