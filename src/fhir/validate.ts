/**
 * Structural validation of FHIR JSON resources against the base definitions of one version.
 *
 * Checks what the JSON format and the element tables say: known element names, array vs single
 * value per cardinality, required elements, one alternative per choice element, primitive kinds and
 * formats, primitive-extension siblings (`_name`), nested resources and extensions. It does not
 * evaluate invariants (FHIRPath constraints), profiles or bindings other than required ones.
 *
 * It runs on every write, so it walks each object's keys once, looks them up in tables compiled at
 * load time, and only builds path strings when it reports an issue. Hostile input is bounded: object
 * nesting deeper than `maxDepth` stops validation with one `too-costly` issue, and at most
 * `maxIssues` issues are returned (the last one `too-costly` when the list was cut short).
 *
 * Issue codes: `structure` for JSON shape (unknown element, array vs single, null, empty object or
 * array, several choice alternatives), `required` for missing elements, `value` for bad primitive
 * values (wrong JSON kind, format, range, empty string), `too-long` for a string-valued primitive over
 * FHIR's 1,048,576-character limit (primitives.ts says which), `invalid` for a resourceType that is not a
 * concrete resource type of the version, `too-costly` for the limits above, `code-invalid` for a
 * code outside the value set of a required binding (the `terminology-*.json` tables).
 */
import type { Binding, Definitions, ElementTable, Prop } from './definitions/index.ts';
import { writtenNumber } from './json.ts';

export interface ValidationIssue {
  severity: 'error' | 'warning';
  code: 'structure' | 'required' | 'value' | 'too-long' | 'invalid' | 'too-costly' | 'code-invalid';
  /** FHIRPath-like location, e.g. `Patient.name[0].given[1]` (`Resource` when the type is unknown). */
  expression: string;
  message: string;
}

export interface ValidationOptions {
  /** Maximum object nesting (the resource itself is level 1). Default 64. */
  maxDepth?: number;
  /** Maximum number of issues returned. Default 100. */
  maxIssues?: number;
}

const DEFAULT_MAX_DEPTH = 64;
const DEFAULT_MAX_ISSUES = 100;

/** Per-call state: the issues found and the path to the value being checked, as a reusable stack. */
interface State {
  readonly defs: Definitions;
  readonly issues: ValidationIssue[];
  readonly maxDepth: number;
  readonly maxIssues: number;
  /** Path segments: element names and array indexes; only `len` entries are current. */
  readonly path: (string | number)[];
  len: number;
  stopped: boolean;
}

type JsonObject = Record<string, unknown>;

/** Validates one resource (parsed JSON) and returns its issues; an empty list means valid. */
export function validateResource(defs: Definitions, resource: unknown, options: ValidationOptions = {}): ValidationIssue[] {
  const state: State = {
    defs,
    issues: [],
    maxDepth: options.maxDepth ?? DEFAULT_MAX_DEPTH,
    maxIssues: Math.max(1, options.maxIssues ?? DEFAULT_MAX_ISSUES),
    path: [],
    len: 0,
    stopped: false,
  };
  checkResource(state, resource, 0);
  return state.issues;
}

/** Checks a value that must be a whole resource (top level, contained, Bundle.entry.resource, ...). */
function checkResource(st: State, value: unknown, depth: number): void {
  if (!isObject(value)) {
    report(st, 'structure', undefined, `A resource must be a JSON object, found ${describe(value)}`);
    return;
  }
  const type = value.resourceType;
  if (type === undefined) {
    report(st, 'required', 'resourceType', 'Missing resourceType');
    return;
  }
  const typeDef = typeof type === 'string' && st.defs.isResourceType(type) ? st.defs.types.get(type) : undefined;
  if (typeDef === undefined) {
    const shown = typeof type === 'string' ? JSON.stringify(clip(type)) : describe(type);
    report(st, 'invalid', 'resourceType', `${shown} is not a resource type of FHIR ${st.defs.version}`);
    return;
  }
  const isTop = st.len === 0;
  if (isTop) st.path[st.len++] = typeDef.name;
  checkObject(st, value, typeDef.root, depth + 1, true);
  if (isTop) st.len--;
}

