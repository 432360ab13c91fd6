import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VERSIONS, call, startServer, useServer, type TestServer } from '../helpers/server.ts';

/** Every class of bad input gets an OperationOutcome with the right status, and the server stays up. */
describe('bad input', () => {
  let server: TestServer;
  let base: string;
  let keptId: string;
  before(async () => {
    server = await startServer({ HERALD_BODY_LIMIT: String(64 * 1024) });
    base = server.fhir('R4');
    keptId = (await call('POST', `${base}/Patient`, { resourceType: 'Patient', active: true })).body.id;
  });
  after(async () => {
    // Whatever came before, stored data is intact and the server still answers.
    const res = await call('GET', `${base}/Patient/${keptId}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.meta.versionId, '1');
    await server.close();
  });

  const expectOutcome = (res: { status: number; body: any; headers: Headers }, status: number) => {
    assert.equal(res.status, status);
    assert.equal(res.body?.resourceType, 'OperationOutcome');
    assert.ok(res.body.issue.length > 0);
    assert.equal(res.body.issue[0].severity, 'error');
    assert.match(res.headers.get('content-type')!, /application\/fhir\+json/);
  };

  it('malformed JSON is a 400', async () => {
    expectOutcome(await call('POST', `${base}/Patient`, '{"resourceType": "Patient",'), 400);
    expectOutcome(await call('PUT', `${base}/Patient/${keptId}`, 'not json at all'), 400);
  });

  it('a body that is not a JSON object is a 400', async () => {
    for (const body of ['[]', '"Patient"', '42', 'null']) expectOutcome(await call('POST', `${base}/Patient`, body), 400);
    expectOutcome(await call('POST', `${base}/Patient`, undefined, { 'content-type': 'application/fhir+json' }), 400);
  });

  it('a resourceType that does not match the URL is a 400 naming resourceType', async () => {
    const res = await call('POST', `${base}/Patient`, { resourceType: 'Observation', status: 'final', code: { text: 'x' } });
    expectOutcome(res, 400);
    assert.deepEqual(res.body.issue[0].expression, ['resourceType']);
  });

  it('an id in the body that differs from the URL, or is missing, is a 400', async () => {
    expectOutcome(await call('PUT', `${base}/Patient/${keptId}`, { resourceType: 'Patient', id: 'other' }), 400);
    expectOutcome(await call('PUT', `${base}/Patient/${keptId}`, { resourceType: 'Patient' }), 400);
  });

  it('an unknown resource type is a 404', async () => {
    expectOutcome(await call('GET', `${base}/Wombat/1`), 404);
    expectOutcome(await call('POST', `${base}/Wombat`, { resourceType: 'Wombat' }), 404);
    // Abstract types are not resource types a client can use.
    expectOutcome(await call('POST', `${base}/DomainResource`, { resourceType: 'DomainResource' }), 404);
  });

  it('an invalid id is a 400', async () => {
    expectOutcome(await call('GET', `${base}/Patient/${'x'.repeat(65)}`), 400);
    expectOutcome(await call('PUT', `${base}/Patient/bad_id!`, { resourceType: 'Patient', id: 'bad_id!' }), 400);
    expectOutcome(await call('GET', `${base}/Patient/%E0%A4%A`), 400);
  });

  it('a resource that breaks its StructureDefinition is a 400 whose issues point at the paths', async () => {
    const res = await call('POST', `${base}/Patient`, {
      resourceType: 'Patient',
      birthDate: '10/12/1815',
      gender: 42,
      name: { family: 'NotAnArray' },
      nickname: 'Ada',
      deceasedBoolean: true,
      deceasedDateTime: '1852-11-27',
    });
    expectOutcome(res, 400);
    const paths = res.body.issue.map((i: any) => i.expression?.[0]).join(' ');
    for (const p of ['birthDate', 'gender', 'name', 'nickname', 'deceased']) assert.match(paths, new RegExp(p), p);
  });

  it('an over-large body is a 413', async () => {
    const big = { resourceType: 'Patient', text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${'x'.repeat(70 * 1024)}</div>` } };
    expectOutcome(await call('POST', `${base}/Patient`, big), 413);
  });

  it('deep nesting is refused without harm', async () => {
    let ext: any = { url: 'http://e.org/leaf', valueString: 'x' };
    for (let i = 0; i < 200; i++) ext = { url: 'http://e.org/n', extension: [ext] };
    expectOutcome(await call('POST', `${base}/Patient`, { resourceType: 'Patient', extension: [ext] }), 400);
    const deepJson = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    expectOutcome(await call('POST', `${base}/Patient`, deepJson), 400);
  });

  it('an XML body is a 415 and an XML-only Accept or _format=xml is a 406', async () => {
    const xml = '<Patient xmlns="http://hl7.org/fhir"><active value="true"/></Patient>';
    const res = await call('POST', `${base}/Patient`, xml, { 'content-type': 'application/fhir+xml' });
    expectOutcome(res, 415);
    assert.match(res.body.issue[0].diagnostics, /XML/);
    expectOutcome(await call('POST', `${base}/Patient`, xml, { 'content-type': 'text/xml' }), 415);
    expectOutcome(await call('POST', `${base}/Patient`, 'a=b', { 'content-type': 'application/x-www-form-urlencoded' }), 415);
    expectOutcome(await call('GET', `${base}/Patient/${keptId}`, undefined, { accept: 'application/fhir+xml' }), 406);
    expectOutcome(await call('GET', `${base}/Patient/${keptId}?_format=xml`), 406);
  });

  it('unknown endpoints and methods answer with an OperationOutcome', async () => {
    expectOutcome(await call('GET', `${server.url}/nowhere`), 404);
    expectOutcome(await call('GET', `${server.url}/fhir/R6/Patient`), 404);
    expectOutcome(await call('DELETE', `${base}/metadata`), 405);
    expectOutcome(await call('GET', `${base}/Patient/${keptId}/_history/1/extra`), 404);
    expectOutcome(await call('PUT', `${base}/Patient`, { resourceType: 'Patient' }), 400);
  });

  it('media types naming another FHIR version (fhirVersion=…) are refused: 406 for Accept and _format, 415 for Content-Type; q=0 refuses a range', async () => {
    expectOutcome(await call('GET', `${base}/Patient/${keptId}`, undefined, { accept: 'application/fhir+json; fhirVersion=5.0' }), 406);
    assert.equal((await call('GET', `${base}/Patient/${keptId}`, undefined, { accept: 'application/fhir+json; fhirVersion=4.0' })).status, 200);
    assert.equal((await call('GET', `${base}/Patient/${keptId}`, undefined, { accept: 'application/fhir+json; fhirVersion=5.0, application/fhir+json; fhirVersion=4.0' })).status, 200);
    expectOutcome(await call('GET', `${base}/Patient/${keptId}?_format=${encodeURIComponent('application/fhir+json; fhirVersion=4.3')}`), 406);
    expectOutcome(await call('GET', `${base}/Patient/${keptId}`, undefined, { accept: 'application/json;q=0, application/xml' }), 406);
    const res = await call('POST', `${base}/Patient`, { resourceType: 'Patient' }, { 'content-type': 'application/fhir+json; fhirVersion=5.0' });
    expectOutcome(res, 415);
    assert.match(res.body.issue[0].diagnostics, /FHIR 4\.0/);
    assert.equal((await call('POST', `${base}/Patient`, { resourceType: 'Patient' }, { 'content-type': 'application/fhir+json; fhirVersion=4.0' })).status, 201);
  });

  it('a 405 says in Allow which methods the target takes (RFC 9110 §15.5.6), an unrouted method under a base included', async () => {
    const allow = async (method: string, path: string, expected: string) => {
      const res = await call(method, `${base}${path}`, method === 'GET' || method === 'DELETE' || method === 'OPTIONS' ? undefined : { resourceType: 'Parameters' });
      expectOutcome(res, 405);
      assert.equal(res.headers.get('allow'), expected, `${method} ${path}`);
    };
    await allow('DELETE', '/metadata', 'GET, HEAD');
    await allow('POST', `/Patient/${keptId}`, 'GET, HEAD, PUT, PATCH, DELETE');
    await allow('PATCH', '/Patient', 'GET, HEAD, POST, PUT, DELETE');
    await allow('GET', '/Patient/_search', 'POST');
    await allow('DELETE', '/_history', 'GET, HEAD');
    await allow('PUT', '/Patient/$validate', 'GET, HEAD, POST');
    await allow('GET', '/Subscription/$revoke-ws-binding-token', 'POST');
    await allow('OPTIONS', `/Patient/${keptId}`, 'GET, HEAD, PUT, PATCH, DELETE');
    await allow('OPTIONS', '/Patient', 'GET, HEAD, POST, PUT, DELETE');
    await allow('POST', `/Patient/${keptId}/_history`, 'GET, HEAD');
    await allow('POST', `/Patient/${keptId}/_history/1`, 'GET, HEAD');
    const other = await call('OPTIONS', `${base}/Patient/${keptId}`);
    assert.doesNotMatch(other.body.issue[0].diagnostics, /Did you mean/);
  });

  it('a 404 outside the bases lists them, and names the base a wrong-case path meant', async () => {
    for (const path of ['/', '/fhir', '/fhir/', '/fhir/R6/Patient', '/nowhere?x=1']) {
      const res = await call('GET', `${server.url}${path}`);
      expectOutcome(res, 404);
      assert.equal(res.body.issue[0].code, 'not-found');
      assert.match(res.body.issue[0].diagnostics, /The FHIR bases are \/fhir\/R4, \/fhir\/R4B, \/fhir\/R5\./, path);
    }
    const wrongCase = await call('GET', `${server.url}/fhir/r4/Patient?name=x`);
    expectOutcome(wrongCase, 404);
    assert.match(wrongCase.body.issue[0].diagnostics, /^No such endpoint: GET \/fhir\/r4\/Patient\. Did you mean \/fhir\/R4\/Patient\?/);
    assert.match((await call('GET', `${server.url}/fhir/r4b`)).body.issue[0].diagnostics, /Did you mean \/fhir\/R4B\?/);
  });
});

