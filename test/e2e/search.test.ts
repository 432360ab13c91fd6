import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { REFUSED_MODIFIERS } from '../../src/search/cases.ts';
import { VERSIONS, call, startServer, type TestServer } from '../helpers/server.ts';

const ids = (bundle: any, mode = 'match') =>
  (bundle.entry ?? []).filter((e: any) => e.search?.mode === mode).map((e: any) => `${e.resource.resourceType}/${e.resource.id}`);

describe('search over HTTP', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
    for (const v of VERSIONS) {
      const base = server.fhir(v);
      const put = (r: any) => call('PUT', `${base}/${r.resourceType}/${r.id}`, r);
      await put({ resourceType: 'Organization', id: 'org-1', name: 'Acme Hospital' });
      await put({ resourceType: 'Patient', id: 'p1', name: [{ family: 'Alpha', given: ['Ann'] }], birthDate: '1980-05-01', managingOrganization: { reference: 'Organization/org-1' } });
      await put({ resourceType: 'Patient', id: 'p2', name: [{ family: 'Beta', given: ['Bob'] }], birthDate: '1990-01-01' });
      await put({ resourceType: 'Patient', id: 'p3', name: [{ family: 'Alpha', given: ['Cid'] }], birthDate: '2000-12-31' });
      for (const [id, subject, code, value] of [['o1', 'p1', '8867-4', 60], ['o2', 'p1', '8310-5', 37], ['o3', 'p2', '8867-4', 90]] as const) {
        await put({
          resourceType: 'Observation',
          id,
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code }] },
          subject: { reference: `Patient/${subject}` },
          valueQuantity: { value, unit: 'x', system: 'http://unitsofmeasure.org', code: 'x' },
        });
      }
    }
  });
  after(() => server.close());

  for (const v of VERSIONS) {
    describe(`on /fhir/${v}`, () => {
      const base = () => server.fhir(v);
      const get = (q: string, headers: Record<string, string> = {}) => call('GET', `${base()}/${q}`, undefined, headers);

      it('finds by string, token, date and quantity, with total and self link', async () => {
        const res = await get('Patient?family=alpha&birthdate=ge1985');
        assert.equal(res.status, 200);
        assert.equal(res.body.type, 'searchset');
        assert.equal(res.body.total, 1);
        assert.deepEqual(ids(res.body), ['Patient/p3']);
        assert.equal(res.body.entry[0].fullUrl, `${base()}/Patient/p3`);
        assert.match(res.body.link.find((l: any) => l.relation === 'self').url, /family=alpha/);
        assert.deepEqual(ids((await get('Observation?code=http://loinc.org|8867-4&value-quantity=gt70')).body), ['Observation/o3']);
      });

      it('chains and reverse-chains', async () => {
        assert.deepEqual(ids((await get('Observation?subject:Patient.family=beta')).body), ['Observation/o3']);
        assert.deepEqual(ids((await get('Observation?subject.organization.name=acme')).body).sort(), ['Observation/o1', 'Observation/o2']);
        assert.deepEqual(ids((await get('Patient?_has:Observation:subject:code=8310-5')).body), ['Patient/p1']);
      });

      it('includes and revincludes, with :iterate', async () => {
        const inc = await get('Observation?code=8867-4&_include=Observation:subject');
        assert.deepEqual(ids(inc.body).sort(), ['Observation/o1', 'Observation/o3']);
        assert.deepEqual(ids(inc.body, 'include').sort(), ['Patient/p1', 'Patient/p2']);
        assert.equal(inc.body.total, 2, 'included resources do not count');
        const rev = await get('Patient?_id=p1&_revinclude=Observation:subject');
        assert.deepEqual(ids(rev.body, 'include').sort(), ['Observation/o1', 'Observation/o2']);
        const iter = await get('Observation?_id=o3&_include=Observation:subject&_include:iterate=Patient:organization');
        assert.deepEqual(ids(iter.body, 'include'), ['Patient/p2']);
        const iter2 = await get('Observation?_id=o1&_include=Observation:subject&_include:iterate=Patient:organization');
        assert.deepEqual(ids(iter2.body, 'include').sort(), ['Organization/org-1', 'Patient/p1']);
      });

      it('applies _elements to the matches and not to included resources (search.html#elements)', async () => {
        const res = await get('Observation?_id=o1&_elements=status&_include=Observation:subject');
        const match = res.body.entry.find((e: any) => e.search.mode === 'match').resource;
        const included = res.body.entry.find((e: any) => e.search.mode === 'include').resource;
        assert.equal(match.subject, undefined);
        assert.equal(match.status, 'final');
        assert.ok(match.meta.tag.some((t: any) => t.code === 'SUBSETTED'));
        assert.equal(included.name[0].family, 'Alpha');
        assert.equal(included.meta.tag, undefined);
      });

      it('sorts by several keys and pages forwards and backwards with stable links', async () => {
        const first = await get('Patient?_sort=family,-birthdate&_count=2');
        assert.deepEqual(ids(first.body), ['Patient/p3', 'Patient/p1']);
        const nextUrl = first.body.link.find((l: any) => l.relation === 'next').url;
        // A new patient that sorts first does not disturb the next page.
        await call('PUT', `${base()}/Patient/p0`, { resourceType: 'Patient', id: 'p0', name: [{ family: 'Aaron' }] });
        const second = await call('GET', nextUrl);
        assert.deepEqual(ids(second.body), ['Patient/p2']);
        assert.equal(second.body.link.find((l: any) => l.relation === 'next'), undefined);
        const prev = await call('GET', second.body.link.find((l: any) => l.relation === 'previous').url);
        assert.deepEqual(ids(prev.body), ['Patient/p3', 'Patient/p1']);
        await call('DELETE', `${base()}/Patient/p0`);
      });

      it('_summary=count, _summary=true, _elements and _total=none', async () => {
        const count = await get('Observation?_summary=count');
        assert.equal(count.body.total, 3);
        assert.equal(count.body.entry, undefined);
        const summary = await get('Patient?_id=p1&_summary=true');
        const p = summary.body.entry[0].resource;
        assert.ok(p.name && p.birthDate);
        assert.ok(p.meta.tag.some((t: any) => t.code === 'SUBSETTED'));
        const elements = await get('Patient?_id=p1&_elements=birthDate');
        assert.deepEqual(Object.keys(elements.body.entry[0].resource).sort(), ['birthDate', 'id', 'meta', 'resourceType']);
        assert.equal((await get('Patient?_total=none')).body.total, undefined);
      });

      it('searches by POST _search with a form body, and across types with _type', async () => {
        const res = await call('POST', `${base()}/Patient/_search`, 'family=beta', { 'content-type': 'application/x-www-form-urlencoded' });
        assert.equal(res.status, 200);
        assert.deepEqual(ids(res.body), ['Patient/p2']);
        const system = await get('?_type=Patient,Organization&_id=p2,org-1');
        assert.deepEqual(ids(system.body).sort(), ['Organization/org-1', 'Patient/p2']);
      });

      it('system search with _type: no outcome entry, also under handling=strict and with other parameters', async () => {
        for (const [q, expected] of [
          ['?_type=Patient,Organization', ['Organization/org-1', 'Patient/p1', 'Patient/p2', 'Patient/p3']],
          ['?_type=Patient,Organization&_count=2&_sort=_id', ['Organization/org-1', 'Patient/p1']],
          ['?_type=Patient&_type=Organization&_id=p2,org-1&_total=none', ['Organization/org-1', 'Patient/p2']],
          ['?_id=o1,p1', ['Observation/o1', 'Patient/p1']],
        ] as const) {
          for (const prefer of ['handling=lenient', 'handling=strict']) {
            const res = await get(q, { prefer });
            assert.equal(res.status, 200, `${q} ${prefer}`);
            assert.deepEqual(ids(res.body).sort(), expected, `${q} ${prefer}`);
            assert.deepEqual(ids(res.body, 'outcome'), [], `${q} ${prefer}`);
            assert.ok(res.body.entry.every((e: any) => e.resource.resourceType !== 'OperationOutcome'), `${q} ${prefer}`);
          }
        }
        const unknown = await get('?_type=Patient,Wombat');
        assert.equal(unknown.status, 400);
        assert.deepEqual(unknown.body.issue[0].expression, ['_type']);
      });

      it('reports unknown parameters in an OperationOutcome entry, or 400s with handling=strict', async () => {
        const lenient = await get('Patient?family=alpha&shoe-size=42');
        assert.equal(lenient.status, 200);
        const oo = lenient.body.entry.find((e: any) => e.search.mode === 'outcome').resource;
        assert.equal(oo.resourceType, 'OperationOutcome');
        assert.match(oo.issue[0].diagnostics, /shoe-size/);
        const strict = await get('Patient?family=alpha&shoe-size=42', { prefer: 'handling=strict' });
        assert.equal(strict.status, 400);
        assert.match(JSON.stringify(strict.body), /shoe-size/);
      });

      it('refuses a modifier it does not evaluate with a 400 naming the parameter, under lenient and strict handling', async () => {
        for (const c of REFUSED_MODIFIERS) {
          for (const prefer of ['handling=lenient', 'handling=strict']) {
            const res = await get(`${c.type}?${c.query}`, { prefer });
            assert.equal(res.status, 400, `${c.query} ${prefer}`);
            assert.equal(res.body.resourceType, 'OperationOutcome');
            assert.deepEqual([res.body.issue[0].code, res.body.issue[0].expression], [c.code, [c.param]], c.query);
          }
        }
        const unsupported = await get('Observation?code:in=http://example.org/vs');
        assert.match(unsupported.body.issue[0].diagnostics, /':in' on 'code' is not supported/);
      });

      it('answers malformed values with a 400 naming the parameter', async () => {
        for (const q of ['Patient?birthdate=1980-13-45', 'Patient?birthdate=zz1980', 'Observation?value-quantity=abc', 'Patient?_count=many', 'Patient?_sort=nope', 'Patient?_cursor=garbage', 'Observation?_sort=code-value-quantity', 'Observation?_sort=-combo-code-value-quantity', 'Patient?_sort=_has']) {
          const res = await get(q);
          assert.equal(res.status, 400, q);
          assert.equal(res.body.resourceType, 'OperationOutcome', q);
        }
      });
    });
  }
});

