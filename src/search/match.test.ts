import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadDefinitions } from '../fhir/definitions/index.ts';
import { FhirError } from '../fhir/errors.ts';
import { FHIR_VERSIONS, type FhirVersion, type Resource } from '../fhir/types.ts';
import { validateResource } from '../fhir/validate.ts';
import { REFUSED_MODIFIERS, SEARCH_CASES } from './cases.ts';
import { PATIENTS } from './cases/resources.ts';
import { compileMatcher } from './match.ts';
import { searchRegistry, type SearchRegistry } from './parameters.ts';
import { parseSearch } from './parse.ts';
import { parseDate, parseNumber } from './parse/scalars.ts';
import type { Condition, SearchValue } from './types.ts';

const registries = new Map<FhirVersion, SearchRegistry>();
function registry(version: FhirVersion = 'R4'): SearchRegistry {
  let r = registries.get(version);
  if (r === undefined) registries.set(version, (r = searchRegistry(loadDefinitions(version))));
  return r;
}

function matching(version: FhirVersion, type: string, query: string, resources: Resource[]): string[] {
  const matcher = compileMatcher(registry(version), type, query, { now: Date.now });
  return resources.filter((r) => matcher.matches(r)).map((r) => r.id!).sort();
}

const parse = (type: string, query: string, strict = false, version: FhirVersion = 'R4') =>
  parseSearch(registry(version), type === '' ? [] : [type], new URLSearchParams(query), { strict, defaultCount: 20, maxCount: 100, baseUrl: 'http://h.test/fhir/R4' });

/** Asserts a 400 whose OperationOutcome expression names `param`. */
function assert400(fn: () => unknown, param: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof FhirError, `not a FhirError: ${String(err)}`);
    assert.equal(err.status, 400);
    assert.deepEqual(err.issues[0].expression, [param]);
    return true;
  });
}

describe('search case table', () => {
  for (const set of SEARCH_CASES) {
    describe(set.version, () => {
      it('resources are structurally valid', () => {
        for (const resource of set.resources) assert.deepEqual(validateResource(loadDefinitions(set.version), resource), [], resource.id);
      });
      for (const c of set.cases) {
        it(`${c.type}?${c.query}`, () => {
          assert.deepEqual(matching(set.version, c.type, c.query, set.resources), [...c.expect].sort());
        });
      }
    });
  }

  it('covers every parameter type, modifier and prefix in every version', () => {
    for (const set of SEARCH_CASES) {
      const seen = new Set<string>();
      for (const c of set.cases) {
        for (const cond of parse(c.type, c.query, true, set.version).conditions) collect(cond, seen);
      }
      const wanted = ['string', 'token', 'reference', 'date', 'number', 'quantity', 'uri', 'composite']
        .concat([':exact', ':contains', ':missing', ':not', ':text', ':of-type', ':identifier', ':above', ':below'])
        .concat(['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'].flatMap((p) => [`date ${p}`, `number ${p}`, `quantity ${p}`]));
      assert.deepEqual(wanted.filter((w) => !seen.has(w)), [], set.version);
      assert.ok(set.cases.length >= 150, `${set.version}: ${set.cases.length} cases`);
    }
  });
});

function collect(cond: Condition, seen: Set<string>): void {
  if (cond.kind !== 'param') return;
  seen.add(cond.param.type);
  if (cond.modifier !== undefined) seen.add(`:${cond.modifier}`);
  const visit = (v: SearchValue): void => {
    if ('prefix' in v) seen.add(`${v.kind} ${v.prefix}`);
    if (v.kind === 'composite') v.parts.forEach(visit);
  };
  cond.values.forEach(visit);
}

