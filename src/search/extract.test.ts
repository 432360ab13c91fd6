/**
 * Spec-wide checks of search extraction: every parameter of every type of every version has an
 * extraction (and the few that do not are listed here with the reason); every spec example
 * extracts cleanly; and on the examples the plain-JS walkers produce the same rows as evaluating
 * the same expressions with fhirpath.js, except for the deviations listed below.
 * Rule-by-rule expectations on hand-written resources are in extract/rows.test.ts.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { loadDefinitions } from '../fhir/definitions/index.ts';
import { compileTypedFhirPath } from '../fhir/fhirpath.ts';
import { FHIR_VERSIONS, type FhirVersion, type Resource } from '../fhir/types.ts';
import { extractIndex } from './extract.ts';
import { parseExpression, printExpression } from './extract/expression.ts';
import { PATCHES, patchedParameters } from './extract/patches.ts';
import { PlanBuilder } from './extract/builder.ts';
import { runPlan } from './extract/run.ts';
import { RowSink } from './extract/sink.ts';
import { converterFor } from './extract/values.ts';
import { extraSearchParameters } from './extra-params.ts';
import { normalizeString } from './normalize.ts';
import { searchRegistry, type SearchRegistry } from './parameters.ts';
import type { IndexRows } from './types.ts';

const EXAMPLE_PACKAGES: Record<FhirVersion, string> = { R4: 'hl7.fhir.r4.examples', R4B: 'hl7.fhir.r4b.examples', R5: 'hl7.fhir.r5.examples' };
/** Conformance resources are most of the packages and exercise few parameters; skipped for speed. */
const CONFORMANCE = /^(StructureDefinition|SearchParameter|ValueSet|CodeSystem|ConceptMap|OperationDefinition|CapabilityStatement|ImplementationGuide|CompartmentDefinition|NamingSystem)-/;

function examples(version: FhirVersion): { file: string; resource: Resource }[] {
  const dir = dirname(createRequire(import.meta.url).resolve(`${EXAMPLE_PACKAGES[version]}/package.json`));
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && f !== 'package.json' && !CONFORMANCE.test(f))
    .sort()
    .map((file) => ({ file, resource: JSON.parse(readFileSync(join(dir, file), 'utf8')) as Resource }));
}

const registryOf = (version: FhirVersion): SearchRegistry => searchRegistry(loadDefinitions(version));

// ---------------------------------------------------------------------------------------------
// What the registry deliberately leaves out or cannot fully extract
// ---------------------------------------------------------------------------------------------

const SEARCH_CONTROLS = 'no expression: a search control, evaluated by the search engine';
const SPECIAL = 'type special: evaluated by the search engine, never indexed';
const EXAMPLE = 'spec example that would shadow a real parameter';
const NO_BASE = 'no base resource (an extension parameter of the spec)';
const EXTENSION_NO_BASE = ['author', 'effective', 'end', 'keyword', 'workflow'].flatMap((c) => [`${c} () ${NO_BASE}`, `${c} () ${NO_BASE}`]);

