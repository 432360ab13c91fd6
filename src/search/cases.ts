/**
 * THE table of search test cases: resources, expressions and the ids each expression must match.
 * The in-memory matcher (match.test.ts) and the store's search run the same table, so the two
 * evaluators cannot drift apart. Cases are grouped by feature; every parameter type, modifier
 * and prefix Herald evaluates appears at least once, in every version.
 *
 * Only what a store keeps as written is searched here: no `_lastUpdated` (the store sets it;
 * match.test.ts covers it on its own).
 *
 * `ap` cases compare with the real clock: they are chosen so that the answer can only stay the
 * same as time passes (the tolerance grows with the distance to now, see compare.ts).
 */
import type { FhirVersion, Resource } from '../fhir/types.ts';
import { ACT_CODE, caseResources, encounterDone } from './cases/resources.ts';

export interface SearchCase {
  type: string;
  query: string;
  expect: string[];
}

export interface SearchCaseSet {
  version: FhirVersion;
  resources: Resource[];
  cases: SearchCase[];
}

const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';

/** Cases in one type: `[query, ...expected ids]`. */
function of(type: string, rows: [string, ...string[]][]): SearchCase[] {
  return rows.map(([query, ...expect]) => ({ type, query, expect }));
}

const STRING = of('Patient', [
  ['family=muller', 'pat-1'],
  ['family=MÜL', 'pat-1'],
  ['family=mu', 'pat-1', 'pat-3'],
  ['family=smith,mueller', 'pat-2', 'pat-3'],
  ['family:exact=Müller', 'pat-1'],
  ['family:exact=müller'],
  ['family:exact=Mü'],
  ['family:contains=LLE', 'pat-1', 'pat-3'],
  ['family:contains=xyz'],
  ['given=zoe', 'pat-3'],
  ['given=mar', 'pat-1'],
  ['name=smith', 'pat-2'],
  ['name=anna', 'pat-1'],
  ['family=mu&given=anna', 'pat-1'],
  ['family=mu&given=john'],
  ['address-city=berl', 'pat-1'],
  ['address-postalcode=10', 'pat-1', 'pat-2'],
  ['address:missing=true', 'pat-3'],
  ['address:missing=false', 'pat-1', 'pat-2'],
  ['family=smith\\,mueller'],
]);

const TOKEN_PATIENT = of('Patient', [
  ['gender=female', 'pat-1'],
  ['gender=male,female', 'pat-1', 'pat-2'],
  ['gender:not=male', 'pat-1', 'pat-3'],
  ['gender:not=male,female', 'pat-3'],
  ['gender:missing=true', 'pat-3'],
  // A code element's binding gives its codes their system (search.html#token).
  ['gender=http://hl7.org/fhir/administrative-gender|female', 'pat-1'],
  ['gender=http://hl7.org/fhir/administrative-gender|male,http://hl7.org/fhir/administrative-gender|female', 'pat-1', 'pat-2'],
  ['gender=http://example.org/other|female'],
  ['gender=http://hl7.org/fhir/administrative-gender|nonsense'],
  ['gender=http://hl7.org/fhir/administrative-gender|', 'pat-1', 'pat-2'],
  ['gender=http://example.org/other|'],
  ['gender:not=http://hl7.org/fhir/administrative-gender|', 'pat-3'],
  ['gender:not=http://hl7.org/fhir/administrative-gender|male', 'pat-1', 'pat-3'],
  ['gender:missing=false', 'pat-1', 'pat-2'],
  ['active=true', 'pat-1'],
  ['active=false', 'pat-2'],
  ['identifier=MRN-001', 'pat-1'],
  ['identifier=http://hospital.example.org/mrn|MRN-001', 'pat-1'],
  ['identifier=http://other.example.org/ids|MRN-001'],
  ['identifier=http://other.example.org/ids|', 'pat-2'],
  ['identifier=|NOSYS-1', 'pat-2'],
  ['identifier=|MRN-001'],
  ['identifier=mrn-001'],
  ['identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|MRN-001', 'pat-1'],
  ['identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|X-42'],
  ['_id=pat-1,pat-3', 'pat-1', 'pat-3'],
  ['_tag=http://example.org/tags|vip', 'pat-1'],
  ['_tag=vip&gender=male'],
]);

