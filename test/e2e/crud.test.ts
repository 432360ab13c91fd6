import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { call, useServer, VERSIONS } from '../helpers/server.ts';

const patient = (family: string, extra: Record<string, unknown> = {}) => ({
  resourceType: 'Patient',
  name: [{ family, given: ['Ada'] }],
  birthDate: '1815-12-10',
  ...extra,
});

describe('CRUD interactions', () => {
  const server = useServer();

  for (const v of VERSIONS) {
    describe(`on /fhir/${v}`, () => {
      const base = () => server.fhir(v);

      it('creates with a server-assigned id, version 1, Location and ETag', async () => {
        const res = await call('POST', `${base()}/Patient`, patient('Lovelace', { id: 'ignored-client-id' }));
        assert.equal(res.status, 201);
        assert.match(res.headers.get('content-type')!, /^application\/fhir\+json/);
        const id = res.body.id as string;
        assert.notEqual(id, 'ignored-client-id');
        assert.match(id, /^[A-Za-z0-9\-.]{1,64}$/);
        assert.equal(res.body.meta.versionId, '1');
        assert.ok(!Number.isNaN(Date.parse(res.body.meta.lastUpdated)));
        assert.equal(res.headers.get('etag'), 'W/"1"');
        assert.equal(res.headers.get('location'), `${base()}/Patient/${id}/_history/1`);
        assert.ok(res.headers.get('last-modified'));
        assert.ok(res.headers.get('x-request-id'));
      });

      it('reads the current version and vreads each version', async () => {
        const created = await call('POST', `${base()}/Patient`, patient('Read'));
        const id = created.body.id;
        const updated = await call('PUT', `${base()}/Patient/${id}`, { ...patient('Read2'), id });
        assert.equal(updated.status, 200);
        assert.equal(updated.body.meta.versionId, '2');
        const read = await call('GET', `${base()}/Patient/${id}`);
        assert.equal(read.status, 200);
        assert.equal(read.body.name[0].family, 'Read2');
        assert.equal(read.headers.get('etag'), 'W/"2"');
        const v1 = await call('GET', `${base()}/Patient/${id}/_history/1`);
        assert.equal(v1.status, 200);
        assert.equal(v1.body.name[0].family, 'Read');
        assert.equal(v1.body.meta.versionId, '1');
        assert.equal((await call('GET', `${base()}/Patient/${id}/_history/3`)).status, 404);
        assert.equal((await call('GET', `${base()}/Patient/${id}/_history/abc`)).status, 404);
      });

      it('answers 304 to a read whose If-None-Match names the current version (in a list, or *), 200 to other tags', async () => {
        const id = (await call('POST', `${base()}/Patient`, patient('Cache'))).body.id;
        const res = await call('GET', `${base()}/Patient/${id}`, undefined, { 'if-none-match': 'W/"1"' });
        assert.equal(res.status, 304);
        assert.equal((await call('GET', `${base()}/Patient/${id}`, undefined, { 'if-none-match': 'W/"9"' })).status, 200);
        // RFC 9110 §13.1.2: a list of tags, any tag (even one that is not ours), or *.
        const read = (h: Record<string, string>) => call('GET', `${base()}/Patient/${id}`, undefined, h);
        assert.equal((await read({ 'if-none-match': 'W/"7", W/"1"' })).status, 304);
        assert.equal((await read({ 'if-none-match': 'W/"7", "xyz"' })).status, 200);
        assert.equal((await read({ 'if-none-match': '"xyz"' })).status, 200);
        assert.equal((await read({ 'if-none-match': '*' })).status, 304);
        assert.equal((await read({ 'if-none-match': 'garbage' })).status, 400);
      });

      it('read and vread honour _summary and _elements (top-level elements, tagged SUBSETTED)', async () => {
        const id = (await call('POST', `${base()}/Patient`, { ...patient('Shape'), gender: 'female', text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>' } })).body.id;
        const subsetted = (r: any) => r.meta.tag?.some((t: any) => t.code === 'SUBSETTED');
        const elements = await call('GET', `${base()}/Patient/${id}?_elements=gender`);
        assert.equal(elements.status, 200);
        assert.equal(elements.body.gender, 'female');
        assert.equal(elements.body.name, undefined);
        assert.ok(subsetted(elements.body));
        const text = await call('GET', `${base()}/Patient/${id}/_history/1?_summary=text`);
        assert.ok(text.body.text);
        assert.equal(text.body.gender, undefined);
        const data = await call('GET', `${base()}/Patient/${id}?_summary=data`);
        assert.equal(data.body.text, undefined);
        assert.equal(data.body.gender, 'female');
        const whole = await call('GET', `${base()}/Patient/${id}?_summary=false`);
        assert.ok(!subsetted(whole.body) && whole.body.text);
        assert.equal((await call('GET', `${base()}/Patient/${id}?_summary=bogus`)).status, 400);
        assert.equal((await call('GET', `${base()}/Patient/${id}?_summary=count`)).status, 400);
        assert.equal((await call('GET', `${base()}/Patient/${id}?_elements=gender,1bad`)).status, 400);
      });

      it('creates on update with a client id (update-as-create) and answers 201', async () => {
        const id = `client-${v}-1`;
        const res = await call('PUT', `${base()}/Patient/${id}`, { ...patient('Client'), id });
        assert.equal(res.status, 201);
        assert.equal(res.body.id, id);
        assert.equal(res.body.meta.versionId, '1');
        assert.equal(res.headers.get('location'), `${base()}/Patient/${id}/_history/1`);
      });

      it('keeps meta.profile, tag and security through writes, and replaces versionId and lastUpdated', async () => {
        const meta = { versionId: '99', lastUpdated: '2000-01-01T00:00:00Z', tag: [{ system: 'urn:t', code: 'x' }], profile: ['http://example.org/p'] };
        const res = await call('POST', `${base()}/Patient`, patient('Meta', { meta }));
        assert.equal(res.body.meta.versionId, '1');
        assert.notEqual(res.body.meta.lastUpdated, meta.lastUpdated);
        assert.deepEqual(res.body.meta.tag, meta.tag);
        assert.deepEqual(res.body.meta.profile, meta.profile);
      });

      it('deletes: history kept, read answers 410, a second delete is a no-op, update resurrects', async () => {
        const id = (await call('POST', `${base()}/Patient`, patient('Gone'))).body.id;
        const del = await call('DELETE', `${base()}/Patient/${id}`);
        assert.equal(del.status, 204);
        const read = await call('GET', `${base()}/Patient/${id}`);
        assert.equal(read.status, 410);
        assert.equal(read.body.resourceType, 'OperationOutcome');
        assert.equal(read.body.issue[0].code, 'deleted');
        assert.equal((await call('GET', `${base()}/Patient/${id}/_history/1`)).status, 200);
        assert.equal((await call('GET', `${base()}/Patient/${id}/_history/2`)).status, 410);
        assert.equal((await call('DELETE', `${base()}/Patient/${id}`)).status, 204);
        const hist = await call('GET', `${base()}/Patient/${id}/_history`);
        assert.equal(hist.body.total, 2, 'the repeated delete wrote no version');
        const back = await call('PUT', `${base()}/Patient/${id}`, { ...patient('Back'), id });
        assert.equal(back.status, 201);
        assert.equal(back.body.meta.versionId, '3');
        // History answers each version as its request was answered: the PUT that made it again, 201.
        assert.equal((await call('PUT', `${base()}/Patient/${id}`, { ...patient('Back again'), id })).status, 200);
        const entries = (await call('GET', `${base()}/Patient/${id}/_history`)).body.entry;
        assert.deepEqual(entries.map((e: any) => `${e.request.method} ${e.response.status}`), ['PUT 200 OK', 'PUT 201 Created', 'DELETE 204 No Content', 'POST 201 Created']);
        const typeLevel = (await call('GET', `${base()}/Patient/_history?_count=500`)).body.entry.filter((e: any) => e.fullUrl.endsWith(`/Patient/${id}`));
        assert.deepEqual(typeLevel.map((e: any) => e.response.status), ['200 OK', '201 Created', '204 No Content', '201 Created']);
      });

      it('deleting a resource that never existed succeeds without a trace', async () => {
        assert.equal((await call('DELETE', `${base()}/Patient/never-was`)).status, 204);
        assert.equal((await call('GET', `${base()}/Patient/never-was`)).status, 404);
      });

      it('enforces If-Match on update, patch and delete (412 on mismatch)', async () => {
        const id = (await call('POST', `${base()}/Patient`, patient('Match'))).body.id;
        const stale = await call('PUT', `${base()}/Patient/${id}`, { ...patient('X'), id }, { 'if-match': 'W/"2"' });
        assert.equal(stale.status, 412);
        assert.equal(stale.body.resourceType, 'OperationOutcome');
        const ok = await call('PUT', `${base()}/Patient/${id}`, { ...patient('Y'), id }, { 'if-match': 'W/"1"' });
        assert.equal(ok.status, 200);
        const badDel = await call('DELETE', `${base()}/Patient/${id}`, undefined, { 'if-match': 'W/"1"' });
        assert.equal(badDel.status, 412);
        const bad = await call('PUT', `${base()}/Patient/${id}`, { ...patient('Z'), id }, { 'if-match': 'banana' });
        assert.equal(bad.status, 400);
        assert.equal((await call('GET', `${base()}/Patient/${id}`)).body.name[0].family, 'Y');
        // A list holds when one tag names the current version; * when there is one; a tag not ours never.
        assert.equal((await call('PUT', `${base()}/Patient/${id}`, { ...patient('L'), id }, { 'if-match': 'W/"1", W/"2"' })).status, 200);
        assert.equal((await call('PUT', `${base()}/Patient/${id}`, { ...patient('S'), id }, { 'if-match': '*' })).status, 200);
        assert.equal((await call('PUT', `${base()}/Patient/${id}`, { ...patient('O'), id }, { 'if-match': '"opaque"' })).status, 412);
        assert.equal((await call('PUT', `${base()}/Patient/if-match-none-${v}`, { ...patient('N'), id: `if-match-none-${v}` }, { 'if-match': '*' })).status, 412);
        assert.equal((await call('GET', `${base()}/Patient/${id}`)).body.name[0].family, 'S');
        // If-None-Match on an update: * creates only; a tag naming the current version refuses it.
        assert.equal((await call('PUT', `${base()}/Patient/${id}`, { ...patient('NM'), id }, { 'if-none-match': '*' })).status, 412);
        assert.equal((await call('PUT', `${base()}/Patient/${id}`, { ...patient('NM'), id }, { 'if-none-match': 'W/"4"' })).status, 412);
        assert.equal((await call('PUT', `${base()}/Patient/only-new-${v}`, { ...patient('NM'), id: `only-new-${v}` }, { 'if-none-match': '*' })).status, 201);
        assert.equal((await call('PUT', `${base()}/Patient/${id}`, { ...patient('NM2'), id }, { 'if-none-match': 'W/"1"' })).status, 200);
      });

      it('serialises concurrent updates of one resource into consecutive versions', async () => {
        const id = (await call('POST', `${base()}/Patient`, patient('Race'))).body.id;
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => call('PUT', `${base()}/Patient/${id}`, { ...patient(`R${i}`), id })),
        );
        const versions = results.map((r) => Number(r.body.meta.versionId)).sort((a, b) => a - b);
        assert.deepEqual(versions, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
      });

      it('an update, conditional update, patch or transaction entry that changes nothing writes no version', async () => {
        const tag = { system: 'urn:t', code: 'x' };
        const created = (await call('POST', `${base()}/Patient`, patient('Same', { identifier: [{ system: 'urn:same', value: v }], meta: { tag: [tag] } }))).body;
        const id = created.id as string;
        const unchanged = (res: Awaited<ReturnType<typeof call>>, what: string) => {
          assert.equal(res.status, 200, what);
          assert.equal(res.headers.get('etag'), 'W/"1"', what);
          assert.equal(res.headers.get('location'), `${base()}/Patient/${id}/_history/1`, what);
          assert.equal(res.body.meta.lastUpdated, created.meta.lastUpdated, what);
        };
        // The resource as read, sent back.
        unchanged(await call('PUT', `${base()}/Patient/${id}`, created), 'as read');
        // Key order and a stale meta.versionId / lastUpdated do not count: those are the server's.
        const { name, birthDate, ...rest } = created;
        unchanged(await call('PUT', `${base()}/Patient/${id}`, { birthDate, ...rest, meta: { lastUpdated: '2001-01-01T00:00:00Z', versionId: '9', tag: [tag] }, name }), 'reordered');
        unchanged(await call('PUT', `${base()}/Patient?identifier=urn:same|${v}`, created), 'conditional');
        unchanged(await call('PATCH', `${base()}/Patient/${id}`, [], { 'content-type': 'application/json-patch+json' }), 'empty patch');
        unchanged(await call('PATCH', `${base()}/Patient/${id}`, [{ op: 'replace', path: '/birthDate', value: '1815-12-10' }], { 'content-type': 'application/json-patch+json' }), 'patch to the same value');
        const outcome = await call('PUT', `${base()}/Patient/${id}`, created, { prefer: 'return=OperationOutcome' });
        assert.equal(outcome.body.resourceType, 'OperationOutcome');
        assert.match(outcome.body.issue[0].diagnostics, /nothing written/);
        const tx = await call('POST', base(), { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: created, request: { method: 'PUT', url: `Patient/${id}` } }] });
        assert.equal(tx.status, 200);
        assert.equal(tx.body.entry[0].response.status, '200 OK');
        assert.equal(tx.body.entry[0].response.etag, 'W/"1"');
        assert.equal((await call('GET', `${base()}/Patient/${id}/_history`)).body.total, 1, 'one version, however many no-op writes');
        // Anything else is a change: meta.tag dropped, an element added.
        const { meta: _meta, ...bare } = created;
        const untagged = await call('PUT', `${base()}/Patient/${id}`, bare);
        assert.equal(untagged.body.meta.versionId, '2');
        assert.equal(untagged.body.meta.tag, undefined);
        const added = await call('PUT', `${base()}/Patient/${id}`, { ...untagged.body, gender: 'female' });
        assert.equal(added.body.meta.versionId, '3');
      });

      it('honours Prefer: return=minimal, representation and OperationOutcome', async () => {
        const minimal = await call('POST', `${base()}/Patient`, patient('Min'), { prefer: 'return=minimal' });
        assert.equal(minimal.status, 201);
        assert.equal(minimal.text, '');
        assert.ok(minimal.headers.get('location'));
        const rep = await call('POST', `${base()}/Patient`, patient('Rep'), { prefer: 'return=representation' });
        assert.equal(rep.body.resourceType, 'Patient');
        const updated = await call('PUT', `${base()}/Patient/${rep.body.id}`, { ...patient('Rep2'), id: rep.body.id }, { prefer: 'return=minimal' });
        assert.equal(updated.status, 200);
        assert.equal(updated.text, '');
        assert.equal(updated.headers.get('etag'), 'W/"2"');
        // Prefer concerns writes only: a search posted with it still answers its Bundle.
        const searched = await call('POST', `${base()}/Patient/_search`, `_id=${rep.body.id}`, { 'content-type': 'application/x-www-form-urlencoded', prefer: 'return=minimal' });
        assert.equal(searched.body.resourceType, 'Bundle');
        const oo = await call('POST', `${base()}/Patient`, patient('OO'), { prefer: 'return=OperationOutcome' });
        assert.equal(oo.status, 201);
        assert.equal(oo.body.resourceType, 'OperationOutcome');
        assert.equal(oo.body.issue[0].severity, 'information');
        // Preference values are case-insensitive; the one applied is said (RFC 7240).
        const minCase = await call('POST', `${base()}/Patient`, patient('MinCase'), { prefer: 'return=Minimal' });
        assert.equal(minCase.text, '');
        assert.equal(minCase.headers.get('preference-applied'), 'return=minimal');
        assert.equal(rep.headers.get('preference-applied'), 'return=representation');
        // A conditional create that matched (200) answers as the create would have.
        const ine = { prefer: 'return=minimal', 'if-none-exist': `_id=${rep.body.id}` };
        const matched = await call('POST', `${base()}/Patient`, patient('Rep'), ine);
        assert.equal(matched.status, 200);
        assert.equal(matched.text, '');
        assert.match(matched.headers.get('location') ?? '', new RegExp(`Patient/${rep.body.id}/_history/2$`));
        const matchedOutcome = await call('POST', `${base()}/Patient`, patient('Rep'), { ...ine, prefer: 'return=OperationOutcome' });
        assert.equal(matchedOutcome.status, 200);
        assert.match(matchedOutcome.body.issue[0].diagnostics, /^Found .* by If-None-Exist; nothing written$/, 'a match is not said to be an update');
      });

      it('applies a batch or transaction\'s Prefer: return=… to each entry that writes', async () => {
        for (const type of ['batch', 'transaction']) {
          const bundle = (n: string) => ({ resourceType: 'Bundle', type, entry: [
            { resource: patient(n), request: { method: 'POST', url: 'Patient' } },
            { request: { method: 'GET', url: 'metadata' } },
          ] });
          const minimal = await call('POST', base(), bundle('BMin'), { prefer: 'return=minimal' });
          assert.equal(minimal.status, 200, type);
          assert.equal(minimal.body.entry[0].resource, undefined, type);
          assert.match(minimal.body.entry[0].response.location, /Patient\//, type);
          assert.equal(minimal.body.entry[1].resource.resourceType, 'CapabilityStatement', `${type}: reads keep their resource`);
          const oo = await call('POST', base(), bundle('BOO'), { prefer: 'return=OperationOutcome' });
          assert.equal(oo.body.entry[0].resource, undefined, type);
          assert.equal(oo.body.entry[0].response.outcome.issue[0].severity, 'information', type);
          const rep = await call('POST', base(), bundle('BRep'));
          assert.equal(rep.body.entry[0].resource.resourceType, 'Patient', type);
        }
      });

      it('accepts application/json and _format=json as well as application/fhir+json', async () => {
        const res = await call('POST', `${base()}/Patient?_format=json`, patient('Json'), { 'content-type': 'application/json', accept: 'application/json' });
        assert.equal(res.status, 201);
        const withVersion = await call('POST', `${base()}/Patient`, patient('Param'), {
          'content-type': `application/fhir+json; fhirVersion=${({ R4: '4.0', R4B: '4.3', R5: '5.0' } as const)[v]}; charset=utf-8`,
        });
        assert.equal(withVersion.status, 201);
      });

      it('keeps each base\'s data to itself', async () => {
        const id = `only-${v}`;
        await call('PUT', `${base()}/Patient/${id}`, { ...patient('Own'), id });
        for (const other of VERSIONS.filter((o) => o !== v)) {
          assert.equal((await call('GET', `${server.fhir(other)}/Patient/${id}`)).status, 404);
        }
      });
    });
  }

  it('accepts resource types that exist only in that version', async () => {
    // SubscriptionTopic is R4B+ ; on R4 it is not a resource type.
    const topic = {
      resourceType: 'SubscriptionTopic',
      url: 'http://example.org/topic',
      status: 'active',
      resourceTrigger: [{ resource: 'Patient', supportedInteraction: ['create'] }],
    };
    assert.equal((await call('POST', `${server.fhir('R4B')}/SubscriptionTopic`, topic)).status, 201);
    assert.equal((await call('POST', `${server.fhir('R5')}/SubscriptionTopic`, topic)).status, 201);
    assert.equal((await call('POST', `${server.fhir('R4')}/SubscriptionTopic`, topic)).status, 404);
  });
});
