import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { call, useServer, VERSIONS } from '../helpers/server.ts';

const EXPECTED = { R4: '4.0.1', R4B: '4.3.0', R5: '5.0.0' };

describe('metadata and health', () => {
  const server = useServer();

  it('GET /healthz answers 200 when ready', async () => {
    const res = await call('GET', `${server.url}/healthz`);
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'ok');
  });

  for (const v of VERSIONS) {
    it(`/fhir/${v}/metadata states the version and what the base supports`, async () => {
      const res = await call('GET', `${server.fhir(v)}/metadata`);
      assert.equal(res.status, 200);
      const cs = res.body;
      assert.equal(cs.resourceType, 'CapabilityStatement');
      assert.equal(cs.fhirVersion, EXPECTED[v]);
      assert.equal(cs.kind, 'instance');
      assert.equal(cs.implementation.url, server.fhir(v));
      assert.deepEqual(cs.format, ['application/fhir+json', 'application/json']);
      const rest = cs.rest[0];
      assert.deepEqual(rest.interaction.map((i: any) => i.code).sort(), ['batch', 'history-system', 'search-system', 'transaction']);
      const patient = rest.resource.find((r: any) => r.type === 'Patient');
      assert.deepEqual(
        patient.interaction.map((i: any) => i.code).sort(),
        ['create', 'delete', 'history-instance', 'history-type', 'patch', 'read', 'search-type', 'update', 'vread'],
      );
      const params = new Map(patient.searchParam.map((p: any) => [p.name, p]));
      for (const name of ['_id', '_lastUpdated', 'name', 'family', 'birthdate', 'identifier', 'organization']) assert.ok(params.has(name), name);
      assert.equal((params.get('birthdate') as any).type, 'date');
      assert.ok(patient.searchInclude.includes('Patient:organization'));
      assert.equal(patient.conditionalCreate, true);
      assert.equal(patient.conditionalUpdate, true);
      assert.equal(patient.conditionalDelete, 'single');
      // Every resource type of that version, and no abstract ones.
      const types = rest.resource.map((r: any) => r.type);
      assert.ok(types.length > 140);
      assert.ok(!types.includes('DomainResource') && !types.includes('Resource'));
      assert.equal(types.includes('SubscriptionTopic'), v !== 'R4');
    });

    it(`/fhir/${v}/metadata is a valid CapabilityStatement by the base's own $validate (no empty topic list)`, async () => {
      const cs = (await call('GET', `${server.fhir(v)}/metadata`)).body;
      const subscription = cs.rest[0].resource.find((r: any) => r.type === 'Subscription');
      assert.equal(subscription.extension, undefined, 'no topic is active on this server');
      const res = await call('POST', `${server.fhir(v)}/CapabilityStatement/$validate`, cs);
      assert.equal(res.status, 200);
      const errors = res.body.issue.filter((i: any) => i.severity === 'error' || i.severity === 'fatal');
      assert.deepEqual(errors, []);
    });
  }
});
