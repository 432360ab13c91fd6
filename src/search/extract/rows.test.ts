/**
 * Precise index rows for hand-written resources, one rule of search.html (and of the contract in
 * search/types.ts) at a time, per version where the resource shapes differ. The spec-wide checks
 * (every example, every parameter) are in ../extract.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { loadDefinitions } from '../../fhir/definitions/index.ts';
import { FHIR_VERSIONS, type FhirVersion, type Resource } from '../../fhir/types.ts';
import { extractIndex } from '../extract.ts';
import { searchRegistry } from '../parameters.ts';
import type { IndexRows } from '../types.ts';

const BASE = 'http://herald.test/fhir/R4';

function extract(version: FhirVersion, resource: object, codes?: string[]): IndexRows {
  const registry = searchRegistry(loadDefinitions(version));
  const type = (resource as Resource).resourceType;
  const only = codes?.map((c) => {
    const param = registry.param(type, c);
    assert.ok(param, `${version} ${type} has no parameter ${c}`);
    return param;
  });
  const errors: unknown[] = [];
  const rows = extractIndex(registry, resource as Resource, { baseUrl: `${BASE}/`, only, onError: (_p, e) => errors.push(e) });
  assert.deepEqual(errors, []);
  return rows;
}

/** The rows of one code, without the code (and without grp unless asked for). */
function of<R extends { code: string; grp?: number }>(rows: R[], code: string, keepGrp = false): Omit<R, 'code'>[] {
  return rows.filter((r) => r.code === code).map(({ code: _code, grp, ...rest }) => (keepGrp && grp !== undefined ? { ...rest, grp } : rest) as Omit<R, 'code'>);
}

const utc = (...parts: [number, number, ...number[]]): number => Date.UTC(...parts);
const str = (exact: string, norm = exact.toLowerCase()) => ({ norm, exact });
const tok = (system: string | null, value: string | null, text: string | null = null) => ({ system, value, text });
const ref = (targetType: string | null, targetId: string | null, extra: { url?: string; version?: string; identifierSystem?: string; identifierValue?: string } = {}) => ({
  targetType,
  targetId,
  url: extra.url ?? null,
  version: extra.version ?? null,
  identifierSystem: extra.identifierSystem ?? null,
  identifierValue: extra.identifierValue ?? null,
});

describe('string parameters', () => {
  for (const version of FHIR_VERSIONS) {
    it(`${version}: HumanName gives a row per part; family and given their own`, () => {
      const rows = extract(version, {
        resourceType: 'Patient',
        name: [{ family: 'Müller', given: ['Anna', 'Maria'], prefix: ['Dr.'], suffix: ['PhD'], text: 'Dr.  Anna Müller' }],
      });
      assert.deepEqual(of(rows.string, 'name'), [str('Müller', 'muller'), str('Anna'), str('Maria'), str('Dr.'), str('PhD'), str('Dr.  Anna Müller', 'dr. anna muller')]);
      assert.deepEqual(of(rows.string, 'family'), [str('Müller', 'muller')]);
      assert.deepEqual(of(rows.string, 'given'), [str('Anna'), str('Maria')]);
    });

    it(`${version}: Address gives line, city, district, state, postalCode, country, text`, () => {
      const address = { line: ['1 Main St', 'Apt 2'], city: 'Zürich', district: 'Kreis 1', state: 'ZH', postalCode: '8001', country: 'CH', text: 'somewhere' };
      const rows = extract(version, { resourceType: 'Patient', address: [address] });
      assert.deepEqual(of(rows.string, 'address'), [str('1 Main St'), str('Apt 2'), str('Zürich', 'zurich'), str('Kreis 1'), str('ZH'), str('8001'), str('CH'), str('somewhere')]);
      assert.deepEqual(of(rows.string, 'address-city'), [str('Zürich', 'zurich')]);
      assert.deepEqual(of(rows.string, 'address-postalcode'), [str('8001')]);
    });

    it(`${version}: a plain string or markdown is one row; identical parts are stored once`, () => {
      const rows = extract(version, { resourceType: 'Patient', name: [{ given: ['Ann', 'Ann'] }, { given: ['ANN'] }] });
      assert.deepEqual(of(rows.string, 'given'), [str('Ann'), str('ANN', 'ann')]);
      const vs = extract(version, { resourceType: 'ValueSet', status: 'active', description: 'A *markdown*\ntext', publisher: 'HL7' });
      assert.deepEqual(of(vs.string, 'description'), [str('A *markdown*\ntext', 'a *markdown* text')]);
      assert.deepEqual(of(vs.string, 'publisher'), [str('HL7')]);
    });
  }

  it('R4: an extension parameter indexes the extension value (mothersMaidenName)', () => {
    const url = 'http://hl7.org/fhir/StructureDefinition/patient-extensions-Patient-mothersMaidenName';
    const rows = extract('R4', { resourceType: 'Patient', extension: [{ url, valueString: 'Smith' }, { url: 'http://other', valueString: 'Jones' }] });
    assert.deepEqual(of(rows.string, 'mothersMaidenName'), [str('Smith')]);
  });
});