describe('compileMatcher', () => {
  it('reads meta.lastUpdated (not in the shared table: stores rewrite it)', () => {
    const q = (query: string) => matching('R4', 'Patient', query, PATIENTS);
    assert.deepEqual(q('_lastUpdated=2024-01-15'), ['pat-1']);
    assert.deepEqual(q('_lastUpdated=gt2024-01-31'), ['pat-2']);
    assert.deepEqual(q('_lastUpdated=2024-01-15T10:00:00Z'), ['pat-1']);
    assert.deepEqual(q('_lastUpdated:missing=true'), ['pat-3']);
  });

  it('gives a code element the system its binding does: in a composite component too; not across several types (parse)', () => {
    const doc = { resourceType: 'DocumentReference', id: 'd1', status: 'current', content: [{ attachment: { url: 'http://x' } }], relatesTo: [{ code: 'replaces', target: { reference: 'DocumentReference/t' } }] } as Resource;
    const q = (query: string) => matching('R4', 'DocumentReference', query, [doc]);
    assert.deepEqual(q('relationship=DocumentReference/t$http://hl7.org/fhir/document-relationship-type|replaces'), ['d1']);
    assert.deepEqual(q('relationship=DocumentReference/t$http://example.org/other|replaces'), []);
    assert.deepEqual(q('relation=http://hl7.org/fhir/document-relationship-type|replaces'), ['d1']);
    const token = (types: string[], query: string) => {
      const cond = parseSearch(registry('R4'), types, new URLSearchParams(query), { strict: true, defaultCount: 20, maxCount: 100 }).conditions[0]!;
      return cond.kind === 'param' ? cond.values[0] : undefined;
    };
    assert.equal((token(['Encounter'], 'status=http://hl7.org/fhir/encounter-status|cancelled') as { orNoSystem?: true }).orNoSystem, true);
    assert.equal((token(['Encounter', 'Observation'], 'status=http://hl7.org/fhir/encounter-status|cancelled') as { orNoSystem?: true }).orNoSystem, undefined);
  });

  it('accepts Type?query, ?query and query; refuses another type', () => {
    const r = registry('R4');
    const patient = PATIENTS[0];
    assert.equal(compileMatcher(r, 'Patient', 'Patient?gender=female', { now: Date.now }).matches(patient), true);
    assert.equal(compileMatcher(r, 'Patient', '?gender=female', { now: Date.now }).matches(patient), true);
    assert.equal(compileMatcher(r, 'Patient', 'gender=male', { now: Date.now }).matches(patient), false);
    assert.equal(compileMatcher(r, 'Patient', 'Patient', { now: Date.now }).matches(patient), true);
    assert.equal(compileMatcher(r, 'Patient', '_profile=http://example.org/fhir/StructureDefinition/vip-patient?x=1', { now: Date.now }).matches(patient), false);
    assert.equal(compileMatcher(r, 'Observation', 'status=final', { now: Date.now }).matches(patient), false);
    assert.throws(() => compileMatcher(r, 'Patient', 'Observation?status=final', { now: Date.now }), (e: unknown) => e instanceof FhirError && e.status === 400);
  });

  it('refuses chains and _has, ignores result parameters, is strict by default', () => {
    const r = registry('R4');
    assert400(() => compileMatcher(r, 'Observation', 'subject:Patient.name=x', { now: Date.now }), 'subject:Patient.name');
    assert400(() => compileMatcher(r, 'Patient', '_has:Observation:subject:code=x', { now: Date.now }), '_has:Observation:subject:code');
    assert400(() => compileMatcher(r, 'Patient', 'foo=bar', { now: Date.now }), 'foo');
    const m = compileMatcher(r, 'Patient', 'gender=female&_sort=-birthdate&_count=1&_include=Patient:organization', { now: Date.now });
    assert.deepEqual(m.params.map((p) => p.code), ['gender']);
    assert.equal(compileMatcher(r, 'Patient', 'foo=bar', { now: Date.now, strict: false }).matches(PATIENTS[1]), true);
  });

  it('reads absolute references into the base as Type/id', () => {
    const obs = { resourceType: 'Observation', id: 'x', status: 'final', code: { text: 't' }, subject: { reference: 'http://h.test/fhir/R4/Patient/p9' } };
    const m = (query: string) => compileMatcher(registry('R4'), 'Observation', query, { now: Date.now, baseUrl: 'http://h.test/fhir/R4' }).matches(obs);
    assert.equal(m('subject=Patient/p9'), true);
    assert.equal(m('subject=http://h.test/fhir/R4/Patient/p9'), true);
    assert.equal(m('subject=Patient/p8'), false);
  });

  it('evaluates ap against the injected clock: ±10% of the distance to now', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    const at = (date: string) => ({ resourceType: 'Observation', id: 'x', status: 'final', code: { text: 't' }, effectiveDateTime: date });
    const m = (query: string, date: string) => compileMatcher(registry('R4'), 'Observation', query, { now: () => now }).matches(at(date));
    assert.equal(m('date=ap2029-12-02', '2029-12-01'), true); // ~30 days away: ±3 days
    assert.equal(m('date=ap2029-12-10', '2029-12-01'), false); // ~22 days away: ±2.2 days
    assert.equal(m('date=ap2029-12-31', '2029-12-31'), true); // the value's own range always matches
    assert.equal(m('date=ap2020-06-01', '2020-01-01'), true); // ~9.6 years away: ±11 months
    assert.equal(m('date=ap2025-01-01', '2024-01-01'), false); // 5 years away: ±6 months
  });
});

