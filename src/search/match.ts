/**
 * In-memory evaluation of a search expression against one resource, for subscription topics
 * (`Encounter?status=finished&class=IMP`). The expression is parsed and compiled once; each call
 * only extracts the index rows of the parameters used and runs the compiled tests, which apply
 * the comparisons of compare.ts. The store's search evaluates the same SearchRequest in SQL.
 *
 * Set-level semantics (per condition, over the rows of the parameter's code):
 * - values are ORed: the condition holds when some row matches some value;
 * - conditions are ANDed;
 * - `:of-type` reads the `<code>:of-type` rows (see compare.ts ofTypeMatches);
 * - `:not` holds when NO row matches any of the values (so resources without the element match);
 * - `:missing=true` holds when there is no row, `:missing=false` when there is at least one;
 * - composite: some group `grp` has, for every component i, a row `code#i` in that group that
 *   matches part i of the value.
 */
import { badRequest } from '../fhir/errors.ts';
import type { Resource } from '../fhir/types.ts';
import { ofTypeCode, rowTest, type AnyRow } from './compare.ts';
import { extractIndex } from './extract.ts';
import type { SearchRegistry } from './parameters.ts';
import { parseSearch } from './parse.ts';
import type { Condition, IndexRows, ParamType, SearchParam, SearchValue } from './types.ts';

export interface Matcher {
  /**
   * True when `resource` (of the matcher's type) satisfies every condition of the expression.
   * `memo`, shared by the matchers that test one resource (the subscriptions a change reaches),
   * keeps the rows each set of parameters extracts, so that a hundred matchers on `identifier`
   * extract them once; it must not outlive the resource's current content.
   */
  matches(resource: Resource, memo?: RowsMemo): boolean;
  /** The parameters the expression uses: the only ones extracted per call. */
  readonly params: SearchParam[];
}

export interface MatcherOptions {
  /** Unknown parameters are a 400 (default true: a criterion must not silently widen); unknown modifiers always are. */
  strict?: boolean;
  /** This server's base URL, so absolute references into it compare as Type/id. */
  baseUrl?: string;
  /** The server's clock (epoch ms), for `ap` on dates. */
  now: () => number;
}

/** Index rows of one resource by the parameters extracted (see Matcher.matches). */
export type RowsMemo = Map<string, IndexRows>;

type ParamCondition = Extract<Condition, { kind: 'param' }>;
type Test = (rows: IndexRows, now: number) => boolean;

const ROW_KIND: Record<Exclude<ParamType, 'composite' | 'special'>, keyof IndexRows> = {
  string: 'string',
  token: 'token',
  reference: 'reference',
  date: 'date',
  number: 'number',
  quantity: 'quantity',
  uri: 'uri',
};

/**
 * Compiles `query` (`Encounter?status=finished` or `status=finished`) for resources of `type`.
 * Result parameters (_sort, _count, _include…) are accepted and ignored. Chains and `_has` need
 * other resources, so they are refused with a 400, as is a type prefix other than `type`.
 */
export function compileMatcher(registry: SearchRegistry, type: string, query: string | URLSearchParams, options: MatcherOptions): Matcher {
  const params = toSearchParams(type, query);
  refuseCrossResource(params);
  const req = parseSearch(registry, [type], params, { strict: options.strict ?? true, defaultCount: 0, maxCount: 0, baseUrl: options.baseUrl });
  const conditions = req.conditions.map((c) => c as ParamCondition);
  const used = [...new Set(conditions.map((c) => c.param))];
  const tests = conditions.map(compileCondition);
  const clock = options.now;
  const only = { only: used, baseUrl: options.baseUrl };
  const memoKey = `${type}|${options.baseUrl ?? ''}|${used.map((p) => p.code).join(',')}`;
  return {
    params: used,
    matches(resource: Resource, memo?: RowsMemo): boolean {
      if (resource.resourceType !== type) return false;
      if (tests.length === 0) return true;
      let rows = memo?.get(memoKey);
      if (!rows) {
        rows = extractIndex(registry, resource, only);
        memo?.set(memoKey, rows);
      }
      const now = clock();
      for (const test of tests) if (!test(rows, now)) return false;
      return true;
    },
  };
}