/** `code (base) reason` of every spec parameter paramsFor leaves out. */
const UNSUPPORTED: Record<FhirVersion, string[]> = {
  R4: [
    `_text (DomainResource) ${SEARCH_CONTROLS}`,
    `near (Location) ${SPECIAL}`,
    `_content (Resource) ${SEARCH_CONTROLS}`,
    `_query (Resource) ${SEARCH_CONTROLS}`,
    `_id (Resource) ${EXAMPLE}`,
    `part-agree (Patient) ${EXAMPLE}`,
    `subject (Condition) ${EXAMPLE}`,
    `_filter (Resource) ${SPECIAL}`,
    `age (Patient) ${SEARCH_CONTROLS}`,
    `birthOrderBoolean (Patient) ${SEARCH_CONTROLS}`,
    ...EXTENSION_NO_BASE,
  ],
  R4B: [
    ...['_text (DomainResource)', '_content (Resource)', '_filter (Resource)', '_has (Resource)', '_list (Resource)', '_query (Resource)', '_text (Resource)', '_type (Resource)'].map((p) => `${p} ${SEARCH_CONTROLS}`),
    `near (Location) ${SPECIAL}`,
    `_id (Resource) ${EXAMPLE}`,
    `part-agree (Patient) ${EXAMPLE}`,
    `subject (Condition) ${EXAMPLE}`,
    `_filter (Resource) ${SPECIAL}`,
    `age (Patient) ${SEARCH_CONTROLS}`,
    `birthOrderBoolean (Patient) ${SEARCH_CONTROLS}`,
    ...EXTENSION_NO_BASE,
  ],
  R5: [
    'section-code-text (Composition) composite with a special component (http://hl7.org/fhir/SearchParameter/Composition-section-text)',
    ...['section-text (Composition)', '_text (DomainResource)', 'contains (Location)', 'near (Location)', '_content (Resource)', '_filter (Resource)', '_has (Resource)', '_list (Resource)', '_query (Resource)', '_type (Resource)', '_filter (Resource)'].map((p) => `${p} ${SPECIAL}`),
    '_in (Resource) _in (membership of CareTeam/Group/List): evaluated by the search engine, Resource.id is no index',
    `_text (Resource) ${SEARCH_CONTROLS}`,
    `_id (Resource) ${EXAMPLE}`,
    `example-constraint (Bundle) ${EXAMPLE}`,
    `part-agree (Patient) ${EXAMPLE}`,
    `subject (Condition) ${EXAMPLE}`,
  ],
};

/** Served parameters whose spec definition is broken in a way no patch can guess: they find nothing. */
const BROKEN: Record<FhirVersion, string[]> = {
  R4: [],
  R4B: [],
  R5: [
    'Device.code-value-concept: Device.specification is not an element',
    'EvidenceVariable.topic: no branch of the expression applies to EvidenceVariable',
  ],
};

/** Composite components whose definition the spec lacks: typed from the elements they select. */
const INFERRED: Record<FhirVersion, string[]> = {
  R4: [],
  R4B: [],
  R5: [
    'DeviceDefinition.specification-version: DeviceDefinition-version string',
    'Encounter.location-period: Encounter-period date',
    'Ingredient.strength-concentration-ratio: Ingredient-numerator quantity',
    'Ingredient.strength-concentration-ratio: Ingredient-denominator quantity',
    'Ingredient.strength-presentation-ratio: Ingredient-numerator quantity',
    'Ingredient.strength-presentation-ratio: Ingredient-denominator quantity',
    'Observation.code-value-string: Observation-value-string string',
    'ResearchStudy.progress-status-state-actual: ResearchStudy-state token',
    'ResearchStudy.progress-status-state-actual: ResearchStudy-actual token',
    'ResearchStudy.progress-status-state-period: ResearchStudy-state token',
    'ResearchStudy.progress-status-state-period: ResearchStudy-period date',
    'ResearchStudy.progress-status-state-period-actual: ResearchStudy-state token',
    'ResearchStudy.progress-status-state-period-actual: ResearchStudy-period date',
    'ResearchStudy.progress-status-state-period-actual: ResearchStudy-actual token',
    'TestScript.scope-artifact-conformance: TestScript-artifact uri',
    'TestScript.scope-artifact-conformance: TestScript-conformance token',
    'TestScript.scope-artifact-phase: TestScript-artifact uri',
    'TestScript.scope-artifact-phase: TestScript-phase token',
  ],
};

/**
 * (parameter type, element type) pairs the spec's expressions select that yield no rows, by
 * design: the element holds no value of the parameter's kind. Extension values (any type may
 * turn up in value[x]) are exempt: they index when their type converts.
 */