describe('token parameters', () => {
  for (const version of FHIR_VERSIONS) {
    it(`${version}: Coding gives system|code with the display as text; code and boolean a bare value`, () => {
      const rows = extract(version, {
        resourceType: 'Patient',
        active: false,
        gender: 'other',
        meta: { tag: [{ system: 'http://t', code: 'a', display: 'Ä Tag' }, { code: 'b' }], security: [{ system: 'http://s', code: 'R' }] },
      });
      assert.deepEqual(of(rows.token, '_tag'), [tok('http://t', 'a', 'a tag'), tok(null, 'b')]);
      assert.deepEqual(of(rows.token, '_security'), [tok('http://s', 'R')]);
      assert.deepEqual(of(rows.token, 'active'), [tok(null, 'false')]);
      assert.deepEqual(of(rows.token, 'gender'), [tok(null, 'other')]);
    });

    it(`${version}: CodeableConcept gives each coding plus a text-only row for its text`, () => {
      const rows = extract(version, {
        resourceType: 'Condition',
        subject: { reference: 'Patient/1' },
        code: { coding: [{ system: 'http://snomed.info/sct', code: '123', display: 'Heart Attack' }, { system: 'http://icd', code: 'I21' }], text: 'Myocardial  Infarction' },
      });
      assert.deepEqual(of(rows.token, 'code'), [tok('http://snomed.info/sct', '123', 'heart attack'), tok('http://icd', 'I21'), tok(null, null, 'myocardial infarction')]);
    });

    it(`${version}: Identifier gives system|value with the type as text, and :of-type rows`, () => {
      const v2 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
      const rows = extract(version, {
        resourceType: 'Patient',
        identifier: [
          { system: 'http://mrn', value: '123', type: { coding: [{ system: v2, code: 'MR', display: 'Medical Record' }, { code: 'nosystem' }] } },
          { system: 'http://ssn', value: '999', type: { text: 'Social Security', coding: [{ system: v2, code: 'SS' }] } },
          { type: { coding: [{ system: v2, code: 'DL' }] } },
        ],
      });
      assert.deepEqual(of(rows.token, 'identifier'), [tok('http://mrn', '123', 'medical record'), tok('http://ssn', '999', 'social security')]);
      assert.deepEqual(of(rows.token, 'identifier:of-type'), [tok(`${v2}|MR`, '123'), tok(`${v2}|SS`, '999')]);
    });

    it(`${version}: ContactPoint gives its value (no system); phone/email filter by ContactPoint.system`, () => {
      const rows = extract(version, { resourceType: 'Patient', telecom: [{ system: 'phone', value: '555' }, { system: 'email', value: 'a@b.c' }, { system: 'fax' }] });
      assert.deepEqual(of(rows.token, 'telecom'), [tok(null, '555'), tok(null, 'a@b.c')]);
      assert.deepEqual(of(rows.token, 'phone'), [tok(null, '555')]);
      assert.deepEqual(of(rows.token, 'email'), [tok(null, 'a@b.c')]);
    });

    it(`${version}: _id is a token of the id`, () => {
      assert.deepEqual(of(extract(version, { resourceType: 'Patient', id: 'p-1' }).token, '_id'), [tok(null, 'p-1')]);
    });

    it(`${version}: deceased is true for deceasedDateTime or true, false otherwise`, () => {
      const deceased = (extra: object) => of(extract(version, { resourceType: 'Patient', ...extra }, ['deceased']).token, 'deceased');
      assert.deepEqual(deceased({ deceasedDateTime: '2020-01-01' }), [tok(null, 'true')]);
      assert.deepEqual(deceased({ deceasedBoolean: true }), [tok(null, 'true')]);
      assert.deepEqual(deceased({ deceasedBoolean: false }), [tok(null, 'false')]);
      assert.deepEqual(deceased({}), [tok(null, 'false')]);
    });
  }

  it('R5: CodeableReference gives the tokens of its concept (Condition evidence)', () => {
    const rows = extract('R5', {
      resourceType: 'Condition',
      clinicalStatus: { coding: [{ code: 'active' }] },
      subject: { reference: 'Patient/1' },
      evidence: [{ concept: { coding: [{ system: 'http://s', code: 'x' }] } }, { reference: { reference: 'Observation/1' } }],
    });
    assert.deepEqual(of(rows.token, 'evidence'), [tok('http://s', 'x')]);
    assert.deepEqual(of(rows.reference, 'evidence-detail'), [ref('Observation', '1')]);
  });

  it('R5: Device serial-number takes Identifiers typed SNO (spec: where(type=\'SNO\') on a CodeableConcept)', () => {
    const rows = extract('R5', {
      resourceType: 'Device',
      serialNumber: 'A1',
      identifier: [{ type: { coding: [{ code: 'SNO' }] }, value: 'B2' }, { type: { coding: [{ code: 'MR' }] }, value: 'C3' }],
    });
    assert.deepEqual(of(rows.string, 'serial-number'), [str('A1', 'a1'), str('B2', 'b2')]);
  });
});

