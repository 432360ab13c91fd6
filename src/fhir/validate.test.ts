import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { generateDefinitionFiles, OUTPUT_DIR } from '../../scripts/build-definitions.ts';
import { loadDefinitions } from './definitions/index.ts';
import { MAX_STRING_LENGTH } from './primitives.ts';
import { FHIR_VERSIONS, type FhirVersion } from './types.ts';
import { validateResource, type ValidationIssue } from './validate.ts';

type Code = ValidationIssue['code'];
type Expected = [Code, string][];

/** Validates and reduces the issues to [code, expression] pairs, the part the tests pin down. */
function check(version: FhirVersion, resource: unknown): Expected {
  return validateResource(loadDefinitions(version), resource).map((i) => [i.code, i.expression]);
}

const patient = (extra: object): object => ({ resourceType: 'Patient', ...extra });
const observation = (extra: object): object => ({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, ...extra });
const ext = (extra: object): object => ({ url: 'http://example.org/x', ...extra });

/**
 * Spec files that are genuinely invalid. Rather than skipping them, each must produce exactly this
 * kind of issue, so a regression in the validator (or a fixed package) still shows up.
 */
const KNOWN_INVALID: Record<FhirVersion, { files: RegExp; code: Code; expression: RegExp; reason: string }[]> = {
  R4: [
    { files: /^Questionnaire-qs1\.json$/, code: 'required', expression: /^Questionnaire(\.item\[\d+\])+\.linkId$/, reason: 'items lack the required linkId' },
    { files: /^(ImplementationGuide-fhir|ig-r4)\.json$/, code: 'required', expression: /^ImplementationGuide\.(name|status)$/, reason: 'package IG lacks name and status' },
    ...sharedSearchParameterErrors(),
  ],
  R4B: [
    { files: /^(CodeSystem|ValueSet|Bundle-valuesets)(-catalogType)?\.json$/, code: 'required', expression: /^(CodeSystem|ValueSet|Bundle\.entry\[\d+\]\.resource)\.status$/, reason: 'catalogType CodeSystem/ValueSet lack status' },
    ...sharedSearchParameterErrors(),
  ],
  R5: [],
};

function sharedSearchParameterErrors(): (typeof KNOWN_INVALID)['R4'] {
  return [
    { files: /^SearchParameter-(codesystem|valueset)-extensions-/, code: 'required', expression: /^SearchParameter\.base$/, reason: 'extension search parameters lack base' },
    { files: /^SearchParameter-questionnaireresponse-extensions-QuestionnaireResponse-item-subject\.json$/, code: 'value', expression: /^SearchParameter\.id$/, reason: 'id has 67 characters, ids allow 64' },
  ];
}

const EXAMPLE_PACKAGES: Record<FhirVersion, string> = { R4: 'hl7.fhir.r4.examples', R4B: 'hl7.fhir.r4b.examples', R5: 'hl7.fhir.r5.examples' };

describe('spec examples', () => {
  for (const version of FHIR_VERSIONS) {
    it(`every resource in ${EXAMPLE_PACKAGES[version]} validates against ${version}`, () => {
      const dir = dirname(createRequire(import.meta.url).resolve(`${EXAMPLE_PACKAGES[version]}/package.json`));
      const files = readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'package.json').sort();
      assert.ok(files.length > 800, `only ${files.length} files in ${dir}`);
      const defs = loadDefinitions(version);
      const used = new Set<string>();
      const failures: string[] = [];
      for (const file of files) {
        const issues = validateResource(defs, JSON.parse(readFileSync(join(dir, file), 'utf8')));
        const known = KNOWN_INVALID[version].find((k) => k.files.test(file));
        if (known !== undefined) used.add(known.reason);
        const unexpected = issues.filter((i) => known === undefined || i.code !== known.code || !known.expression.test(i.expression));
        if (unexpected.length > 0) failures.push(`${file}: ${JSON.stringify(unexpected.slice(0, 3))}`);
        if (known !== undefined && issues.length === 0) failures.push(`${file}: listed as invalid (${known.reason}) but valid`);
      }
      assert.deepEqual(failures, []);
      assert.deepEqual([...used].sort(), KNOWN_INVALID[version].map((k) => k.reason).sort(), 'stale KNOWN_INVALID entries');
    });
  }
});

interface Case {
  title: string;
  resource: unknown;
  expect: Expected | Partial<Record<FhirVersion, Expected>>;
}

