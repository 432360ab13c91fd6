/**
 * Loads the generated definition tables of a FHIR version and compiles them into lookup
 * structures the validator can use without allocating: one `ElementTable` per type or backbone
 * element, mapping every legal JSON property name (choice variants like `valueQuantity` and
 * primitive-extension siblings like `_given` included) to what that property must hold.
 *
 * Loading happens once per version per process (the result is immutable and cached).
 */
import { readFileSync } from 'node:fs';
import { compilePrimitive, type PrimitiveType } from '../primitives.ts';
import type { RawDefinitions, RawElement, RawSearchParameter, RawSearchParameters, RawTerminology, RawType } from './format.ts';
import type { FhirVersion } from '../types.ts';

export type { PrimitiveType } from '../primitives.ts';
export type { RawPrimitive, RawSearchParameter } from './format.ts';

/** One element of a type, shared by all JSON properties that carry it. */
export interface ElementDef {
  /** Element name without `[x]`, e.g. `value`. */
  readonly name: string;
  /** Definition path, e.g. `Observation.value[x]`. */
  readonly path: string;
  readonly min: number;
  /** Maximum cardinality; -1 when unbounded. */
  readonly max: number;
  /** True when the element repeats (max other than 1), so JSON must hold an array. */
  readonly repeating: boolean;
  /** For choice elements, this element's bit among its table's choices; otherwise 0. */
  readonly choiceBit: number;
  /** Part of the summary view (`_summary=true`): isSummary in the definition, or mandatory. */
  readonly summary: boolean;
  /** The required binding, when its value set could be expanded from the spec package (terminology-*.json). */
  readonly binding: Binding | undefined;
}

/** A required binding: the value set's canonical as the element gives it, and its codes. */
export interface Binding {
  readonly valueSet: string;
  /** Codes per code system. */
  readonly systems: ReadonlyMap<string, ReadonlySet<string>>;
  /** Every code of every system (a `code` element carries no system). */
  readonly codes: ReadonlySet<string>;
}

/**
 * What a JSON property holds: `primitive` a primitive value, `primitive-ext` the `_name` sibling
 * (id + extensions, validated with `table` = Element), `complex` an object validated with `table`,
 * `resource` a whole resource validated by its own resourceType.
 */
export type PropKind = 'primitive' | 'primitive-ext' | 'complex' | 'resource';

/** One legal JSON property name of an element table. */
export interface Prop {
  readonly key: string;
  readonly element: ElementDef;
  readonly kind: PropKind;
  readonly primitive: PrimitiveType | undefined;
  readonly table: ElementTable | undefined;
  /** For primitives, the sibling key (`given` for `_given` and vice versa); arrays align by index. */
  readonly partnerKey: string | undefined;
}

/** A required element with the JSON keys whose presence satisfies it (choices match by bit instead). */
export interface RequiredElement {
  readonly element: ElementDef;
  readonly keys: readonly string[];
}

/** The children of one type or backbone element. */
export interface ElementTable {
  /** Definition path, e.g. `Patient` or `Patient.contact`. */
  readonly path: string;
  readonly props: ReadonlyMap<string, Prop>;
  readonly required: readonly RequiredElement[];
}

/** A complex type or resource. */
export interface TypeDef {
  readonly name: string;
  readonly kind: 'resource' | 'complex';
  readonly abstract: boolean;
  readonly base: string | undefined;
  readonly root: ElementTable;
}

export interface Definitions {
  readonly version: FhirVersion;
  /** The spec version the tables were generated from, e.g. `4.0.1`. */
  readonly fhirVersion: string;
  /** Concrete (non-abstract) resource types, sorted. */
  readonly resourceTypes: readonly string[];
  isResourceType(name: string): boolean;
  readonly primitives: ReadonlyMap<string, PrimitiveType>;
  readonly types: ReadonlyMap<string, TypeDef>;
  /** Every element table by definition path (type roots, backbone elements). */
  readonly tables: ReadonlyMap<string, ElementTable>;
  /** The table for `_name` primitive-extension objects (Element: id + extension). */
  readonly elementTable: ElementTable;
  /** The version's search parameters as generated, sorted by url (for the search feature). */
  readonly searchParameters: readonly RawSearchParameter[];
}