const TOKEN_OBSERVATION = of('Observation', [
  ['code=1234-5', 'obs-1', 'obs-3', 'obs-5'],
  [`code=${LOINC}|1234-5`, 'obs-1', 'obs-5'],
  ['code=http://snomed.info/sct|', 'obs-3'],
  ['code=|1234-5'],
  ['code:text=glucose', 'obs-1'],
  ['code:text=narr', 'obs-4'],
  ['code:text=heart RATE', 'obs-3'],
  [`code:not=${LOINC}|1234-5`, 'obs-2', 'obs-3', 'obs-4'],
  ['code:not=1234-5,85354-9', 'obs-4'],
  ['status=final,amended&code=1234-5', 'obs-1', 'obs-5'],
  ['status=final&status=amended'],
  ['_id=obs-1,obs-2', 'obs-1', 'obs-2'],
]);

const REFERENCE = [
  ...of('Observation', [
    ['subject=Patient/pat-1', 'obs-1', 'obs-5'],
    ['subject=pat-1', 'obs-1', 'obs-5'],
    ['subject:Patient=pat-2', 'obs-2'],
    ['subject:Group=pat-1'],
    ['subject=Group/pat-1'],
    ['subject=Patient/pat-1/_history/1'],
    ['subject=http://external.example.org/fhir/Patient/ext-1', 'obs-3'],
    ['subject=Patient/pat-1,Patient/pat-2', 'obs-1', 'obs-2', 'obs-5'],
    ['patient=pat-2', 'obs-2'],
    ['subject:missing=true', 'obs-4'],
  ]),
  ...of('Patient', [
    ['organization=Organization/org-1', 'pat-1'],
    ['organization=org-1', 'pat-1'],
    ['organization:identifier=http://example.org/org-ids|ORG-77', 'pat-3'],
    ['organization:identifier=ORG-77', 'pat-3'],
    ['organization:identifier=|ORG-77'],
    ['general-practitioner=http://external.example.org/fhir/Practitioner/ext-9', 'pat-2'],
    ['general-practitioner:Practitioner=prac-1', 'pat-1'],
  ]),
  ...of('QuestionnaireResponse', [
    ['questionnaire=http://example.org/Questionnaire/intake', 'qr-1', 'qr-2'],
    ['questionnaire=http://example.org/Questionnaire/intake|2.0', 'qr-1'],
    ['questionnaire=http://example.org/Questionnaire/intake|1.0'],
  ]),
];

const DATE = [
  ...of('Patient', [
    ['birthdate=1980', 'pat-1', 'pat-3'],
    ['birthdate=1980-05', 'pat-1', 'pat-3'],
    ['birthdate=1980-05-15', 'pat-1'],
    ['birthdate=eq1980-05-15', 'pat-1'],
    ['birthdate=ne1980-05-15', 'pat-2', 'pat-3'],
    ['birthdate=gt1979-12-31', 'pat-1', 'pat-3'],
    ['birthdate=lt1980-05-10', 'pat-2', 'pat-3'],
    ['birthdate=ge1980-05-15', 'pat-1', 'pat-3'],
    ['birthdate=le1975-06-01', 'pat-2'],
    ['birthdate=sa1979', 'pat-1', 'pat-3'],
    ['birthdate=eb1980-01-01', 'pat-2'],
    ['birthdate=ge1975&birthdate=lt1980', 'pat-2'],
  ]),
  ...of('Observation', [
    ['date=2024-03', 'obs-1', 'obs-2', 'obs-3', 'obs-5'],
    ['date=2024-03-03'],
    ['date=lt2024-03-03', 'obs-2', 'obs-4'],
    ['date=gt2024-03-03', 'obs-1', 'obs-2', 'obs-3', 'obs-5'],
    ['date=sa2024-03-03', 'obs-1', 'obs-3', 'obs-5'],
    ['date=eb2024-03-06', 'obs-2', 'obs-4'],
    ['date=ge2024-03-10', 'obs-1', 'obs-3', 'obs-5'],
    ['date=le2024-03-05', 'obs-2', 'obs-4'],
    ['date=ne2024-03-10', 'obs-2', 'obs-4'],
    ['date=2024-03-10T08:30', 'obs-1', 'obs-5'],
    ['date=2024-03-10T08:30:00Z', 'obs-1', 'obs-5'],
    ['date=2024-03-10T08:30:00.25Z', 'obs-5'],
    ['date=2024-03-10T08:30:00.250Z', 'obs-5'],
    ['date=2024-03-10T09:30:00%2B01:00', 'obs-1', 'obs-5'],
    ['date=2024-03-10T09:30:00+01:00', 'obs-1', 'obs-5'],
    ['date=2010-05-31', 'obs-4'],
    ['date=2010-06-01'],
    ['date=2010-06-01T00:00:00%2B02:00', 'obs-4'],
    ['date=ap2024-03-20', 'obs-1', 'obs-2', 'obs-3', 'obs-5'],
    ['date=ap2010-06-01', 'obs-4'],
  ]),
];

