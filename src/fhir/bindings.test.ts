import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadDefinitions } from './definitions/index.ts';
import { FHIR_VERSIONS, type FhirVersion } from './types.ts';
import { validateResource } from './validate.ts';

/** [code, expression] of each issue, and the messages, for one resource. */
function check(version: FhirVersion, resource: unknown): { issues: [string, string][]; messages: string[] } {
  const found = validateResource(loadDefinitions(version), resource);
  return { issues: found.map((i) => [i.code, i.expression]), messages: found.map((i) => i.message) };
}

const obs = (extra: object) => ({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, ...extra });

describe('required bindings', () => {
  for (const version of FHIR_VERSIONS) {
    it(`${version}: a code outside the value set is code-invalid, naming the value, the element and the value set`, () => {
      const { issues, messages } = check(version, { resourceType: 'Patient', gender: 'M' });
      assert.deepEqual(issues, [['code-invalid', 'Patient.gender']]);
      assert.match(messages[0]!, /^"M" is not in the value set http:\/\/hl7\.org\/fhir\/ValueSet\/administrative-gender\|\d\.\d\.\d, the required binding of Patient\.gender: one of female, male, other, unknown$/);
      assert.deepEqual(check(version, { resourceType: 'Patient', gender: 'male' }).issues, []);
    });

    it(`${version}: bindings of data types hold wherever the type is used, repeating codes one by one`, () => {
      const { issues } = check(version, {
        resourceType: 'Patient',
        name: [{ use: 'official' }, { use: 'nick' }],
        telecom: [{ system: 'pager', value: '1' }, { system: 'carrier-pigeon', value: '2' }],
        contact: [{ gender: 'F' }],
      });
      assert.deepEqual(issues, [
        ['code-invalid', 'Patient.name[1].use'],
        ['code-invalid', 'Patient.telecom[1].system'],
        ['code-invalid', 'Patient.contact[0].gender'],
      ]);
      const search = { resourceType: 'SearchParameter', url: 'http://x.org/sp', name: 'x', status: 'active', description: 'x', code: 'x', type: 'token', base: ['Patient', 'Nonsense'] };
      assert.deepEqual(check(version, search).issues.filter(([c]) => c === 'code-invalid'), [['code-invalid', 'SearchParameter.base[1]']]);
    });

  }

  it('R5: a Coding needs its system and code in the value set', () => {
    const appointment = (dayOfWeek: object) => ({
      resourceType: 'Appointment',
      status: 'proposed',
      participant: [{ status: 'accepted', actor: { reference: 'Patient/1' } }],
      recurrenceTemplate: [{ recurrenceType: { text: 'monthly' }, monthlyTemplate: { monthInterval: 1, dayOfWeek } }],
    });
    const system = 'http://hl7.org/fhir/days-of-week';
    assert.deepEqual(check('R5', appointment({ system, code: 'mon' })).issues, []);
    for (const coding of [{ system, code: 'monday' }, { system: 'http://x.org/days', code: 'mon' }, { code: 'mon' }]) {
      const { issues, messages } = check('R5', appointment(coding));
      assert.deepEqual(issues, [['code-invalid', 'Appointment.recurrenceTemplate[0].monthlyTemplate.dayOfWeek']], JSON.stringify(coding));
      assert.match(messages[0]!, /is not in the value set http:\/\/hl7\.org\/fhir\/ValueSet\/days-of-week\|5\.0\.0, the required binding of Appointment\.recurrenceTemplate\.monthlyTemplate\.dayOfWeek/);
    }
  });

  it('R4: a CodeableConcept needs one coding in the value set; text alone states no code and passes', () => {
    const allergy = (clinicalStatus: object) => ({ resourceType: 'AllergyIntolerance', patient: { reference: 'Patient/1' }, clinicalStatus });
    const system = 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical';
    assert.deepEqual(check('R4', allergy({ coding: [{ system, code: 'active' }] })).issues, []);
    assert.deepEqual(check('R4', allergy({ coding: [{ system: 'http://x.org', code: 'on' }, { system, code: 'active' }] })).issues, [], 'a translation beside it is fine');
    assert.deepEqual(check('R4', allergy({ text: 'active' })).issues, []);
    const wrong = check('R4', allergy({ coding: [{ system, code: 'ongoing' }] }));
    assert.deepEqual(wrong.issues, [['code-invalid', 'AllergyIntolerance.clinicalStatus.coding']]);
    assert.match(wrong.messages[0]!, new RegExp(`^"${system}\\|ongoing" is not in the value set http://hl7.org/fhir/ValueSet/allergyintolerance-clinical\\|4.0.1`));
    const noSystem = check('R4', allergy({ coding: [{ code: 'active' }] }));
    assert.deepEqual(noSystem.issues, [['code-invalid', 'AllergyIntolerance.clinicalStatus.coding']]);
    assert.match(noSystem.messages[0]!, /"active \(no system\)"/);
  });

  it('R5: value sets that need an external terminology are not checked (BCP-47 languages, UCUM, ISO 4217, MIME types)', () => {
    assert.deepEqual(check('R5', { resourceType: 'Patient', language: 'xx-nonsense' }).issues, []);
    assert.deepEqual(check('R5', { resourceType: 'Binary', contentType: 'not/a-real-type' }).issues, []);
    assert.deepEqual(check('R5', obs({ valueQuantity: { value: 1, system: 'http://unitsofmeasure.org', code: 'furlong' } })).issues, []);
  });
});
