import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VERSIONS, call, useServer } from '../helpers/server.ts';

/**
 * Search follows canonical references (references.html#canonical): a reference parameter whose
 * elements are canonicals (`QuestionnaireResponse.questionnaire`) names its target by URL, with an
 * optional `|version`. Chains, `_has`, `_include` and `_revinclude` go to the resources whose `url`
 * is that URL and, when the reference names a version, whose `version` is that version; without
 * one, every version the server holds. On SQLite, and on PostgreSQL under HERALD_TEST_STORE=postgres.
 */
const ids = (bundle: any, mode = 'match') =>
  (bundle.entry ?? [])
    .filter((e: any) => e.search?.mode === mode)
    .map((e: any) => e.resource.id)
    .sort();

describe('search through canonical references', () => {
  const server = useServer();

  for (const v of VERSIONS) {
    describe(`on /fhir/${v}`, () => {
      const get = async (q: string) => {
        const res = await call('GET', `${server.fhir(v)}/${q}`);
        assert.equal(res.status, 200, res.text.slice(0, 300));
        return res.body;
      };

      it('seeds Questionnaires in two versions and responses that name them with and without a version', async () => {
        const put = async (r: any) => assert.ok([200, 201].includes((await call('PUT', `${server.fhir(v)}/${r.resourceType}/${r.id}`, r)).status));
        const q = (id: string, url: string, version: string, title: string) => put({ resourceType: 'Questionnaire', id, url, version, title, status: 'active' });
        await q('q1', 'http://example.org/q/intake', '1.0', 'Intake');
        await q('q2', 'http://example.org/q/intake', '2.0', 'Intake two');
        await q('q3', 'http://example.org/q/other', '1.0', 'Other');
        const qr = (id: string, questionnaire: string, status: string) => put({ resourceType: 'QuestionnaireResponse', id, questionnaire, status });
        await qr('r1', 'http://example.org/q/intake|1.0', 'completed');
        await qr('r2', 'http://example.org/q/intake', 'in-progress');
        await qr('r3', 'http://example.org/q/other', 'completed');
        await qr('r4', 'http://example.org/q/unknown', 'completed');
        // A plain search on the parameter, as before: by URL, and by URL and version.
        assert.deepEqual(ids(await get('QuestionnaireResponse?questionnaire=http://example.org/q/intake')), ['r1', 'r2']);
        assert.deepEqual(ids(await get('QuestionnaireResponse?questionnaire=http://example.org/q/intake|1.0')), ['r1']);
      });

      it('chains through the URL, and through the version when one is named', async () => {
        // r1 names version 1.0 (q1 only); r2 names no version (q1 and q2).
        assert.deepEqual(ids(await get('QuestionnaireResponse?questionnaire.title:exact=Intake')), ['r1', 'r2']);
        assert.deepEqual(ids(await get('QuestionnaireResponse?questionnaire.title:exact=Intake%20two')), ['r2']);
        assert.deepEqual(ids(await get('QuestionnaireResponse?questionnaire:Questionnaire.title=other')), ['r3']);
        assert.deepEqual(ids(await get('QuestionnaireResponse?questionnaire.title=nothing')), []);
        // A chain with a further condition on the response itself.
        assert.deepEqual(ids(await get('QuestionnaireResponse?questionnaire.title:exact=Intake&status=completed')), ['r1']);
      });

      it('_has finds the Questionnaires that matching responses name', async () => {
        assert.deepEqual(ids(await get('Questionnaire?_has:QuestionnaireResponse:questionnaire:status=completed')), ['q1', 'q3']);
        assert.deepEqual(ids(await get('Questionnaire?_has:QuestionnaireResponse:questionnaire:status=in-progress')), ['q1', 'q2']);
        assert.deepEqual(ids(await get('Questionnaire?_has:QuestionnaireResponse:questionnaire:status=stopped')), []);
      });

      it('_include and _revinclude follow the URL (and the version when named)', async () => {
        const r1 = await get('QuestionnaireResponse?_id=r1&_include=QuestionnaireResponse:questionnaire');
        assert.deepEqual([ids(r1), ids(r1, 'include')], [['r1'], ['q1']]);
        const r2 = await get('QuestionnaireResponse?_id=r2,r4&_include=QuestionnaireResponse:questionnaire:Questionnaire');
        assert.deepEqual([ids(r2), ids(r2, 'include')], [['r2', 'r4'], ['q1', 'q2']]);
        const q2 = await get('Questionnaire?_id=q2&_revinclude=QuestionnaireResponse:questionnaire');
        assert.deepEqual([ids(q2), ids(q2, 'include')], [['q2'], ['r2']]);
        const q1 = await get('Questionnaire?_id=q1,q3&_revinclude=QuestionnaireResponse:questionnaire');
        assert.deepEqual([ids(q1), ids(q1, 'include')], [['q1', 'q3'], ['r1', 'r2', 'r3']]);
      });

      it('names a resource that records no version by any version; looks only at the types a canonical can name', async () => {
        const put = (r: any) => call('PUT', `${server.fhir(v)}/${r.resourceType}/${r.id}`, r);
        await put({ resourceType: 'Questionnaire', id: 'q5', url: 'http://example.org/q/unversioned', title: 'Unversioned', status: 'active' });
        await put({ resourceType: 'QuestionnaireResponse', id: 'r5', questionnaire: 'http://example.org/q/unversioned|3', status: 'completed' });
        assert.deepEqual(ids(await get('QuestionnaireResponse?questionnaire.title=unversioned')), ['r5']);
        // A ValueSet with a Questionnaire's URL: QuestionnaireResponse.questionnaire cannot name it.
        await put({ resourceType: 'ValueSet', id: 'vs1', url: 'http://example.org/q/intake', status: 'active' });
        const both = await get('?_type=Questionnaire,ValueSet&_has:QuestionnaireResponse:questionnaire:status=completed');
        assert.deepEqual(ids(both), ['q1', 'q3', 'q5']);
        assert.equal((await call('DELETE', `${server.fhir(v)}/ValueSet/vs1`)).status, 204);
        assert.equal((await call('DELETE', `${server.fhir(v)}/QuestionnaireResponse/r5`)).status, 204);
      });

      if (v !== 'R5') {
        it('follows a parameter that declares no targets to any type with a url (R4 RequestGroup.instantiates-canonical)', async () => {
          await call('PUT', `${server.fhir(v)}/PlanDefinition/pd1`, { resourceType: 'PlanDefinition', id: 'pd1', url: 'http://example.org/pd/1', status: 'active' });
          await call('PUT', `${server.fhir(v)}/RequestGroup/rg1`, { resourceType: 'RequestGroup', id: 'rg1', status: 'active', intent: 'plan', instantiatesCanonical: ['http://example.org/pd/1'] });
          const res = await get('RequestGroup?_id=rg1&_include=RequestGroup:instantiates-canonical');
          assert.deepEqual([ids(res), ids(res, 'include')], [['rg1'], ['pd1']]);
        });
      }

      it('counts a link through canonicals twice against the search budget, so a search cannot grow past it', async () => {
        const titles = Array.from({ length: 31 }, (_, i) => `t${i}`).join(',');
        const name = `${'_has:ActivityDefinition:derived-from:'.repeat(3)}derived-from:ActivityDefinition.derived-from:ActivityDefinition.derived-from:ActivityDefinition.derived-from:ActivityDefinition.title`;
        const res = await call('GET', `${server.fhir(v)}/ActivityDefinition?${name}=${titles}`);
        assert.equal(res.status, 400, res.text.slice(0, 300));
        assert.equal(res.body.issue[0].code, 'too-costly');
        assert.match(res.body.issue[0].diagnostics, /through canonicals counting two/);
        // One link through a canonical, a few values: within the budget.
        assert.equal((await call('GET', `${server.fhir(v)}/QuestionnaireResponse?questionnaire.title=a,b,c`)).status, 200);
      });

      it('forgets a Questionnaire once deleted, and finds the new one that takes its URL', async () => {
        assert.equal((await call('DELETE', `${server.fhir(v)}/Questionnaire/q3`)).status, 204);
        assert.deepEqual(ids(await get('QuestionnaireResponse?questionnaire:Questionnaire.title=other')), []);
        const inc = await get('QuestionnaireResponse?_id=r3&_include=QuestionnaireResponse:questionnaire');
        assert.deepEqual(ids(inc, 'include'), []);
        await call('PUT', `${server.fhir(v)}/Questionnaire/q4`, { resourceType: 'Questionnaire', id: 'q4', url: 'http://example.org/q/other', title: 'Other again', status: 'active' });
        assert.deepEqual(ids(await get('QuestionnaireResponse?questionnaire:Questionnaire.title=other')), ['r3']);
        assert.deepEqual(ids(await get('Questionnaire?_has:QuestionnaireResponse:questionnaire:status=completed')), ['q1', 'q4']);
      });
    });
  }
});
