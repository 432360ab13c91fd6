import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { call, useServer, VERSIONS } from '../helpers/server.ts';

/** Required bindings on writes: create, update, patch and transaction entries alike. */
describe('required bindings on writes', () => {
  const server = useServer();

  for (const v of VERSIONS) {
    describe(`on /fhir/${v}`, () => {
      const base = () => server.fhir(v);

      it('refuses Patient.gender "M" with a 400 naming the element, the value and the value set, and stores nothing', async () => {
        const res = await call('POST', `${base()}/Patient`, { resourceType: 'Patient', identifier: [{ system: 'urn:b', value: 'm' }], gender: 'M' });
        assert.equal(res.status, 400);
        assert.equal(res.body.resourceType, 'OperationOutcome');
        const [issue] = res.body.issue;
        assert.equal(issue.code, 'code-invalid');
        assert.deepEqual(issue.expression, ['Patient.gender']);
        assert.match(issue.diagnostics, /^"M" is not in the value set http:\/\/hl7\.org\/fhir\/ValueSet\/administrative-gender\|[\d.]+, the required binding of Patient\.gender: one of female, male, other, unknown$/);
        assert.equal((await call('GET', `${base()}/Patient?identifier=urn:b|m&_summary=count`)).body.total, 0);
        assert.equal((await call('POST', `${base()}/Patient`, { resourceType: 'Patient', gender: 'male' })).status, 201);
      });

      it('checks updates, patches and transaction entries the same way', async () => {
        const id = (await call('POST', `${base()}/Patient`, { resourceType: 'Patient', gender: 'female' })).body.id as string;
        const put = await call('PUT', `${base()}/Patient/${id}`, { resourceType: 'Patient', id, gender: 'F' });
        assert.equal(put.status, 400);
        assert.equal(put.body.issue[0].code, 'code-invalid');
        const patch = await call('PATCH', `${base()}/Patient/${id}`, [{ op: 'add', path: '/telecom', value: [{ system: 'fax-machine', value: '1' }] }], { 'content-type': 'application/json-patch+json' });
        assert.equal(patch.status, 400);
        assert.deepEqual(patch.body.issue[0].expression, ['Patient.telecom[0].system']);
        const tx = await call('POST', base(), {
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [{ request: { method: 'POST', url: 'Observation' }, resource: { resourceType: 'Observation', status: 'done', code: { text: 'x' } } }],
        });
        assert.equal(tx.status, 400);
        assert.ok(tx.body.issue.some((i: any) => i.code === 'code-invalid' && /Observation\.status/.test(JSON.stringify(i))), tx.text);
        assert.equal((await call('GET', `${base()}/Patient/${id}`)).body.meta.versionId, '1');
      });
    });
  }
});