describe('reference parameters', () => {
  for (const version of FHIR_VERSIONS) {
    it(`${version}: literal, versioned, absolute-into-base, external, urn, contained and identifier references`, () => {
      const rows = extract(version, {
        resourceType: 'Patient',
        generalPractitioner: [
          { reference: 'Practitioner/a' },
          { reference: 'Practitioner/b/_history/3' },
          { reference: `${BASE}/Organization/c` },
          { reference: `${BASE}/Organization/d/_history/1` },
          { reference: 'http://elsewhere.org/fhir/Practitioner/e' },
          { reference: 'urn:uuid:6b8f8e3a-0000-4000-8000-000000000000' },
          { reference: '#contained1' },
          { identifier: { system: 'http://npi', value: '42' }, type: 'Practitioner' },
          { reference: 'PractitionerRole/f', identifier: { system: 'http://x', value: 'y' } },
          { display: 'only a display' },
          { reference: 'NotAType/1' },
        ],
      });
      assert.deepEqual(of(rows.reference, 'general-practitioner'), [
        ref('Practitioner', 'a'),
        ref('Practitioner', 'b', { version: '3' }),
        ref('Organization', 'c'),
        ref('Organization', 'd', { version: '1' }),
        ref(null, null, { url: 'http://elsewhere.org/fhir/Practitioner/e' }),
        ref(null, null, { url: 'urn:uuid:6b8f8e3a-0000-4000-8000-000000000000' }),
        ref(null, null, { identifierSystem: 'http://npi', identifierValue: '42' }),
        ref('PractitionerRole', 'f', { identifierSystem: 'http://x', identifierValue: 'y' }),
        ref(null, null, { url: 'NotAType/1' }),
      ]);
    });

    it(`${version}: where(resolve() is Patient) keeps references to Patients only, however written`, () => {
      const observation = (subject: object) => ({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject });
      const patient = (subject: object) => of(extract(version, observation(subject), ['patient']).reference, 'patient');
      assert.deepEqual(patient({ reference: 'Patient/1' }), [ref('Patient', '1')]);
      assert.deepEqual(patient({ reference: 'http://elsewhere.org/Patient/2' }), [ref(null, null, { url: 'http://elsewhere.org/Patient/2' })]);
      assert.deepEqual(patient({ reference: 'Group/3' }), []);
      assert.deepEqual(patient({ type: 'Patient', identifier: { value: 'mrn' } }), [ref(null, null, { identifierValue: 'mrn' })]);
      const contained = { ...observation({ reference: '#p' }), contained: [{ resourceType: 'Patient', id: 'p', identifier: [] }] };
      assert.deepEqual(of(extract(version, contained, ['patient', 'subject']).reference, 'patient'), []);
      assert.deepEqual(of(extract(version, observation({ reference: 'Group/3' }), ['subject']).reference, 'subject'), [ref('Group', '3')]);
    });

    it(`${version}: canonical gives the url and its |version`, () => {
      const rows = extract(version, { resourceType: 'QuestionnaireResponse', status: 'completed', questionnaire: 'http://q.org/Questionnaire/phq9|2.0' });
      assert.deepEqual(of(rows.reference, 'questionnaire'), [ref(null, null, { url: 'http://q.org/Questionnaire/phq9', version: '2.0' })]);
    });

    it(`${version}: Bundle composition is the first entry when it is a Composition`, () => {
      const composition = { resourceType: 'Composition', id: 'c1' };
      const bundle = (...resources: object[]) => ({ resourceType: 'Bundle', type: 'document', entry: resources.map((resource) => ({ resource })) });
      assert.deepEqual(of(extract(version, bundle(composition, { resourceType: 'Patient', id: 'p' })).reference, 'composition'), [ref('Composition', 'c1')]);
      assert.deepEqual(of(extract(version, bundle({ resourceType: 'Patient', id: 'p' }, composition)).reference, 'composition'), []);
      assert.deepEqual(of(extract(version, bundle({ resourceType: 'MessageHeader', id: 'm' })).reference, 'message'), [ref('MessageHeader', 'm')]);
    });
  }
});

