/**
 * In-memory matching throughput, in its own process, single-threaded:
 *   node --import tsx bench/match.ts '{"seconds":5}'
 * Compiles a typical topic criterion once with src/search/match.ts and calls it against a realistic
 * R4 inpatient Encounter in a loop; prints one MatchOutput as JSON on stdout.
 */
import { loadDefinitions } from '../src/fhir/definitions/index.ts';
import type { Resource } from '../src/fhir/types.ts';
import { extractIndex } from '../src/search/extract.ts';
import { compileMatcher } from '../src/search/match.ts';
import { searchRegistry } from '../src/search/parameters.ts';

export interface MatchOutput {
  criteria: string;
  /** What the matcher answered for the resource (it should match). */
  matched: boolean;
  matchesPerSecond: number;
  /** Extraction alone of the same parameters, to show which part dominates. */
  extractsPerSecond: number;
  /** CPU seconds per wall second of this process during the matches run (about 1 when single-threaded). */
  cores: number;
}

const ACT = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';

/** An R4 inpatient Encounter as EHRs send them (the same as scripts/bench-match.ts). */
const ENCOUNTER: Resource = {
  resourceType: 'Encounter',
  id: 'enc-123',
  meta: { versionId: '3', lastUpdated: '2024-03-04T12:31:02.123Z', profile: ['http://example.org/StructureDefinition/encounter'] },
  identifier: [{ system: 'http://hospital.example.org/visits', value: 'V-000123' }],
  status: 'finished',
  class: { system: ACT, code: 'IMP', display: 'inpatient encounter' },
  type: [{ coding: [{ system: 'http://snomed.info/sct', code: '183452005', display: 'Emergency hospital admission' }] }],
  priority: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActPriority', code: 'EM' }] },
  subject: { reference: 'Patient/pat-1', display: 'Anna Müller' },
  participant: [
    { individual: { reference: 'Practitioner/prac-1' }, type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'ATND' }] }] },
    { individual: { reference: 'Practitioner/prac-2' } },
  ],
  period: { start: '2024-03-01T10:00:00+01:00', end: '2024-03-04T12:30:00+01:00' },
  length: { value: 3, unit: 'days', system: 'http://unitsofmeasure.org', code: 'd' },
  reasonCode: [{ text: 'Chest pain' }],
  diagnosis: [{ condition: { reference: 'Condition/c-1' } }],
  location: [{ location: { reference: 'Location/ward-3' }, status: 'completed' }],
  serviceProvider: { reference: 'Organization/org-1' },
};

/** Calls per second of `fn` over `seconds`, after a warm-up; plus this process's cores busy. */
function rate(fn: () => unknown, seconds: number): { perSecond: number; cores: number } {
  for (let i = 0; i < 50_000; i++) fn();
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  let calls = 0;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 1000; i++) fn();
    calls += 1000;
    now = process.hrtime.bigint();
  }
  const wall = Number(now - start) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { perSecond: calls / wall, cores: (cpu.user + cpu.system) / 1e6 / wall };
}

function main(): void {
  const { seconds = 5, criteria = 'Encounter?status=finished&class=IMP' } = JSON.parse(process.argv[2] ?? '{}') as { seconds?: number; criteria?: string };
  const registry = searchRegistry(loadDefinitions('R4'));
  const matcher = compileMatcher(registry, 'Encounter', criteria, { now: Date.now });
  let sink = 0;
  const m = rate(() => (matcher.matches(ENCOUNTER) ? sink++ : sink--), seconds);
  const only = { only: matcher.params };
  const e = rate(() => (sink += extractIndex(registry, ENCOUNTER, only).token.length), seconds);
  const out: MatchOutput = { criteria, matched: matcher.matches(ENCOUNTER), matchesPerSecond: m.perSecond, extractsPerSecond: e.perSecond, cores: m.cores };
  process.stdout.write(JSON.stringify(out) + '\n');
}

main();
