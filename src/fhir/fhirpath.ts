/**
 * The one door to the `fhirpath` package (fhirpath.js). Search extraction compiles the common
 * shapes of SearchParameter expressions into plain-JS walkers (search/extract/plan.ts) and
 * comes here only for what those walkers cannot express, so this module stays small:
 *
 * - the package (with UCUM and its models, ~75 ms to load) is required lazily on the first
 *   compile, so a server whose parameters never need it never pays for it;
 * - compiled expressions are cached per (version, base, expression);
 * - results keep their FHIR type: fhirpath.js runs with `resolveInternalTypes: false` and
 *   each ResourceNode's `fhirNodeDataType` names the type (choice elements resolved);
 * - `resolve()` never does I/O. fhirpath.js only resolves with network access (and refuses
 *   synchronously), so `resolve() is X` is rewritten into a test of the reference string, and
 *   any other `resolve()` yields an empty collection.
 */
import { createRequire } from 'node:module';
import type { Model, ResourceNode, UserInvocationTable } from 'fhirpath';
import type { FhirVersion } from './types.ts';

/** One result of an expression: the JSON value and its FHIR type (`undefined` when untyped). */
export interface TypedValue {
  value: unknown;
  type: string | undefined;
}

export type FhirPathFn = (resource: unknown) => unknown[];
export type TypedFhirPathFn = (node: unknown) => TypedValue[];

interface FhirPathModule {
  compile(
    path: string | { base: string; expression: string },
    model: Model,
    options: object,
  ): (data: unknown, env?: Record<string, unknown>) => unknown[];
}

let loaded: { fhirpath: FhirPathModule; models: Record<FhirVersion, Model> } | undefined;

/** Loads fhirpath.js and the models on first use; R4B uses the R4 model (no R4B model exists). */
function library(): NonNullable<typeof loaded> {
  if (loaded === undefined) {
    const require = createRequire(import.meta.url);
    const r4 = require('fhirpath/fhir-context/r4') as Model;
    loaded = {
      fhirpath: require('fhirpath') as FhirPathModule,
      models: { R4: r4, R4B: r4, R5: require('fhirpath/fhir-context/r5') as Model },
    };
  }
  return loaded;
}

/** `resolve()` outside `resolve() is X` (rewritten below): an empty collection, never a fetch. */
const NO_IO: UserInvocationTable = { resolve: { fn: () => [], arity: { 0: [] } } };

const RESOLVE_IS = /resolve\(\)\s+is\s+([A-Za-z]+)/g;

/**
 * Rewrites `resolve() is X` (only valid with a Reference focus) into a test of the reference
 * itself: a literal reference to type X (relative or absolute, optionally versioned), or a
 * reference without a literal whose `type` is X.
 */
export function rewriteResolve(expression: string): string {
  return expression.replace(
    RESOLVE_IS,
    (_m, type: string) => `(reference.matches('^(.*/)?${type}/[^/]+(/_history/[^/]+)?$') or (reference.empty() and type = '${type}'))`,
  );
}

const cache = new Map<string, TypedFhirPathFn>();

/**
 * Compiles an expression for a version into a function returning typed results. With `base`
 * (a definition path such as `Observation.component`), the function takes a node found at
 * that path rather than a whole resource, as composite components need.
 */
export function compileTypedFhirPath(expression: string, version: FhirVersion, base?: string): TypedFhirPathFn {
  const key = `${version}\u0000${base ?? ''}\u0000${expression}`;
  let fn = cache.get(key);
  if (fn === undefined) {
    const { fhirpath, models } = library();
    const source = rewriteResolve(expression);
    const compiled = fhirpath.compile(base === undefined ? source : { base, expression: source }, models[version], {
      resolveInternalTypes: false,
      userInvocationTable: NO_IO,
    });
    fn = (node) => compiled(node).map(toTyped);
    cache.set(key, fn);
  }
  return fn;
}

/** Compiles an expression for a version (cached); results are plain JSON values. */
export function compileFhirPath(expression: string, version: FhirVersion): FhirPathFn {
  const typed = compileTypedFhirPath(expression, version);
  return (resource) => typed(resource).map((r) => r.value);
}

function isResourceNode(v: unknown): v is ResourceNode {
  return typeof v === 'object' && v !== null && 'fhirNodeDataType' in v && 'data' in v;
}

/** Unwraps a ResourceNode (or a bare system value) into JSON plus its FHIR type name. */
function toTyped(item: unknown): TypedValue {
  if (!isResourceNode(item)) return { value: plain(item), type: systemType(item) };
  const type = item.fhirNodeDataType ?? undefined;
  return { value: plain(item.data), type: type?.startsWith('System.') ? systemType(item.data) : type };
}

/** fhirpath.js wraps decimals and dates in FP_* objects; JSON is what the converters read. */
function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) !== Object.prototype) {
    const json = (v as { toJSON?: () => unknown }).toJSON;
    if (typeof json === 'function') return json.call(v);
  }
  return v;
}

function systemType(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string':
      return 'string';
    case 'boolean':
      return 'boolean';
    case 'number':
      return 'decimal';
    default:
      return undefined;
  }
}

/**
 * A SubscriptionTopic `fhirPathCriteria` (R5 subscriptiontopic.html): a boolean expression over
 * `%current` and `%previous`, evaluated with the current resource as focus. A resource that does
 * not exist (previous of a create, current of a delete) is the empty collection, so on a create
 * `%previous.empty()`, `%previous.exists().not()` and `%previous.id.empty()` all hold. True only
 * when the expression yields exactly `true`.
 */
export function compileCriteria(expression: string, version: FhirVersion): (current: unknown, previous: unknown) => boolean {
  const { fhirpath, models } = library();
  const compiled = fhirpath.compile(rewriteResolve(expression), models[version], { userInvocationTable: NO_IO });
  return (current, previous) => {
    const cur = current ?? [];
    const result = compiled(cur, { current: cur, previous: previous ?? [] });
    return result.length === 1 && result[0] === true;
  };
}