describe('date parameters', () => {
  const birthdate = (version: FhirVersion, birthDate: string) => of(extract(version, { resourceType: 'Patient', birthDate }, ['birthdate']).date, 'birthdate');
  const issued = (issued: string) => of(extract('R4', { resourceType: 'Observation', status: 'final', code: { text: 'x' }, effectiveDateTime: issued }, ['date']).date, 'date');

  for (const version of FHIR_VERSIONS) {
    it(`${version}: a date covers its precision: year, month, day`, () => {
      assert.deepEqual(birthdate(version, '2024'), [{ lo: utc(2024, 0, 1), hi: utc(2025, 0, 1) - 1 }]);
      assert.deepEqual(birthdate(version, '2024-02'), [{ lo: utc(2024, 1, 1), hi: utc(2024, 2, 1) - 1 }]);
      assert.deepEqual(birthdate(version, '2024-12-31'), [{ lo: utc(2024, 11, 31), hi: utc(2025, 0, 1) - 1 }]);
      assert.deepEqual(birthdate(version, '0044-03-15'), [{ lo: new Date('0044-03-15T00:00:00Z').getTime(), hi: new Date('0044-03-16T00:00:00Z').getTime() - 1 }]);
    });
  }

  it('a dateTime with time covers its precision; the timezone applies; none means UTC', () => {
    assert.deepEqual(issued('2024-03-05T10:20:30Z'), [{ lo: utc(2024, 2, 5, 10, 20, 30), hi: utc(2024, 2, 5, 10, 20, 30, 999) }]);
    assert.deepEqual(issued('2024-03-05T10:20:30+02:00'), [{ lo: utc(2024, 2, 5, 8, 20, 30), hi: utc(2024, 2, 5, 8, 20, 30, 999) }]);
    assert.deepEqual(issued('2024-03-05T10:20:30.5-01:30'), [{ lo: utc(2024, 2, 5, 11, 50, 30, 500), hi: utc(2024, 2, 5, 11, 50, 30, 599) }]);
    assert.deepEqual(issued('2024-03-05T10:20:30.123456Z'), [{ lo: utc(2024, 2, 5, 10, 20, 30, 123), hi: utc(2024, 2, 5, 10, 20, 30, 123) }]);
    assert.deepEqual(issued('2024-03-05T10:20:30'), [{ lo: utc(2024, 2, 5, 10, 20, 30), hi: utc(2024, 2, 5, 10, 20, 30, 999) }]);
    assert.deepEqual(issued('2024-03-05T10:20Z'), [{ lo: utc(2024, 2, 5, 10, 20), hi: utc(2024, 2, 5, 10, 21) - 1 }]);
    assert.deepEqual(issued('not a date'), []);
  });

  it('an instant (_lastUpdated) is exact to the millisecond', () => {
    const rows = extract('R5', { resourceType: 'Patient', meta: { lastUpdated: '2024-03-05T10:20:30.123+00:00' } }, ['_lastUpdated']);
    assert.deepEqual(of(rows.date, '_lastUpdated'), [{ lo: utc(2024, 2, 5, 10, 20, 30, 123), hi: utc(2024, 2, 5, 10, 20, 30, 123) }]);
  });

  it('a Period spans start.lo to end.hi, open ends unbounded, an empty Period nothing', () => {
    const period = (p: object) => of(extract('R4', { resourceType: 'Encounter', status: 'planned', class: { code: 'x' }, period: p }, ['date']).date, 'date');
    assert.deepEqual(period({ start: '2024-01', end: '2024-02-10' }), [{ lo: utc(2024, 0, 1), hi: utc(2024, 1, 11) - 1 }]);
    assert.deepEqual(period({ start: '2024-01-01' }), [{ lo: utc(2024, 0, 1), hi: Infinity }]);
    assert.deepEqual(period({ end: '2024' }), [{ lo: -Infinity, hi: utc(2025, 0, 1) - 1 }]);
    assert.deepEqual(period({}), []);
  });

  it('a Timing is one range, its outer limits: events and the bounds Period; schedule details ignored (search.html#date)', () => {
    const timing = (t: object) => of(extract('R4', { resourceType: 'Observation', status: 'final', code: { text: 'x' }, effectiveTiming: t }, ['date']).date, 'date');
    // Every second day between 31-Jan and 24-Mar includes 1-Feb (the spec's own example).
    assert.deepEqual(timing({ repeat: { boundsPeriod: { start: '2013-01-31', end: '2013-03-24' }, frequency: 1, period: 2, periodUnit: 'd' } }), [{ lo: utc(2013, 0, 31), hi: utc(2013, 2, 25) - 1 }]);
    assert.deepEqual(timing({ event: ['2024-01-03', '2024-01-01'], repeat: { boundsPeriod: { start: '2024-01-02', end: '2024-01-31' } } }), [{ lo: utc(2024, 0, 1), hi: utc(2024, 1, 1) - 1 }]);
    assert.deepEqual(timing({ event: ['2024-01-03', '2024-02-10T10:00:00Z', 'not a date'] }), [{ lo: utc(2024, 0, 3), hi: utc(2024, 1, 10, 10, 0, 0, 999) }]);
    assert.deepEqual(timing({ event: ['2024-01-03'], repeat: { boundsPeriod: { start: '2024-01-01' } } }), [{ lo: utc(2024, 0, 1), hi: Infinity }]);
    assert.deepEqual(timing({ event: ['2024-01-03'], repeat: { boundsPeriod: { end: '2023-12' } } }), [{ lo: -Infinity, hi: utc(2024, 0, 4) - 1 }]);
    // A repeat without a bounds Period runs on from the first event: for its Duration, for a count
    // (the events' extent), or without end.
    assert.deepEqual(timing({ event: ['2024-01-03'], repeat: { frequency: 1, period: 1, periodUnit: 'd' } }), [{ lo: utc(2024, 0, 3), hi: Infinity }]);
    assert.deepEqual(timing({ event: ['2024-01-03'], repeat: { boundsDuration: { value: 10, code: 'd', system: 'http://unitsofmeasure.org' }, frequency: 1, period: 1, periodUnit: 'd' } }), [{ lo: utc(2024, 0, 3), hi: utc(2024, 0, 13) }]);
    assert.deepEqual(timing({ event: ['2024-01-03', '2024-01-05'], repeat: { count: 3, frequency: 1, period: 1, periodUnit: 'd' } }), [{ lo: utc(2024, 0, 3), hi: utc(2024, 0, 6) - 1 }]);
    // Anchored to no date: nothing.
    assert.deepEqual(timing({ repeat: { boundsDuration: { value: 10, unit: 'd' }, frequency: 1, period: 1, periodUnit: 'd' } }), []);
    assert.deepEqual(timing({ code: { text: 'BID' } }), []);
  });

  it('R5 Appointment date: start, else the first requested period start (first() over a union)', () => {
    const date = (extra: object) => of(extract('R5', { resourceType: 'Appointment', status: 'proposed', ...extra }, ['date']).date, 'date');
    const requestedPeriod = [{ start: '2024-05-01' }, { start: '2024-06-01' }];
    assert.deepEqual(date({ start: '2024-04-01T09:00:00Z', requestedPeriod }), [{ lo: utc(2024, 3, 1, 9), hi: utc(2024, 3, 1, 9, 0, 0, 999) }]);
    assert.deepEqual(date({ requestedPeriod }), [{ lo: utc(2024, 4, 1), hi: utc(2024, 4, 2) - 1 }]);
  });
});