const NO_ROWS: Record<string, string> = {
  'date:Age': 'Procedure.performed[x] (R4): an age is no point in time',
  'date:Range': 'Procedure.performed[x] (R4): a Range of ages is no point in time',
  'date:string': 'performed/occurrence strings ("about a year ago") are free text',
  'quantity:SampledData': 'Observation.value[x]: sampled series are not searchable as one quantity',
  'reference:Attachment': 'Consent.source[x] (R4): an attachment is no reference',
  'token:Attachment': 'characteristic.value[x] (R4B MedicinalProductDefinition): no token in an attachment',
  'token:date': 'characteristic.value[x] (R4B MedicinalProductDefinition): a date is no token',
  'token:Quantity': 'characteristic.value[x] (R4 Group, R4B MedicinalProductDefinition): no token in a quantity',
  'token:Range': 'characteristic.value[x] (R4 Group): no token in a range',
  'token:Reference': 'characteristic.value[x] (R4 Group): no token in a reference',
};

/** NO_ROWS pairs met by the coverage tests, to catch stale entries. */
const seenNoRows = new Set<string>();

describe('search parameter registry', () => {
  for (const version of FHIR_VERSIONS) {
    it(`${version}: every parameter of every type has an extraction; fallbacks reported`, (t) => {
      const registry = registryOf(version);
      const defs = registry.definitions;
      const counts = { walker: 0, fhirpath: 0, mixed: 0, none: 0 };
      const broken: string[] = [];
      const inferred: string[] = [];
      const unconverted = new Map<string, string>();
      for (const type of defs.resourceTypes) {
        for (const [code, param] of registry.paramsFor(type)) {
          const extractor = registry.extractor(param);
          assert.ok(extractor !== undefined && extractor.param === param && extractor.resourceType === type, `${type}.${code}`);
          assert.equal(registry.param(type, code), param);
          counts[extractor.strategy]++;
          for (const w of extractor.warnings) {
            const m = /^component .*\/SearchParameter\/(\S+) is not defined; typed (\S+)/.exec(w);
            if (m !== null) inferred.push(`${type}.${code}: ${m[1]} ${m[2]}`);
            else broken.push(`${type}.${code}: ${w}`);
          }
          const plans = extractor.components?.map((c) => ({ paramType: c.param.type, plans: c.plans })) ?? [{ paramType: param.type, plans: [extractor.plan] }];
          for (const { paramType, plans: list } of plans) {
            for (const slot of list.flatMap((p) => p.slots)) {
              if (slot.fromExtension === true) continue;
              if (slot.type === undefined) assert.equal(paramType, 'reference', `${type}.${code}: untyped values only for resources`);
              else if (converterFor(defs, paramType, slot.type) === undefined) unconverted.set(`${paramType}:${slot.type}`, `${type}.${code}`);
            }
          }
        }
      }
      t.diagnostic(`${version}: ${counts.walker} walkers, ${counts.fhirpath} fhirpath.js fallbacks, ${counts.mixed} mixed, ${counts.none} with no applicable branch`);
      assert.deepEqual({ fhirpath: counts.fhirpath, mixed: counts.mixed }, { fhirpath: 0, mixed: 0 });
      assert.equal(counts.none, BROKEN[version].filter((b) => b.includes('no branch')).length);
      assert.deepEqual(broken.sort(), [...BROKEN[version]].sort());
      assert.deepEqual(inferred.sort(), [...INFERRED[version]].sort());
      assert.deepEqual([...unconverted].filter(([pair]) => !(pair in NO_ROWS)), []);
      for (const pair of unconverted.keys()) seenNoRows.add(pair);
    });

    it(`${version}: the parameters left out are exactly the listed ones`, () => {
      const registry = registryOf(version);
      const actual = registry.unsupported.map((u) => `${u.code} (${u.base.join(',')}) ${u.reason}`);
      assert.deepEqual(actual.sort(), [...UNSUPPORTED[version]].sort());
    });

    it(`${version}: every spec patch for the version applies`, () => {
      const registry = registryOf(version);
      assert.deepEqual([...registry.patches].map((p) => p.url).sort(), PATCHES.filter((p) => p.versions.includes(version)).map((p) => p.url).sort());
    });

    it(`${version}: types get the Resource and DomainResource parameters, the real ones`, () => {
      const registry = registryOf(version);
      const patient = registry.paramsFor('Patient');
      for (const code of ['_id', '_lastUpdated', '_tag', '_profile', '_security', '_source']) assert.ok(patient.has(code), code);
      assert.equal(patient.get('_id')!.url, 'http://hl7.org/fhir/SearchParameter/Resource-id');
      assert.equal(registry.param('Condition', 'subject')!.url, 'http://hl7.org/fhir/SearchParameter/Condition-subject');
      assert.equal(registry.param('Bundle', '_id')!.type, 'token');
      assert.equal(registry.param('Patient', '_text'), undefined);
      assert.equal(registry.param('Patient', '_profile')!.type, version === 'R5' ? 'reference' : 'uri');
      assert.deepEqual(registry.param('Observation', 'subject')!.targets.includes('Patient'), true);
      assert.equal(searchRegistry(loadDefinitions(version)), registry);
    });

    it(`${version}: composite components resolve to the type's own parameters`, () => {
      const registry = registryOf(version);
      const composite = registry.param('Observation', 'code-value-quantity')!;
      assert.equal(composite.type, 'composite');
      assert.deepEqual(
        composite.components!.map((c) => [c.param, c.expression]),
        [
          [registry.param('Observation', 'code'), 'code'],
          [registry.param('Observation', 'value-quantity'), version === 'R5' ? 'value.ofType(Quantity)' : 'value.as(Quantity)'],
        ],
      );
    });
  }

  it('every NO_ROWS pair still occurs in some version', () => {
    assert.deepEqual(Object.keys(NO_ROWS).filter((pair) => !seenNoRows.has(pair)), []);
  });

  it('R5: a component the spec forgot to define is typed from its elements', () => {
    const [, value] = registryOf('R5').param('Observation', 'code-value-string')!.components!;
    assert.deepEqual(value!.param, { code: 'Observation-value-string', type: 'string', url: 'http://hl7.org/fhir/SearchParameter/Observation-value-string', targets: [] });
  });
});

