/**
 * Small hand-written resources for the search case table (../cases.ts). Each one exists to make
 * some case match or not: the comments say which feature it carries. Shapes are the same in R4,
 * R4B and R5 except Encounter (class, status codes and period moved in R5).
 */
import type { FhirVersion, Resource } from '../../fhir/types.ts';

const UCUM = 'http://unitsofmeasure.org';
const LOINC = 'http://loinc.org';
export const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';

const loinc = (code: string, display?: string) => ({ coding: [{ system: LOINC, code, ...(display ? { display } : {}) }] });
const ucum = (value: number, code: string, unit = code) => ({ value, unit, system: UCUM, code });

export const PATIENTS: Resource[] = [
  {
    // Accented family name, two given names, identifier with a type, tag, profile, day birthDate.
    resourceType: 'Patient',
    id: 'pat-1',
    meta: {
      lastUpdated: '2024-01-15T10:00:00Z',
      tag: [{ system: 'http://example.org/tags', code: 'vip' }],
      profile: ['http://example.org/fhir/StructureDefinition/vip-patient'],
    },
    identifier: [
      {
        type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }], text: 'Medical record number' },
        system: 'http://hospital.example.org/mrn',
        value: 'MRN-001',
      },
    ],
    active: true,
    name: [{ family: 'Müller', given: ['Anna', 'Maria'] }],
    gender: 'female',
    birthDate: '1980-05-15',
    address: [{ city: 'Berlin', postalCode: '10115' }],
    managingOrganization: { reference: 'Organization/org-1' },
    generalPractitioner: [{ reference: 'Practitioner/prac-1' }],
  },
  {
    // Year-precision birthDate, an identifier without system, an external absolute reference.
    resourceType: 'Patient',
    id: 'pat-2',
    meta: { lastUpdated: '2024-02-20T08:30:00Z' },
    identifier: [{ system: 'http://other.example.org/ids', value: 'X-42' }, { value: 'NOSYS-1' }],
    active: false,
    name: [{ text: 'John Smith', family: 'Smith', given: ['John'] }],
    gender: 'male',
    birthDate: '1975',
    address: [{ city: 'New York', postalCode: '10001' }],
    generalPractitioner: [{ reference: 'http://external.example.org/fhir/Practitioner/ext-9' }],
  },
  {
    // No gender, active, address or meta; month-precision birthDate; a reference by identifier only.
    resourceType: 'Patient',
    id: 'pat-3',
    name: [{ family: 'Mueller', given: ['Zoë'] }],
    birthDate: '1980-05',
    managingOrganization: { identifier: { system: 'http://example.org/org-ids', value: 'ORG-77' }, display: 'Clinic' },
  },
];

export const OBSERVATIONS: Resource[] = [
  {
    // LOINC 1234-5 with display; 100 mg/dL (UCUM); second-precision instant.
    resourceType: 'Observation',
    id: 'obs-1',
    status: 'final',
    code: loinc('1234-5', 'Glucose [Mass/volume] in Blood'),
    subject: { reference: 'Patient/pat-1' },
    effectiveDateTime: '2024-03-10T08:30:00Z',
    valueQuantity: ucum(100, 'mg/dL'),
  },
  {
    // A period and two components (for grouped composite matching); no value of its own.
    resourceType: 'Observation',
    id: 'obs-2',
    status: 'final',
    code: loinc('85354-9', 'Blood pressure panel'),
    subject: { reference: 'Patient/pat-2' },
    effectivePeriod: { start: '2024-03-01', end: '2024-03-05' },
    component: [
      { code: loinc('8480-6', 'Systolic blood pressure'), valueQuantity: ucum(120, 'mm[Hg]') },
      { code: loinc('8462-4', 'Diastolic blood pressure'), valueQuantity: ucum(80, 'mm[Hg]') },
    ],
  },
  {
    // Same code in another system; unit text only (no system/code); external subject; day date.
    resourceType: 'Observation',
    id: 'obs-3',
    status: 'preliminary',
    code: { coding: [{ system: 'http://snomed.info/sct', code: '1234-5' }], text: 'Heart rate' },
    subject: { reference: 'http://external.example.org/fhir/Patient/ext-1' },
    effectiveDateTime: '2024-03-10',
    valueQuantity: { value: 99.4, unit: 'mg/dL' },
  },
  {
    // Text-only code, no subject, a date with a +02:00 offset (2010-05-31T22:00:00Z), 250 mg/dL.
    resourceType: 'Observation',
    id: 'obs-4',
    status: 'amended',
    code: { text: 'Narrative only' },
    effectiveDateTime: '2010-06-01T00:00:00+02:00',
    valueQuantity: ucum(250, 'mg/dL'),
  },
  {
    // Fractional seconds; a unit text different from its code.
    resourceType: 'Observation',
    id: 'obs-5',
    status: 'final',
    code: loinc('1234-5'),
    subject: { reference: 'Patient/pat-1' },
    effectiveDateTime: '2024-03-10T08:30:00.250Z',
    valueQuantity: ucum(5.4, 'mmol/L', 'mmol per liter'),
  },
];