describe('number, quantity and uri parameters', () => {
  it('number: decimal values (RiskAssessment probability), Range low and high', () => {
    const prediction = [{ probabilityDecimal: 0.25 }, { probabilityRange: { low: { value: 0.1 }, high: { value: 0.4 } } }];
    for (const version of ['R4', 'R5'] as const) {
      const expected = version === 'R4' ? [{ value: 0.25 }, { value: 0.1 }, { value: 0.4 }] : [{ value: 0.25 }];
      assert.deepEqual(of(extract(version, { resourceType: 'RiskAssessment', status: 'final', subject: { reference: 'Patient/1' }, prediction }).number, 'probability'), expected, version);
    }
  });

  for (const version of FHIR_VERSIONS) {
    it(`${version}: Quantity gives value, system, code and unit; SampledData nothing`, () => {
      const valueQuantity = { value: 120.5, comparator: '<', unit: 'mm[Hg]', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' };
      const obs = (value: object) => ({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, ...value });
      assert.deepEqual(of(extract(version, obs({ valueQuantity })).quantity, 'value-quantity'), [
        { value: 120.5, system: 'http://unitsofmeasure.org', unitCode: 'mm[Hg]', unit: 'mm[Hg]' },
      ]);
      assert.deepEqual(of(extract(version, obs({ valueQuantity: { unit: 'no value' } })).quantity, 'value-quantity'), []);
      const valueSampledData = { origin: { value: 0 }, period: 1, dimensions: 1, data: '1 2', ...(version === 'R5' ? { intervalUnit: 's' } : {}) };
      assert.deepEqual(of(extract(version, obs({ valueSampledData })).quantity, 'value-quantity'), []);
    });

    it(`${version}: Age is a Quantity (Condition onset-age); Range gives low and high`, () => {
      const condition = (onset: object) => ({ resourceType: 'Condition', subject: { reference: 'Patient/1' }, ...onset });
      assert.deepEqual(of(extract(version, condition({ onsetAge: { value: 40, system: 'http://unitsofmeasure.org', code: 'a', unit: 'years' } })).quantity, 'onset-age'), [
        { value: 40, system: 'http://unitsofmeasure.org', unitCode: 'a', unit: 'years' },
      ]);
      assert.deepEqual(of(extract(version, condition({ onsetRange: { low: { value: 30, unit: 'a' }, high: { value: 35, unit: 'a' } } })).quantity, 'onset-age'), [
        { value: 30, system: null, unitCode: null, unit: 'a' },
        { value: 35, system: null, unitCode: null, unit: 'a' },
      ]);
    });

    it(`${version}: uri parameters index the value as written (ValueSet url)`, () => {
      const rows = extract(version, { resourceType: 'ValueSet', status: 'active', url: 'http://x.org/ValueSet/a', meta: { source: 'http://src#1' } });
      assert.deepEqual(of(rows.uri, 'url'), [{ value: 'http://x.org/ValueSet/a' }]);
      assert.deepEqual(of(rows.uri, '_source'), [{ value: 'http://src#1' }]);
    });
  }

  it('Money: value with the currency as ISO 4217 unit (R4 ChargeItem price-override, R5 totalPriceComponent)', () => {
    const base = { resourceType: 'ChargeItem', status: 'billable', code: { text: 'x' }, subject: { reference: 'Patient/1' } };
    const money = { value: 12.5, currency: 'EUR' };
    const expected = [{ value: 12.5, system: 'urn:iso:std:iso:4217', unitCode: 'EUR', unit: null }];
    assert.deepEqual(of(extract('R4', { ...base, priceOverride: money }).quantity, 'price-override'), expected);
    assert.deepEqual(of(extract('R5', { ...base, totalPriceComponent: { type: 'base', amount: money } }).quantity, 'price-override'), expected);
  });

  it('_profile: R4 and R4B uri as written, R5 a reference with url and version', () => {
    const patient = { resourceType: 'Patient', meta: { profile: ['http://p.org/StructureDefinition/x|1.0'] } };
    assert.deepEqual(of(extract('R4', patient).uri, '_profile'), [{ value: 'http://p.org/StructureDefinition/x|1.0' }]);
    assert.deepEqual(of(extract('R4B', patient).uri, '_profile'), [{ value: 'http://p.org/StructureDefinition/x|1.0' }]);
    assert.deepEqual(of(extract('R5', patient).reference, '_profile'), [ref(null, null, { url: 'http://p.org/StructureDefinition/x', version: '1.0' })]);
  });
});

describe('composite parameters', () => {
  for (const version of FHIR_VERSIONS) {
    it(`${version}: component rows go under code#i, one grp per focus element`, () => {
      const loinc = 'http://loinc.org';
      const q = (value: number) => ({ value, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' });
      const rows = extract(version, {
        resourceType: 'Observation',
        status: 'final',
        code: { coding: [{ system: loinc, code: '85354-9' }] },
        component: [
          { code: { coding: [{ system: loinc, code: '8480-6' }] }, valueQuantity: q(120) },
          { code: { coding: [{ system: loinc, code: '8462-4' }] }, valueQuantity: q(80) },
        ],
      }, ['component-code-value-quantity', 'combo-code-value-quantity']);
      const qty = (value: number, grp: number) => ({ value, system: 'http://unitsofmeasure.org', unitCode: 'mm[Hg]', unit: 'mmHg', grp });
      const [g1, g2] = of(rows.token, 'component-code-value-quantity#0', true).map((r) => (r as { grp: number }).grp);
      assert.ok(g1 !== undefined && g2 !== undefined && g1 !== g2);
      assert.deepEqual(of(rows.token, 'component-code-value-quantity#0', true), [{ ...tok(loinc, '8480-6'), grp: g1 }, { ...tok(loinc, '8462-4'), grp: g2 }]);
      assert.deepEqual(of(rows.quantity, 'component-code-value-quantity#1', true), [qty(120, g1), qty(80, g2)]);
      // combo: the Observation itself is a focus too, but it has a code and no value: a group one
      // component of which has no value can never match, so it has no rows at all.
      const combo = of(rows.token, 'combo-code-value-quantity#0', true) as { value: string; grp: number }[];
      assert.deepEqual(combo.map((r) => r.value), ['8480-6', '8462-4']);
      assert.deepEqual(of(rows.quantity, 'combo-code-value-quantity#1', true), [qty(120, combo[0]!.grp), qty(80, combo[1]!.grp)]);
      assert.equal(new Set(combo.map((r) => r.grp)).size, 2);
    });
  }

  it('R4: a component may read the whole resource (%resource in chromosome-variant-coordinate)', () => {
    const rows = extract('R4', {
      resourceType: 'MolecularSequence',
      coordinateSystem: 0,
      referenceSeq: { chromosome: { coding: [{ system: 'http://chr', code: '1' }] } },
      variant: [{ start: 10, end: 20 }, { start: 30, end: 40 }],
    }, ['chromosome-variant-coordinate']);
    const code = 'chromosome-variant-coordinate';
    const [a, b] = of(rows.number, `${code}#1`, true) as { value: number; grp: number }[];
    assert.deepEqual(of(rows.token, `${code}#0`, true), [{ ...tok('http://chr', '1'), grp: a!.grp }, { ...tok('http://chr', '1'), grp: b!.grp }]);
    assert.deepEqual([a!.value, b!.value], [10, 30]);
    assert.deepEqual(of(rows.number, `${code}#2`, true), [{ value: 20, grp: a!.grp }, { value: 40, grp: b!.grp }]);
  });

  it('R4: Group characteristic-value takes any value[x]; the token ones index', () => {
    const rows = extract('R4', {
      resourceType: 'Group',
      type: 'person',
      actual: true,
      characteristic: [
        { code: { text: 'gender' }, valueCodeableConcept: { coding: [{ code: 'female' }] }, exclude: false },
        { code: { text: 'age' }, valueQuantity: { value: 30 }, exclude: false },
      ],
    }, ['characteristic-value']);
    // The age characteristic's value is a Quantity, which has no token: its group has no rows.
    assert.deepEqual(of(rows.token, 'characteristic-value#0'), [tok(null, null, 'gender')]);
    assert.deepEqual(of(rows.token, 'characteristic-value#1'), [tok(null, 'female')]);
  });

  it('R4: an Observation with a code and no value has no code-value rows, and its other rows stay (issue 15)', () => {
    const rows = extract('R4', { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '1234-5' }] } });
    for (const kind of ['token', 'quantity', 'date', 'string'] as const) {
      assert.deepEqual(rows[kind].filter((r) => r.code.includes('-value-')), [], `no ${kind} rows of a code-value composite`);
    }
    assert.deepEqual(of(rows.token, 'code'), [tok('http://loinc.org', '1234-5')]);
    assert.deepEqual(of(rows.token, 'combo-code'), [tok('http://loinc.org', '1234-5')]);
  });

  it('R4: DocumentReference relationship pairs the relation code with the target (spec components swapped back)', () => {
    const rows = extract('R4', {
      resourceType: 'DocumentReference',
      status: 'current',
      content: [{ attachment: {} }],
      relatesTo: [{ code: 'replaces', target: { reference: 'DocumentReference/old' } }],
    }, ['relationship']);
    const [target] = of(rows.reference, 'relationship#0', true) as { grp: number }[];
    assert.deepEqual(of(rows.token, 'relationship#1', true), [{ ...tok(null, 'replaces'), grp: target!.grp }]);
    assert.deepEqual(of(rows.reference, 'relationship#0'), [ref('DocumentReference', 'old')]);
    assert.deepEqual(of(rows.token, 'relationship#1'), [tok(null, 'replaces')]);
  });
});