const NUMBER = of('RiskAssessment', [
  ['probability=0.25', 'ra-1'],
  ['probability=2.5e-1', 'ra-1'],
  ['probability=0.2'],
  ['probability=0.3', 'ra-1'],
  ['probability=0.250', 'ra-1'],
  ['probability=gt0.5', 'ra-2'],
  ['probability=lt0.1', 'ra-2'],
  ['probability=ge0.25', 'ra-1', 'ra-2'],
  ['probability=le0.25', 'ra-1', 'ra-2'],
  ['probability=ne0.25', 'ra-2'],
  ['probability=sa0.5', 'ra-2'],
  ['probability=sa0.8'],
  ['probability=eb0.02'],
  ['probability=eb0.1', 'ra-2'],
  ['probability=ap0.85', 'ra-2'],
  ['probability=ap0.9'],
  ['probability:missing=true', 'ra-3'],
]);

const QUANTITY = of('Observation', [
  ['value-quantity=100', 'obs-1'],
  ['value-quantity=100.00', 'obs-1'],
  ['value-quantity=1e2', 'obs-1', 'obs-3'],
  ['value-quantity=99', 'obs-3'],
  ['value-quantity=lt100', 'obs-3', 'obs-5'],
  ['value-quantity=le100', 'obs-1', 'obs-3', 'obs-5'],
  ['value-quantity=gt100', 'obs-4'],
  ['value-quantity=ge100', 'obs-1', 'obs-4'],
  ['value-quantity=ne100', 'obs-3', 'obs-4', 'obs-5'],
  ['value-quantity=sa200', 'obs-4'],
  ['value-quantity=eb10', 'obs-5'],
  ['value-quantity=ap110', 'obs-1', 'obs-3'],
  ['value-quantity=ap111', 'obs-1'],
  [`value-quantity=100|${UCUM}|mg/dL`, 'obs-1'],
  [`value-quantity=100|${UCUM}|mmol/L`],
  [`value-quantity=gt1|${UCUM}|mg/dL`, 'obs-1', 'obs-4'],
  [`value-quantity=99.4|${UCUM}|mg/dL`],
  ['value-quantity=99.4||mg/dL', 'obs-3'],
  ['value-quantity=5.4||mmol per liter', 'obs-5'],
  ['value-quantity=5.4||mmol/L', 'obs-5'],
  ['value-quantity:missing=true', 'obs-2'],
]);

const URI = of('ValueSet', [
  ['url=http://example.org/fhir/ValueSet/colors', 'vs-1'],
  ['url=http://example.org/fhir/ValueSet'],
  ['url:below=http://example.org/fhir', 'vs-1', 'vs-2'],
  ['url:below=http://example.org/fhir/ValueSet/colors', 'vs-1', 'vs-2'],
  ['url:above=http://example.org/fhir/ValueSet/colors/warm/red', 'vs-1', 'vs-2'],
  ['url:above=http://example.org/fhir/ValueSet/colors', 'vs-1'],
  ['url:contains=SHAPES', 'vs-3'],
  ['url:missing=false', 'vs-1', 'vs-2', 'vs-3'],
]);

const URI_META = of('Patient', [['_profile=http://example.org/fhir/StructureDefinition/vip-patient', 'pat-1']]);

const COMPOSITE = of('Observation', [
  [`code-value-quantity=${LOINC}|1234-5$100`, 'obs-1'],
  ['code-value-quantity=1234-5$gt50', 'obs-1', 'obs-3'],
  [`code-value-quantity=${LOINC}|1234-5$lt10|${UCUM}|mmol/L`, 'obs-5'],
  [`code-value-quantity=${LOINC}|1234-5$100,${LOINC}|1234-5$5.4`, 'obs-1', 'obs-5'],
  [`component-code-value-quantity=${LOINC}|8480-6$gt100`, 'obs-2'],
  [`component-code-value-quantity=${LOINC}|8480-6$80`],
  [`component-code-value-quantity=${LOINC}|8462-4$80`, 'obs-2'],
]);