describe('values', () => {
  it('numbers carry their implicit precision', () => {
    assert.deepEqual(parseNumber('100'), { value: 100, lo: 99.5, hi: 100.5 });
    assert.deepEqual(parseNumber('100.00'), { value: 100, lo: 99.995, hi: 100.005 });
    assert.deepEqual(parseNumber('1e2'), { value: 100, lo: 50, hi: 150 });
    assert.deepEqual(parseNumber('-0.5'), { value: -0.5, lo: -0.55, hi: -0.45 });
    for (const bad of ['', '.', 'e5', '1.2.3', '0x10', '1e99999', 'abc', '--1']) assert.equal(parseNumber(bad), undefined, bad);
  });

  it('dates of every precision become inclusive ranges', () => {
    const ms = (s: string) => Date.parse(s);
    assert.deepEqual(parseDate('2024'), { lo: ms('2024-01-01T00:00:00Z'), hi: ms('2025-01-01T00:00:00Z') - 1 });
    assert.deepEqual(parseDate('2024-02'), { lo: ms('2024-02-01T00:00:00Z'), hi: ms('2024-03-01T00:00:00Z') - 1 });
    assert.deepEqual(parseDate('2024-02-29'), { lo: ms('2024-02-29T00:00:00Z'), hi: ms('2024-03-01T00:00:00Z') - 1 });
    assert.deepEqual(parseDate('2024-02-29T10:15'), { lo: ms('2024-02-29T10:15:00Z'), hi: ms('2024-02-29T10:15:59.999Z') });
    assert.deepEqual(parseDate('2024-02-29T10:15:30+02:00'), { lo: ms('2024-02-29T08:15:30Z'), hi: ms('2024-02-29T08:15:30.999Z') });
    assert.deepEqual(parseDate('2024-02-29T10:15:30.5-01:30'), { lo: ms('2024-02-29T11:45:30.5Z'), hi: ms('2024-02-29T11:45:30.599Z') });
    assert.deepEqual(parseDate('2024-02-29T10:15:30.123456Z'), { lo: ms('2024-02-29T10:15:30.123Z'), hi: ms('2024-02-29T10:15:30.123Z') });
    assert.equal(parseDate('0050')?.lo, Date.UTC(2050, 0, 1) - 2000 * 365.2425 * 86_400_000);
    for (const bad of ['2023-02-29', '2024-13', '2024-00', '2024-01-32', '2024-01-01T24:00', '2024-01-01T10', '20240101', '2024-01-01T10:00+15:00', '2024-01-01Z']) {
      assert.equal(parseDate(bad), undefined, bad);
    }
  });
});