/**
 * _include/_revinclude add at most 1,000 resources to a page and follow :iterate 4 times; a page
 * cut at either bound says so in an outcome entry, and one that is not cut does not.
 */
describe('_include and _revinclude at their bounds', () => {
  let server: TestServer;
  const base = () => server.fhir('R4');
  const get = (q: string) => call('GET', `${base()}/${q}`);
  const outcome = (bundle: any) => bundle.entry?.find((e: any) => e.search?.mode === 'outcome')?.resource;
  const observations = (from: number, to: number) => ({
    resourceType: 'Bundle',
    type: 'transaction',
    entry: Array.from({ length: to - from }, (_, i) => ({
      resource: { resourceType: 'Observation', id: `ob-${from + i}`, status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/hub' } },
      request: { method: 'PUT', url: `Observation/ob-${from + i}` },
    })),
  });
  before(async () => {
    server = await startServer();
    assert.equal((await call('PUT', `${base()}/Patient/hub`, { resourceType: 'Patient', id: 'hub' })).status, 201);
    assert.equal((await call('POST', base(), observations(0, 1000))).status, 200);
    // A chain c0 → c1 → … → c5 by hasMember.
    for (let i = 5; i >= 0; i--) {
      const member = i < 5 ? { hasMember: [{ reference: `Observation/c${i + 1}` }] } : {};
      assert.equal((await call('PUT', `${base()}/Observation/c${i}`, { resourceType: 'Observation', id: `c${i}`, status: 'final', code: { text: 'c' }, ...member })).status, 201);
    }
  });
  after(() => server.close());

  it('adds every one of 1,000 referring resources with no outcome, and the first 1,000 of 1,001 with a too-costly warning', async () => {
    const all = await get('Patient?_id=hub&_revinclude=Observation:subject');
    assert.equal(all.status, 200);
    assert.equal(ids(all.body, 'include').length, 1000);
    assert.equal(outcome(all.body), undefined, 'nothing was left out');
    assert.equal((await call('PUT', `${base()}/Observation/ob-1000`, observations(1000, 1001).entry[0]!.resource)).status, 201);
    const cut = await get('Patient?_id=hub&_revinclude=Observation:subject');
    assert.equal(cut.status, 200);
    assert.deepEqual(ids(cut.body), ['Patient/hub']);
    const included = ids(cut.body, 'include');
    assert.equal(included.length, 1000);
    assert.equal(new Set(included).size, 1000);
    const issue = outcome(cut.body)?.issue;
    assert.equal(issue?.length, 1);
    assert.equal(issue[0].severity, 'warning');
    assert.equal(issue[0].code, 'too-costly');
    assert.match(issue[0].diagnostics, /first 1,000 resources/);
  });

  it('says so when :iterate stops after 4 rounds with more to follow, and not when the chain ends there', async () => {
    const ended = await get('Observation?_id=c1&_include:iterate=Observation:has-member');
    assert.deepEqual(ids(ended.body, 'include'), ['Observation/c2', 'Observation/c3', 'Observation/c4', 'Observation/c5']);
    assert.equal(outcome(ended.body), undefined);
    const cut = await get('Observation?_id=c0&_include:iterate=Observation:has-member');
    assert.deepEqual(ids(cut.body, 'include'), ['Observation/c1', 'Observation/c2', 'Observation/c3', 'Observation/c4']);
    assert.equal(outcome(cut.body)?.issue[0].code, 'too-costly');
  });

  it('keeps the outcome of ignored parameters beside the cut', async () => {
    const res = await get('Patient?_id=hub&_revinclude=Observation:subject&unknown-param=1');
    const codes = outcome(res.body)?.issue.map((i: any) => i.code).sort();
    assert.deepEqual(codes, ['not-supported', 'too-costly']);
  });
});

/**
 * Values far longer than an index row (PostgreSQL indexes their first 256 characters): stored,
 * and found by equality and by prefix on the whole value, characters beyond the BMP included.
 */
describe('search on long values', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  it('finds strings, tokens and uris of thousands of characters by their whole value', async () => {
    const base = server.fhir('R4');
    const long = 'x'.repeat(300) + 'é'.repeat(300) + '😀'.repeat(300);
    const patient = (suffix: string) => ({ resourceType: 'Patient', name: [{ family: long + suffix }], identifier: [{ system: `http://s/${long}`, value: long + suffix }] });
    const p = await call('POST', `${base}/Patient`, patient(''));
    assert.equal(p.status, 201, p.text);
    const q = await call('POST', `${base}/Patient`, patient('z'));
    assert.equal(q.status, 201, q.text);
    const ids = async (query: string) => ((await call('GET', `${base}/Patient?${query}`)).body.entry ?? []).map((e: any) => e.resource.id).sort();
    assert.deepEqual(await ids(`family=${encodeURIComponent(long)}`), [p.body.id, q.body.id].sort(), 'a prefix longer than the indexed one');
    assert.deepEqual(await ids(`family=${encodeURIComponent(`${long}z`)}`), [q.body.id]);
    assert.deepEqual(await ids(`family:exact=${encodeURIComponent(long)}`), [p.body.id]);
    assert.deepEqual(await ids(`identifier=${encodeURIComponent(long)}`), [p.body.id], 'equal in the indexed prefix, not beyond it');
    assert.deepEqual(await ids(`identifier=${encodeURIComponent(`http://s/${long}|${long}z`)}`), [q.body.id]);
    const url = `http://u/${long}`;
    assert.equal((await call('POST', `${base}/ValueSet`, { resourceType: 'ValueSet', status: 'draft', url })).status, 201);
    assert.equal((await call('GET', `${base}/ValueSet?url=${encodeURIComponent(url)}`)).body.total, 1);
    assert.equal((await call('GET', `${base}/ValueSet?url=${encodeURIComponent(`${url}x`)}`)).body.total, 0);
    assert.equal((await call('GET', `${base}/ValueSet?url:below=${encodeURIComponent('http://u')}`)).body.total, 1);
  });

  it('tells apart values around the indexed prefix length (256 on PostgreSQL): a value shorter than it is compared on the prefix alone', async () => {
    const base = server.fhir('R4');
    const ids = new Map<string, string>();
    for (const ch of ['a', 'é', '😀']) {
      for (const n of [255, 256, 257]) {
        const value = ch.repeat(n);
        const res = await call('POST', `${base}/Patient`, { resourceType: 'Patient', identifier: [{ system: 'urn:len', value }], name: [{ family: value }] });
        assert.equal(res.status, 201, res.text);
        ids.set(value, res.body.id);
      }
    }
    for (const [value, id] of ids) {
      for (const query of [`identifier=${encodeURIComponent(`urn:len|${value}`)}`, `family:exact=${encodeURIComponent(value)}`]) {
        const found = ((await call('GET', `${base}/Patient?${query}`)).body.entry ?? []).map((e: any) => e.resource.id);
        assert.deepEqual(found, [id], `${value[0]} × ${Array.from(value).length} (${query.split('=')[0]})`);
      }
    }
  });
});
