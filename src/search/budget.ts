/**
 * How much work one search, or one resource's index, may ask for. Every search (REST, conditional
 * criteria, subscription topics and filters) is parsed by parse.ts, which checks the query against
 * SEARCH_BUDGET while reading it, before any SQL is built or any matcher compiled; extraction
 * stops a resource at MAX_INDEX_ROWS before it is written. Past a limit the answer is a 4xx
 * `too-costly` naming the parameter, never a 500 from the database or a stack overflow.
 *
 * The limits are generous for real clients (an `_id` list of a few pages of results, a few chained
 * levels) and keep the worst legal query small for SQLite, whose planning time grows with the square
 * of the OR terms (1,000 token values take 0.1 s to plan, 2,000 already 0.4 s; ranges and chains
 * cost more), and whose expression depth and parser stack a deep query would overflow.
 */
import { FhirError } from '../fhir/errors.ts';

export const SEARCH_BUDGET = {
  /**
   * OR values of all parameters of one search together (a single `_id=a,b,c,…` list included).
   * A value of a chained parameter counts double per link: SQLite plans each link's subquery twice.
   */
  values: 500,
  /** Query parameters of one search: conditions (ANDed, ignored ones included) and result parameters. */
  parameters: 50,
  /** Chain links in one parameter (`subject:Patient.organization.partof.name` has 3). */
  chainDepth: 4,
  /** Nested `_has` in one parameter. */
  hasDepth: 3,
  /** `_sort` keys. */
  sortKeys: 5,
  /** `_include` and `_revinclude` parameters together (`:iterate` ones included). */
  includes: 10,
} as const;

/**
 * Search index rows of one resource. The largest spec example (R4 ValueSet-c80-doc-typecodes)
 * produces 6,414; a resource past this is refused before it is indexed.
 */
export const MAX_INDEX_ROWS = 20_000;

/** The 400 for a search over budget; `name` is the parameter as the client wrote it. */
export function overBudget(name: string, diagnostics: string): FhirError {
  return new FhirError(400, 'too-costly', diagnostics, [shortName(name)]);
}

/** A parameter name for messages: a name can be as long as the body. */
export function shortName(name: string): string {
  return name.length > 200 ? `${name.slice(0, 200)}…` : name;
}
