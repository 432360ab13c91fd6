import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { call, useServer, type Res } from '../helpers/server.ts';

/**
 * A client cannot make one search or one resource cost the server without bound (issue 14): a
 * search over the budget is a 400 `too-costly` naming the parameter, a resource with too many
 * index rows a 422 `too-costly`, never a 500, and the server keeps answering meanwhile.
 */
describe('search budget and index rows per resource', () => {
  const server = useServer();
  const base = () => server.fhir('R4');
  const list = <T = string>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));

  /** POST [base]/[type]/_search with a form body: query strings too long for a URL. */
  const search = (type: string, form: string) => call('POST', `${base()}/${type}/_search`, form, { 'content-type': 'application/x-www-form-urlencoded' });

  function assertTooCostly(res: Res, status: number, param: string | undefined, words: RegExp): void {
    assert.equal(res.status, status, res.text.slice(0, 300));
    assert.equal(res.body.resourceType, 'OperationOutcome');
    assert.equal(res.body.issue[0].code, 'too-costly');
    if (param !== undefined) assert.ok(res.body.issue[0].expression[0].startsWith(param), res.body.issue[0].expression[0]);
    assert.match(res.body.issue[0].diagnostics, words);
  }

  it('40,000 OR values are a 400 naming the parameter', async () => {
    assertTooCostly(await search('Patient', `_id=${list(40_000, (i) => `a${i}`).join(',')}`), 400, '_id', /'_id' has 40000 values/);
  });

  it('500 OR values (the budget) are a search like any other', async () => {
    const created = await call('POST', `${base()}/Patient`, { resourceType: 'Patient', identifier: [{ system: 's', value: 'v499' }] });
    const res = await search('Patient', `identifier=${list(500, (i) => `s|v${i}`).join(',')}`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.entry.map((e: any) => e.resource.id), [created.body.id]);
  });

  it('2,000 ANDed conditions are a 400', async () => {
    assertTooCostly(await search('Patient', list(2000, (i) => `name=x${i}`).join('&')), 400, 'name', /Too many search parameters: more than 50/);
  });

  it('a 50-level chain is a 400; four levels are answered', async () => {
    const deep = `subject:Patient.organization${'.partof'.repeat(48)}.name`;
    assertTooCostly(await call('GET', `${base()}/Observation?${deep}=x`), 400, 'subject:Patient.organization.partof', /too deep: more than 4 links/);
    const four = await call('GET', `${base()}/Observation?subject:Patient.organization.partof.partof.name=x`);
    assert.equal(four.status, 200);
    assert.equal(four.body.total, 0);
  });

  it('a deep _has is a 400; three levels are answered', async () => {
    assertTooCostly(await search('Patient', `${'_has:Group:member:'.repeat(1000)}code=x`), 400, '_has:Group:member:', /nests _has too deeply: 1000 levels/);
    const three = await call('GET', `${base()}/Patient?_has:Group:member:_has:Group:member:_has:Group:member:code=x`);
    assert.equal(three.status, 200);
    assert.equal(three.body.entry, undefined);
  });

  it('more than 5 sort keys or 10 includes are a 400', async () => {
    assertTooCostly(await call('GET', `${base()}/Patient?_sort=name,birthdate,gender,family,given,_id`), 400, '_sort', /sort keys/);
    const includes = list(11, () => '_include=Observation:subject').join('&');
    assertTooCostly(await call('GET', `${base()}/Observation?${includes}`), 400, '_include', /more than 10/);
  });

  it('100,000 query parameters are a 400, not a 500 or a 100,000-line outcome', async () => {
    assertTooCostly(await search('Patient', list(100_000, (i) => `p${i}=x`).join('&')), 400, 'p50', /more than 50/);
  });

  it('a Patient with 80,000 names is refused with 422, /healthz answers meanwhile, nothing is stored', async () => {
    const patient = { resourceType: 'Patient', identifier: [{ system: 'huge', value: '1' }], name: list(80_000, (i) => ({ family: `F${i}`, given: [`G${i}`] })) } as unknown;
    const started = Date.now();
    const write = call('POST', `${base()}/Patient`, patient);
    const health = await call('GET', `${server.url}/healthz`);
    assert.equal(health.status, 200);
    const res = await write;
    console.log(`80,000 names refused in ${Date.now() - started} ms`);
    assertTooCostly(res, 422, undefined, /more than 20,000 search index rows/);
    const stored = await call('GET', `${base()}/Patient?identifier=huge|1`);
    assert.equal(stored.body.total, 0);
  });
});