export const RISK_ASSESSMENTS: Resource[] = [
  { resourceType: 'RiskAssessment', id: 'ra-1', status: 'final', subject: { reference: 'Patient/pat-1' }, prediction: [{ probabilityDecimal: 0.25 }] },
  {
    resourceType: 'RiskAssessment',
    id: 'ra-2',
    status: 'final',
    subject: { reference: 'Patient/pat-2' },
    prediction: [{ probabilityDecimal: 0.8 }, { probabilityDecimal: 0.02 }],
  },
  { resourceType: 'RiskAssessment', id: 'ra-3', status: 'final', subject: { reference: 'Patient/pat-3' }, prediction: [{ outcome: { text: 'none' } }] },
];

export const VALUE_SETS: Resource[] = [
  { resourceType: 'ValueSet', id: 'vs-1', url: 'http://example.org/fhir/ValueSet/colors', status: 'active' },
  { resourceType: 'ValueSet', id: 'vs-2', url: 'http://example.org/fhir/ValueSet/colors/warm', status: 'draft' },
  { resourceType: 'ValueSet', id: 'vs-3', url: 'http://example.org/fhirx/ValueSet/shapes', status: 'active' },
];

export const QUESTIONNAIRE_RESPONSES: Resource[] = [
  { resourceType: 'QuestionnaireResponse', id: 'qr-1', questionnaire: 'http://example.org/Questionnaire/intake|2.0', status: 'completed' },
  { resourceType: 'QuestionnaireResponse', id: 'qr-2', questionnaire: 'http://example.org/Questionnaire/intake', status: 'in-progress' },
];

interface EncounterShape {
  id: string;
  done: boolean;
  classCode: string;
  patient: string;
  start: string;
  end?: string;
  days?: number;
}

const ENCOUNTERS: EncounterShape[] = [
  { id: 'enc-1', done: true, classCode: 'IMP', patient: 'pat-1', start: '2024-03-01T10:00:00Z', end: '2024-03-04T12:00:00Z', days: 3 },
  // An open period (no end): its range extends to +Infinity.
  { id: 'enc-2', done: false, classCode: 'AMB', patient: 'pat-2', start: '2024-03-10T09:00:00Z' },
  { id: 'enc-3', done: true, classCode: 'AMB', patient: 'pat-1', start: '2023-06-01', end: '2023-06-02' },
];

/** The status code of a finished encounter: `finished` until R4B, `completed` in R5. */
export function encounterDone(version: FhirVersion): string {
  return version === 'R5' ? 'completed' : 'finished';
}

/** Encounters in the version's shape: R4/R4B `class` Coding + `period`; R5 `class` CodeableConcept[] + `actualPeriod`. */
export function encounters(version: FhirVersion): Resource[] {
  const r5 = version === 'R5';
  return ENCOUNTERS.map((e) => {
    const coding = { system: ACT_CODE, code: e.classCode };
    const period = e.end === undefined ? { start: e.start } : { start: e.start, end: e.end };
    return {
      resourceType: 'Encounter',
      id: e.id,
      status: e.done ? encounterDone(version) : 'in-progress',
      class: r5 ? [{ coding: [coding] }] : coding,
      subject: { reference: `Patient/${e.patient}` },
      [r5 ? 'actualPeriod' : 'period']: period,
      ...(e.days === undefined ? {} : { length: ucum(e.days, 'd', 'days') }),
    };
  });
}

/** Every resource of the table for a version. */
export function caseResources(version: FhirVersion): Resource[] {
  return [...PATIENTS, ...OBSERVATIONS, ...RISK_ASSESSMENTS, ...VALUE_SETS, ...QUESTIONNAIRE_RESPONSES, ...encounters(version)];
}