/** One focused case per error class; `expect` per version where the versions differ. */
const CASES: Case[] = [
  { title: 'top level must be an object', resource: [], expect: [['structure', 'Resource']] },
  { title: 'resourceType is required', resource: { id: 'a' }, expect: [['required', 'Resource.resourceType']] },
  { title: 'resourceType must be a known resource type', resource: { resourceType: 'Foo' }, expect: [['invalid', 'Resource.resourceType']] },
  { title: 'abstract resource types are rejected', resource: { resourceType: 'DomainResource' }, expect: [['invalid', 'Resource.resourceType']] },
  { title: 'R5-only resource types are rejected on R4', resource: { resourceType: 'ActorDefinition', status: 'draft', type: 'person' }, expect: { R4: [['invalid', 'Resource.resourceType']], R4B: [['invalid', 'Resource.resourceType']], R5: [] } },
  { title: 'unknown elements are named', resource: patient({ foo: 1, name: [{ bar: 'x' }] }), expect: [['structure', 'Patient.foo'], ['structure', 'Patient.name[0].bar']] },
  { title: 'resourceType only where a resource starts', resource: patient({ name: [{ resourceType: 'HumanName', family: 'x' }] }), expect: [['structure', 'Patient.name[0].resourceType']] },
  { title: 'R5-only elements are rejected on R4', resource: observation({ triggeredBy: [{ observation: { reference: 'Observation/1' }, type: 'reflex' }] }), expect: { R4: [['structure', 'Observation.triggeredBy']], R4B: [['structure', 'Observation.triggeredBy']], R5: [] } },
  { title: 'repeating elements must be arrays', resource: patient({ name: { family: 'x' } }), expect: [['structure', 'Patient.name']] },
  { title: 'single elements must not be arrays', resource: patient({ gender: ['male'] }), expect: [['structure', 'Patient.gender']] },
  { title: 'cardinality follows the version (Encounter.class)', resource: { resourceType: 'Encounter', status: 'planned', class: { code: 'AMB' } }, expect: { R4: [], R4B: [], R5: [['structure', 'Encounter.class']] } },
  { title: 'empty arrays are rejected', resource: patient({ name: [] }), expect: [['structure', 'Patient.name']] },
  { title: 'empty objects are rejected', resource: patient({ maritalStatus: {} }), expect: [['structure', 'Patient.maritalStatus']] },
  { title: 'null is rejected outside primitive arrays', resource: patient({ gender: null, name: [null] }), expect: [['structure', 'Patient.gender'], ['structure', 'Patient.name[0]']] },
  { title: 'required elements', resource: { resourceType: 'Observation' }, expect: [['required', 'Observation.status'], ['required', 'Observation.code']] },
  { title: 'required elements of backbone elements', resource: patient({ link: [{ id: 'l1' }] }), expect: [['required', 'Patient.link[0].other'], ['required', 'Patient.link[0].type']] },
  { title: 'required choice elements', resource: { resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: 'Patient/1' } }, expect: { R4: [['required', 'MedicationRequest.medication[x]']], R4B: [['required', 'MedicationRequest.medication[x]']], R5: [['required', 'MedicationRequest.medication']] } },
  { title: 'a primitive extension satisfies a required element', resource: observation({ status: undefined, _status: { extension: [ext({ valueCode: 'unknown' })] } }), expect: [] },
  { title: 'choice elements need a type suffix', resource: observation({ value: 'x', valueFoo: 'y' }), expect: [['structure', 'Observation.value'], ['structure', 'Observation.valueFoo']] },
  { title: 'only one choice alternative', resource: observation({ valueString: 'x', valueBoolean: true }), expect: [['structure', 'Observation.valueBoolean']] },
  { title: 'a choice value and its own extension are one alternative', resource: observation({ valueString: 'x', _valueString: { id: 'a' } }), expect: [] },
  { title: 'choice types follow the version (integer64)', resource: patient({ extension: [ext({ valueInteger64: '1' })] }), expect: { R4: [['structure', 'Patient.extension[0].valueInteger64']], R4B: [['structure', 'Patient.extension[0].valueInteger64']], R5: [] } },
  { title: 'primitive JSON kind', resource: patient({ active: 'true', multipleBirthInteger: '2' }), expect: [['value', 'Patient.active'], ['value', 'Patient.multipleBirthInteger']] },
  { title: 'decimals are JSON numbers', resource: observation({ valueQuantity: { value: '1.0' } }), expect: [['value', 'Observation.valueQuantity.value']] },
  { title: 'primitives are not objects', resource: patient({ birthDate: { value: '2000' } }), expect: [['structure', 'Patient.birthDate']] },
  { title: 'empty strings are rejected', resource: patient({ gender: '', name: [{ given: ['a', ''] }] }), expect: [['value', 'Patient.gender'], ['value', 'Patient.name[0].given[1]']] },
  { title: 'formats: date, instant, id, code, uri', resource: patient({ id: 'a b', birthDate: '2000-13-01', meta: { lastUpdated: '2020-01-01' }, gender: 'ma  le', implicitRules: 'a b' }), expect: [['value', 'Patient.id'], ['value', 'Patient.birthDate'], ['value', 'Patient.meta.lastUpdated'], ['value', 'Patient.gender'], ['value', 'Patient.implicitRules']] },
  { title: 'formats follow the version (dateTime without zone)', resource: observation({ effectiveDateTime: '2020-01-01T10:00:00' }), expect: { R4: [['value', 'Observation.effectiveDateTime']], R4B: [['value', 'Observation.effectiveDateTime']], R5: [] } },
  { title: 'string regex uses Java whitespace: no-break space is fine, form feed only in R5', resource: patient({ name: [{ family: 'van\u00a0Dijk', given: ['a\fb'] }] }), expect: { R4: [['value', 'Patient.name[0].given[0]']], R4B: [['value', 'Patient.name[0].given[0]']], R5: [] } },
  { title: 'integer range and whole numbers', resource: patient({ multipleBirthInteger: 2147483648, contact: [{ extension: [ext({ valueInteger: 1.5 })] }] }), expect: [['value', 'Patient.multipleBirthInteger'], ['value', 'Patient.contact[0].extension[0].valueInteger']] },
  { title: 'positiveInt and unsignedInt', resource: observation({ effectiveTiming: { repeat: { count: 0, offset: -1 } } }), expect: [['value', 'Observation.effectiveTiming.repeat.count'], ['value', 'Observation.effectiveTiming.repeat.offset']] },
  { title: 'Attachment.size: unsignedInt number in R4, integer64 string in R5', resource: patient({ photo: [{ size: 10 }, { size: '10' }, { size: '9223372036854775808' }] }), expect: { R4: [['value', 'Patient.photo[1].size'], ['value', 'Patient.photo[2].size']], R4B: [['value', 'Patient.photo[1].size'], ['value', 'Patient.photo[2].size']], R5: [['value', 'Patient.photo[0].size'], ['value', 'Patient.photo[2].size']] } },
  { title: 'oid and uuid', resource: patient({ extension: [ext({ valueOid: 'urn:oid:1.2.x' }), ext({ valueUuid: 'urn:uuid:XYZ' })] }), expect: [['value', 'Patient.extension[0].valueOid'], ['value', 'Patient.extension[1].valueUuid']] },
  { title: 'base64Binary: whitespace between groups allowed before R5', resource: patient({ photo: [{ data: 'QUJD QUJD' }, { data: 'QUJ' }] }), expect: { R4: [['value', 'Patient.photo[1].data']], R4B: [['value', 'Patient.photo[1].data']], R5: [['value', 'Patient.photo[0].data'], ['value', 'Patient.photo[1].data']] } },
  { title: 'base64Binary is checked in linear time (R4 regex is exponential)', resource: patient({ photo: [{ data: 'AAAA '.repeat(5000) + '!' }] }), expect: [['value', 'Patient.photo[0].data']] },
  { title: 'calendar days: a day its month does not have', resource: patient({ birthDate: '1990-02-30', deceasedDateTime: '2023-02-29T10:00:00Z', meta: { lastUpdated: '2021-04-31T00:00:00Z' } }), expect: [['value', 'Patient.birthDate'], ['value', 'Patient.deceasedDateTime'], ['value', 'Patient.meta.lastUpdated']] },
  { title: 'calendar days: leap days and month ends', resource: patient({ birthDate: '2000-02-29', deceasedDateTime: '2024-02-29', meta: { lastUpdated: '2021-12-31T23:59:59Z' } }), expect: [] },
  { title: 'primitive extension alone', resource: patient({ _birthDate: { extension: [ext({ valueString: 'unknown' })] } }), expect: [] },
  { title: 'primitive extension must be an Element object', resource: patient({ _birthDate: 'x', _gender: {}, _active: { foo: 1 } }), expect: [['structure', 'Patient.birthDate'], ['structure', 'Patient.gender'], ['structure', 'Patient.active.foo']] },
  { title: 'primitive arrays align with their extensions through null', resource: patient({ name: [{ given: ['a', null], _given: [null, { id: 'g2' }] }] }), expect: [] },
  { title: 'null needs a partner at the same index', resource: patient({ name: [{ given: ['a', null] }, { _given: [null] }, { given: [null], _given: [null] }] }), expect: [['structure', 'Patient.name[0].given[1]'], ['structure', 'Patient.name[1].given[0]'], ['structure', 'Patient.name[2].given[0]']] },
  { title: 'primitive arrays and extensions must have the same length', resource: patient({ name: [{ given: ['a'], _given: [null, { id: 'x' }] }] }), expect: [['structure', 'Patient.name[0].given']] },
  { title: 'attributes and complex elements have no _name sibling', resource: patient({ _name: [{ id: 'x' }], extension: [ext({ _url: { id: 'u' }, valueString: 'x' })] }), expect: [['structure', 'Patient._name'], ['structure', 'Patient.extension[0]._url']] },
  { title: 'contentReference elements validate recursively', resource: { resourceType: 'Questionnaire', status: 'draft', item: [{ linkId: '1', type: 'group', item: [{ type: 'string', foo: 1 }] }] }, expect: [['structure', 'Questionnaire.item[0].item[0].foo'], ['required', 'Questionnaire.item[0].item[0].linkId']] },
  { title: 'contained resources validate by their own type', resource: patient({ contained: [{ resourceType: 'Organization', foo: 1 }, { name: 'x' }, { resourceType: 'Patient', gender: 1 }] }), expect: [['structure', 'Patient.contained[0].foo'], ['required', 'Patient.contained[1].resourceType'], ['value', 'Patient.contained[2].gender']] },
  { title: 'Bundle entries and Parameters resources', resource: { resourceType: 'Bundle', type: 'collection', entry: [{ resource: { resourceType: 'Nope' } }, { resource: { resourceType: 'Parameters', parameter: [{ name: 'p', resource: { resourceType: 'Patient', foo: 1 } }] } }] }, expect: [['invalid', 'Bundle.entry[0].resource.resourceType'], ['structure', 'Bundle.entry[1].resource.parameter[0].resource.foo']] },
  { title: 'extensions need url and a known value[x]', resource: patient({ extension: [{ valueString: 'x' }, ext({ url: 1 }), ext({ valueFoo: 1 }), ext({ extension: [ext({ valueString: 'a', valueCode: 'b' })] })], modifierExtension: [{ valueBoolean: true }] }), expect: [['required', 'Patient.extension[0].url'], ['value', 'Patient.extension[1].url'], ['structure', 'Patient.extension[2].valueFoo'], ['structure', 'Patient.extension[3].extension[0].valueCode'], ['required', 'Patient.modifierExtension[0].url']] },
  { title: 'Narrative.div is only checked to be a non-empty string', resource: patient({ text: { status: 'generated', div: 'not even xhtml' }, contained: [{ resourceType: 'Basic', code: { text: 'x' }, text: { status: 'generated', div: '' } }, { resourceType: 'Basic', code: { text: 'x' }, text: { status: 'generated' } }] }), expect: [['value', 'Patient.contained[0].text.div'], ['required', 'Patient.contained[1].text.div']] },
];

