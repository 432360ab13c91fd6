/**
 * Extraction throughput for typical resources: `node --import tsx scripts/bench-extract.ts`.
 *
 * Full extraction (every parameter of the type) is what every write pays; `only` with one or two
 * parameters is what the in-memory matcher pays per candidate. Resources are the spec's own
 * examples (Patient/example; the blood-pressure Observation, which has components and so
 * exercises the composites).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadDefinitions } from '../src/fhir/definitions/index.ts';
import type { FhirVersion, Resource } from '../src/fhir/types.ts';
import { extractIndex } from '../src/search/extract.ts';
import { searchRegistry } from '../src/search/parameters.ts';

const PACKAGES: Record<FhirVersion, string> = { R4: 'hl7.fhir.r4.examples', R4B: 'hl7.fhir.r4b.examples', R5: 'hl7.fhir.r5.examples' };

function example(version: FhirVersion, file: string): Resource {
  const dir = dirname(createRequire(import.meta.url).resolve(`${PACKAGES[version]}/package.json`));
  return JSON.parse(readFileSync(join(dir, file), 'utf8')) as Resource;
}

/** Runs `fn` for about `ms` milliseconds after a warm-up; returns calls per second. */
function measure(fn: () => unknown, ms = 1000): number {
  for (let i = 0; i < 2000; i++) fn();
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    for (let i = 0; i < 500; i++) fn();
    n += 500;
    elapsed = performance.now() - start;
  }
  return (n / elapsed) * 1000;
}

function report(label: string, perSecond: number): void {
  console.log(`${label.padEnd(58)} ${Math.round(perSecond).toLocaleString('en').padStart(10)}/s  ${(1e6 / perSecond).toFixed(2).padStart(7)} µs`);
}

for (const version of ['R4', 'R5'] as const) {
  const registry = searchRegistry(loadDefinitions(version));
  const options = { baseUrl: 'http://localhost:8080/fhir/R4' };
  const cases: [string, Resource, string[]][] = [
    ['Patient/example', example(version, 'Patient-example.json'), ['family', 'birthdate']],
    ['Observation/blood-pressure', example(version, 'Observation-blood-pressure.json'), ['code']],
  ];
  for (const [name, resource, codes] of cases) {
    const rows = extractIndex(registry, resource, options);
    const count = Object.values(rows).reduce((n, r: unknown[]) => n + r.length, 0);
    report(`${version} ${name}: full (${registry.paramsFor(resource.resourceType).size} params, ${count} rows)`, measure(() => extractIndex(registry, resource, options)));
    const only = codes.map((c) => registry.param(resource.resourceType, c)!);
    report(`${version} ${name}: only ${codes.join(', ')}`, measure(() => extractIndex(registry, resource, { ...options, only })));
  }
}
