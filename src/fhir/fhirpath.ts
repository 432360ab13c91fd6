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
 *   any other `resolve()` yields an empty collection;
 * - expressions from clients (topic criteria) are bounded (CRITERIA_LIMITS, REQUIREMENTS D-20):
 *   size and nesting when the topic is written, time and collection sizes while they run, and
 *   their regular expressions run on RE2 (regex.ts), in linear time.
 */
import { createRequire } from 'node:module';
import type { Model, ResourceNode, UserInvocationTable } from 'fhirpath';
import { linearRegex, loadRegexEngine } from './regex.ts';
import type { FhirVersion } from './types.ts';

/** One result of an expression: the JSON value and its FHIR type (`undefined` when untyped). */
export interface TypedValue {
  value: unknown;
  type: string | undefined;
}

export type FhirPathFn = (resource: unknown) => unknown[];
export type TypedFhirPathFn = (node: unknown) => TypedValue[];

/** A node of fhirpath.js's parse tree (only what the nesting check reads). */
interface AstNode {
  type: string;
  text?: string;
  children?: AstNode[];
}

interface FhirPathModule {
  compile(
    path: string | { base: string; expression: string },
    model: Model,
    options: object,
  ): (data: unknown, env?: Record<string, unknown>, options?: object) => unknown[];
  parse(expression: string): AstNode;
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
 * Bounds on client FHIRPath (topic `fhirPathCriteria`, REQUIREMENTS D-20). Length and nesting are
 * checked when the topic is written (422 naming the element); time, collection size and string
 * length while it runs (a criterion over budget throws, and does not trigger).
 */
export const CRITERIA_LIMITS = {
  /** Characters of one expression. */
  maxLength: 1024,
  /** Per-item functions (where, select, all, exists, repeat, aggregate, sort) nested in each other's argument. */
  maxNesting: 3,
  /** Wall-clock time of one evaluation, in milliseconds (generous: a pause of the process counts too). */
  maxMs: 100,
  /** Items of any intermediate collection. */
  maxItems: 50_000,
  /** Characters of any string built by `+` or `&` (FHIR's limit on a string primitive). */
  maxStringLength: 1_048_576,
} as const;

/** Functions whose argument is evaluated once per item of their input: nesting multiplies. */
const PER_ITEM = new Set(['where', 'select', 'all', 'exists', 'repeat', 'aggregate', 'sort']);

/** The deepest nesting of per-item functions in a parse tree. */
function perItemNesting(node: AstNode): number {
  const inner = Math.max(0, ...(node.children ?? []).map(perItemNesting));
  return node.type === 'FunctionInvocation' && PER_ITEM.has(node.text ?? '') ? inner + 1 : inner;
}

type Singleton = [] | [unknown];

/** The string of a singleton input (fhirpath.js semantics: empty → empty, several → error). */
function singleString(coll: unknown[], fn: string): string | undefined {
  if (coll.length > 1) throw new Error(`${fn}() expects a single string, got ${coll.length} items`);
  return typeof coll[0] === 'string' ? coll[0] : undefined;
}

/** FHIRPath regex flags (`i`, `m`) as RE2 flags; `.` always matches newlines (single-line mode). */
function regexFlags(flags: string | undefined, extra = ''): string {
  if (flags !== undefined && !/^[im]*$/.test(flags)) throw new Error('matches/matchesFull flags must only contain i and/or m');
  return `${[...new Set(flags ?? '')].join('')}s${extra}`;
}

/**
 * Criteria run without I/O and with regular expressions on RE2 (linear time; no backreferences
 * or lookaround: those patterns throw).
 */
const CRITERIA_FUNCTIONS: UserInvocationTable = {
  ...NO_IO,
  matches: {
    fn: (coll: unknown[], regex: string, flags?: string): Singleton | boolean => {
      const s = singleString(coll, 'matches');
      return s === undefined || regex === undefined ? [] : linearRegex(regex, regexFlags(flags)).test(s);
    },
    arity: { 1: ['String'], 2: ['String', 'String'] },
  },
  matchesFull: {
    fn: (coll: unknown[], regex: string, flags?: string): Singleton | boolean => {
      const s = singleString(coll, 'matchesFull');
      return s === undefined || regex === undefined ? [] : linearRegex(`^(?:${regex})$`, regexFlags(flags)).test(s);
    },
    arity: { 1: ['String'], 2: ['String', 'String'] },
  },
  replaceMatches: {
    fn: (coll: unknown[], regex: string, substitution: string): Singleton | string => {
      const s = singleString(coll, 'replaceMatches');
      return s === undefined || regex === undefined || substitution === undefined ? [] : s.replace(linearRegex(regex, 'g'), substitution);
    },
    arity: { 2: ['String', 'String'] },
  },
};

/** Throws once an evaluation passes its deadline or builds a collection or string past the limits. */
function budget(deadline: number): (ctx: unknown, parent: unknown, result: unknown, node: AstNode) => void {
  return (_ctx, _parent, result, node) => {
    if (Array.isArray(result)) {
      if (result.length > CRITERIA_LIMITS.maxItems) throw new Error(`exceeds its budget: a collection of more than ${CRITERIA_LIMITS.maxItems} items`);
      const first: unknown = result[0];
      if (node.type === 'AdditiveExpression' && typeof first === 'string' && first.length > CRITERIA_LIMITS.maxStringLength) {
        throw new Error(`exceeds its budget: a string of more than ${CRITERIA_LIMITS.maxStringLength} characters`);
      }
    }
    if (performance.now() > deadline) throw new Error(`exceeds its budget of ${CRITERIA_LIMITS.maxMs} ms`);
  };
}

const warmed = new Set<FhirVersion>();

/**
 * fhirpath.js builds parts of its model lazily on the first evaluation in a process (about 15 ms,
 * far more on a loaded machine). A fixed, trusted expression pays that once per version, so that
 * no user criterion's time budget is spent on it and a first event is never lost to it.
 */
function warmUp(version: FhirVersion): void {
  if (warmed.has(version)) return;
  warmed.add(version);
  const { fhirpath, models } = library();
  const probe = { resourceType: 'Observation', status: 'final', subject: { reference: 'Patient/1' }, code: { coding: [{ system: 's', code: 'c' }] } };
  const warm = fhirpath.compile(rewriteResolve("%current.subject.where(resolve() is Patient).exists() and %current.status = 'final' and %current.code.coding.code.matches('c') and %previous.empty()"), models[version], {
    userInvocationTable: CRITERIA_FUNCTIONS,
    traceFn: () => undefined,
  });
  warm(probe, { current: probe, previous: [] });
}

/**
 * A SubscriptionTopic `fhirPathCriteria` (R5 subscriptiontopic.html): a boolean expression over
 * `%current` and `%previous`, evaluated with the current resource as focus. A resource that does
 * not exist (previous of a create, current of a delete) is the empty collection, so on a create
 * `%previous.empty()`, `%previous.exists().not()` and `%previous.id.empty()` all hold. True only
 * when the expression yields exactly `true`.
 *
 * Throws an Error whose message completes "the expression …" when it does not compile or breaks
 * CRITERIA_LIMITS; the returned function throws when the expression fails or exceeds its budget
 * on a resource (D-20: the caller counts that as not triggered).
 */
export function compileCriteria(expression: string, version: FhirVersion): (current: unknown, previous: unknown) => boolean {
  if (expression.length > CRITERIA_LIMITS.maxLength) throw new Error(`is longer than ${CRITERIA_LIMITS.maxLength} characters`);
  const { fhirpath, models } = library();
  const source = rewriteResolve(expression);
  let compiled: ReturnType<FhirPathModule['compile']>;
  try {
    // `trace()` goes nowhere: on the console it would print on every watched write.
    compiled = fhirpath.compile(source, models[version], { userInvocationTable: CRITERIA_FUNCTIONS, traceFn: () => undefined });
  } catch (err) {
    throw new Error(`does not compile: ${(err as Error).message.slice(0, 300)}`);
  }
  loadRegexEngine();
  const nesting = perItemNesting(fhirpath.parse(source));
  if (nesting > CRITERIA_LIMITS.maxNesting) {
    throw new Error(`nests ${nesting} per-item functions (${[...PER_ITEM].join(', ')}) in each other; at most ${CRITERIA_LIMITS.maxNesting} are allowed`);
  }
  warmUp(version);
  return (current, previous) => {
    const cur = current ?? [];
    const result = compiled(cur, { current: cur, previous: previous ?? [] }, { debugger: budget(performance.now() + CRITERIA_LIMITS.maxMs) });
    return result.length === 1 && result[0] === true;
  };
}