// ---------------------------------------------------------------------------------------------
// Spec examples
// ---------------------------------------------------------------------------------------------

/** Checks rows are well-formed: normalised text is normalizeString's, ranges ordered, numbers finite. */
function checkRows(rows: IndexRows, where: string): void {
  for (const r of rows.string) assert.equal(r.norm, normalizeString(r.exact), where);
  for (const r of rows.token) if (r.text !== null) assert.equal(r.text, normalizeString(r.text), where);
  for (const r of rows.date) assert.ok(r.lo <= r.hi && !Number.isNaN(r.lo) && !Number.isNaN(r.hi), `${where}: ${r.code}`);
  for (const r of [...rows.number, ...rows.quantity]) assert.ok(Number.isFinite(r.value), where);
}

describe('spec examples', () => {
  for (const version of FHIR_VERSIONS) {
    it(`${version}: every example extracts without an error`, (t) => {
      const registry = registryOf(version);
      const errors: string[] = [];
      let count = 0;
      let rowCount = 0;
      for (const { file, resource } of examples(version)) {
        const rows = extractIndex(registry, resource, { baseUrl: 'http://hl7.org/fhir', onError: (p, e) => errors.push(`${file} ${p.code}: ${String(e)}`) });
        checkRows(rows, file);
        count++;
        rowCount += Object.values(rows).reduce((n, list: unknown[]) => n + list.length, 0);
      }
      t.diagnostic(`${version}: ${count} examples, ${rowCount} rows`);
      assert.ok(count > 500);
      assert.deepEqual(errors, []);
    });
  }

  /**
   * Where the walkers knowingly differ from fhirpath.js, by `version type.code`. fhirpath.js
   * errors (strict `as` on collections, unimplemented hasExtension) are skipped, not listed.
   */
  const DEVIATIONS: Record<string, string> = {
    'R4 Observation.gene-identifier': 'an extension parameter indexes the value[x], fhirpath.js returns the Extension',
    'R5 Device.serial-number': "where(type='SNO') matches the CodeableConcept's code (fhirpath.js: never equal)",
    'R5 Observation.combo-value-quantity': "fhirpath.js's union drops quantities it deems equal (1e-24 g and 1e-17 g)",
    'R5 Observation.component-value-quantity': "fhirpath.js's union drops quantities it deems equal (1e-24 g and 1e-17 g)",
    'R5 Subscription.filter-value': 'fhirpath.js reads `.value` of filterBy as a primitive value accessor',
  };
  const TOLERATED_ERRORS = /Expected singleton on left side of 'as'|Not implemented: hasExtension|Cannot convert a FHIR.Quantity that has a comparator/;

  /** The spec examples never carry the extra parameters' extensions (extra-params.ts); these do. */
  const EXTRA_EXAMPLES: Record<FhirVersion, string[]> = {
    R4: [
      'spec/examples/subscriptions/Subscription-subscription-admission.json',
      'spec/examples/subscriptions/Subscription-subscription-zulip.json',
      'spec/third-party/fhir-candle/r4/Basic-topic-encounter-complete.json',
    ],
    R4B: [],
    R5: [],
  };
  const extraExamples = (version: FhirVersion) =>
    EXTRA_EXAMPLES[version].map((file) => ({ file, resource: JSON.parse(readFileSync(new URL(`../../test/fixtures/${file}`, import.meta.url), 'utf8')) as Resource }));

  // R4B has no fhirpath.js model (the R4 one lacks R4B's new resources), so only R4 and R5.
  for (const version of ['R4', 'R5'] as const) {
    it(`${version}: the walkers agree with fhirpath.js on every example`, (t) => {
      const registry = registryOf(version);
      const defs = registry.definitions;
      // The registry serves the spec's parameters plus the extra ones (extra-params.ts): compare both.
      const expressions = new Map(patchedParameters(version, [...defs.searchParameters, ...extraSearchParameters(version)]).params.map((p) => [p.url, p.expr]));
      const differing = new Set<string>();
      let compared = 0;
      let skipped = 0;
      for (const { file, resource } of [...examples(version), ...extraExamples(version)]) {
        if (!defs.isResourceType(resource.resourceType)) continue;
        const rows = extractIndex(registry, resource);
        for (const param of registry.paramsFor(resource.resourceType).values()) {
          if (param.type === 'composite') continue;
          const expression = expressions.get(param.url);
          assert.ok(expression !== undefined, `${file} ${param.code}: no expression for ${param.url}`);
          let found;
          try {
            found = compileTypedFhirPath(expression, version)(resource);
          } catch (e) {
            assert.match((e as Error).message, TOLERATED_ERRORS, `${file} ${param.code}`);
            skipped++;
            continue;
          }
          const sink = new RowSink(defs, undefined, () => undefined);
          sink.begin(param.code, undefined);
          for (const r of found) if (r.type !== undefined) converterFor(defs, param.type, r.type)?.(r.value, sink);
          const kind = param.type as keyof IndexRows;
          const walker = (rows[kind] as { code: string }[]).filter((r) => r.code === param.code || r.code === `${param.code}:of-type`).map((r) => JSON.stringify(r));
          const reference = (sink.rows[kind] as object[]).map((r) => JSON.stringify(r));
          compared++;
          if (JSON.stringify(walker.sort()) !== JSON.stringify(reference.sort())) differing.add(`${version} ${resource.resourceType}.${param.code}`);
        }
      }
      t.diagnostic(`${version}: ${compared} (example, parameter) pairs compared, ${skipped} skipped on fhirpath.js errors`);
      assert.deepEqual([...differing].sort(), Object.keys(DEVIATIONS).filter((k) => k.startsWith(`${version} `)).sort());
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Expressions and the fhirpath.js fallback
// ---------------------------------------------------------------------------------------------

describe('expressions and fallback', () => {
  it('every spec expression parses, and prints back to an equivalent expression', () => {
    for (const version of FHIR_VERSIONS) {
      for (const p of loadDefinitions(version).searchParameters) {
        for (const expr of [p.expr, ...(p.comp ?? []).map((c) => c.expr)]) {
          if (expr === undefined) continue;
          const ast = parseExpression(expr);
          assert.deepEqual(parseExpression(printExpression(ast)), ast, expr);
        }
      }
    }
  });

  it('what the walkers cannot express runs on fhirpath.js, typed', () => {
    const defs = loadDefinitions('R4');
    const builder = new PlanBuilder({ defs, resourceType: 'Patient', warnings: [] }, { type: 'Patient', table: defs.types.get('Patient')!.root, path: 'Patient' });
    assert.equal(builder.add(parseExpression('Patient.name.where(given.count() > 1).family')), 'fhirpath');
    assert.equal(builder.add(parseExpression('Patient.birthDate')), 'walker');
    const plan = builder.build();
    const found: [unknown, string][] = [];
    const patient = { resourceType: 'Patient', birthDate: '2000', name: [{ family: 'One', given: ['a'] }, { family: 'Two', given: ['a', 'b'] }] };
    runPlan(plan, patient, patient, (v, type) => found.push([v, type]));
    assert.deepEqual(found, [['Two', 'string'], ['2000', 'date']]);
  });

  it("a primitive's id and extensions are read from its `_name` sibling; after where() or [n], fhirpath.js", () => {
    const defs = loadDefinitions('R4');
    const builder = new PlanBuilder({ defs, resourceType: 'Patient', warnings: [] }, { type: 'Patient', table: defs.types.get('Patient')!.root, path: 'Patient' });
    assert.equal(builder.add(parseExpression("Patient.name.given.extension('http://x').value")), 'walker');
    assert.equal(builder.add(parseExpression('Patient.birthDate.id')), 'walker');
    // Filtering or picking primitives would lose the pairing of `given[i]` with `_given[i]`.
    assert.equal(builder.add(parseExpression('Patient.name.given.where(exists()).extension.value')), 'fhirpath');
    assert.equal(builder.add(parseExpression('Patient.name.given[2].extension.value')), 'fhirpath');
    const plan = builder.build();
    assert.ok(plan.slots.filter((s) => s.type === 'string').every((s) => s.fromExtension === true || s.path === 'Element.id'));
    const found: [unknown, string][] = [];
    const patient = {
      resourceType: 'Patient',
      _birthDate: { id: 'bd' },
      name: [{ given: ['a', 'b', 'c'], _given: [{ extension: [{ url: 'http://x', valueString: 'A' }] }, null, { extension: [{ url: 'http://y', valueString: 'no' }, { url: 'http://x', valueCode: 'C' }] }] }],
    };
    runPlan(plan, patient, patient, (v, type) => found.push([v, type]));
    const all = [['A', 'string'], ['no', 'string'], ['C', 'code']];
    assert.deepEqual(found, [['A', 'string'], ['C', 'code'], ['bd', 'string'], ...all, ...all.slice(1)]);
  });

  it('resolve() never fetches: `resolve() is X` reads the reference, other uses find nothing', () => {
    const obs = { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/1' }, performer: [{ reference: 'http://x.org/fhir/Practitioner/2' }, { reference: 'Organization/3' }] };
    const values = (expr: string) => compileTypedFhirPath(expr, 'R4')(obs).map((r) => r.value);
    assert.deepEqual(values('Observation.subject.where(resolve() is Patient)'), [{ reference: 'Patient/1' }]);
    assert.deepEqual(values('Observation.performer.where(resolve() is Practitioner)'), [{ reference: 'http://x.org/fhir/Practitioner/2' }]);
    assert.deepEqual(values('Observation.subject.resolve()'), []);
  });
});

