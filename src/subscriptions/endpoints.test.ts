import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { lookup } from 'node:dns';
import { after, before, describe, it } from 'node:test';
import { FhirError } from '../fhir/errors.ts';
import { createSender } from './channels/rest-hook/sender.ts';
import { EndpointGuard, type EndpointRules, internalAddress } from './endpoints.ts';

/** An HTTP server on loopback that counts every request it gets, whatever the answer. */
async function countingServer(answer: (path: string) => { status: number; location?: string } = () => ({ status: 200 })) {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const a = answer(req.url ?? '');
    if (a.location) res.setHeader('location', a.location);
    res.statusCode = a.status;
    res.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { hits, port: (server.address() as AddressInfo).port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** A real resolver for test names: `*.rebind.test` answers loopback, the rest goes to dns.lookup. */
const testLookup = ((hostname: string, options: object, callback: (...a: unknown[]) => void) => {
  if (hostname.endsWith('.rebind.test')) return lookup('127.0.0.1', options, callback as never);
  return lookup(hostname, options, callback as never);
}) as unknown as typeof lookup;

const guard = (rules: Partial<EndpointRules> = {}) =>
  new EndpointGuard({ authMode: true, allow: [], allowInsecureEndpoints: false, baseUrl: 'https://herald.example.org', listen: { host: '127.0.0.1', port: 8080 }, lookup: testLookup, ...rules });

function refusedAtCreation(g: EndpointGuard, endpoint: string): string {
  try {
    g.check(endpoint);
  } catch (err) {
    assert.ok(err instanceof FhirError);
    assert.equal(err.status, 422);
    return err.issues[0]!.diagnostics ?? '';
  }
  assert.fail(`${endpoint} was accepted`);
}

/** Every spelling of an internal address the issue names, and the reason it must give. */
const SPELLINGS: [string, RegExp][] = [
  ['localhost', /loopback/],
  ['localhost.', /loopback/],
  ['LocalHost', /loopback/],
  ['app.localhost', /loopback/],
  ['127.0.0.1', /loopback/],
  ['127.1', /loopback/],
  ['2130706433', /loopback/],
  ['0x7f.1', /loopback/],
  ['0177.0.0.1', /loopback/],
  ['0.0.0.0', /unspecified/],
  ['[::1]', /loopback/],
  ['[::]', /unspecified/],
  ['[::ffff:127.0.0.1]', /loopback/],
  ['[::ffff:7f00:1]', /loopback/],
  ['[::127.0.0.1]', /loopback/],
  ['[64:ff9b::a00:1]', /private/],
  ['[2002:c0a8:101::]', /private/],
  ['10.1.2.3', /private/],
  ['172.16.0.1', /private/],
  ['192.168.1.1', /private/],
  ['[fd12::1]', /private/],
  ['169.254.10.10', /link-local/],
  ['[fe80::1]', /link-local/],
  ['169.254.169.254', /metadata/],
  ['[fd00:ec2::254]', /metadata/],
  ['[::ffff:169.254.169.254]', /metadata/],
  ['100.64.0.1', /carrier-grade NAT/],
  ['224.0.0.1', /multicast/],
  ['[ff02::1]', /multicast/],
];

describe('internal addresses (issue 13)', () => {
  it('classifies public addresses as public and internal ones by kind', () => {
    for (const ip of ['8.8.8.8', '2001:4860:4860::8888', '100.128.0.1', '172.32.0.1']) assert.equal(internalAddress(ip), undefined, ip);
    assert.equal(internalAddress('127.9.9.9'), 'a loopback address');
    assert.equal(internalAddress('::ffff:10.0.0.1'), 'a private address');
  });
});

describe('rest-hook endpoints at creation (issue 13)', () => {
  it('refuses every spelling of an internal address in auth mode, naming why', () => {
    const g = guard();
    for (const [host, reason] of SPELLINGS) assert.match(refusedAtCreation(g, `https://${host}:9443/hook`), reason, host);
  });

  it('accepts public https endpoints and refuses plain http in auth mode', () => {
    const g = guard();
    g.check('https://receiver.example.com/hook');
    g.check('https://93.184.216.34/hook');
    assert.match(refusedAtCreation(g, 'http://receiver.example.com/hook'), /https/);
    // HERALD_ALLOW_INSECURE_ENDPOINTS relaxes the scheme, never the address rules.
    guard({ allowInsecureEndpoints: true }).check('http://receiver.example.com/hook');
    assert.match(refusedAtCreation(guard({ allowInsecureEndpoints: true }), 'http://127.1:9000/hook'), /loopback/);
    assert.match(refusedAtCreation(g, 'ftp://receiver.example.com/hook'), /https URL/);
  });

  it('accepts what HERALD_ENDPOINT_ALLOW lists, plain http included, by host:port or CIDR', () => {
    const g = guard({ allow: ['localhost:9000', '10.1.0.0/16', '[::1]:9001'] });
    g.check('http://localhost:9000/hook');
    g.check('http://LOCALHOST.:9000/hook');
    g.check('https://10.1.200.3/hook');
    g.check('http://[::1]:9001/');
    assert.match(refusedAtCreation(g, 'http://localhost:9002/hook'), /https/);
    assert.match(refusedAtCreation(g, 'https://localhost:9002/hook'), /loopback/);
    assert.match(refusedAtCreation(g, 'https://10.2.0.1/hook'), /private/);
  });

  it('refuses a malformed allow-list entry at start', () => {
    assert.throws(() => guard({ allow: ['not a host'] }), /HERALD_ENDPOINT_ALLOW/);
    assert.throws(() => guard({ allow: ['10.0.0.0/33'] }), /HERALD_ENDPOINT_ALLOW/);
    assert.throws(() => guard({ allow: ['example.com'] }), /HERALD_ENDPOINT_ALLOW/);
  });

  it('keeps the open-mode rule: https anywhere, plain http only on loopback', () => {
    const g = guard({ authMode: false });
    g.check('https://10.1.2.3/hook');
    g.check('http://127.1:9000/hook');
    g.check('http://[::1]:9000/hook');
    assert.match(refusedAtCreation(g, 'http://10.1.2.3/hook'), /https/);
    guard({ authMode: false, allowInsecureEndpoints: true }).check('http://10.1.2.3/hook');
  });

  it('refuses Herald itself in every mode: its base URL and any spelling of its listening address', () => {
    for (const authMode of [false, true]) {
      const g = guard({ authMode, allow: ['127.0.0.1:8080', 'localhost:8080'] });
      for (const e of ['https://herald.example.org/fhir/R4', 'https://HERALD.example.org:443/', 'http://127.0.0.1:8080/fhir/R4/Patient', 'http://localhost:8080/', 'http://127.1:8080/', 'http://2130706433:8080/', 'http://0.0.0.0:8080/', 'http://[::1]:8080/', 'http://[::ffff:7f00:1]:8080/']) {
        assert.match(refusedAtCreation(g, e), /Herald server itself/, `${e} (authMode ${authMode})`);
      }
    }
    // Listening on all interfaces: every local address is Herald; a base URL with a path covers only that path.
    const all = guard({ authMode: false, listen: { host: '0.0.0.0', port: 8080 }, baseUrl: 'https://proxy.example.org/herald' });
    assert.match(refusedAtCreation(all, 'http://127.0.0.2:8080/'), /itself/);
    assert.match(refusedAtCreation(all, 'https://proxy.example.org/herald/fhir/R5'), /itself/);
    all.check('https://proxy.example.org/other-app/hook');
    all.check('http://127.0.0.1:8081/hook');
    // Listening on a host name: its loopback spellings are still Herald.
    assert.match(refusedAtCreation(guard({ authMode: false, listen: { host: 'herald-host', port: 8080 } }), 'http://localhost:8080/'), /itself/);
  });

  it('screens host names by what they resolve to before the write (auth mode)', async () => {
    const g = guard();
    await assert.rejects(g.screen('https://app.rebind.test/hook'), (err: FhirError) => err.status === 422 && /resolves to 127\.0\.0\.1, a loopback address/.test(err.issues[0]!.diagnostics!));
    await guard({ allow: ['127.0.0.0/8'] }).screen('https://app.rebind.test/hook');
    await guard({ allow: ['app.rebind.test:443'] }).screen('https://app.rebind.test/hook');
    await guard({ authMode: false }).screen('https://app.rebind.test/hook');
  });
});

describe('rest-hook connections (issue 13: checked against the address connected)', () => {
  let target: Awaited<ReturnType<typeof countingServer>>;
  before(async () => {
    target = await countingServer();
  });
  after(() => target.close());

  const send = async (g: EndpointGuard, url: string) => {
    const sender = createSender(g);
    try {
      return await sender.post({ url, contentType: 'application/fhir+json', headers: [], body: '{}', timeoutMs: 2000 });
    } finally {
      await sender.close();
    }
  };

  // The receiver here speaks plain http; the scheme rule is tested above.
  const insecure = (rules: Partial<EndpointRules> = {}) => guard({ allowInsecureEndpoints: true, ...rules });

  it('never connects to an internal address, under any spelling, in auth mode: zero hits', async () => {
    const g = insecure();
    for (const host of ['localhost', '127.0.0.1', '127.1', '2130706433', '0x7f.1', '0177.0.0.1', '0.0.0.0', '0', '[::1]', '[::]', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]', 'localhost.']) {
      const result = await send(g, `http://${host}:${target.port}/hook`);
      assert.equal(result.ok, false, host);
      assert.match((result as { error: string }).error, /endpoint refused/, host);
    }
    assert.equal(target.hits.length, 0);
  });

  it('checks the resolved address of a name on connection (DNS rebinding): zero hits', async () => {
    // Allowed by name when the subscription was written; the name now resolves to loopback.
    const result = await send(insecure(), `http://a.rebind.test:${target.port}/hook`);
    assert.equal(result.ok, false);
    assert.match((result as { error: string }).error, /resolves to 127\.0\.0\.1, a loopback address/);
    assert.equal(target.hits.length, 0);
  });

  it('connects to the address judged when it is allowed (by range or by name)', async () => {
    assert.deepEqual(await send(insecure({ allow: ['127.0.0.0/8'] }), `http://a.rebind.test:${target.port}/hook`), { ok: true, status: 200 });
    assert.deepEqual(await send(guard({ allow: [`a.rebind.test:${target.port}`] }), `http://a.rebind.test:${target.port}/two`), { ok: true, status: 200 });
    assert.deepEqual(target.hits, ['/hook', '/two']);
    target.hits.length = 0;
  });

  it('refuses a name resolving to Herald itself in every mode', async () => {
    const g = insecure({ authMode: false, listen: { host: '127.0.0.1', port: target.port } });
    const result = await send(g, `http://x.rebind.test:${target.port}/hook`);
    assert.match((result as { error: string }).error, /itself/);
    assert.equal(target.hits.length, 0);
  });

  it('never follows a redirect, from an allowed endpoint to a forbidden one: zero hits there', async () => {
    const forbidden = await countingServer();
    const redirecting = await countingServer(() => ({ status: 307, location: `http://127.0.0.1:${forbidden.port}/steal` }));
    try {
      for (const g of [guard({ allow: [`127.0.0.1:${redirecting.port}`] }), guard({ authMode: false })]) {
        const result = await send(g, `http://127.0.0.1:${redirecting.port}/hook`);
        assert.deepEqual(result, { ok: false, error: 'endpoint answered HTTP 307 (a redirect): redirects are not followed' });
      }
      assert.equal(redirecting.hits.length, 2);
      assert.equal(forbidden.hits.length, 0);
    } finally {
      await forbidden.close();
      await redirecting.close();
    }
  });
});
