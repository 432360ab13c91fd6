/**
 * The search budget (issue 14): every search is checked while parsing, so the store and the
 * in-memory matcher never see a query over it; and no resource is indexed past MAX_INDEX_ROWS.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadDefinitions } from '../fhir/definitions/index.ts';
import { FhirError } from '../fhir/errors.ts';
import type { Resource } from '../fhir/types.ts';
import { MAX_INDEX_ROWS, SEARCH_BUDGET } from './budget.ts';
import { extractIndex } from './extract.ts';
import { compileMatcher } from './match.ts';
import { searchRegistry } from './parameters.ts';
import { parseSearch } from './parse.ts';

const registry = searchRegistry(loadDefinitions('R4'));
const parse = (type: string, query: string) =>
  parseSearch(registry, [type], new URLSearchParams(query), { strict: false, defaultCount: 20, maxCount: 100 });

const list = <T = string>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));

/** Asserts a 400 too-costly naming `param` (its start, for long names) and saying `words`. */
function assertTooCostly(fn: () => unknown, param: string, words: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof FhirError, `not a FhirError: ${String(err)}`);
    assert.equal(err.status, 400);
    assert.equal(err.issues[0].code, 'too-costly');
    assert.ok(err.issues[0].expression?.[0]?.startsWith(param), `expression ${err.issues[0].expression}`);
    assert.match(err.issues[0].diagnostics!, words);
    return true;
  });
}

describe('search budget', () => {
  it('OR values: a list up to the budget parses, one more is refused naming the parameter', () => {
    assert.equal(parse('Patient', `_id=${list(SEARCH_BUDGET.values, (i) => `p${i}`).join(',')}`).conditions.length, 1);
    assertTooCostly(() => parse('Patient', `_id=${list(40_000, (i) => `p${i}`).join(',')}`), '_id', /'_id' has 40000 values, more than the 500/);
  });

  it('OR values add up over parameters; a chained value counts double per link', () => {
    const half = list(SEARCH_BUDGET.values / 2, (i) => `v${i}`).join(',');
    assertTooCostly(() => parse('Patient', `name=${half}&family=${half}&given=x`), 'given', /brings the search to 501 values/);
    const chainedValues = SEARCH_BUDGET.values / 16;
    parse('Observation', `subject:Patient.organization.partof.partof.name=${list(chainedValues, (i) => `v${i}`).join(',')}`);
    assertTooCostly(
      () => parse('Observation', `subject:Patient.organization.partof.partof.name=${list(chainedValues + 1, (i) => `v${i}`).join(',')}`),
      'subject:Patient.organization.partof.partof.name',
      /each counting 16, as a chain of 4 links/,
    );
  });

  it('parameters: 2,000 ANDed conditions are refused at the first one over the budget, ignored ones included', () => {
    assertTooCostly(() => parse('Patient', list(2000, (i) => `name=x${i}`).join('&')), 'name', /more than 50/);
    assertTooCostly(() => parse('Patient', list(100_000, (i) => `unknown${i}=x`).join('&')), 'unknown50', /more than 50 \(at 'unknown50'\)/);
    assert.equal(parse('Patient', list(SEARCH_BUDGET.parameters, (i) => `name=x${i}`).join('&')).conditions.length, SEARCH_BUDGET.parameters);
  });

  it('chain depth: four links parse, a 50-level chain is refused before anything recurses', () => {
    const four = parse('Observation', 'subject:Patient.organization.partof.partof.name=x');
    assert.equal(four.conditions[0].kind, 'chain');
    const deep = `subject:Patient.organization${'.partof'.repeat(48)}.name`;
    assertTooCostly(() => parse('Observation', `${deep}=x`), deep.slice(0, 200), /too deep: more than 4 links/);
    assertTooCostly(() => parse('Observation', `subject:Patient.organization${'.partof'.repeat(100_000)}.name=x`), 'subject:Patient', /too deep/);
  });

  it('_has depth: three levels parse, more are refused, however deep', () => {
    const three = parse('Patient', '_has:Group:member:_has:Group:member:_has:Group:member:code=x');
    assert.equal(three.conditions[0].kind, 'has');
    assertTooCostly(() => parse('Patient', `${'_has:Group:member:'.repeat(4)}code=x`), '_has:Group:member:', /4 levels, at most 3/);
    assertTooCostly(() => parse('Patient', `${'_has:Observation:subject:'.repeat(50_000)}code=x`), '_has:Observation', /50000 levels/);
    // A _has at the end of a chain counts too.
    assertTooCostly(() => parse('Observation', `subject:Patient.${'_has:Group:member:'.repeat(4)}code=x`), 'subject:Patient', /_has too deeply/);
  });

  it('_sort keys: five parse, a sixth is refused (over one or several _sort parameters)', () => {
    assert.equal(parse('Patient', '_sort=name,-birthdate,gender,family,_id').sort.length, 5);
    assertTooCostly(() => parse('Patient', '_sort=name,-birthdate,gender,family,_id,given'), '_sort', /more than 5/);
    assertTooCostly(() => parse('Patient', '_sort=name,birthdate,gender&_sort=family,_id,given'), '_sort', /more than 5/);
    assertTooCostly(() => parse('Patient', `_sort=${list(100_000, () => 'name').join(',')}`), '_sort', /sort keys/);
  });

  it('includes: ten _include/_revinclude parameters parse, an eleventh is refused', () => {
    const ten = [...list(5, () => '_include=Observation:subject'), ...list(5, () => '_revinclude:iterate=Provenance:target')].join('&');
    const req = parse('Observation', ten);
    assert.equal(req.include.length + req.revinclude.length, 10);
    assertTooCostly(() => parse('Observation', `${ten}&_include:iterate=*`), '_include:iterate', /_include and _revinclude parameters: more than 10/);
  });

  it('the in-memory matcher (subscription topics and filters) is bounded by the same budget', () => {
    assert.throws(() => compileMatcher(registry, 'Patient', `name=${list(1000, (i) => `v${i}`).join(',')}`, { now: Date.now }), (err: unknown) => {
      assert.ok(err instanceof FhirError);
      assert.equal(err.issues[0].code, 'too-costly');
      return true;
    });
    assert.throws(() => compileMatcher(registry, 'Patient', list(2000, (i) => `name=x${i}`).join('&'), { now: Date.now }), /Too many search parameters/);
  });
});

describe('index rows per resource', () => {
  it(`a resource past ${MAX_INDEX_ROWS} rows is a 422 too-costly, stopped at the limit`, () => {
    const patient = { resourceType: 'Patient', name: list(80_000, (i) => ({ family: `F${i}`, given: [`G${i}`] })) } as Resource;
    assert.throws(() => extractIndex(registry, patient), (err: unknown) => {
      assert.ok(err instanceof FhirError);
      assert.equal(err.status, 422);
      assert.equal(err.issues[0].code, 'too-costly');
      assert.match(err.issues[0].diagnostics!, /more than 20,000 search index rows/);
      return true;
    });
  });

  it('a large but reasonable resource is indexed in full', () => {
    const patient = { resourceType: 'Patient', name: list(1000, (i) => ({ family: `F${i}`, given: [`G${i}`] })) } as Resource;
    const rows = extractIndex(registry, patient);
    assert.equal(rows.string.filter((r) => r.code === 'family').length, 1000);
  });
});