/** Checks an object's properties against a table, then its required elements. */
function checkObject(st: State, obj: JsonObject, table: ElementTable, depth: number, isResource: boolean): void {
  if (depth > st.maxDepth) {
    report(st, 'too-costly', undefined, `Nesting deeper than ${st.maxDepth} levels`);
    st.stopped = true;
    return;
  }
  let empty = true;
  let choices = 0;
  for (const key in obj) {
    const value = obj[key];
    if (value === undefined) continue; // not JSON, but in-process callers build objects; JSON.stringify drops it
    empty = false;
    const prop = table.props.get(key);
    if (prop === undefined) {
      if (!isResource || key !== 'resourceType') report(st, 'structure', clip(key), `Unknown element '${clip(key)}'`);
      continue;
    }
    const bit = prop.element.choiceBit;
    if (bit !== 0 && !(prop.kind === 'primitive-ext' && obj[prop.partnerKey!] !== undefined)) {
      if ((choices & bit) !== 0) report(st, 'structure', key, `Only one alternative of ${prop.element.path} may be present`);
      choices |= bit;
    }
    checkProperty(st, obj, prop, value, depth);
    if (st.stopped) return;
  }
  if (empty) report(st, 'structure', undefined, 'Empty objects are not allowed');
  checkRequired(st, obj, table, choices);
}

function checkRequired(st: State, obj: JsonObject, table: ElementTable, choices: number): void {
  for (const { element, keys } of table.required) {
    const present = element.choiceBit !== 0 ? (choices & element.choiceBit) !== 0 : hasAnyKey(obj, keys);
    if (!present) {
      const name = element.choiceBit !== 0 ? `${element.name}[x]` : element.name;
      report(st, 'required', name, `Missing required element ${element.path} (min ${element.min})`);
    }
  }
}

function hasAnyKey(obj: JsonObject, keys: readonly string[]): boolean {
  for (const key of keys) if (obj[key] !== undefined) return true;
  return false;
}

/** Checks one property's JSON shape (array or not, per cardinality) and its value(s). */
function checkProperty(st: State, obj: JsonObject, prop: Prop, value: unknown, depth: number): void {
  st.path[st.len++] = prop.kind === 'primitive-ext' ? prop.partnerKey! : prop.key;
  const element = prop.element;
  if (!element.repeating) {
    if (Array.isArray(value)) report(st, 'structure', undefined, `${element.path} has max 1: expected a single value, not an array`);
    else checkItem(st, prop, value, depth, obj, prop.key);
  } else if (!Array.isArray(value)) {
    report(st, 'structure', undefined, `${element.path} repeats: expected an array`);
  } else {
    checkArray(st, obj, prop, value, depth);
  }
  st.len--;
}

function checkArray(st: State, obj: JsonObject, prop: Prop, items: unknown[], depth: number): void {
  const { element } = prop;
  if (items.length === 0) report(st, 'structure', undefined, 'Empty arrays are not allowed');
  if (element.max > 1 && items.length > element.max) report(st, 'structure', undefined, `At most ${element.max} items allowed`);
  if (items.length > 0 && items.length < element.min) report(st, 'required', undefined, `At least ${element.min} items required`);
  const partner = prop.partnerKey === undefined ? undefined : obj[prop.partnerKey];
  const partners = Array.isArray(partner) ? partner : undefined;
  if (prop.kind === 'primitive' && partners !== undefined && partners.length !== items.length) {
    report(st, 'structure', undefined, `'${prop.key}' and '${prop.partnerKey}' must have the same length`);
  }
  for (let i = 0; i < items.length; i++) {
    st.path[st.len++] = i;
    const item = items[i];
    if (item === null) checkNullItem(st, prop, partners, i);
    else checkItem(st, prop, item, depth, items, i);
    st.len--;
    if (st.stopped) return;
  }
}

/** `null` only pads a primitive array where the sibling array (`given` / `_given`) has an entry. */
function checkNullItem(st: State, prop: Prop, partners: unknown[] | undefined, i: number): void {
  const partnerItem = partners?.[i];
  if (prop.kind === 'primitive' && partnerItem != null) return;
  if (prop.kind === 'primitive-ext' && partnerItem !== undefined) return; // a double null is reported on the value side
  const message = prop.partnerKey === undefined ? 'null is not allowed here' : `null needs a non-null entry at the same index in '${prop.partnerKey}'`;
  report(st, 'structure', undefined, message);
}

/** An integer's JSON is digits alone: `1.0` or `1e2` is its value, but not how FHIR writes one (fhir/json.ts keeps the form). */
function checkWrittenInteger(st: State, name: string, holder: object, key: string | number): void {
  const written = writtenNumber(holder, String(key));
  if (written !== undefined) report(st, 'value', undefined, `${written} is not a valid ${name}: an integer is written as digits alone (no fraction, exponent or negative zero)`);
}

