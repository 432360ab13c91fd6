/**
 * In-memory matching throughput for typical subscription topic criteria, on one core:
 * `node --import tsx scripts/bench-match.ts [seconds per case]`. Prints matches/s for the whole
 * matcher and for extraction alone (the same `only` parameters), so it is clear which part
 * dominates. Target: >= 200,000 matches/s.
 */
import { loadDefinitions } from '../src/fhir/definitions/index.ts';
import type { FhirVersion, Resource } from '../src/fhir/types.ts';
import { extractIndex } from '../src/search/extract.ts';
import { compileMatcher } from '../src/search/match.ts';
import { searchRegistry } from '../src/search/parameters.ts';

const seconds = Number(process.argv[2] ?? 2);

const ACT = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';

/** An inpatient Encounter as EHRs send them: identifiers, participants, diagnoses, locations. */
function encounter(version: FhirVersion): Resource {
  const r5 = version === 'R5';
  const period = { start: '2024-03-01T10:00:00+01:00', end: '2024-03-04T12:30:00+01:00' };
  return {
    resourceType: 'Encounter',
    id: 'enc-123',
    meta: { versionId: '3', lastUpdated: '2024-03-04T12:31:02.123Z', profile: ['http://example.org/StructureDefinition/encounter'] },
    identifier: [{ system: 'http://hospital.example.org/visits', value: 'V-000123' }],
    status: r5 ? 'completed' : 'finished',
    class: r5 ? [{ coding: [{ system: ACT, code: 'IMP', display: 'inpatient encounter' }] }] : { system: ACT, code: 'IMP', display: 'inpatient encounter' },
    type: [{ coding: [{ system: 'http://snomed.info/sct', code: '183452005', display: 'Emergency hospital admission' }] }],
    priority: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActPriority', code: 'EM' }] },
    subject: { reference: 'Patient/pat-1', display: 'Anna Müller' },
    participant: [
      { [r5 ? 'actor' : 'individual']: { reference: 'Practitioner/prac-1' }, type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'ATND' }] }] },
      { [r5 ? 'actor' : 'individual']: { reference: 'Practitioner/prac-2' } },
    ],
    [r5 ? 'actualPeriod' : 'period']: period,
    length: { value: 3, unit: 'days', system: 'http://unitsofmeasure.org', code: 'd' },
    [r5 ? 'reason' : 'reasonCode']: r5 ? [{ value: [{ concept: { text: 'Chest pain' } }] }] : [{ text: 'Chest pain' }],
    diagnosis: [{ condition: r5 ? [{ reference: { reference: 'Condition/c-1' } }] : { reference: 'Condition/c-1' } }],
    location: [{ location: { reference: 'Location/ward-3' }, status: 'completed' }],
    serviceProvider: { reference: 'Organization/org-1' },
  };
}

function observation(): Resource {
  return {
    resourceType: 'Observation',
    id: 'obs-9',
    meta: { versionId: '1', lastUpdated: '2024-03-10T08:31:00Z' },
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '1234-5', display: 'Glucose' }], text: 'Glucose' },
    subject: { reference: 'Patient/1' },
    encounter: { reference: 'Encounter/enc-123' },
    effectiveDateTime: '2024-03-10T08:30:00Z',
    issued: '2024-03-10T08:31:00Z',
    performer: [{ reference: 'Practitioner/prac-1' }],
    valueQuantity: { value: 100, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' },
    interpretation: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: 'N' }] }],
    referenceRange: [{ low: { value: 70, unit: 'mg/dL' }, high: { value: 110, unit: 'mg/dL' } }],
  };
}

/** Runs `fn` repeatedly for `seconds` (after a warm-up) and returns calls per second. */
function rate(fn: () => unknown): number {
  for (let i = 0; i < 20_000; i++) fn();
  let calls = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  let now = start;
  while (now < end) {
    for (let i = 0; i < 1000; i++) fn();
    calls += 1000;
    now = process.hrtime.bigint();
  }
  return calls / (Number(now - start) / 1e9);
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(11);

const cases: { version: FhirVersion; type: string; criteria: (v: FhirVersion) => string; resource: (v: FhirVersion) => Resource }[] = [
  { version: 'R4', type: 'Encounter', criteria: () => 'Encounter?status=finished&class=IMP', resource: encounter },
  { version: 'R5', type: 'Encounter', criteria: () => 'Encounter?status=completed&class=IMP', resource: encounter },
  { version: 'R4', type: 'Observation', criteria: () => 'Observation?code=http://loinc.org|1234-5&subject=Patient/1', resource: observation },
  { version: 'R4', type: 'Observation', criteria: () => 'Observation?code=http://loinc.org|9999-9&subject=Patient/1', resource: observation },
];

console.log(`in-memory matching, one core, ${seconds}s per case (target >= 200,000 matches/s)`);
console.log(`${'criteria'.padEnd(64)} ${'matches/s'.padStart(11)} ${'extract/s'.padStart(11)} result`);
for (const c of cases) {
  const registry = searchRegistry(loadDefinitions(c.version));
  const criteria = c.criteria(c.version);
  const matcher = compileMatcher(registry, c.type, criteria, { now: Date.now });
  const resource = c.resource(c.version);
  const options = { only: matcher.params };
  const matches = rate(() => matcher.matches(resource));
  const extracts = rate(() => extractIndex(registry, resource, options));
  console.log(`${`${c.version} ${criteria}`.padEnd(64)} ${fmt(matches)} ${fmt(extracts)} ${matcher.matches(resource)}`);
}
