/**
 * Extraction of the element and primitive tables from base StructureDefinitions.
 *
 * Only the spec's base types are read (kind primitive-type / complex-type / resource whose
 * derivation is `specialization`, plus the hierarchy roots Element / Resource / Base that have none);
 * profiles (`constraint`) and logical models are skipped. Everything comes from the snapshots, so
 * inherited elements (id, meta, extension, ...) appear in every type exactly as the spec lists them.
 */
import { javaRegexToJs } from './java-regex.ts';
import type { RawDefinitions, RawElement, RawPrimitive, RawType } from '../../src/fhir/definitions/format.ts';

/** The subset of a StructureDefinition this module reads. */
export interface StructureDefinition {
  resourceType: 'StructureDefinition';
  url: string;
  type: string;
  kind: string;
  abstract: boolean;
  derivation?: string;
  baseDefinition?: string;
  snapshot?: { element: ElementDefinition[] };
}

interface ElementDefinition {
  path: string;
  sliceName?: string;
  min?: number;
  max?: string;
  contentReference?: string;
  representation?: string[];
  isSummary?: boolean;
  type?: { code: string; extension?: Extension[] }[];
  extension?: Extension[];
}

interface Extension {
  url: string;
  valueUrl?: string;
  valueString?: string;
}

const FHIR_TYPE_EXT = 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type';
const REGEX_EXT = 'http://hl7.org/fhir/StructureDefinition/regex';
const SYSTEM_PREFIX = 'http://hl7.org/fhirpath/System.';
const KINDS = new Set(['primitive-type', 'complex-type', 'resource']);

/** JSON representation of primitives (spec json.html): numbers and booleans; everything else is a string. */
const NUMBER_TYPES = new Set(['decimal', 'integer', 'positiveInt', 'unsignedInt']);

/** True for the StructureDefinitions that define a base type (not a profile, not a logical model). */
export function isBaseType(sd: StructureDefinition): boolean {
  if (!KINDS.has(sd.kind)) return false;
  if (sd.url !== `http://hl7.org/fhir/StructureDefinition/${sd.type}`) return false;
  return sd.derivation === 'specialization' || (sd.derivation === undefined && sd.baseDefinition === undefined);
}

/** Builds the structure tables of one version from its base StructureDefinitions. */
export function extractStructures(fhirVersion: string, definitions: StructureDefinition[]): RawDefinitions {
  const primitives: Record<string, RawPrimitive> = {};
  const types: Record<string, RawType> = {};
  const sorted = [...definitions].sort((a, b) => compare(a.type, b.type));
  for (const sd of sorted) {
    if (sd.kind === 'primitive-type') primitives[sd.type] = extractPrimitive(sd);
    else types[sd.type] = extractType(sd);
  }
  checkTypeReferences(types, primitives);
  return { fhirVersion, primitives, types };
}

/** JSON kind by the spec's JSON rules, regex from the `regex` extension on the `value` element. */
function extractPrimitive(sd: StructureDefinition): RawPrimitive {
  const value = snapshotOf(sd).find((e) => e.path === `${sd.type}.value`);
  const regex = value?.type?.[0]?.extension?.find((x) => x.url === REGEX_EXT)?.valueString;
  const j = sd.type === 'boolean' ? 'b' : NUMBER_TYPES.has(sd.type) ? 'n' : 's';
  return regex === undefined ? { j } : { j, r: javaRegexToJs(regex) };
}

function extractType(sd: StructureDefinition): RawType {
  const elements = snapshotOf(sd);
  const withChildren = new Set<string>();
  for (const e of elements) withChildren.add(parentPath(e.path));
  const tables: Record<string, RawElement[]> = { [sd.type]: [] };
  for (const e of elements) {
    if (!e.path.includes('.')) continue;
    if (e.sliceName !== undefined) throw new Error(`Unexpected slice ${e.path}:${e.sliceName} in base type ${sd.type}`);
    const parent = parentPath(e.path);
    const table = tables[parent];
    if (table === undefined) throw new Error(`Element ${e.path} has no parent table in ${sd.type}`);
    table.push(toRawElement(sd, e, withChildren.has(e.path)));
    if (withChildren.has(e.path)) tables[e.path] = [];
  }
  return {
    k: sd.kind === 'resource' ? 'r' : 'c',
    ...(sd.abstract ? { a: 1 as const } : {}),
    ...(sd.baseDefinition !== undefined ? { b: lastSegment(sd.baseDefinition) } : {}),
    e: tables,
  };
}

function toRawElement(sd: StructureDefinition, e: ElementDefinition, hasChildren: boolean): RawElement {
  const raw: RawElement = { n: lastSegment(e.path, '.') };
  if (e.contentReference === undefined) raw.t = (e.type ?? []).map((t) => typeCode(sd, e, t));
  if (e.min !== undefined && e.min !== 0) raw.m = e.min;
  const max = e.max === '*' ? -1 : Number(e.max ?? '1');
  if (max !== 1) raw.x = max;
  if (e.contentReference !== undefined) raw.r = e.contentReference.slice(e.contentReference.indexOf('#') + 1);
  if (hasChildren) raw.i = 1;
  if (e.representation?.includes('xmlAttr')) raw.a = 1;
  if (e.isSummary) raw.s = 1;
  return raw;
}

/**
 * FHIRPath system types (used for ids and Extension.url) are mapped to the FHIR type named by their
 * `structuredefinition-fhir-type` extension, except for ids, where the snapshots disagree with the
 * spec text and with each other: a resource's own `id` is `id` (R4's snapshots say `string`), an
 * element's `id` attribute is `string` (R4B's and some R5 snapshots say `id`, but element ids such
 * as `Observation.value[x]` in the spec's own StructureDefinitions do not match the id regex).
 */
function typeCode(sd: StructureDefinition, e: ElementDefinition, t: { code: string; extension?: Extension[] }): string {
  if (!t.code.startsWith(SYSTEM_PREFIX)) return t.code;
  if (sd.kind === 'resource' && e.path === `${sd.type}.id`) return 'id';
  if (e.path.endsWith('.id') && e.representation?.includes('xmlAttr')) return 'string';
  const fhirType = t.extension?.find((x) => x.url === FHIR_TYPE_EXT)?.valueUrl;
  return fhirType ?? t.code.slice(SYSTEM_PREFIX.length).toLowerCase();
}

/** Fails the build when an element refers to a type the tables do not define. */
function checkTypeReferences(types: Record<string, RawType>, primitives: Record<string, RawPrimitive>): void {
  for (const [name, type] of Object.entries(types)) {
    for (const [path, children] of Object.entries(type.e)) {
      for (const child of children) {
        for (const code of child.t ?? []) {
          if (types[code] === undefined && primitives[code] === undefined) {
            throw new Error(`${name}: ${path}.${child.n} refers to unknown type ${code}`);
          }
        }
        if (child.r !== undefined && types[child.r.split('.')[0]]?.e[child.r] === undefined) {
          throw new Error(`${name}: ${path}.${child.n} refers to unknown content ${child.r}`);
        }
      }
    }
  }
}

function snapshotOf(sd: StructureDefinition): ElementDefinition[] {
  if (sd.snapshot === undefined) throw new Error(`StructureDefinition ${sd.url} has no snapshot`);
  return sd.snapshot.element;
}

function parentPath(path: string): string {
  const dot = path.lastIndexOf('.');
  return dot < 0 ? '' : path.slice(0, dot);
}

function lastSegment(value: string, separator = '/'): string {
  return value.slice(value.lastIndexOf(separator) + 1);
}

/** Code-unit order, independent of the locale the generator runs in. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