describe('parseSearch errors', () => {
  const malformed: [string, string, string][] = [
    // [type, query, parameter named in the OperationOutcome]
    ['Patient', 'birthdate=1980-13', 'birthdate'],
    ['Patient', 'birthdate=2023-02-29', 'birthdate'],
    ['Patient', 'birthdate=19800101', 'birthdate'],
    ['Patient', 'birthdate=xx1980', 'birthdate'],
    ['Patient', 'birthdate=gt', 'birthdate'],
    ['RiskAssessment', 'probability=zz0.5', 'probability'],
    ['RiskAssessment', 'probability=abc', 'probability'],
    ['RiskAssessment', 'probability=1.2.3', 'probability'],
    ['Observation', 'value-quantity=5|http://unitsofmeasure.org', 'value-quantity'],
    ['Observation', 'value-quantity=abc||mg', 'value-quantity'],
    ['Observation', 'value-quantity=5|a|b|c', 'value-quantity'],
    ['Patient', 'gender=', 'gender'],
    ['Patient', 'gender=male,', 'gender'],
    ['Patient', 'gender=|', 'gender'],
    ['Patient', 'family=', 'family'],
    ['Patient', 'family=%20', 'family'],
    ['Observation', 'code:text=%20', 'code:text'],
    ['Patient', 'identifier:of-type=a|b', 'identifier:of-type'],
    ['Observation', 'subject=a/b/c', 'subject'],
    ['Observation', 'subject=Patient/1|2', 'subject'],
    ['Observation', 'subject:Patient=Group/1', 'subject:Patient'],
    ['Observation', 'subject:Organization=1', 'subject:Organization'],
    ['Patient', 'gender:missing=maybe', 'gender:missing'],
    ['Observation', 'code-value-quantity=1234', 'code-value-quantity'],
    ['Observation', 'code-value-quantity=1234$5$6', 'code-value-quantity'],
    ['Patient', 'birthdate:exact=1980', 'birthdate:exact'],
    ['Patient', 'gender:contains=x', 'gender:contains'],
    ['Patient', 'family:not=x', 'family:not'],
    ['Patient', 'family:Patient=x', 'family:Patient'],
    ['Patient', '_count=-1', '_count'],
    ['Patient', '_count=ten', '_count'],
    ['Patient', '_total=maybe', '_total'],
    ['Patient', '_summary=all', '_summary'],
    ['Patient', '_sort=nonsense', '_sort'],
    ['Patient', '_sort=,family', '_sort'],
    ['Patient', '_elements=name,', '_elements'],
    ['Patient', '_include=Foo:bar', '_include'],
    ['Patient', '_include=Patient:family', '_include'],
    ['Patient', '_include=Observation:subject', '_include'],
    ['Patient', '_revinclude=Observation:subject:Organization', '_revinclude'],
    ['', '_type=Patient,Nonsense', '_type'],
    ['Patient', 'family.name=x', 'family.name'],
    ['Patient', '_has:Observation', '_has:Observation'],
    ['Patient', '_has:Observation:code:status=final', '_has:Observation:code:status'],
    ['Observation', 'subject:text.name=x', 'subject:text.name'],
  ];
  for (const [type, query, param] of malformed) {
    it(`${type}?${query} → 400 naming ${param}`, () => {
      assert400(() => parse(type, query, false), param);
      assert400(() => parse(type, query, true), param);
    });
  }

  it('unknown parameters are ignored with a reason, or a 400 under strict handling', () => {
    const unknown: [string, string][] = [
      ['foo=bar', 'foo'],
      ['foo:bar=1', 'foo:bar'],
      ['_text=abc', '_text'],
      ['subject.nothing=1', 'subject.nothing'],
      ['_has:Nothing:subject:code=1', '_has:Nothing:subject:code'],
    ];
    for (const [query, name] of unknown) {
      const req = parse('Observation', `${query}&status=final`);
      assert.equal(req.ignored.length, 1, query);
      assert.equal(req.ignored[0].name, name);
      assert.match(req.ignored[0].reason, /\w/);
      assert.equal(req.conditions.length, 1, query);
      assert400(() => parse('Observation', query, true), name);
    }
  });

  describe('modifiers it does not evaluate are a 400 naming the parameter under any handling, in the parser and the matcher', () => {
    for (const version of FHIR_VERSIONS) {
      for (const c of REFUSED_MODIFIERS) {
        it(`${version} ${c.type}?${c.query} → 400 ${c.code} naming ${c.param}`, () => {
          for (const strict of [false, true]) {
            assert.throws(() => parse(c.type, c.query, strict, version), (err: unknown) => {
              assert.ok(err instanceof FhirError, String(err));
              assert.deepEqual([err.status, err.issues[0].code, err.issues[0].expression], [400, c.code, [c.param]]);
              assert.match(err.message, c.code === 'not-supported' ? /not supported/ : /modifier|refer/i);
              return true;
            });
            assert400(() => compileMatcher(registry(version), c.type, c.query, { now: Date.now, strict }), c.param);
          }
        });
      }
    }
  });

  it('passes _format, _pretty and _cursor silently', () => {
    const req = parse('Patient', '_format=json&_pretty=true&_cursor=abc', true);
    assert.deepEqual([req.conditions, req.ignored], [[], []]);
  });
});