/** FHIR strings hold at most 1,048,576 characters (datatypes.html#string); the body limit is 16 MiB. */
describe('strings over the FHIR limit', () => {
  const LIMIT = 1024 * 1024;
  const server = useServer();

  it('a family name of 1,048,577 characters is a 400 naming the element; 1,048,576 are stored', async () => {
    for (const v of VERSIONS) {
      const base = server.fhir(v);
      const refused = await call('POST', `${base}/Patient`, { resourceType: 'Patient', name: [{ family: 'a'.repeat(LIMIT + 1) }] });
      assert.equal(refused.status, 400, v);
      assert.equal(refused.body.resourceType, 'OperationOutcome', v);
      assert.deepEqual(refused.body.issue.map((i: any) => [i.code, i.expression]), [['too-long', ['Patient.name[0].family']]], v);
      const stored = await call('POST', `${base}/Patient`, { resourceType: 'Patient', name: [{ family: 'a'.repeat(LIMIT) }] });
      assert.equal(stored.status, 201, v);
      const read = await call('GET', `${base}/Patient/${stored.body.id}`);
      assert.equal(read.body.name[0].family.length, LIMIT, v);
    }
  });

  it('a 5 MB Subscription reason or topic title is refused before anything else is checked', async () => {
    const huge = 'x'.repeat(5 * 1000 * 1000);
    const reason = await call('POST', `${server.fhir('R4')}/Subscription`, {
      resourceType: 'Subscription',
      status: 'requested',
      reason: huge,
      criteria: 'http://example.org/topics/none',
      channel: { type: 'rest-hook', endpoint: 'http://127.0.0.1:1/hook', payload: 'application/fhir+json' },
    });
    assert.equal(reason.status, 400);
    assert.deepEqual(reason.body.issue.map((i: any) => i.expression), [['Subscription.reason']]);
    const title = await call('POST', `${server.fhir('R5')}/SubscriptionTopic`, { resourceType: 'SubscriptionTopic', url: 'http://example.org/t', status: 'active', title: huge });
    assert.equal(title.status, 400);
    assert.deepEqual(title.body.issue.map((i: any) => i.expression), [['SubscriptionTopic.title']]);
  });

  it('base64 Attachment data far over the string limit are accepted within the body limit', async () => {
    const data = Buffer.alloc(6 * 1024 * 1024, 7).toString('base64'); // 8 MiB of base64
    const res = await call('POST', `${server.fhir('R4')}/Patient`, { resourceType: 'Patient', photo: [{ contentType: 'image/png', data }] });
    assert.equal(res.status, 201);
    const read = await call('GET', `${server.fhir('R4')}/Patient/${res.body.id}`);
    assert.equal(read.body.photo[0].data, data);
  });
});