/** Checks one (non-array) value of a property: `holder[key]`. */
function checkItem(st: State, prop: Prop, value: unknown, depth: number, holder: object, key: string | number): void {
  if (value === null) {
    report(st, 'structure', undefined, 'null is not allowed here');
    return;
  }
  if (prop.kind === 'resource') {
    checkResource(st, value, depth);
    return;
  }
  if (prop.kind === 'primitive') {
    if (typeof value === 'object') {
      report(st, 'structure', undefined, `${prop.primitive!.name} must be a JSON ${prop.primitive!.json}, found ${describe(value)}`);
      return;
    }
    const problem = prop.primitive!.check(value);
    if (problem !== undefined) report(st, problem.code, undefined, problem.message);
    else if (typeof value === 'number' && prop.primitive!.name !== 'decimal') checkWrittenInteger(st, prop.primitive!.name, holder, key);
    else if (prop.element.binding !== undefined && typeof value === 'string') checkBoundCode(st, prop.element.path, prop.element.binding, value);
    return;
  }
  if (!isObject(value)) {
    report(st, 'structure', undefined, `Expected a JSON object, found ${describe(value)}`);
    return;
  }
  checkObject(st, value, prop.table!, depth + 1, false);
  if (prop.element.binding !== undefined && !st.stopped) checkBoundObject(st, prop.element.path, prop.element.binding, prop.table!.path, value);
}

/** A `code` (or other string primitive) under a required binding: one of the value set's codes. */
function checkBoundCode(st: State, element: string, binding: Binding, code: string): void {
  if (!binding.codes.has(code)) report(st, 'code-invalid', undefined, notInValueSet(JSON.stringify(clip(code)), element, binding));
}

/**
 * Coding: its system and code are in the value set. CodeableConcept: one of its codings is (the
 * others may be translations); one with text only is accepted, as it states no code at all.
 * Quantity: its unit, system and code, is in the value set. Structural problems (a code that is not
 * a string) were reported already, and are not checked again here.
 */
function checkBoundObject(st: State, element: string, binding: Binding, type: string, value: JsonObject): void {
  if (type === 'Coding' || type === 'Quantity') {
    const problem = codingProblem(binding, value);
    if (problem !== undefined) report(st, 'code-invalid', undefined, notInValueSet(problem, element, binding));
    return;
  }
  if (type !== 'CodeableConcept' || !Array.isArray(value.coding)) return;
  const codings = value.coding.filter((c): c is JsonObject => isObject(c) && c.code !== undefined);
  if (codings.length === 0 || codings.some((c) => codingProblem(binding, c) === undefined)) return;
  const problems = codings.map((c) => codingProblem(binding, c)).join(', ');
  report(st, 'code-invalid', 'coding', notInValueSet(codings.length === 1 ? problems : `none of ${problems}`, element, binding));
}

/** Why a Coding (or Quantity) is not in the value set, as `system|code`; undefined when it is, or states no code. */
function codingProblem(binding: Binding, coding: JsonObject): string | undefined {
  const { system, code } = coding;
  if (typeof code !== 'string') return undefined;
  if (typeof system === 'string' && binding.systems.get(system)?.has(code)) return undefined;
  const shown = typeof system === 'string' ? `${clip(system)}|${clip(code)}` : `${clip(code)} (no system)`;
  return JSON.stringify(shown);
}

function notInValueSet(what: string, element: string, binding: Binding): string {
  const codes = [...binding.codes];
  const allowed = codes.length <= 20 ? `: one of ${codes.join(', ')}` : ` (${codes.length} codes)`;
  return `${what} is not in the value set ${binding.valueSet}, the required binding of ${element}${allowed}`;
}

/** Records an issue at the current path (plus `extra`), enforcing the issue cap. */
function report(st: State, code: ValidationIssue['code'], extra: string | undefined, message: string): void {
  if (st.stopped) return;
  if (st.issues.length >= st.maxIssues - 1) {
    const message = `Too many issues: validation stopped after ${st.issues.length}`;
    st.issues.push({ severity: 'error', code: 'too-costly', expression: formatPath(st, extra), message });
    st.stopped = true;
    return;
  }
  st.issues.push({ severity: 'error', code, expression: formatPath(st, extra), message });
}

function formatPath(st: State, extra: string | undefined): string {
  let out = st.len === 0 ? 'Resource' : '';
  for (let i = 0; i < st.len; i++) {
    const segment = st.path[i];
    out += typeof segment === 'number' ? `[${segment}]` : i === 0 ? segment : `.${segment}`;
  }
  return extra === undefined ? out : `${out}.${extra}`;
}

/** Shortens input-controlled text (unknown keys) so a huge key cannot bloat the outcome. */
function clip(text: string): string {
  return text.length > 100 ? `${text.slice(0, 97)}...` : text;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