describe('parseSearch structure', () => {
  it('ORs commas, ANDs repeats, honours \\, escapes and folds :[Type] into the values', () => {
    const req = parse('Observation', 'code=a,b\\,c&code=d&subject:Patient=1,Patient/2');
    assert.deepEqual(req.conditions.map((c) => (c.kind === 'param' ? c.values : [])), [
      [{ kind: 'token', value: 'a' }, { kind: 'token', value: 'b,c' }],
      [{ kind: 'token', value: 'd' }],
      [{ kind: 'reference', targetType: 'Patient', id: '1' }, { kind: 'reference', targetType: 'Patient', id: '2' }],
    ]);
    assert.equal(req.conditions[2].kind === 'param' && req.conditions[2].modifier, undefined);
  });

  it('parses reference forms', () => {
    const values = (query: string) => {
      const c = parse('Observation', query).conditions[0];
      return c.kind === 'param' ? c.values : [];
    };
    assert.deepEqual(values('subject=http://h.test/fhir/R4/Patient/7'), [{ kind: 'reference', targetType: 'Patient', id: '7' }]);
    assert.deepEqual(values('subject=http://elsewhere/fhir/Patient/7'), [{ kind: 'reference', url: 'http://elsewhere/fhir/Patient/7' }]);
    assert.deepEqual(values('subject=7'), [{ kind: 'reference', id: '7' }]);
    const single = parse('Patient', 'organization=7').conditions[0]; // one target type: Organization
    assert.deepEqual(single.kind === 'param' && single.values, [{ kind: 'reference', targetType: 'Organization', id: '7' }]);
    assert.deepEqual(values('subject:identifier=http://sys|v1'), [{ kind: 'reference', identifierSystem: 'http://sys', identifierValue: 'v1' }]);
    assert.deepEqual(values('subject:identifier=|v1'), [{ kind: 'reference', identifierSystem: null, identifierValue: 'v1' }]);
    assert.deepEqual(values('focus=http://x.org/Q/1|2.0'), [{ kind: 'reference', url: 'http://x.org/Q/1', version: '2.0' }]);
  });

  it('parses chains of several levels, with and without a type modifier', () => {
    const [typed] = parse('Observation', 'subject:Patient.organization.name=acme').conditions;
    assert.equal(typed.kind, 'chain');
    if (typed.kind !== 'chain') return;
    assert.deepEqual([typed.param.code, typed.targetTypes], ['subject', ['Patient']]);
    assert.equal(typed.inner.kind, 'chain');
    if (typed.inner.kind !== 'chain') return;
    assert.deepEqual([typed.inner.param.code, typed.inner.targetTypes], ['organization', ['Organization']]);
    assert.deepEqual(typed.inner.inner.kind === 'param' && [typed.inner.inner.param.code, typed.inner.inner.values], ['name', [{ kind: 'string', value: 'acme' }]]);
    const [untyped] = parse('Observation', 'subject.name:exact=Ann').conditions;
    // Observation.subject refers to Group, Device, Patient or Location; only the last two have `name`.
    assert.deepEqual(untyped.kind === 'chain' && untyped.targetTypes, ['Patient', 'Location']);
    assert.deepEqual(untyped.kind === 'chain' && untyped.inner.kind === 'param' && untyped.inner.modifier, 'exact');
  });

  it('parses _has, nested', () => {
    const [has] = parse('Patient', '_has:Observation:subject:_has:Provenance:target:agent=Practitioner/1').conditions;
    assert.ok(has.kind === 'has');
    if (has.kind !== 'has') return;
    assert.deepEqual([has.sourceType, has.param.code, has.inner.kind], ['Observation', 'subject', 'has']);
    if (has.inner.kind !== 'has') return;
    assert.deepEqual([has.inner.sourceType, has.inner.param.code], ['Provenance', 'target']);
    assert.deepEqual(has.inner.inner.kind === 'param' && has.inner.inner.values, [{ kind: 'reference', targetType: 'Practitioner', id: '1' }]);
  });

  it('parses result parameters', () => {
    const req = parse('Patient', '_sort=-birthdate,family&_count=500&_total=none&_summary=text&_elements=name,gender&_include=Patient:organization&_include=Patient:general-practitioner:Practitioner&_revinclude:iterate=Observation:subject&_revinclude=Provenance:*');
    assert.deepEqual(req.sort.map((s) => [s.param.code, s.descending]), [['birthdate', true], ['family', false]]);
    assert.deepEqual([req.count, req.total, req.summary, req.elements], [100, 'none', 'text', ['name', 'gender']]);
    assert.deepEqual(req.include.map((i) => [i.sourceType, i.param?.code, i.targetType, i.iterate]), [
      ['Patient', 'organization', undefined, false],
      ['Patient', 'general-practitioner', 'Practitioner', false],
    ]);
    assert.deepEqual(req.revinclude.map((i) => [i.sourceType, i.param?.code, i.iterate]), [['Observation', 'subject', true], ['Provenance', undefined, false]]);
    assert.deepEqual(parse('Patient', '_include=*').include, [{ sourceType: 'Patient', iterate: false }]);
    assert.deepEqual(parse('Patient', '_revinclude=*').revinclude, [{ sourceType: '*', iterate: false }]);
    const defaults = parse('Patient', '');
    assert.deepEqual([defaults.count, defaults.total, defaults.summary], [20, 'accurate', undefined]);
    assert.deepEqual([parse('Patient', '_count=0').count, parse('Patient', '_count=0').summary], [0, 'count']);
  });

  it('system search: _type selects the types, parameters must apply to all of them', () => {
    const req = parse('', '_type=Patient,Practitioner&family=x&_id=1');
    assert.deepEqual(req.types, ['Patient', 'Practitioner']);
    assert.deepEqual(req.conditions.map((c) => c.kind === 'param' && c.param.code), ['family', '_id']);
    assert.deepEqual(parse('', '_type=Patient,Observation&family=x').ignored.map((i) => i.name), ['family']);
    assert.deepEqual(parse('', '_id=1&_lastUpdated=gt2020').conditions.length, 2);
    assert.deepEqual(parse('', 'family=x').ignored.map((i) => i.name), ['family']);
    assert.deepEqual(parse('Patient', '_type=Observation').ignored.map((i) => i.name), ['_type']);
  });

  it('system search: _type is read once, here, and never reported as ignored; without it every type is searched', () => {
    const req = parse('', '_type=Patient,Organization&_type=Patient&_count=5&_id=1', true);
    assert.deepEqual([req.types, req.count, req.ignored], [['Patient', 'Organization'], 5, []]);
    assert.deepEqual(parse('', '_id=1', true).types, loadDefinitions('R4').resourceTypes);
    assert400(() => parse('', `_type=Patient,${'X'.repeat(1000)}`), '_type');
  });
});