describe('validateResource error classes', () => {
  for (const c of CASES) {
    it(c.title, () => {
      for (const version of FHIR_VERSIONS) {
        const expected = Array.isArray(c.expect) ? c.expect : c.expect[version];
        assert.ok(expected !== undefined, `no expectation for ${version}`);
        assert.deepEqual(check(version, c.resource), expected, version);
      }
    });
  }
});

/** A Patient whose extension chain nests `levels` objects below the first extension. */
function nestedExtensions(levels: number): object {
  let inner: object = ext({ valueString: 'leaf' });
  for (let i = 0; i < levels; i++) inner = ext({ extension: [inner] });
  return patient({ extension: [inner] });
}

describe('limits against hostile input', () => {
  it('nesting beyond maxDepth yields one too-costly issue, even 100k levels deep', () => {
    assert.deepEqual(check('R4', nestedExtensions(62)), []); // Patient + 63 extensions = 64 levels
    for (const levels of [63, 100_000]) {
      const issues = validateResource(loadDefinitions('R4'), nestedExtensions(levels));
      assert.equal(issues.length, 1);
      assert.equal(issues[0].code, 'too-costly');
      assert.equal(issues[0].expression, `Patient${'.extension[0]'.repeat(64)}`);
    }
  });

  it('maxDepth is configurable', () => {
    const issues = validateResource(loadDefinitions('R5'), patient({ name: [{ period: { start: '2000' } }] }), { maxDepth: 2 });
    assert.deepEqual(issues.map((i) => [i.code, i.expression]), [['too-costly', 'Patient.name[0].period']]);
  });

  it('caps the number of issues, the last saying validation stopped', () => {
    const many = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`bad${i}`, i]));
    const issues = validateResource(loadDefinitions('R4B'), patient(many));
    assert.equal(issues.length, 100);
    assert.deepEqual(issues.slice(-2).map((i) => [i.code, i.expression]), [['structure', 'Patient.bad98'], ['too-costly', 'Patient.bad99']]);
    assert.equal(validateResource(loadDefinitions('R4B'), patient(many), { maxIssues: 5 }).length, 5);
  });

  it('clips input-controlled text in issues', () => {
    const [issue] = validateResource(loadDefinitions('R4'), patient({ ['k'.repeat(100_000)]: 1 }));
    assert.equal(issue.expression, `Patient.${'k'.repeat(97)}...`);
    assert.ok(issue.message.length < 150);
  });

  it('a regex that overflows on a huge value is reported, not thrown', () => {
    // A code of 1,048,575 characters (just within the string limit): should V8 overflow its
    // backtracking stack on it, the verdict is too-costly; today it copes, and [] is fine too.
    // R5's Resource.language is a code whose binding (BCP-47) is not checked, so only the regex speaks.
    const issues = check('R5', patient({ language: 'a '.repeat(MAX_STRING_LENGTH / 2 - 1) + 'a' }));
    assert.ok(issues.length <= 1);
    assert.deepEqual(issues, issues.length === 0 ? [] : [['too-costly', 'Patient.language']]);
  });

  it('string-valued primitives over 1,048,576 characters are too long; base64Binary and xhtml are bounded by the body limit only', () => {
    const over = 'a'.repeat(MAX_STRING_LENGTH + 1);
    const within = 'a'.repeat(MAX_STRING_LENGTH);
    const astral = '\u{1F600}'.repeat(MAX_STRING_LENGTH); // 2 UTF-16 units each, one character
    for (const version of FHIR_VERSIONS) {
      const tooLong = patient({
        name: [{ family: over, given: ['ok', over] }],
        gender: over,
        implicitRules: `http://x.org/${over}`,
        text: { status: 'generated', div: `<div>${over}</div>` }, // xhtml is not a string: no limit
      });
      assert.deepEqual(check(version, tooLong), [
        ['too-long', 'Patient.name[0].family'],
        ['too-long', 'Patient.name[0].given[1]'],
        ['too-long', 'Patient.gender'],
        ['too-long', 'Patient.implicitRules'],
      ], version);
      const markdown = { resourceType: 'Observation', status: 'final', code: { text: 'x' }, note: [{ text: over }] };
      assert.deepEqual(check(version, markdown), [['too-long', 'Observation.note[0].text']], version);
      assert.deepEqual(check(version, patient({ name: [{ family: within, given: [astral] }] })), [], version);
      assert.deepEqual(check(version, patient({ name: [{ given: [`${astral}a`] }] })), [['too-long', 'Patient.name[0].given[0]']], version);
      assert.deepEqual(check(version, patient({ photo: [{ data: 'QUJD'.repeat(MAX_STRING_LENGTH / 2) }] })), [], version);
    }
    const [issue] = validateResource(loadDefinitions('R4'), patient({ name: [{ family: over }] }));
    assert.match(issue.message, /string longer than 1048576 characters/);
  });
});

