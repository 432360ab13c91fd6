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
});
