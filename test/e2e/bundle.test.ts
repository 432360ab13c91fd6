import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { call, useServer, VERSIONS } from '../helpers/server.ts';

describe('batch and transaction Bundles', () => {
  const server = useServer();

  for (const v of VERSIONS) {
    describe(`on /fhir/${v}`, () => {
      const base = () => server.fhir(v);

      it('a transaction resolves urn:uuid references and returns entries in request order', async () => {
        const bundle = {
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [
            {
              fullUrl: 'urn:uuid:11111111-1111-4111-8111-111111111111',
              resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'urn:uuid:22222222-2222-4222-8222-222222222222' } },
              request: { method: 'POST', url: 'Observation' },
            },
            {
              fullUrl: 'urn:uuid:22222222-2222-4222-8222-222222222222',
              resource: { resourceType: 'Patient', name: [{ family: 'Tx' }] },
              request: { method: 'POST', url: 'Patient' },
            },
          ],
        };
        const res = await call('POST', base(), bundle);
        assert.equal(res.status, 200);
        assert.equal(res.body.type, 'transaction-response');
        const [obsEntry, patEntry] = res.body.entry;
        assert.equal(obsEntry.response.status, '201 Created');
        assert.equal(patEntry.resource.resourceType, 'Patient');
        const patientRef = `Patient/${patEntry.resource.id}`;
        assert.equal(obsEntry.resource.subject.reference, patientRef);
        const stored = await call('GET', `${base()}/Observation/${obsEntry.resource.id}`);
        assert.equal(stored.body.subject.reference, patientRef);
        assert.equal(obsEntry.response.location, `${base()}/Observation/${obsEntry.resource.id}/_history/1`);
      });

      it('a transaction is atomic: one failing entry and nothing is stored', async () => {
        const bundle = {
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [
            { resource: { resourceType: 'Patient', id: `atomic-${v}` }, request: { method: 'PUT', url: `Patient/atomic-${v}` } },
            { resource: { resourceType: 'Patient', name: [{ family: 'A' }] }, request: { method: 'POST', url: 'Patient' } },
            { request: { method: 'GET', url: 'Patient/does-not-exist' } },
          ],
        };
        const res = await call('POST', base(), bundle);
        assert.equal(res.status, 404);
        assert.equal(res.body.resourceType, 'OperationOutcome');
        assert.match(res.body.issue[0].diagnostics, /entry\[2\]/);
        assert.equal((await call('GET', `${base()}/Patient/atomic-${v}`)).status, 404);
      });

      it('a transaction entry that is invalid fails the whole transaction with a 400', async () => {
        const bundle = {
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [
            { resource: { resourceType: 'Patient', id: `valid-${v}` }, request: { method: 'PUT', url: `Patient/valid-${v}` } },
            { resource: { resourceType: 'Patient', id: `bad-${v}` }, request: { method: 'PUT', url: `Patient/other-${v}` } },
          ],
        };
        const res = await call('POST', base(), bundle);
        assert.equal(res.status, 400);
        assert.equal((await call('GET', `${base()}/Patient/valid-${v}`)).status, 404);
      });

      it('a transaction runs deletes, creates, updates and reads in FHIR order, and conditional creates', async () => {
        await call('PUT', `${base()}/Patient/order-${v}`, { resourceType: 'Patient', id: `order-${v}`, active: true });
        const bundle = {
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [
            { request: { method: 'GET', url: `Patient/order-${v}` } },
            { resource: { resourceType: 'Patient', id: `order-${v}`, active: false }, request: { method: 'PUT', url: `Patient/order-${v}` } },
            {
              fullUrl: 'urn:uuid:33333333-3333-4333-8333-333333333333',
              resource: { resourceType: 'Patient', identifier: [{ system: 'urn:s', value: `tx-${v}` }] },
              request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=urn:s|tx-${v}` },
            },
          ],
        };
        const first = await call('POST', base(), bundle);
        assert.equal(first.status, 200);
        assert.equal(first.body.entry[0].resource.active, false, 'the GET ran after the PUT');
        assert.equal(first.body.entry[2].response.status, '201 Created');
        const again = await call('POST', base(), bundle);
        assert.equal(again.body.entry[2].response.status, '200 OK');
        assert.equal(again.body.entry[2].resource.id, first.body.entry[2].resource.id);
      });

      it('a transaction may not touch one resource twice', async () => {
        const bundle = {
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [
            { resource: { resourceType: 'Patient', id: 'twice' }, request: { method: 'PUT', url: 'Patient/twice' } },
            { request: { method: 'DELETE', url: 'Patient/twice' } },
          ],
        };
        assert.equal((await call('POST', base(), bundle)).status, 400);
      });

      // http.html#trules: identities are resolved before any entry runs, conditional ones included.
      describe('identities resolved before the entries run', () => {
        const tx = (entry: unknown[]) => call('POST', base(), { resourceType: 'Bundle', type: 'transaction', entry });
        const patientsWith = async (value: string) => (await call('GET', `${base()}/Patient?identifier=urn:t|${value}`)).body.total;
        const pat = (value: string, extra: object = {}) => ({ resourceType: 'Patient', identifier: [{ system: 'urn:t', value }], ...extra });
        const obs = (subject: string) => ({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: subject } });

        it('a conditional update\'s fullUrl is replaced by the resource it matches, or creates', async () => {
          const existing = (await call('POST', `${base()}/Patient`, pat(`cu-${v}`))).body.id;
          const res = await tx([
            { fullUrl: 'urn:uuid:aaaaaaaa-0000-4000-8000-000000000001', resource: pat(`cu-${v}`, { active: true }), request: { method: 'PUT', url: `Patient?identifier=urn:t|cu-${v}` } },
            { fullUrl: 'urn:uuid:aaaaaaaa-0000-4000-8000-000000000002', resource: pat(`cu-new-${v}`), request: { method: 'PUT', url: `Patient?identifier=urn:t|cu-new-${v}` } },
            { resource: obs('urn:uuid:aaaaaaaa-0000-4000-8000-000000000001'), request: { method: 'POST', url: 'Observation' } },
            { resource: obs('urn:uuid:aaaaaaaa-0000-4000-8000-000000000002'), request: { method: 'POST', url: 'Observation' } },
          ]);
          assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
          assert.equal(res.body.entry[0].resource.id, existing);
          assert.equal(res.body.entry[0].response.status, '200 OK');
          const created = res.body.entry[1].resource.id;
          assert.equal(res.body.entry[1].response.status, '201 Created');
          assert.equal(res.body.entry[2].resource.subject.reference, `Patient/${existing}`);
          assert.equal(res.body.entry[3].resource.subject.reference, `Patient/${created}`);
          assert.equal((await call('GET', `${base()}/Patient/${created}`)).status, 200);
        });

        it('a conditional reference is replaced by the one resource it matches; none or several fail the transaction', async () => {
          const one = (await call('POST', `${base()}/Patient`, pat(`cr-${v}`))).body.id;
          const ok = await tx([{ resource: obs(`Patient?identifier=urn:t|cr-${v}`), request: { method: 'POST', url: 'Observation' } }]);
          assert.equal(ok.status, 200);
          assert.equal(ok.body.entry[0].resource.subject.reference, `Patient/${one}`);
          const none = await tx([{ resource: obs(`Patient?identifier=urn:t|cr-none-${v}`), request: { method: 'POST', url: 'Observation' } }]);
          assert.equal(none.status, 412);
          assert.match(none.body.issue[0].diagnostics, /matches no Patient/);
          await call('POST', `${base()}/Patient`, pat(`cr-${v}`));
          const several = await tx([{ resource: obs(`Patient?identifier=urn:t|cr-${v}`), request: { method: 'POST', url: 'Observation' } }]);
          assert.equal(several.status, 412);
          assert.match(several.body.issue[0].diagnostics, /more than one/);
        });

        it('a fullUrl is replaced in uri and url elements and in narrative links, not in other strings', async () => {
          const binary = 'urn:uuid:cccccccc-0000-4000-8000-000000000001';
          const res = await tx([
            { fullUrl: binary, resource: { resourceType: 'Binary', contentType: 'text/plain', data: 'aGk=' }, request: { method: 'POST', url: 'Binary' } },
            {
              resource: {
                resourceType: 'DocumentReference',
                status: 'current',
                text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml"><a href="${binary}">doc</a> <a href="urn:uuid:dddddddd-0000-4000-8000-000000000009">other</a></div>` },
                ...(v === 'R4' ? { masterIdentifier: { system: 'urn:ietf:rfc:3986', value: binary } } : { identifier: [{ system: 'urn:ietf:rfc:3986', value: binary }] }),
                extension: [{ url: 'http://example.org/source', valueUri: binary }],
                content: [{ attachment: { contentType: 'text/plain', url: binary } }],
              },
              request: { method: 'POST', url: 'DocumentReference' },
            },
          ]);
          assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 400));
          const id = `Binary/${res.body.entry[0].resource.id}`;
          const doc = res.body.entry[1].resource;
          assert.equal(doc.content[0].attachment.url, id);
          assert.equal(doc.extension[0].valueUri, id);
          assert.match(doc.text.div, new RegExp(`<a href="${id}">doc</a>`));
          assert.match(doc.text.div, /href="urn:uuid:dddddddd-0000-4000-8000-000000000009"/, 'a link to no entry stays');
          assert.equal((v === 'R4' ? doc.masterIdentifier : doc.identifier[0]).value, binary, 'an identifier is a string, not a reference');
        });

        it('leaves canonicals and absolute fullUrls alone, and resources held inside others (a Bundle entry), and replaces links in primitive extensions, in single-quoted narrative links and with a version kept', async () => {
          const cs = `http://example.org/fhir/CodeSystem/cs-${v}`;
          const patientUrn = 'urn:uuid:eeeeeeee-0000-4000-8000-000000000001';
          const res = await tx([
            { fullUrl: cs, resource: { resourceType: 'CodeSystem', id: `cs-${v}`, url: cs, status: 'active', content: 'complete' }, request: { method: 'PUT', url: `CodeSystem/cs-${v}` } },
            { fullUrl: patientUrn, resource: pat(`links-${v}`), request: { method: 'POST', url: 'Patient' } },
            {
              resource: {
                ...obs(patientUrn),
                meta: { profile: [patientUrn] },
                code: { coding: [{ system: cs, code: 'a' }] },
                _status: { extension: [{ url: 'http://example.org/x', valueReference: { reference: patientUrn } }] },
                focus: [{ reference: `${patientUrn}/_history/1` }],
                text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml"><a href='${patientUrn}'>p</a></div>` },
              },
              request: { method: 'POST', url: 'Observation' },
            },
            {
              resource: { resourceType: 'Bundle', type: 'collection', entry: [{ fullUrl: patientUrn, resource: { resourceType: 'Patient', managingOrganization: { reference: `Organization?identifier=urn:t|none-${v}` } } }] },
              request: { method: 'POST', url: 'Bundle' },
            },
          ]);
          assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 400));
          const patientRef = `Patient/${res.body.entry[1].resource.id}`;
          assert.equal(res.body.entry[0].resource.url, cs, 'an absolute fullUrl is no local name');
          const o = res.body.entry[2].resource;
          assert.equal(o.code.coding[0].system, cs);
          assert.deepEqual(o.meta.profile, [patientUrn], 'canonicals are not replaced');
          assert.equal(o.subject.reference, patientRef);
          assert.equal(o._status.extension[0].valueReference.reference, patientRef);
          assert.equal(o.focus[0].reference, `${patientRef}/_history/1`);
          assert.match(o.text.div, new RegExp(`href='${patientRef}'`));
          const inner = res.body.entry[3].resource.entry[0];
          assert.equal(inner.fullUrl, patientUrn, 'a Bundle held as a resource keeps its own links');
          assert.equal(inner.resource.managingOrganization.reference, `Organization?identifier=urn:t|none-${v}`);
        });

        it('names an entry by its criteria: a conditional reference to what a conditional create makes, a conditional update by a matched create\'s fullUrl', async () => {
          const made = await tx([
            { resource: pat(`cc-${v}`), request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=urn:t|cc-${v}` } },
            { resource: obs(`Patient?identifier=urn:t|cc-${v}`), request: { method: 'POST', url: 'Observation' } },
          ]);
          assert.equal(made.status, 200, JSON.stringify(made.body).slice(0, 300));
          assert.equal(made.body.entry[1].resource.subject.reference, `Patient/${made.body.entry[0].resource.id}`);
          const pe = made.body.entry[0].resource.id;
          const oe = made.body.entry[1].resource.id;
          const urn = 'urn:uuid:ffffffff-0000-4000-8000-000000000001';
          const again = await tx([
            { fullUrl: urn, resource: pat(`cc-${v}`), request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=urn:t|cc-${v}` } },
            { resource: pat(`cc-${v}`), request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=urn:t|cc-${v}` } },
            { resource: { ...obs(urn), id: oe, status: 'amended' }, request: { method: 'PUT', url: `Observation?subject=${urn}&_id=${oe}` } },
            { request: { method: 'GET', url: `Patient/${pe}/_history` } },
            { request: { method: 'POST', url: 'Patient/_search?_id=x' } },
            { request: { method: 'POST', url: 'Patient/_search?_id=y' } },
          ]);
          assert.equal(again.status, 200, JSON.stringify(again.body).slice(0, 400));
          assert.equal(again.body.entry[0].response.status, '200 OK', 'a matched conditional create writes nothing');
          assert.equal(again.body.entry[1].response.status, '200 OK');
          assert.equal(again.body.entry[2].resource.meta.versionId, '2');
          assert.equal(again.body.entry[2].resource.subject.reference, `Patient/${pe}`);
          assert.equal(again.body.entry[3].resource.type, 'history');
        });

        it('two entries that resolve to one resource fail the transaction and store nothing', async () => {
          const cases: [string, unknown[]][] = [
            ['two conditional creates with the same criteria', [
              { fullUrl: 'urn:uuid:bbbbbbbb-0000-4000-8000-000000000001', resource: pat(`dc-${v}`), request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=urn:t|dc-${v}` } },
              { fullUrl: 'urn:uuid:bbbbbbbb-0000-4000-8000-000000000002', resource: pat(`dc-${v}`), request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=urn:t|dc-${v}` } },
              { resource: obs('urn:uuid:bbbbbbbb-0000-4000-8000-000000000002'), request: { method: 'POST', url: 'Observation' } },
            ]],
            ['two conditional updates with the same criteria', [
              { resource: pat(`dc-${v}`), request: { method: 'PUT', url: `Patient?identifier=urn:t|dc-${v}` } },
              { resource: pat(`dc-${v}`, { active: true }), request: { method: 'PUT', url: `Patient?identifier=urn:t|dc-${v}` } },
            ]],
            ['a create and a conditional update its criteria then match', [
              { resource: pat(`dc-${v}`), request: { method: 'POST', url: 'Patient' } },
              { resource: pat(`dc-${v}`, { active: true }), request: { method: 'PUT', url: `Patient?identifier=urn:t|dc-${v}` } },
            ]],
            ['the same fullUrl twice', [
              { fullUrl: 'urn:uuid:bbbbbbbb-0000-4000-8000-000000000003', resource: pat(`dc-${v}`), request: { method: 'POST', url: 'Patient' } },
              { fullUrl: 'urn:uuid:bbbbbbbb-0000-4000-8000-000000000003', resource: pat(`dc-${v}`), request: { method: 'POST', url: 'Patient' } },
            ]],
          ];
          for (const [what, entries] of cases) {
            const res = await tx(entries);
            assert.equal(res.status, 400, `${what}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
            assert.equal(res.body.resourceType, 'OperationOutcome', what);
            assert.equal(await patientsWith(`dc-${v}`), 0, `${what}: nothing stored`);
          }
          // A conditional delete and an update of the resource it matches.
          const target = (await call('PUT', `${base()}/Patient/dd-${v}`, { ...pat(`dd-${v}`), id: `dd-${v}` })).body.id;
          const res = await tx([
            { request: { method: 'DELETE', url: `Patient?identifier=urn:t|dd-${v}` } },
            { resource: { ...pat(`dd-${v}`), id: target, active: false }, request: { method: 'PUT', url: `Patient/${target}` } },
          ]);
          assert.equal(res.status, 400);
          assert.match(res.body.issue[0].diagnostics, new RegExp(`both write Patient/${target}`));
          assert.equal((await call('GET', `${base()}/Patient/${target}`)).body.meta.versionId, '1');
        });
      });

      it('a HEAD entry is answered as its GET without the resource, in a batch and a transaction', async () => {
        const id = (await call('POST', `${base()}/Patient`, { resourceType: 'Patient', name: [{ family: 'Head' }] })).body.id;
        for (const type of ['batch', 'transaction']) {
          const res = await call('POST', base(), { resourceType: 'Bundle', type, entry: [
            { request: { method: 'HEAD', url: `Patient/${id}` } },
            { request: { method: 'HEAD', url: `Patient?_id=${id}` } },
          ] });
          assert.equal(res.status, 200, type);
          assert.equal(res.body.entry[0].response.status, '200 OK', type);
          assert.equal(res.body.entry[0].response.etag, 'W/"1"', type);
          assert.equal(res.body.entry[0].resource, undefined, type);
          assert.match(res.body.entry[1].response.status, /^200/, type);
          assert.equal(res.body.entry[1].resource, undefined, type);
        }
        const missing = await call('POST', base(), { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'HEAD', url: 'Patient/no-such-one' } }] });
        assert.match(missing.body.entry[0].response.status, /^404/);
      });

      it('a batch runs each entry on its own and reports each outcome', async () => {
        const bundle = {
          resourceType: 'Bundle',
          type: 'batch',
          entry: [
            { resource: { resourceType: 'Patient', active: true }, request: { method: 'POST', url: 'Patient' } },
            { request: { method: 'GET', url: 'Patient/missing' } },
            { resource: { resourceType: 'Patient', bogus: 1 }, request: { method: 'POST', url: 'Patient' } },
            { request: { method: 'GET', url: 'metadata' } },
          ],
        };
        const res = await call('POST', base(), bundle);
        assert.equal(res.status, 200);
        assert.equal(res.body.type, 'batch-response');
        const [a, b, c, d] = res.body.entry;
        assert.equal(a.response.status, '201 Created');
        assert.equal(b.response.status, '404');
        assert.equal(b.response.outcome.resourceType, 'OperationOutcome');
        assert.equal(c.response.status, '400');
        assert.equal(d.resource.resourceType, 'CapabilityStatement');
        assert.equal((await call('GET', `${base()}/Patient/${a.resource.id}`)).status, 200);
      });

      it('patches inside a transaction with a Binary JSON Patch', async () => {
        await call('PUT', `${base()}/Patient/bp-${v}`, { resourceType: 'Patient', id: `bp-${v}`, active: true });
        const patch = Buffer.from(JSON.stringify([{ op: 'replace', path: '/active', value: false }])).toString('base64');
        const bundle = {
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [{ resource: { resourceType: 'Binary', contentType: 'application/json-patch+json', data: patch }, request: { method: 'PATCH', url: `Patient/bp-${v}` } }],
        };
        const res = await call('POST', base(), bundle);
        assert.equal(res.status, 200);
        assert.equal((await call('GET', `${base()}/Patient/bp-${v}`)).body.active, false);
      });

      it('refuses Bundles that are neither batch nor transaction, and entries without request', async () => {
        assert.equal((await call('POST', base(), { resourceType: 'Bundle', type: 'collection' })).status, 400);
        const noRequest = { resourceType: 'Bundle', type: 'batch', entry: [{ resource: { resourceType: 'Patient' } }] };
        assert.equal((await call('POST', base(), noRequest)).status, 400);
        assert.equal((await call('POST', base(), { resourceType: 'Patient' })).status, 400);
      });
    });
  }
});