function toSearchParams(type: string, query: string | URLSearchParams): URLSearchParams {
  if (typeof query !== 'string') return query;
  if (/^[A-Z][A-Za-z]+$/.test(query)) return withType(type, query, '');
  const q = query.indexOf('?');
  const prefixed = q >= 0 && !query.slice(0, q).includes('=');
  return prefixed ? withType(type, query.slice(0, q), query.slice(q + 1)) : new URLSearchParams(query);
}

/** `Encounter?…`, `/Encounter?…` or `[base]/Encounter?…`: the last path segment must be `type`. */
function withType(type: string, prefix: string, rest: string): URLSearchParams {
  const named = prefix.slice(prefix.lastIndexOf('/') + 1);
  if (named !== '' && named !== type) throw badRequest(`Criteria for ${named} cannot apply to ${type}`);
  return new URLSearchParams(rest);
}

function refuseCrossResource(params: URLSearchParams): void {
  for (const name of params.keys()) {
    if (name.startsWith('_has:') || name.includes('.')) {
      throw badRequest(`'${name}' needs other resources (chain or _has) and cannot be evaluated against a single resource`, [name]);
    }
  }
}

/** One condition into a test over the rows (the set-level semantics in the header). */
function compileCondition(condition: ParamCondition): Test {
  const { param, modifier, values } = condition;
  if (modifier === 'missing') return missingTest(param, values);
  if (param.type === 'composite') return compositeTest(param, values);
  const kind = rowKind(param.type);
  const code = modifier === 'of-type' ? ofTypeCode(param.code) : param.code;
  const tests = values.map((v) => rowTest(param.type, v, modifier));
  const any: Test = (rows, now) => someRow(rows[kind], code, (row) => tests.some((t) => t(row, now)));
  return modifier === 'not' ? (rows, now) => !any(rows, now) : any;
}

function rowKind(type: ParamType): keyof IndexRows {
  if (type === 'composite' || type === 'special') throw new Error(`No rows of their own for ${type} parameters`);
  return ROW_KIND[type];
}

function someRow(rows: readonly AnyRow[], code: string, test: (row: AnyRow) => boolean): boolean {
  for (const row of rows) if (row.code === code && test(row)) return true;
  return false;
}

/** Composite parameters are present when their first component is. */
function missingTest(param: SearchParam, values: SearchValue[]): Test {
  const composite = param.type === 'composite' && param.components !== undefined && param.components.length > 0;
  const kind = rowKind(composite ? param.components![0].param.type : param.type);
  const code = composite ? `${param.code}#0` : param.code;
  const wanted = values.map((v) => v.kind === 'missing' && v.missing);
  return (rows) => {
    const present = someRow(rows[kind], code, () => true);
    return wanted.some((missing) => missing !== present);
  };
}

/** Some group (one focus element: the Observation, one of its components…) matches every part. */
function compositeTest(param: SearchParam, values: SearchValue[]): Test {
  const components = param.components ?? [];
  const kinds = components.map((c) => rowKind(c.param.type));
  const codes = components.map((_, i) => `${param.code}#${i}`);
  const compiled = values.map((v) => (v.kind === 'composite' ? v.parts.map((part, i) => rowTest(components[i].param.type, part, undefined)) : []));
  return (rows, now) =>
    compiled.some((parts) =>
      someRow(rows[kinds[0]], codes[0], (first) => {
        if (!parts[0](first, now)) return false;
        for (let i = 1; i < parts.length; i++) {
          if (!someRow(rows[kinds[i]], codes[i], (row) => row.grp === first.grp && parts[i](row, now))) return false;
        }
        return true;
      }),
    );
}