describe('definitions', () => {
  it('expose concrete resource types and search parameters, loaded once', () => {
    for (const version of FHIR_VERSIONS) {
      const defs = loadDefinitions(version);
      assert.equal(loadDefinitions(version), defs);
      assert.deepEqual(defs.resourceTypes, [...defs.resourceTypes].sort());
      assert.ok(defs.isResourceType('Patient') && !defs.isResourceType('DomainResource') && !defs.isResourceType('Element'));
      const name = defs.searchParameters.find((p) => p.url === 'http://hl7.org/fhir/SearchParameter/individual-given');
      assert.equal(name?.type, 'string');
      assert.ok(name?.base?.includes('Patient'));
    }
    assert.equal(loadDefinitions('R4').isResourceType('SubscriptionTopic'), false);
    assert.equal(loadDefinitions('R4B').isResourceType('SubscriptionTopic'), true);
    assert.equal(loadDefinitions('R4').searchParameters.length, 1400);
  });

  for (const version of FHIR_VERSIONS) {
    it(`${version} tables regenerate byte-for-byte from the packages`, () => {
      for (const [file, content] of generateDefinitionFiles(version)) {
        assert.ok(content === readFileSync(join(OUTPUT_DIR, file), 'utf8'), `${file} is stale: run npm run definitions`);
      }
    });
  }
});