describe('a Bundle\'s searches and history are bounded together', () => {
  const server = useServer();
  const base = () => server.fhir('R4');
  const search = (url: string) => ({ request: { method: 'GET', url } });

  it('at most 100 searches and history reads in one Bundle: more is a 400 too-costly, before anything runs', async () => {
    for (const type of ['batch', 'transaction']) {
      const res = await call('POST', base(), { resourceType: 'Bundle', type, entry: [{ resource: { resourceType: 'Patient', identifier: [{ system: 'urn:bundle-cap', value: type }] }, request: { method: 'POST', url: 'Patient' } }, ...Array.from({ length: 101 }, () => search('Patient?_count=1'))] });
      assert.equal(res.status, 400, type);
      assert.equal(res.body.issue[0].code, 'too-costly');
      assert.match(res.body.issue[0].diagnostics, /at most 100 searches and history reads \(this one has 101\)/);
      assert.equal((await call('GET', `${base()}/Patient?identifier=urn:bundle-cap|${type}`)).body.total, 0, 'nothing ran');
    }
  });

  it('together they return at most 10,000 resources: the entries past that answer 422 too-costly, in a batch and after a transaction\'s writes', async () => {
    const made = await call('POST', base(), { resourceType: 'Bundle', type: 'transaction', entry: Array.from({ length: 1001 }, (_, i) => ({ resource: { resourceType: 'Patient', name: [{ family: `Cap${i}` }] }, request: { method: 'POST', url: 'Patient' } })) });
    assert.equal(made.status, 200);
    const pages = Array.from({ length: 12 }, () => search('Patient?_count=1000'));
    const check = (entries: { response: { status: string; outcome?: { issue: { code: string; diagnostics: string }[] } }; resource?: { entry?: unknown[] } }[]) => {
      for (const e of entries.slice(0, 10)) assert.equal(e.resource?.entry?.length, 1000);
      for (const e of entries.slice(10)) {
        assert.equal(e.response.status, '422');
        assert.equal(e.response.outcome!.issue[0]!.code, 'too-costly');
        assert.match(e.response.outcome!.issue[0]!.diagnostics, /have returned 10000 resources, the most one Bundle may \(10000\): ask for the rest in another request/);
      }
    };
    const b = await call('POST', base(), { resourceType: 'Bundle', type: 'batch', entry: pages });
    assert.equal(b.status, 200);
    check(b.body.entry);
    const t = await call('POST', base(), { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: { resourceType: 'Patient', identifier: [{ system: 'urn:bundle-cap', value: 'tx' }] }, request: { method: 'POST', url: 'Patient' } }, ...pages] });
    assert.equal(t.status, 200);
    assert.match(t.body.entry[0].response.status, /^201/);
    check(t.body.entry.slice(1));
    assert.equal((await call('GET', `${base()}/Patient?identifier=urn:bundle-cap|tx`)).body.total, 1, 'the write stands');
  });
});