describe('subscriptions across versions', () => {
  it('R4 Subscription: criteria, channel type and endpoint', () => {
    const rows = extract('R4', {
      resourceType: 'Subscription',
      status: 'active',
      reason: 'x',
      criteria: 'Observation?code=1234',
      channel: { type: 'rest-hook', endpoint: 'https://hook.example/x', payload: 'application/fhir+json' },
    });
    assert.deepEqual(of(rows.string, 'criteria'), [str('Observation?code=1234')]);
    assert.deepEqual(of(rows.token, 'type'), [tok(null, 'rest-hook')]);
    assert.deepEqual(of(rows.token, 'payload'), [tok(null, 'application/fhir+json')]);
    assert.deepEqual(of(rows.uri, 'url'), [{ value: 'https://hook.example/x' }]);
  });

  it('R5 Subscription: topic, channelType Coding, endpoint, filterBy value', () => {
    const rows = extract('R5', {
      resourceType: 'Subscription',
      status: 'active',
      topic: 'http://example.org/SubscriptionTopic/admission',
      channelType: { system: 'http://terminology.hl7.org/CodeSystem/subscription-channel-type', code: 'rest-hook' },
      endpoint: 'https://hook.example/x',
      content: 'id-only',
      filterBy: [{ filterParameter: 'patient', value: 'Patient/123' }],
    });
    assert.deepEqual(of(rows.uri, 'topic'), [{ value: 'http://example.org/SubscriptionTopic/admission' }]);
    assert.deepEqual(of(rows.token, 'type'), [tok('http://terminology.hl7.org/CodeSystem/subscription-channel-type', 'rest-hook')]);
    assert.deepEqual(of(rows.token, 'content-level'), [tok(null, 'id-only')]);
    assert.deepEqual(of(rows.uri, 'url'), [{ value: 'https://hook.example/x' }]);
    assert.deepEqual(of(rows.string, 'filter-value'), [str('Patient/123')]);
  });
});

