/**
 * Generates Herald's FHIR definition tables from the spec packages in node_modules:
 * `src/fhir/definitions/{r4,r4b,r5}.json` (types, elements, primitives) and
 * `src/fhir/definitions/searchparams-{r4,r4b,r5}.json` (search parameters) and
 * `src/fhir/definitions/compartment-patient-{r4,r4b,r5}.json` (the Patient CompartmentDefinition:
 * per resource type, the search parameters that put a resource in a patient's compartment) and
 * `src/fhir/definitions/terminology-{r4,r4b,r5}.json` (required bindings and their value sets,
 * expanded from the package's ValueSets and CodeSystems).
 *
 * Run with `npm run definitions`. The output is deterministic (sorted, one entry per line for
 * readable diffs) and a test regenerates it in memory to prove the committed files match.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { extractSearchParameters, type SearchParameter } from './definitions/search-params.ts';
import { extractStructures, isBaseType, type StructureDefinition } from './definitions/structure.ts';
import { type BoundStructure, type CodeSystem, extractTerminology, type ValueSet } from './definitions/terminology.ts';
import type { RawDefinitions, RawSearchParameters, RawTerminology } from '../src/fhir/definitions/format.ts';
import type { FhirVersion } from '../src/fhir/types.ts';

/** Where each version's definitions live. R4 has no core package here: its examples package carries them. */
const SOURCES: Record<FhirVersion, { pkg: string; searchBundles: string[] }> = {
  R4: { pkg: 'hl7.fhir.r4.examples', searchBundles: ['Bundle-searchParams.json'] },
  R4B: { pkg: 'hl7.fhir.r4b.core', searchBundles: [] },
  R5: { pkg: 'hl7.fhir.r5.core', searchBundles: [] },
};

export const OUTPUT_DIR = fileURLToPath(new URL('../src/fhir/definitions/', import.meta.url));

/** The generated files of one version: file name (relative to OUTPUT_DIR) to content. */
export function generateDefinitionFiles(version: FhirVersion): Map<string, string> {
  const source = SOURCES[version];
  const dir = packageDir(source.pkg);
  const fhirVersion = readJson<{ fhirVersions: string[] }>(join(dir, 'package.json')).fhirVersions[0];
  const structures = readResources<StructureDefinition>(dir, 'StructureDefinition').filter(isBaseType);
  const searchParams = [
    ...readResources<SearchParameter>(dir, 'SearchParameter'),
    ...source.searchBundles.flatMap((file) => bundleEntries<SearchParameter>(join(dir, file), 'SearchParameter')),
  ];
  const suffix = version.toLowerCase();
  return new Map([
    [`${suffix}.json`, serializeDefinitions(extractStructures(fhirVersion, structures))],
    [`searchparams-${suffix}.json`, serializeSearchParameters({ fhirVersion, params: extractSearchParameters(searchParams) })],
    [`compartment-patient-${suffix}.json`, serializeCompartment(fhirVersion, readJson<CompartmentDefinition>(join(dir, 'CompartmentDefinition-patient.json')))],
    [`terminology-${suffix}.json`, serializeTerminology(extractTerminology(fhirVersion, structures as unknown as BoundStructure[], readResources<ValueSet>(dir, 'ValueSet'), readResources<CodeSystem>(dir, 'CodeSystem')))],
  ]);
}

function packageDir(name: string): string {
  return dirname(createRequire(import.meta.url).resolve(`${name}/package.json`));
}

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

/** The package's `<Type>-*.json` files that hold a resource of that type, in file-name order. */
function readResources<T extends { resourceType: string }>(dir: string, resourceType: T['resourceType']): T[] {
  return readdirSync(dir)
    .filter((file) => file.startsWith(`${resourceType}-`) && file.endsWith('.json'))
    .sort()
    .map((file) => readJson<T>(join(dir, file)))
    .filter((resource) => resource.resourceType === resourceType);
}

function bundleEntries<T extends { resourceType: string }>(file: string, resourceType: T['resourceType']): T[] {
  const bundle = readJson<{ entry?: { resource?: T }[] }>(file);
  return (bundle.entry ?? []).flatMap((e) => (e.resource?.resourceType === resourceType ? [e.resource] : []));
}

/** One primitive per line, one element table per line: compact yet diffable. */
function serializeDefinitions(defs: RawDefinitions): string {
  const primitives = Object.entries(defs.primitives).map(([name, p]) => `${JSON.stringify(name)}:${JSON.stringify(p)}`);
  const types = Object.entries(defs.types).map(([name, type]) => {
    const { e, ...head } = type;
    const tables = Object.entries(e).map(([path, children]) => `${JSON.stringify(path)}:${JSON.stringify(children)}`);
    return `${JSON.stringify(name)}:${JSON.stringify(head).slice(0, -1)},"e":{\n${tables.join(',\n')}}}`;
  });
  return `{"fhirVersion":${JSON.stringify(defs.fhirVersion)},\n"primitives":{\n${primitives.join(',\n')}},\n"types":{\n${types.join(',\n')}}}\n`;
}

interface CompartmentDefinition {
  resource: { code: string; param?: string[] }[];
}

/** Types with at least one parameter, one per line; `{def}` (the compartment's own type) is left out. */
function serializeCompartment(fhirVersion: string, def: CompartmentDefinition): string {
  const lines = def.resource
    .map((r) => [r.code, (r.param ?? []).filter((p) => p !== '{def}')] as const)
    .filter(([, params]) => params.length > 0)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([code, params]) => `${JSON.stringify(code)}:${JSON.stringify(params)}`);
  return `{"fhirVersion":${JSON.stringify(fhirVersion)},\n"resources":{\n${lines.join(',\n')}}}\n`;
}

/** One binding, one value set, one skipped value set per line. */
function serializeTerminology(t: RawTerminology): string {
  const lines = (record: Record<string, unknown>) => Object.entries(record).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',\n');
  return `{"fhirVersion":${JSON.stringify(t.fhirVersion)},\n"bindings":{\n${lines(t.bindings)}},\n"valueSets":{\n${lines(t.valueSets)}},\n"skipped":{\n${lines(t.skipped)}}}\n`;
}

function serializeSearchParameters(table: RawSearchParameters): string {
  const params = table.params.map((p) => JSON.stringify(p));
  return `{"fhirVersion":${JSON.stringify(table.fhirVersion)},\n"params":[\n${params.join(',\n')}]}\n`;
}

function main(): void {
  for (const version of ['R4', 'R4B', 'R5'] as const) {
    for (const [file, content] of generateDefinitionFiles(version)) {
      writeFileSync(join(OUTPUT_DIR, file), content);
      console.log(`${file}: ${(Buffer.byteLength(content) / 1024).toFixed(0)} KiB`);
    }
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main();