/** Encounter cases: the same questions asked in each version's vocabulary. */
function encounterCases(version: FhirVersion): SearchCase[] {
  const done = encounterDone(version);
  return of('Encounter', [
    [`status=${done}&class=IMP`, 'enc-1'],
    [`status=${done}`, 'enc-1', 'enc-3'],
    [`class=${ACT_CODE}|AMB`, 'enc-2', 'enc-3'],
    [`subject=Patient/pat-1&status:not=${done}`],
    ['date=gt2024-06-01', 'enc-2'],
    ['date=2024-03-02'],
    ['date=2024-03', 'enc-1'],
    ['date=ge2024-03-10', 'enc-2'],
    ['date=sa2024-03-09', 'enc-2'],
    ['date=lt2024-01-01', 'enc-3'],
    [`length=3|${UCUM}|d`, 'enc-1'],
    ['length=gt2', 'enc-1'],
  ]);
}

const SHARED: SearchCase[] = [...STRING, ...TOKEN_PATIENT, ...TOKEN_OBSERVATION, ...REFERENCE, ...DATE, ...NUMBER, ...QUANTITY, ...URI, ...URI_META, ...COMPOSITE];

export const SEARCH_CASES: SearchCaseSet[] = (['R4', 'R4B', 'R5'] as const).map((version) => ({
  version,
  resources: caseResources(version),
  cases: [...SHARED, ...encounterCases(version)],
}));

/** A query every evaluator refuses: a 400 whose OperationOutcome names `param`, with issue `code`. */
export interface RefusedCase {
  type: string;
  query: string;
  param: string;
  code: 'invalid' | 'not-supported';
}

/**
 * Modifiers refused whatever the `handling` preference (search.html#modifiers), in every version,
 * by the store's search and by the in-memory matcher alike (they share the parser): unknown ones,
 * one the parameter's type does not allow, a reference type the parameter cannot point to, and
 * valid ones Herald does not evaluate (`not-supported`).
 */
export const REFUSED_MODIFIERS: RefusedCase[] = (
  [
    ['Patient', 'gender:foo=male', 'gender:foo', 'invalid'],
    ['Patient', '_id:bogus=x', '_id:bogus', 'invalid'],
    ['Patient', 'identifier:nope=x', 'identifier:nope', 'invalid'],
    ['Observation', 'subject:zzz=Patient/1', 'subject:zzz', 'invalid'],
    ['Observation', 'subject:Nonsense=1', 'subject:Nonsense', 'invalid'],
    ['Patient', 'organization:Practitioner=1', 'organization:Practitioner', 'invalid'],
    ['Patient', 'family:missing:x=true', 'family:missing:x', 'invalid'],
    ['Patient', 'birthdate:exact=1980', 'birthdate:exact', 'invalid'],
    ['Patient', 'family:not=x', 'family:not', 'invalid'],
    ['Patient', 'family:Patient=x', 'family:Patient', 'invalid'],
    ['ValueSet', 'url:exact=http://example.org/fhir/ValueSet/colors', 'url:exact', 'invalid'],
    ['Observation', `code-value-quantity:exact=${LOINC}|1234-5$100`, 'code-value-quantity:exact', 'invalid'],
    ['Patient', '_count:foo=1', '_count:foo', 'invalid'],
    ['Patient', '_type:foo=Patient', '_type:foo', 'invalid'],
    ['Patient', '_sort:x=family', '_sort:x', 'invalid'],
    ['Observation', '_include:deep=Observation:subject', '_include:deep', 'invalid'],
    ['Patient', 'family:text=x', 'family:text', 'not-supported'],
    ['Observation', 'code:in=http://example.org/vs', 'code:in', 'not-supported'],
    ['Observation', `code:below=${LOINC}|1234-5`, 'code:below', 'not-supported'],
    ['Observation', 'code:text-advanced=glucose', 'code:text-advanced', 'not-supported'],
    ['Observation', 'subject:above=Patient/1', 'subject:above', 'not-supported'],
  ] as const
).map(([type, query, param, code]) => ({ type, query, param, code }));
