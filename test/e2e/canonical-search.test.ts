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
