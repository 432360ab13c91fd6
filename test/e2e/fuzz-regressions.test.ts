import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { call, startServer, type TestServer } from '../helpers/server.ts';

/** Inputs the fuzz suite (test/fuzz) found mishandled, each kept as a regression test. */
describe('fuzz regressions', () => {
  let server: TestServer;
  let base: string;
  let id: string;
  before(async () => {
    server = await startServer();
    base = server.fhir('R4');
    id = (await call('POST', `${base}/Patient`, { resourceType: 'Patient', active: true })).body.id;
  });
  after(() => server.close());

  const expectOutcome = (res: { status: number; body: any; headers: Headers }, status: number) => {
    assert.equal(res.status, status);
    assert.equal(res.body?.resourceType, 'OperationOutcome');
    assert.match(res.headers.get('content-type')!, /application\/fhir\+json/);
  };

  it('an encoded slash (%2F) inside a path segment is a 400, not a path separator', async () => {
    // Found by the fuzzer: GET Account/0/_history/%2F answered 200 with a history Bundle.
    expectOutcome(await call('GET', `${base}/Patient/${id}/_history/%2F`), 400);
    expectOutcome(await call('GET', `${base}/Patient%2F${id}`), 400);
    expectOutcome(await call('DELETE', `${base}/Patient/${id}%2F_history`), 400);
    assert.equal((await call('GET', `${base}/Patient/${id}`)).status, 200, 'the resource is untouched');
  });

  it('a request line or headers over the size limit are a 431 OperationOutcome', async () => {
    // Found by probing the fuzzer's huge values in URLs: fastify answered 431 with its own JSON.
    expectOutcome(await call('GET', `${base}/Patient?name=${'x'.repeat(100_000)}`), 431);
  });

  it('a malformed HTTP request is a 400 OperationOutcome', async () => {
    const url = new URL(server.url);
    const socket = connect(Number(url.port), url.hostname);
    let raw = '';
    socket.setEncoding('utf8');
    socket.on('data', (d) => (raw += d));
    socket.write('GET /fhir/R4/metadata HTTP/1.1\r\nHost: x\r\nNot a header line\r\n\r\n');
    await once(socket, 'close');
    const [head, body] = raw.split('\r\n\r\n');
    assert.match(head!, /^HTTP\/1\.1 400 /);
    assert.match(head!, /content-type: application\/fhir\+json/i);
    assert.equal(JSON.parse(body!).resourceType, 'OperationOutcome');
  });

  it(
    'POST $get-ws-binding-token with Parameters.parameter that is not an array is a 400',
    async () => {
      for (const parameter of ['x', { name: 'id' }, [null], [42]]) {
        expectOutcome(await call('POST', `${base}/Subscription/$get-ws-binding-token`, { resourceType: 'Parameters', parameter }), 400);
      }
    },
  );

  // Found by the fuzzer (issue 12, once its wrong values included objects with a `toString` key):
  // String(x) throws on {"toString":1}, and diagnostics printed such values unchecked, a 500.
  const hostile = [{ toString: 1 }, { toString: null, valueOf: null }, JSON.parse('{"__proto__":{"toString":1}}')];

  it('a resourceType that is an object with its own toString is a 400, on writes and operations', async () => {
    for (const resourceType of hostile) {
      const create = await call('POST', `${base}/Patient`, { resourceType, active: true });
      expectOutcome(create, 400);
      assert.match(create.body.issue[0].diagnostics, /resourceType of the body \('\{…\}'\)/);
      expectOutcome(await call('PUT', `${base}/Patient/${id}`, { resourceType, id }), 400);
      // $validate answers 200 with the issue the create would have had
      const validated = await call('POST', `${base}/Patient/$validate`, { resourceType });
      assert.equal(validated.status, 200);
      assert.deepEqual([validated.body.resourceType, validated.body.issue[0].severity, validated.body.issue[0].code], ['OperationOutcome', 'error', 'invalid']);
      expectOutcome(await call('POST', `${base}/Subscription/$status`, { resourceType }), 400);
      expectOutcome(await call('POST', `${base}/Subscription/$revoke-ws-binding-token`, { resourceType, parameter: [] }), 400);
    }
    assert.equal((await call('GET', `${base}/Patient/${id}`)).body.active, true, 'the resource is untouched');
  });

  it('$validate with a mode or profile that is an object with its own toString is a 400', async () => {
    for (const value of hostile) {
      for (const parameter of [[{ name: 'mode', valueCode: value }], [{ name: 'profile', valueUri: value }], [{ name: 'profile', valueCanonical: value }]]) {
        const res = await call('POST', `${base}/Patient/$validate`, { resourceType: 'Parameters', parameter: [{ name: 'resource', resource: { resourceType: 'Patient' } }, ...parameter] });
        expectOutcome(res, 400);
        assert.equal(res.body.issue[0].code, 'invalid');
        assert.match(res.body.issue[0].diagnostics, /\$validate (mode|profile) must be .*not '\{…\}'/);
      }
    }
  });
});