describe('extra parameters (extra-params.ts)', () => {
  const fixture = (path: string): Resource => JSON.parse(readFileSync(new URL(`../../../test/fixtures/${path}`, import.meta.url), 'utf8')) as Resource;
  const admission = fixture('spec/examples/subscriptions/Subscription-subscription-admission.json');
  const zulip = fixture('spec/examples/subscriptions/Subscription-subscription-zulip.json');
  const topic = fixture('spec/third-party/fhir-candle/r4/Basic-topic-encounter-complete.json');
  const codes = ['topic', 'filter-criteria', 'payload-type', 'custom-channel'];

  for (const version of ['R4', 'R4B'] as const) {
    it(`${version} backport Subscription: topic from criteria, the rest from extensions on the primitives (_criteria, _payload, _type)`, () => {
      const rows = extract(version, admission, codes);
      assert.deepEqual(of(rows.uri, 'topic'), [{ value: 'http://hl7.org/SubscriptionTopic/admission' }]);
      assert.deepEqual(of(rows.string, 'filter-criteria'), [str('Encounter?patient=Patient/123', 'encounter?patient=patient/123')]);
      assert.deepEqual(of(rows.token, 'payload-type'), [tok(null, 'id-only')]);
      assert.deepEqual(of(rows.token, 'custom-channel'), []);
      const z = extract(version, zulip, codes);
      assert.deepEqual(of(z.uri, 'topic'), [{ value: 'http://hl7.org/SubscriptionTopic/admission' }]);
      assert.deepEqual(of(z.string, 'filter-criteria'), [str('Encounter?patient=Patient/123', 'encounter?patient=patient/123')]);
      assert.deepEqual(of(z.token, 'payload-type'), [tok(null, 'id-only')]);
      assert.deepEqual(of(z.token, 'custom-channel'), [tok('http://example.org/subscription-channel-type', 'zulip', 'zulip notification channel')]);
      // The core parameters read the same primitives' values, not their extensions.
      assert.deepEqual(of(extract(version, zulip, ['type']).token, 'type'), [tok(null, 'rest-hook')]);
    });

    it(`${version} backport Subscription: a primitive's extensions are found without its value; other extensions are not`, () => {
      const IG = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
      const rows = extract(version, {
        resourceType: 'Subscription',
        status: 'requested',
        reason: 'x',
        _criteria: { extension: [{ url: 'http://other', valueString: 'no' }, { url: `${IG}/backport-filter-criteria`, valueString: 'Observation?code=1' }] },
        channel: { type: 'rest-hook', extension: [{ url: `${IG}/backport-payload-content`, valueCode: 'full-resource' }], _payload: { extension: [{ url: `${IG}/backport-payload-content`, valueCode: 'empty' }] } },
      }, codes);
      assert.deepEqual(of(rows.uri, 'topic'), []);
      assert.deepEqual(of(rows.string, 'filter-criteria'), [str('Observation?code=1')]);
      // Only the extension on channel.payload counts, not one on channel itself.
      assert.deepEqual(of(rows.token, 'payload-type'), [tok(null, 'empty')]);
    });
  }

  it('R4 Basic url: the topic url of a Basic-wrapped SubscriptionTopic, under either cross-version prefix', () => {
    assert.deepEqual(of(extract('R4', topic, ['url']).uri, 'url'), [{ value: 'http://example.org/FHIR/SubscriptionTopic/encounter-complete' }]);
    const r4b = { resourceType: 'Basic', code: { text: 'topic' }, extension: [{ url: 'http://hl7.org/fhir/4.3/StructureDefinition/extension-SubscriptionTopic.url', valueUri: 'http://x.org/t' }] };
    assert.deepEqual(of(extract('R4', r4b, ['url']).uri, 'url'), [{ value: 'http://x.org/t' }]);
    const other = { resourceType: 'Basic', code: { text: 'x' }, extension: [{ url: 'http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.name', valueString: 'n' }] };
    assert.deepEqual(of(extract('R4', other, ['url']).uri, 'url'), []);
  });

  it('the extra parameters exist where they should only', () => {
    const registry = (version: FhirVersion) => searchRegistry(loadDefinitions(version));
    assert.equal(registry('R4B').param('Basic', 'url'), undefined);
    for (const code of ['filter-criteria', 'payload-type', 'custom-channel']) assert.equal(registry('R5').param('Subscription', code), undefined, code);
    assert.equal(registry('R5').param('Subscription', 'topic')!.url, 'http://hl7.org/fhir/SearchParameter/Subscription-topic');
  });
});

