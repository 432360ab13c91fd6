import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { call, useServer, VERSIONS } from '../helpers/server.ts';

const JSON_PATCH = { 'content-type': 'application/json-patch+json' };

describe('JSON Patch', () => {
  const server = useServer();

  for (const v of VERSIONS) {
    describe(`on /fhir/${v}`, () => {
      const base = () => server.fhir(v);
      const make = async () =>
        (await call('POST', `${base()}/Patient`, { resourceType: 'Patient', active: true, name: [{ family: 'P' }] })).body.id as string;

      it('applies add, replace, remove and test operations as a new version', async () => {
        const id = await make();
        const ops = [
          { op: 'test', path: '/active', value: true },
          { op: 'replace', path: '/active', value: false },
          { op: 'add', path: '/gender', value: 'female' },
          { op: 'remove', path: '/name' },
        ];
        const res = await call('PATCH', `${base()}/Patient/${id}`, ops, JSON_PATCH);
        assert.equal(res.status, 200);
        assert.equal(res.body.meta.versionId, '2');
        assert.equal(res.body.active, false);
        assert.equal(res.body.gender, 'female');
        assert.equal(res.body.name, undefined);
      });

      it('a failing test operation is a 422 and changes nothing', async () => {
        const id = await make();
        const res = await call('PATCH', `${base()}/Patient/${id}`, [{ op: 'test', path: '/active', value: false }, { op: 'remove', path: '/active' }], JSON_PATCH);
        assert.equal(res.status, 422);
        assert.equal((await call('GET', `${base()}/Patient/${id}`)).body.meta.versionId, '1');
      });

      it('a patch that makes the resource invalid is rejected with the offending path', async () => {
        const id = await make();
        const res = await call('PATCH', `${base()}/Patient/${id}`, [{ op: 'add', path: '/birthDate', value: 'not-a-date' }], JSON_PATCH);
        assert.equal(res.status, 400);
        assert.ok(res.body.issue.some((i: any) => i.expression?.[0]?.includes('birthDate')));
      });

      it('may not change id or resourceType; malformed patches and wrong media types are refused', async () => {
        const id = await make();
        assert.equal((await call('PATCH', `${base()}/Patient/${id}`, [{ op: 'replace', path: '/id', value: 'x' }], JSON_PATCH)).status, 422);
        assert.equal((await call('PATCH', `${base()}/Patient/${id}`, { op: 'replace' }, JSON_PATCH)).status, 400);
        assert.equal((await call('PATCH', `${base()}/Patient/${id}`, [{ op: 'jump', path: '/a' }], JSON_PATCH)).status, 400);
        assert.equal((await call('PATCH', `${base()}/Patient/${id}`, [{ op: 'remove', path: '/nothing/here' }], JSON_PATCH)).status, 400);
        assert.equal((await call('PATCH', `${base()}/Patient/${id}`, [])).status, 415);
        assert.equal((await call('PATCH', `${base()}/Patient/missing`, [], JSON_PATCH)).status, 404);
        assert.equal((await call('GET', `${base()}/Patient/${id}`)).body.meta.versionId, '1');
      });

      it('a patch that replaces or removes the whole document, reaches through __proto__, or uses an operation outside RFC 6902 is a 4xx and changes nothing, alone or in a batch', async () => {
        const id = await make();
        const bad = [
          [{ op: 'remove', path: '' }],
          [{ op: 'replace', path: '', value: null }],
          [{ op: 'replace', path: '', value: [1] }],
          [{ op: 'add', path: '/__proto__/x', value: 1 }],
          [{ op: '_get', path: '/active', value: 1 }],
          [null],
        ];
        for (const ops of bad) {
          const res = await call('PATCH', `${base()}/Patient/${id}`, ops, JSON_PATCH);
          assert.ok(res.status === 400 || res.status === 422, `${JSON.stringify(ops)}: ${res.status}`);
          assert.equal(res.body.resourceType, 'OperationOutcome');
          const entry = { resource: { resourceType: 'Binary', contentType: 'application/json-patch+json', data: Buffer.from(JSON.stringify(ops)).toString('base64') }, request: { method: 'PATCH', url: `Patient/${id}` } };
          const batch = await call('POST', base(), { resourceType: 'Bundle', type: 'batch', entry: [entry] });
          assert.equal(batch.status, 200);
          assert.match(batch.body.entry[0].response.status, /^4\d\d/, `${JSON.stringify(ops)} in a batch: ${batch.body.entry[0].response.status}`);
        }
        assert.equal((await call('GET', `${base()}/Patient/${id}`)).body.meta.versionId, '1');
        assert.equal(({} as any).x, undefined, 'nothing reached Object.prototype');
      });

      it('honours If-Match', async () => {
        const id = await make();
        const res = await call('PATCH', `${base()}/Patient/${id}`, [{ op: 'replace', path: '/active', value: false }], { ...JSON_PATCH, 'if-match': 'W/"7"' });
        assert.equal(res.status, 412);
      });
    });
  }
});