describe('a rows memo shared by matchers of one resource', () => {
  it('extracts the rows of the same parameters once, and keeps those of others apart', () => {
    const reg = registry('R4');
    const patient: Resource = { resourceType: 'Patient', id: 'p', gender: 'female', identifier: [{ system: 'urn:s', value: 'a' }, { system: 'urn:s', value: 'b' }] } as Resource;
    let reads = 0;
    // Counts the extractor's visits to `identifier`: a second extraction would visit it again.
    const counted = new Proxy(patient, { get: (t, k, r) => (k === 'identifier' && reads++, Reflect.get(t, k, r)) });
    const byValue = ['a', 'b', 'c'].map((v) => compileMatcher(reg, 'Patient', `identifier=urn:s|${v}`, { now: Date.now }));
    const gender = compileMatcher(reg, 'Patient', 'gender=male', { now: Date.now });
    const memo = new Map();
    assert.deepEqual(byValue.map((m) => m.matches(counted, memo)), [true, true, false]);
    const once = reads;
    assert.ok(once > 0);
    assert.equal(byValue[2]!.matches(counted, memo), false);
    assert.equal(reads, once, 'the rows of identifier were extracted again');
    // Another parameter has rows of its own: gender is not answered from identifier's.
    assert.equal(gender.matches(counted, memo), false);
    assert.equal(compileMatcher(reg, 'Patient', 'gender=female', { now: Date.now }).matches(counted, memo), true);
    // Without a memo every call extracts.
    byValue[0]!.matches(counted);
    assert.ok(reads > once);
  });
});