describe('robustness and options', () => {
  it('odd data is skipped, never thrown on', () => {
    for (const version of FHIR_VERSIONS) {
      const rows = extract(version, {
        resourceType: 'Patient',
        id: 7,
        name: 'not an array',
        birthDate: 19800101,
        identifier: [null, 5, { value: {} }, { system: 'http://x', value: 'ok' }],
        telecom: [{ value: ['x'] }],
        generalPractitioner: [42, { reference: 42 }, { reference: '' }],
        address: [{ line: [null, 3, 'real'] }],
        meta: { lastUpdated: 'yesterday', tag: 'x' },
      });
      assert.deepEqual(of(rows.token, 'identifier'), [tok('http://x', 'ok')]);
      assert.deepEqual(of(rows.string, 'address'), [str('real')]);
      assert.deepEqual([rows.date, rows.reference], [[], []]);
    }
    const registry = searchRegistry(loadDefinitions('R4'));
    const empty = { string: [], token: [], reference: [], date: [], number: [], quantity: [], uri: [] };
    assert.deepEqual(extractIndex(registry, { resourceType: 'Nonsense' }), empty);
    assert.deepEqual(extractIndex(registry, null as unknown as Resource), empty);
  });

  it('only: extracts just the given parameters; parameters of another type are ignored', () => {
    const registry = searchRegistry(loadDefinitions('R4'));
    const patient = { resourceType: 'Patient', id: 'x', gender: 'male', name: [{ family: 'Doe' }] };
    const rows = extractIndex(registry, patient, { only: [registry.param('Patient', 'family')!, registry.param('Observation', 'code')!] });
    assert.deepEqual(rows, { string: [{ code: 'family', norm: 'doe', exact: 'Doe' }], token: [], reference: [], date: [], number: [], quantity: [], uri: [] });
  });

  it('rows outside composites carry no grp key', () => {
    const rows = extract('R4', { resourceType: 'Patient', id: 'x', name: [{ family: 'Doe' }] });
    for (const list of Object.values(rows)) for (const row of list as object[]) assert.ok(!('grp' in row));
  });
});