const FILE_SUFFIX: Record<FhirVersion, string> = { R4: 'r4', R4B: 'r4b', R5: 'r5' };
const cache = new Map<FhirVersion, Definitions>();

/** The compiled definitions of a version, loaded on first use. */
export function loadDefinitions(version: FhirVersion): Definitions {
  let defs = cache.get(version);
  if (defs === undefined) {
    const suffix = FILE_SUFFIX[version];
    defs = compileDefinitions(
      version,
      readJson<RawDefinitions>(`${suffix}.json`),
      readJson<RawSearchParameters>(`searchparams-${suffix}.json`),
      readJson<RawTerminology>(`terminology-${suffix}.json`),
    );
    cache.set(version, defs);
  }
  return defs;
}

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(new URL(`./${file}`, import.meta.url), 'utf8')) as T;
}

interface MutableTable {
  path: string;
  props: Map<string, Prop>;
  required: RequiredElement[];
}

/** Compiles the raw tables into lookup structures (once per version). */
function compileDefinitions(version: FhirVersion, raw: RawDefinitions, search: RawSearchParameters, terminology: RawTerminology): Definitions {
  const primitives = new Map(Object.entries(raw.primitives).map(([name, p]) => [name, compilePrimitive(name, p)] as const));
  const tables = new Map<string, MutableTable>();
  for (const type of Object.values(raw.types)) {
    for (const path of Object.keys(type.e)) tables.set(path, { path, props: new Map(), required: [] });
  }
  const types = new Map<string, TypeDef>();
  for (const [name, type] of Object.entries(raw.types)) types.set(name, toTypeDef(name, type, tables));
  const elementTable = types.get('Element')?.root;
  if (elementTable === undefined) throw new Error(`Definitions for ${version} lack Element`);
  const context: Context = { primitives, types, tables, elementTable, bindings: compileBindings(terminology, NOT_CHECKED[version]) };
  for (const type of Object.values(raw.types)) {
    for (const [path, children] of Object.entries(type.e)) fillTable(context, tables.get(path)!, children);
  }
  const resourceTypes = [...types.values()].filter((t) => t.kind === 'resource' && !t.abstract).map((t) => t.name).sort();
  const resourceSet = new Set(resourceTypes);
  return {
    version,
    fhirVersion: raw.fhirVersion,
    resourceTypes,
    isResourceType: (name) => resourceSet.has(name),
    primitives,
    types,
    tables,
    elementTable,
    searchParameters: search.params,
  };
}

function toTypeDef(name: string, type: RawType, tables: Map<string, MutableTable>): TypeDef {
  const root = tables.get(name);
  if (root === undefined) throw new Error(`Type ${name} has no root table`);
  return { name, kind: type.k === 'r' ? 'resource' : 'complex', abstract: type.a === 1, base: type.b, root };
}

/**
 * Required bindings Herald does not check, per version, each for a reason written here:
 * - R4B `SubscriptionTopic.canFilterBy.modifier`: R4B has one element for comparators and modifiers,
 *   and its value set lacks R5's modifiers (`missing`, `exact`, `contains`, …). Herald keeps an R5
 *   topic's modifiers there on R4B (REQUIREMENTS T-5), so the R4B binding cannot hold for them.
 */
const NOT_CHECKED: Record<FhirVersion, ReadonlySet<string>> = {
  R4: new Set(),
  R4B: new Set(['SubscriptionTopic.canFilterBy.modifier']),
  R5: new Set(),
};

