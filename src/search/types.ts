/**
 * The data that connects the stages of FHIR search. One definition of each search parameter
 * (parameters.ts) yields index rows for a resource (extract.ts); the same rows are stored for the
 * store's search (store/*) and compared in memory by the matcher (match.ts). Parsing (parse.ts)
 * turns a query string into a SearchRequest that both evaluate. Keeping both evaluators on the
 * same rows and the same normalisation is what makes them agree.
 */

export type ParamType = 'string' | 'token' | 'reference' | 'date' | 'number' | 'quantity' | 'uri' | 'composite' | 'special';

/** One search parameter as it applies to one resource type. */
export interface SearchParam {
  code: string;
  type: ParamType;
  url: string;
  /** Resource types a reference parameter may point to. */
  targets: readonly string[];
  /**
   * A reference parameter whose elements include canonicals (`QuestionnaireResponse.questionnaire`):
   * the types its canonicals can name, its targets (all types when it declares none) that have a
   * `url` parameter on their own `url` element. Chains, `_has`, `_include` and `_revinclude` also
   * follow its canonical URLs to the resources of these types whose `url` (and `version`, when
   * the reference names one) they give.
   */
  canonical?: readonly string[];
  /** For composite parameters: the components, each resolved to its own parameter's type. */
  components?: readonly { param: SearchParam; expression: string }[];
}

// ---------------------------------------------------------------------------------------------
// Index rows: the values of a resource for its search parameters, normalised once at write time.
// `code` is the parameter code. `grp` ties the component rows of one composite value together:
// for composite parameter `c`, component i is stored under code `c#i` with the same grp (numbered
// per resource from 1; absent on rows outside composites). Identifier :of-type rows are token rows
// under code `${code}:of-type` with system = `typeSystem|typeCode` and text null.
// ---------------------------------------------------------------------------------------------

export interface StringRow {
  code: string;
  grp?: number;
  /** Lower case, accents removed, whitespace collapsed: what default and :contains compare. */
  norm: string;
  /** The value as written: what :exact compares. */
  exact: string;
}

export interface TokenRow {
  code: string;
  grp?: number;
  /** Coding.system / Identifier.system; null when the value has none (and for ContactPoint). */
  system: string | null;
  /** Coding.code / Identifier.value / code / boolean ('true'|'false') / ContactPoint.value; null for text-only rows. */
  value: string | null;
  /** Normalised (as StringRow.norm) display or text, for :text; null when none. */
  text: string | null;
}

export interface ReferenceRow {
  code: string;
  grp?: number;
  /** Type and id when the reference is relative or absolute into this server's base (`Patient/1`). */
  targetType: string | null;
  targetId: string | null;
  /**
   * Absolute URLs outside this server's base and canonicals (without |version); null for local
   * references, including absolute URLs into the base, which become targetType/targetId.
   */
  url: string | null;
  /** The |version of a canonical, or the _history version of a literal reference. */
  version: string | null;
  /** Reference.identifier, for :identifier. */
  identifierSystem: string | null;
  identifierValue: string | null;
}

/** Dates as ranges of epoch milliseconds, both ends inclusive (±Infinity for open periods). */
export interface DateRow {
  code: string;
  grp?: number;
  lo: number;
  hi: number;
}

export interface NumberRow {
  code: string;
  grp?: number;
  value: number;
}

export interface QuantityRow {
  code: string;
  grp?: number;
  value: number;
  system: string | null;
  /** Quantity.code (the coded unit, e.g. UCUM `mg`). */
  unitCode: string | null;
  /** Quantity.unit (human text). */
  unit: string | null;
}

/** A uri/url/canonical as written; a canonical's |version stays part of the value. */
export interface UriRow {
  code: string;
  grp?: number;
  value: string;
}

/** Every index row of one resource version, by kind. Meta parameters (_id, _tag, …) included. */
export interface IndexRows {
  string: StringRow[];
  token: TokenRow[];
  reference: ReferenceRow[];
  date: DateRow[];
  number: NumberRow[];
  quantity: QuantityRow[];
  uri: UriRow[];
}

// ---------------------------------------------------------------------------------------------
// Search requests
// ---------------------------------------------------------------------------------------------

export type Prefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';

/**
 * One value of a parameter, parsed according to the parameter's type. String values are
 * normalised (normalize.ts) except under :exact; token :text values arrive as `string` values.
 */
export type SearchValue =
  | { kind: 'string'; value: string }
  /**
   * `orNoSystem`: `system|code` where a `code` element's binding gives that code that system: rows
   * without a system match too. `codesOfSystem`: `system|` where bindings give these codes that
   * system: rows without a system and with one of them match too.
   */
  | { kind: 'token'; system?: string | null; value?: string; typeSystem?: string; typeCode?: string; orNoSystem?: true; codesOfSystem?: readonly string[] }
  | { kind: 'reference'; targetType?: string; id?: string; url?: string; version?: string; identifierSystem?: string | null; identifierValue?: string }
  | { kind: 'date'; prefix: Prefix; lo: number; hi: number }
  /** Numbers and quantities: the implicit precision range is lo <= x < hi; dates: lo..hi inclusive. */
  | { kind: 'number'; prefix: Prefix; value: number; lo: number; hi: number }
  | { kind: 'quantity'; prefix: Prefix; value: number; lo: number; hi: number; system?: string | null; unit?: string }
  | { kind: 'uri'; value: string }
  | { kind: 'composite'; parts: SearchValue[] }
  | { kind: 'missing'; missing: boolean };

/**
 * One parameter test: `param` with modifier, values ORed (comma). A SearchRequest's conditions
 * are ANDed (repeated parameters). Chains and _has nest a request about another type.
 */
export type Condition =
  | { kind: 'param'; param: SearchParam; modifier?: string; values: SearchValue[] }
  /** subject:Patient.name=x: resources whose `param` references a `targetType` matching `inner`. */
  | { kind: 'chain'; param: SearchParam; targetTypes: readonly string[]; inner: Condition }
  /** _has:Observation:subject:code=x: resources referenced by `sourceType`.`param` of a source matching `inner`. */
  | { kind: 'has'; sourceType: string; param: SearchParam; inner: Condition };

export interface SortKey {
  param: SearchParam;
  descending: boolean;
}

export interface Include {
  /** Resource type the include starts from (`Observation` in `Observation:subject`). */
  sourceType: string;
  /** Reference parameter followed; undefined for `*`. */
  param?: SearchParam;
  /** Restrict to this target type (`Observation:subject:Patient`). */
  targetType?: string;
  iterate: boolean;
}

export interface SearchRequest {
  /** Resource types searched: one for type-level search, several (or all) for system search with _type. */
  types: readonly string[];
  conditions: Condition[];
  sort: SortKey[];
  count: number;
  include: Include[];
  revinclude: Include[];
  total: 'none' | 'estimate' | 'accurate';
  summary?: 'true' | 'count' | 'text' | 'data' | 'false';
  elements?: string[];
  /** Parameters that were not understood (ignored unless handling=strict), for the OperationOutcome. */
  ignored: { name: string; reason: string }[];
}

export function emptyIndexRows(): IndexRows {
  return { string: [], token: [], reference: [], date: [], number: [], quantity: [], uri: [] };
}
