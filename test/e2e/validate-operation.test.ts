import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { call, useServer, VERSIONS } from '../helpers/server.ts';
import { subscriptionResource } from '../helpers/subscriptions.ts';

const params = (...parameter: object[]) => ({ resourceType: 'Parameters', parameter });
const errors = (outcome: any) => outcome.issue.filter((i: any) => i.severity === 'error');

/** $validate (FHIR Resource-validate): what a write would answer, as a 200 OperationOutcome, with nothing stored. */
describe('$validate', () => {
  const server = useServer();

  for (const v of VERSIONS) {
    describe(`on /fhir/${v}`, () => {
      const base = () => server.fhir(v);
      const count = async () => (await call('GET', `${base()}/Patient?_summary=count`)).body.total as number;

      it('is listed for every resource type in the CapabilityStatement', async () => {
        const cap = (await call('GET', `${base()}/metadata`)).body;
        for (const r of cap.rest[0].resource) {
          assert.ok(r.operation?.some((o: any) => o.name === 'validate' && o.definition === 'http://hl7.org/fhir/OperationDefinition/Resource-validate'), r.type);
        }
      });

      it('answers a valid resource (as the body, or in Parameters) with an informational outcome, storing nothing', async () => {
        const before = await count();
        const body = await call('POST', `${base()}/Patient/$validate`, { resourceType: 'Patient', gender: 'female' });
        assert.equal(body.status, 200);
        assert.equal(body.body.resourceType, 'OperationOutcome');
        assert.deepEqual(errors(body.body), []);
        assert.equal(body.body.issue[0].severity, 'information');
        const wrapped = await call('POST', `${base()}/Patient/$validate`, params({ name: 'resource', resource: { resourceType: 'Patient' } }, { name: 'mode', valueCode: 'create' }));
        assert.equal(wrapped.status, 200);
        assert.deepEqual(errors(wrapped.body), []);
        assert.equal(await count(), before);
      });

      it('answers an invalid resource with the issues a create gives, as a 200', async () => {
        const bad = { resourceType: 'Patient', gender: 'M', birthDate: 'yesterday' };
        const create = await call('POST', `${base()}/Patient`, bad);
        assert.equal(create.status, 400);
        for (const mode of [undefined, 'create']) {
          const url = `${base()}/Patient/$validate${mode ? `?mode=${mode}` : ''}`;
          const res = await call('POST', url, bad);
          assert.equal(res.status, 200);
          assert.deepEqual(res.body.issue, create.body.issue, mode);
        }
        const gender = create.body.issue.find((i: any) => i.code === 'code-invalid');
        assert.deepEqual(gender.expression, ['Patient.gender']);
        assert.match(gender.diagnostics, /"M" is not in the value set http:\/\/hl7\.org\/fhir\/ValueSet\/administrative-gender/);
      });

      it('mode=create resolves conditional references as the create would: none matching is the create\'s 412 issue', async () => {
        const obs = (reference: string) => ({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference } });
        const create = await call('POST', `${base()}/Observation`, obs('Patient?identifier=urn:validate|nobody'));
        assert.equal(create.status, 412);
        const res = await call('POST', `${base()}/Observation/$validate?mode=create`, obs('Patient?identifier=urn:validate|nobody'));
        assert.deepEqual(res.body.issue, create.body.issue);
        assert.equal((await call('POST', `${base()}/Patient`, { resourceType: 'Patient', identifier: [{ system: 'urn:validate', value: `one-${v}` }] })).status, 201);
        const ok = await call('POST', `${base()}/Observation/$validate?mode=create`, obs(`Patient?identifier=urn:validate|one-${v}`));
        assert.equal(ok.body.issue[0].severity, 'information', JSON.stringify(ok.body));
      });

      it('mode=update checks the id and If-Match against the stored resource, storing nothing', async () => {
        const created = await call('POST', `${base()}/Patient`, { resourceType: 'Patient', active: true });
        const id = created.body.id as string;
        const next = { resourceType: 'Patient', id, active: false };
        const ok = await call('POST', `${base()}/Patient/${id}/$validate?mode=update`, next, { 'if-match': 'W/"1"' });
        assert.deepEqual(errors(ok.body), []);
        const stale = await call('POST', `${base()}/Patient/${id}/$validate?mode=update`, next, { 'if-match': 'W/"3"' });
        assert.equal(stale.status, 200);
        assert.deepEqual(errors(stale.body).map((i: any) => i.code), ['conflict']);
        const otherId = await call('POST', `${base()}/Patient/${id}/$validate`, params({ name: 'mode', valueCode: 'update' }, { name: 'resource', resource: { ...next, id: 'other' } }));
        assert.equal(errors(otherId.body)[0].expression[0], 'id');
        const read = await call('GET', `${base()}/Patient/${id}`);
        assert.equal(read.body.meta.versionId, '1');
        assert.equal(read.body.active, true);
      });

      it('mode=delete needs no resource, and deletes nothing', async () => {
        const id = (await call('POST', `${base()}/Patient`, { resourceType: 'Patient' })).body.id as string;
        const res = await call('POST', `${base()}/Patient/${id}/$validate?mode=delete`);
        assert.equal(res.status, 200);
        assert.deepEqual(errors(res.body), []);
        assert.equal((await call('GET', `${base()}/Patient/${id}`)).status, 200);
        const missing = await call('GET', `${base()}/Patient/nobody/$validate?mode=delete`);
        assert.equal(missing.status, 200);
        assert.match(missing.body.issue[0].diagnostics, /does not exist/);
      });

      it('checks a Subscription as its create would (422 rules become issues), and stores none', async () => {
        const sub = subscriptionResource(v, { topic: 'http://example.org/topics/unknown-to-herald', channel: 'websocket' });
        const create = await call('POST', `${base()}/Subscription`, sub);
        assert.equal(create.status, 422);
        const res = await call('POST', `${base()}/Subscription/$validate?mode=create`, sub);
        assert.equal(res.status, 200);
        assert.deepEqual(res.body.issue, create.body.issue);
        assert.equal((await call('GET', `${base()}/Subscription?_summary=count`)).body.total, 0);
      });

      it('cannot validate (4xx) without a resource, with a bad mode or parameter, update at type level, or another profile', async () => {
        assert.equal((await call('POST', `${base()}/Patient/$validate`)).status, 400);
        assert.equal((await call('POST', `${base()}/Patient/$validate?mode=upsert`, { resourceType: 'Patient' })).status, 400);
        assert.equal((await call('POST', `${base()}/Patient/$validate?mode=update`, { resourceType: 'Patient' })).status, 400);
        assert.equal((await call('POST', `${base()}/Patient/$validate?strict=true`, { resourceType: 'Patient' })).status, 400);
        const profile = await call('POST', `${base()}/Patient/$validate?profile=http://example.org/StructureDefinition/my-patient`, { resourceType: 'Patient' });
        assert.equal(profile.status, 400);
        assert.equal(profile.body.issue[0].code, 'not-supported');
        const own = await call('POST', `${base()}/Patient/$validate?profile=http://hl7.org/fhir/StructureDefinition/Patient`, { resourceType: 'Patient' });
        assert.equal(own.status, 200);
        assert.equal((await call('PUT', `${base()}/Patient/$validate`, { resourceType: 'Patient' })).status, 405);
        assert.equal((await call('POST', `${base()}/Nonsense/$validate`, { resourceType: 'Patient' })).status, 404);
      });
    });
  }
});