/** One Binding per element path; elements bound to the same canonical share it. */
function compileBindings(raw: RawTerminology, notChecked: ReadonlySet<string>): Map<string, Binding> {
  const byCanonical = new Map<string, Binding>();
  const out = new Map<string, Binding>();
  for (const [path, canonical] of Object.entries(raw.bindings)) {
    if (notChecked.has(path)) continue;
    let binding = byCanonical.get(canonical);
    if (binding === undefined) {
      const expansion = raw.valueSets[canonical.split('|')[0]!];
      if (expansion === undefined) throw new Error(`${path}: the value set ${canonical} is not expanded`);
      const systems = new Map(Object.entries(expansion).map(([system, codes]) => [system, new Set(codes)] as const));
      binding = { valueSet: canonical, systems, codes: new Set(Object.values(expansion).flat()) };
      byCanonical.set(canonical, binding);
    }
    out.set(path, binding);
  }
  return out;
}

interface Context {
  bindings: ReadonlyMap<string, Binding>;
  primitives: ReadonlyMap<string, PrimitiveType>;
  types: ReadonlyMap<string, TypeDef>;
  tables: ReadonlyMap<string, ElementTable>;
  elementTable: ElementTable;
}

/** Registers every JSON property of a table's children; choice elements get one bit each. */
function fillTable(context: Context, table: MutableTable, children: readonly RawElement[]): void {
  let nextChoiceBit = 1;
  for (const child of children) {
    const isChoice = child.n.endsWith('[x]');
    if (isChoice && nextChoiceBit > 1 << 30) throw new Error(`Too many choice elements in ${table.path}`);
    const max = child.x ?? 1;
    const path = `${table.path}.${child.n}`;
    const element: ElementDef = {
      name: isChoice ? child.n.slice(0, -3) : child.n,
      path,
      min: child.m ?? 0,
      max,
      repeating: max !== 1,
      choiceBit: isChoice ? nextChoiceBit : 0,
      summary: child.s === 1 || (child.m ?? 0) > 0,
      binding: context.bindings.get(path),
    };
    if (isChoice) nextChoiceBit <<= 1;
    const keys = addProps(context, table, child, element, isChoice);
    if (element.min > 0 && element.name !== 'id') table.required.push({ element, keys: isChoice ? [] : keys });
  }
}

/** Adds the props of one element and returns their keys. */
function addProps(context: Context, table: MutableTable, child: RawElement, element: ElementDef, isChoice: boolean): string[] {
  const nested = child.r ?? (child.i === 1 ? element.path : undefined);
  if (nested !== undefined) {
    const target = context.tables.get(nested);
    if (target === undefined) throw new Error(`${element.path}: no table ${nested}`);
    return [register(table, { key: element.name, element, kind: 'complex', primitive: undefined, table: target, partnerKey: undefined })];
  }
  const keys: string[] = [];
  for (const code of child.t ?? []) {
    const key = isChoice ? element.name + code[0].toUpperCase() + code.slice(1) : element.name;
    keys.push(...propsForType(context, child, element, key, code).map((prop) => register(table, prop)));
  }
  return keys;
}

function propsForType(context: Context, child: RawElement, element: ElementDef, key: string, code: string): Prop[] {
  const primitive = context.primitives.get(code);
  if (primitive !== undefined) {
    const extKey = `_${key}`;
    const value: Prop = { key, element, kind: 'primitive', primitive, table: undefined, partnerKey: child.a === 1 ? undefined : extKey };
    if (child.a === 1) return [value];
    const ext: Prop = { key: extKey, element, kind: 'primitive-ext', primitive, table: context.elementTable, partnerKey: key };
    return [value, ext];
  }
  if (code === 'Resource') return [{ key, element, kind: 'resource', primitive: undefined, table: undefined, partnerKey: undefined }];
  const type = context.types.get(code);
  if (type === undefined) throw new Error(`${element.path}: unknown type ${code}`);
  return [{ key, element, kind: 'complex', primitive: undefined, table: type.root, partnerKey: undefined }];
}

function register(table: MutableTable, prop: Prop): string {
  if (table.props.has(prop.key)) throw new Error(`${table.path}: duplicate JSON property ${prop.key}`);
  table.props.set(prop.key, prop);
  return prop.key;
}
export { type PatientCompartment, patientCompartment } from './compartment.ts';
