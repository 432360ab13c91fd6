import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { call, useServer, VERSIONS } from '../helpers/server.ts';

const withIdentifier = (value: string, system = 'urn:mrn') => ({
  resourceType: 'Patient',
  identifier: [{ system, value }],
  active: true,
});

describe('conditional create and update', () => {
  const server = useServer();

  for (const v of VERSIONS) {
    describe(`on /fhir/${v}`, () => {
      const base = () => server.fhir(v);

      it('If-None-Exist creates once, then answers 200 with the existing resource', async () => {
        const h = { 'if-none-exist': 'identifier=urn:mrn|c-1' };
        const first = await call('POST', `${base()}/Patient`, withIdentifier('c-1'), h);
        assert.equal(first.status, 201);
        const second = await call('POST', `${base()}/Patient`, withIdentifier('c-1'), h);
        assert.equal(second.status, 200);
        assert.equal(second.body.id, first.body.id);
        assert.equal(second.body.meta.versionId, '1');
      });

      it('If-None-Exist is atomic under concurrency: ten racing creates make one resource', async () => {
        const h = { 'if-none-exist': 'identifier=urn:mrn|race' };
        const all = await Promise.all(Array.from({ length: 10 }, () => call('POST', `${base()}/Patient`, withIdentifier('race'), h)));
        assert.equal(all.filter((r) => r.status === 201).length, 1);
        assert.equal(new Set(all.map((r) => r.body.id)).size, 1);
      });

      it('matches identifier with and without system, and by _id', async () => {
        const id = (await call('POST', `${base()}/Patient`, withIdentifier('c-2'))).body.id;
        for (const q of ['identifier=c-2', 'identifier=urn:mrn|c-2', `_id=${id}`, `_id=${id}&identifier=c-2`]) {
          const res = await call('POST', `${base()}/Patient`, withIdentifier('c-2'), { 'if-none-exist': q });
          assert.equal(res.status, 200, q);
          assert.equal(res.body.id, id, q);
        }
        const other = await call('POST', `${base()}/Patient`, withIdentifier('c-2'), { 'if-none-exist': 'identifier=other|c-2' });
        assert.equal(other.status, 201);
      });

      it('If-None-Exist matching several resources is a 412', async () => {
        await call('POST', `${base()}/Patient`, withIdentifier('dup'));
        await call('POST', `${base()}/Patient`, withIdentifier('dup'));
        const res = await call('POST', `${base()}/Patient`, withIdentifier('dup'), { 'if-none-exist': 'identifier=dup' });
        assert.equal(res.status, 412);
        assert.equal(res.body.resourceType, 'OperationOutcome');
      });

      it('refuses criteria it cannot evaluate instead of ignoring them', async () => {
        const res = await call('POST', `${base()}/Patient`, withIdentifier('x'), { 'if-none-exist': 'nickname=Smith' });
        assert.equal(res.status, 400);
        assert.match(JSON.stringify(res.body.issue), /nickname/);
      });

      it('evaluates any search parameter as criteria', async () => {
        const body = { resourceType: 'Patient', name: [{ family: `Cond${v}`, given: ['Ann'] }], birthDate: '1970-02-03' };
        const h = { 'if-none-exist': `family=Cond${v}&birthdate=1970-02` };
        const first = await call('POST', `${base()}/Patient`, body, h);
        assert.equal(first.status, 201);
        const second = await call('POST', `${base()}/Patient`, body, h);
        assert.equal(second.status, 200);
        assert.equal(second.body.id, first.body.id);
      });

      it('conditional update updates the single match, creates when none, and 412s on several', async () => {
        const created = await call('PUT', `${base()}/Patient?identifier=urn:mrn|cu-1`, withIdentifier('cu-1'));
        assert.equal(created.status, 201);
        const id = created.body.id;
        const updated = await call('PUT', `${base()}/Patient?identifier=urn:mrn|cu-1`, { ...withIdentifier('cu-1'), active: false });
        assert.equal(updated.status, 200);
        assert.equal(updated.body.id, id);
        assert.equal(updated.body.meta.versionId, '2');
        const mismatch = await call('PUT', `${base()}/Patient?identifier=urn:mrn|cu-1`, { ...withIdentifier('cu-1'), id: 'other' });
        assert.equal(mismatch.status, 400);
        await call('POST', `${base()}/Patient`, withIdentifier('cu-2'));
        await call('POST', `${base()}/Patient`, withIdentifier('cu-2'));
        const many = await call('PUT', `${base()}/Patient?identifier=cu-2`, withIdentifier('cu-2'));
        assert.equal(many.status, 412);
        const clientId = await call('PUT', `${base()}/Patient?identifier=cu-3`, { ...withIdentifier('cu-3'), id: `cu3-${v}` });
        assert.equal(clientId.status, 201);
        assert.equal(clientId.body.id, `cu3-${v}`);
      });

      it('conditional update with no match does not overwrite the live resource the body names (409), and honours If-Match', async () => {
        const other = await call('PUT', `${base()}/Patient/cu-other-${v}`, { ...withIdentifier('cu-other'), id: `cu-other-${v}` });
        assert.equal(other.status, 201);
        const clash = await call('PUT', `${base()}/Patient?identifier=urn:mrn|cu-nomatch`, { ...withIdentifier('cu-nomatch'), id: `cu-other-${v}` });
        assert.equal(clash.status, 409);
        assert.equal(clash.body.resourceType, 'OperationOutcome');
        const kept = await call('GET', `${base()}/Patient/cu-other-${v}`);
        assert.equal(kept.body.meta.versionId, '1');
        assert.equal(kept.body.identifier[0].value, 'cu-other');
        // A deleted one may be made again by the criteria's create (update as create).
        await call('DELETE', `${base()}/Patient/cu-other-${v}`);
        const again = await call('PUT', `${base()}/Patient?identifier=urn:mrn|cu-nomatch`, { ...withIdentifier('cu-nomatch'), id: `cu-other-${v}` });
        assert.equal(again.status, 201);
        assert.equal(again.body.meta.versionId, '3');
        // If-Match: the match's version, else 412; with no match there is no version to match.
        const stale = await call('PUT', `${base()}/Patient?identifier=urn:mrn|cu-nomatch`, { ...withIdentifier('cu-nomatch'), gender: 'other' }, { 'if-match': 'W/"99"' });
        assert.equal(stale.status, 412);
        const fresh = await call('PUT', `${base()}/Patient?identifier=urn:mrn|cu-nomatch`, { ...withIdentifier('cu-nomatch'), gender: 'other' }, { 'if-match': 'W/"3"' });
        assert.equal(fresh.status, 200);
        assert.equal(fresh.body.meta.versionId, '4');
        const none = await call('PUT', `${base()}/Patient?identifier=urn:mrn|cu-none-at-all`, withIdentifier('cu-none-at-all'), { 'if-match': 'W/"1"' });
        assert.equal(none.status, 412);
        assert.equal((await call('GET', `${base()}/Patient?identifier=urn:mrn|cu-none-at-all`)).body.total, 0);
      });

      it('criteria run inside the write, so they may only select: result parameters, _has and multi-link chains are a 400 naming the parameter', async () => {
        const org = (await call('POST', `${base()}/Organization`, { resourceType: 'Organization', name: `Org${v}` })).body.id;
        const body = { ...withIdentifier('cheap-1'), managingOrganization: { reference: `Organization/${org}` } };
        for (const [criteria, named] of [
          ['identifier=cheap-1&_sort=family', '_sort'],
          ['identifier=cheap-1&_count=1', '_count'],
          ['_include=Patient:organization&identifier=cheap-1', '_include'],
          ['_revinclude=Observation:subject&identifier=cheap-1', '_revinclude'],
          ['identifier=cheap-1&_total=none', '_total'],
          ['_has:Observation:subject:code=x', '_has:Observation:subject:code'],
          ['organization.partof.name=x', 'organization.partof.name'],
        ]) {
          for (const res of [
            await call('POST', `${base()}/Patient`, body, { 'if-none-exist': criteria! }),
            await call('PUT', `${base()}/Patient?${criteria}`, body),
          ]) {
            assert.equal(res.status, 400, `${criteria}: ${res.text.slice(0, 200)}`);
            assert.deepEqual(res.body.issue[0].expression, [named], criteria);
          }
        }
        // One link of a chain is allowed.
        const h = { 'if-none-exist': `organization.name=Org${v}` };
        assert.equal((await call('POST', `${base()}/Patient`, body, h)).status, 201);
        assert.equal((await call('POST', `${base()}/Patient`, body, h)).status, 200);
      });

      it('a deleted resource no longer matches conditions', async () => {
        const id = (await call('POST', `${base()}/Patient`, withIdentifier('del-1'))).body.id;
        await call('DELETE', `${base()}/Patient/${id}`);
        const res = await call('POST', `${base()}/Patient`, withIdentifier('del-1'), { 'if-none-exist': 'identifier=del-1' });
        assert.equal(res.status, 201);
        assert.notEqual(res.body.id, id);
      });

      it('resolves conditional references in a create, update, patch or batch entry to the one match; none or several is a 412 and nothing is written', async () => {
        const one = (await call('POST', `${base()}/Patient`, withIdentifier(`cref-${v}`))).body.id as string;
        const obs = (reference: string, extra: Record<string, unknown> = {}) => ({
          resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference }, ...extra,
        });
        const created = await call('POST', `${base()}/Observation`, obs(`Patient?identifier=urn:mrn|cref-${v}`));
        assert.equal(created.status, 201, created.text);
        assert.equal(created.body.subject.reference, `Patient/${one}`);
        assert.equal((await call('GET', `${base()}/Observation?subject=Patient/${one}`)).body.total, 1, 'indexed as the resolved reference');
        const id = created.body.id as string;
        // In an update (performer too: every Reference), and in a patch's value.
        const updated = await call('PUT', `${base()}/Observation/${id}`, obs(`Patient/${one}`, { id, performer: [{ reference: `Patient?identifier=cref-${v}` }] }));
        assert.equal(updated.body.performer[0].reference, `Patient/${one}`);
        const patched = await call('PATCH', `${base()}/Observation/${id}`, [{ op: 'add', path: '/focus', value: [{ reference: `Patient?_id=${one}` }] }], { 'content-type': 'application/json-patch+json' });
        assert.equal(patched.status, 200, patched.text);
        assert.equal(patched.body.focus[0].reference, `Patient/${one}`);
        const batch = await call('POST', base(), { resourceType: 'Bundle', type: 'batch', entry: [{ resource: obs(`Patient?identifier=cref-${v}`), request: { method: 'POST', url: 'Observation' } }] });
        assert.equal(batch.body.entry[0].response.status, '201 Created');
        assert.equal(batch.body.entry[0].resource.subject.reference, `Patient/${one}`);
        // None, several, and criteria that are not a search: nothing written.
        const before = (await call('GET', `${base()}/Observation?code:text=x&_summary=count`)).body.total;
        const none = await call('POST', `${base()}/Observation`, obs(`Patient?identifier=urn:mrn|cref-none-${v}`));
        assert.equal(none.status, 412);
        assert.match(none.body.issue[0].diagnostics, /matches no Patient/);
        await call('POST', `${base()}/Patient`, withIdentifier(`cref-${v}`));
        const several = await call('PUT', `${base()}/Observation/${id}`, obs(`Patient?identifier=urn:mrn|cref-${v}`, { id }));
        assert.equal(several.status, 412);
        assert.match(several.body.issue[0].diagnostics, /more than one/);
        assert.equal((await call('POST', `${base()}/Observation`, obs('Patient?nonsense=1'))).status, 400);
        // Each is a search inside the write: at most 100 different ones per resource, in a transaction too.
        const many = obs(`Patient/${one}`, { performer: Array.from({ length: 101 }, (_, i) => ({ reference: `Patient?identifier=urn:mrn|many-${i}` })) });
        for (const res of [await call('POST', `${base()}/Observation`, many), await call('POST', base(), { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: many, request: { method: 'POST', url: 'Observation' } }] })]) {
          assert.equal(res.status, 400);
          assert.equal(res.body.issue[0].code, 'too-costly');
          assert.match(res.body.issue[0].diagnostics, /101 different conditional references/);
        }
        const spread = Array.from({ length: 11 }, (_, k) => ({
          resource: obs(`Patient/${one}`, { performer: Array.from({ length: 100 }, (_, i) => ({ reference: `Patient?identifier=urn:mrn|spread-${k}-${i}` })) }),
          request: { method: 'POST', url: 'Observation' },
        }));
        const spreadTx = await call('POST', base(), { resourceType: 'Bundle', type: 'transaction', entry: spread });
        assert.equal(spreadTx.status, 400);
        assert.match(spreadTx.body.issue[0].diagnostics, /need 1100 searches, more than the 1000/);
        assert.equal((await call('GET', `${base()}/Observation?code:text=x&_summary=count`)).body.total, before);
        assert.equal((await call('GET', `${base()}/Observation/${id}`)).body.meta.versionId, '3');
        // Deep in nested extensions, still resolved; a Bundle stored as a resource (a document) keeps its links.
        let ext: Record<string, unknown> = { url: 'http://example.org/leaf', valueReference: { reference: `Patient?_id=${one}` } };
        for (let d = 0; d < 30; d++) ext = { url: `http://example.org/level-${d}`, extension: [ext] };
        const deep = await call('POST', `${base()}/Basic`, { resourceType: 'Basic', code: { text: 'deep' }, extension: [ext] });
        assert.equal(deep.status, 201, deep.text);
        assert.ok(deep.text.includes(`"reference":"Patient/${one}"`) && !deep.text.includes('Patient?_id'));
        const signature = { type: [{ system: 'urn:iso-astm:E1762-95:2013', code: '1.2.840.10065.1.12.1.1' }], when: '2020-01-01T00:00:00Z', who: { reference: `Patient?_id=${one}` } };
        const stored = await call('POST', `${base()}/Bundle`, { resourceType: 'Bundle', type: 'collection', signature, entry: [{ fullUrl: 'urn:uuid:0b0b0b0b-0000-4000-8000-000000000001', resource: obs(`Patient?_id=${one}`) }] });
        assert.equal(stored.status, 201, stored.text);
        assert.equal(stored.body.signature.who.reference, `Patient?_id=${one}`);
        assert.equal(stored.body.entry[0].resource.subject.reference, `Patient?_id=${one}`);
      });
    });
  }
});
