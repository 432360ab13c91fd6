import { apDateTolerance } from '../search/compare.ts';
import type { Condition, IndexRows, SearchParam, SearchValue } from '../search/types.ts';
import { type DateBounds, type LoWindow, boundKey, conditionWindow, intersect } from './date-bounds.ts';

/**
 * FHIR search conditions as SQL over the index tables (see sqlite/migrations.ts), shared by every
 * SQL store. The row predicates here are the SQL twin of search/compare.ts: the shared case table
 * (search/cases.ts) runs against both, so they cannot drift apart.
 *
 * Placeholders are `?`; a dialect converts them if it must. `r` is the alias of the `resources`
 * row being tested; nested conditions (chains, _has) get fresh aliases.
 */
export interface Dialect {
  /** SQL true when `haystack` contains `needle` (both SQL expressions). */
  contains(haystack: string, needle: string): string;
  /**
   * Written before a table alias whose column must not drive an index lookup (SQLite: `+`, see
   * `exists` below and search-page.ts); PostgreSQL's planner needs no such hint (and has no
   * unary plus on text). Default `+`.
   */
  unindexed?: string;
  /** The last character of a text expression (SQLite: `substr(x, -1)`, the default). */
  lastChar?(text: string): string;
  /**
   * Set when the value indexes hold only the first `keyChars` characters of the text columns a
   * search looks up (`substr(col, 1, keyChars)`): PostgreSQL, whose B-tree rows hold at most about
   * 2.7 kB, while a FHIR string may have a million characters. Comparisons then name that prefix
   * (which the index serves) and the whole value (which decides). Unset: the whole value is indexed.
   */
  keyChars?: number;
}

/** The SQLite spelling, for whatever a dialect leaves out. */
export const unindexedOf = (d: Dialect): string => d.unindexed ?? '+';
const lastCharOf = (d: Dialect, text: string): string => (d.lastChar ? d.lastChar(text) : `substr(${text}, -1)`);


export interface Sql {
  sql: string;
  args: unknown[];
}

/** Parameters answered from the `resources` table itself (ownColumn), so not stored as index rows (nor date bounds). */
export const OWN_COLUMNS: ReadonlySet<string> = new Set(['_id', '_lastUpdated']);

/**
 * The index table of each kind of index row (search/types.ts), the one list every SQL store and
 * query uses. (sqlite/migrations.ts creates them in a migration that must not change; a test
 * checks that the names agree.)
 */
export const INDEX_TABLE: Readonly<Record<keyof IndexRows, string>> = {
  string: 'sp_string',
  token: 'sp_token',
  reference: 'sp_reference',
  date: 'sp_date',
  number: 'sp_number',
  quantity: 'sp_quantity',
  uri: 'sp_uri',
};

/** The table of a search parameter type (every type but composite and special has its row kind). */
const tableOf = (type: SearchParam['type']): string => INDEX_TABLE[type as keyof IndexRows];

/** A FROM clause, given the index hint to put after each table alias. */
type From = (hint: string) => string;

/** Where a condition applies: the alias, its possible types, and whether it only probes. */
interface At {
  r: string;
  types: readonly string[];
  probe: boolean;
}

/** Upper bound of every string that starts with a prefix (BINARY collation). */
const AFTER_PREFIX = '\u{10FFFF}';

/**
 * The first (most selective) condition of a search is an uncorrelated `IN` subquery over a value
 * index: SQLite looks up the matching ids there and probes `resources` by primary key, instead of
 * testing every resource of the type. The other conditions are correlated EXISTS probes on the
 * index tables' owner-clustered primary keys, one cheap lookup per candidate. `types` are the
 * resource types the alias `r` can have (one for a type-level search, several for system search).
 */
export class ConditionCompiler {
  private aliases = 0;
  /**
   * `now`: epoch ms against which `ap` on dates is evaluated (the store's clock). `bounds`: how far
   * the date parameters' values reach (date-bounds.ts); without them no date condition is narrowed.
   */
  constructor(
    private readonly dialect: Dialect,
    private readonly fv: string,
    private readonly now: number,
    private readonly bounds: DateBounds = new Map(),
  ) {}

  /** Probe (correlated) rather than drive (uncorrelated): set per condition by the caller. */
  private correlated = false;

  /** The condition as a probe of the already-selected resource `r` (see the class comment). */
  probe(c: Condition, r: string, types: readonly string[], args: unknown[]): string {
    this.correlated = true;
    try {
      return this.condition(c, r, types, args);
    } finally {
      this.correlated = false;
    }
  }

  /** SQL true when the resource aliased `r` (of one of `types`) satisfies the condition. */
  condition(c: Condition, r: string, types: readonly string[], args: unknown[]): string {
    // The probe flag applies to this condition only, never to the conditions nested in it.
    const probe = this.correlated;
    this.correlated = false;
    const at: At = { r, types, probe };
    if (c.kind === 'chain') return this.chain(c, at, args);
    if (c.kind === 'has') {
      const byId = this.has(c, at, args);
      const byUrl = this.hasCanonical(c, at, args);
      return byUrl === undefined ? byId : `(${byId} OR ${byUrl})`;
    }
    const missing = c.values.find((v) => v.kind === 'missing');
    if (OWN_COLUMNS.has(c.param.code)) return ownColumn(c, r, args, missing !== undefined, this.now);
    if (missing && missing.kind === 'missing') return this.missing(c.param, at, missing.missing, args);
    if (c.modifier === 'not') return `NOT ${this.exists(c.param, undefined, c.values, at, args)}`;
    return this.exists(c.param, c.modifier, c.values, at, args);
  }

  private alias(): string {
    return `x${++this.aliases}`;
  }

  /** `r` is among the (type, id) pairs the subquery selects; `where` is its filter on alias t. */
  private member(at: At, t: string, fromClause: From, where: string, args: unknown[], whereArgs: unknown[]): string {
    const { r, types } = at;
    if (at.probe) {
      args.push(...whereArgs);
      const from = fromClause('');
      return `EXISTS (SELECT 1 FROM ${from} WHERE ${t}.fv = ${r}.fv AND ${t}.type = ${r}.type AND ${t}.id = ${r}.id AND ${where})`;
    }
    args.push(this.fv, ...types, ...whereArgs);
    const from = fromClause('');
    const typeList = types.map(() => '?').join(', ');
    const scope = `${t}.fv = ? AND ${t}.type IN (${typeList})`;
    if (types.length === 1) return `${r}.id IN (SELECT ${t}.id FROM ${from} WHERE ${scope} AND ${where})`;
    return `(${r}.type, ${r}.id) IN (SELECT ${t}.type, ${t}.id FROM ${from} WHERE ${scope} AND ${where})`;
  }

  private missing(param: SearchParam, at: At, missing: boolean, args: unknown[]): string {
    const code = param.type === 'composite' ? `${param.code}#0` : param.code;
    const tableType = param.type === 'composite' ? param.components![0]!.param.type : param.type;
    const t = this.alias();
    const sql = this.member(at, t, (hint) => `${tableOf(tableType)} ${t}${hint}`, `${t}.code = ?`, args, [code]);
    return missing ? `NOT ${sql}` : sql;
  }

  /** Some row of `param` matches one of the values (ORed). */
  private exists(param: SearchParam, modifier: string | undefined, values: SearchValue[], at: At, args: unknown[]): string {
    if (param.type === 'composite') return this.composite(param, values, at, args);
    if (param.type === 'date' && !modifier) return this.dateRow(param, [values], at.r, at.types, args, at.probe);
    const t = this.alias();
    const code = modifier === 'of-type' ? `${param.code}:of-type` : param.code;
    const whereArgs: unknown[] = [code];
    // In a probe, `+col` keeps SQLite from using the value index for the row test, so it walks
    // the owner-clustered primary key (fv, type, id, code) instead of scanning a range per candidate.
    const col = at.probe ? `${unindexedOf(this.dialect)}${t}` : t;
    const ors = values.map((v) => `(${this.row(col, v, modifier, whereArgs, param.type)})`);
    return this.member(at, t, (hint) => `${tableOf(param.type)} ${t}${hint}`, `${t}.code = ? AND ${anyOf(ors)}`, args, whereArgs);
  }

  /**
   * Conditions on a date parameter that some one row must satisfy together: one condition, or
   * several on a parameter no resource of the type holds twice (date-bounds.ts). `lists`: each
   * condition's values (ORed within, the conditions ANDed).
   */
  dateRow(param: SearchParam, lists: SearchValue[][], r: string, types: readonly string[], args: unknown[], probe: boolean): string {
    const at: At = { r, types, probe };
    const t = this.alias();
    const whereArgs: unknown[] = [param.code];
    const col = at.probe ? `${unindexedOf(this.dialect)}${t}` : t;
    const window = this.loWindow(t, at, param, lists, whereArgs);
    const ands = lists.map((values) => anyOf(values.map((v) => `(${this.row(col, v, undefined, whereArgs, param.type)})`)));
    return this.member(at, t, (hint) => `${tableOf(param.type)} ${t}${hint}`, `${t}.code = ? AND ${window}${ands.join(' AND ')}`, args, whereArgs);
  }

  /**
   * `t.lo` within the window that the conditions' values (`lists`, ANDed on one row) imply when
   * the parameter's values span at most its bound: a range of the (lo, hi) index to seek. Empty
   * when nothing is known (a probe looks rows up by owner, a system search spans types).
   */
  private loWindow(t: string, at: At, param: SearchParam, lists: SearchValue[][], whereArgs: unknown[]): string {
    if (at.probe || at.types.length !== 1) return '';
    const span = this.bounds.get(boundKey(at.types[0]!, param.code))?.span;
    if (span === undefined || !Number.isFinite(span)) return '';
    let window: LoWindow | undefined;
    for (const values of lists) window = intersect(window, conditionWindow(values, span, this.now));
    if (!window) return '';
    let sql = '';
    if (window.from !== undefined) {
      whereArgs.push(window.from);
      sql += `${t}.lo >= ? AND `;
    }
    if (window.to !== undefined) {
      whereArgs.push(window.to);
      sql += `${t}.lo <= ? AND `;
    }
    return sql;
  }

  private composite(param: SearchParam, values: SearchValue[], at: At, args: unknown[]): string {
    const comps = param.components!;
    const ors = values.map((v) => {
      if (v.kind !== 'composite') return 'FALSE';
      const aliases = comps.map(() => this.alias());
      const a0 = aliases[0]!;
      const from: From = (hint) =>
        comps
          .map((c, i) =>
            i === 0
              ? `${tableOf(c.param.type)} ${a0}${hint}`
              : `JOIN ${tableOf(c.param.type)} ${aliases[i]} ON ${aliases[i]}.fv = ${a0}.fv AND ${aliases[i]}.type = ${a0}.type AND ${aliases[i]}.id = ${a0}.id AND ${aliases[i]}.grp = ${a0}.grp`,
          )
          .join(' ');
      const whereArgs: unknown[] = [];
      const where = comps.map((c, i) => {
        whereArgs.push(`${param.code}#${i}`);
        const col = at.probe ? `${unindexedOf(this.dialect)}${aliases[i]}` : aliases[i]!;
        return `${aliases[i]}.code = ? AND (${this.row(col, v.parts[i]!, undefined, whereArgs, c.param.type)})`;
      });
      return this.member(at, a0, from, where.join(' AND '), args, whereArgs);
    });
    return anyOf(ors);
  }

  /**
   * subject:Patient.name=x: a reference of `param` points at a live target satisfying `inner`; for
   * a parameter that holds canonicals, also a canonical URL that names one.
   */
  private chain(c: Extract<Condition, { kind: 'chain' }>, at: At, args: unknown[]): string {
    const x = this.alias();
    const t = this.alias();
    const targets = c.targetTypes;
    const whereArgs: unknown[] = [c.param.code, ...targets, this.fv, ...targets];
    const inner = this.condition(c.inner, t, targets, whereArgs);
    const list = targets.map(() => '?').join(', ');
    const where = `${x}.code = ? AND ${x}.target_type IN (${list}) AND (${x}.target_type, ${x}.target_id) IN (
      SELECT ${t}.type, ${t}.id FROM resources ${t} WHERE ${t}.fv = ? AND ${t}.type IN (${list}) AND ${t}.deleted = 0 AND ${inner})`;
    const byId = this.member(at, x, (hint) => `${INDEX_TABLE.reference} ${x}${hint}`, where, args, whereArgs);
    const named = targets.filter((type) => c.param.canonical?.includes(type));
    if (named.length === 0) return byId;
    // By URL: a canonical reference row names a live resource of `named` (namesUrl) satisfying `inner`.
    const cx = this.alias();
    const u = this.alias();
    const ct = this.alias();
    const byUrlArgs: unknown[] = [c.param.code, this.fv, ...named];
    const byUrlInner = this.condition(c.inner, ct, named, byUrlArgs);
    const byUrl = `${cx}.code = ? AND ${cx}.target_type IS NULL AND ${cx}.url IS NOT NULL AND EXISTS (
      SELECT 1 FROM ${INDEX_TABLE.uri} ${u} JOIN resources ${ct} ON ${ct}.fv = ${u}.fv AND ${ct}.type = ${u}.type AND ${ct}.id = ${u}.id
      WHERE ${u}.fv = ? AND ${u}.type IN (${named.map(() => '?').join(', ')}) AND ${namesUrl(cx, u, this.dialect)} AND ${ct}.deleted = 0 AND ${byUrlInner})`;
    return `(${byId} OR ${this.member(at, cx, (hint) => `${INDEX_TABLE.reference} ${cx}${hint}`, byUrl, args, byUrlArgs)})`;
  }

  /** _has:Observation:subject:code=x: a live Observation referencing this resource by `subject` satisfies `inner`. */
  private has(c: Extract<Condition, { kind: 'has' }>, at: At, args: unknown[]): string {
    const { r, types } = at;
    const x = this.alias();
    const s = this.alias();
    const innerArgs: unknown[] = [];
    const inner = this.condition(c.inner, s, [c.sourceType], innerArgs);
    const sources = `${x}.id IN (SELECT ${s}.id FROM resources ${s} WHERE ${s}.fv = ? AND ${s}.type = ? AND ${s}.deleted = 0 AND ${inner})`;
    if (at.probe) {
      args.push(c.sourceType, c.param.code, this.fv, c.sourceType, ...innerArgs);
      return `EXISTS (SELECT 1 FROM ${INDEX_TABLE.reference} ${x} WHERE ${x}.fv = ${r}.fv AND ${x}.target_type = ${r}.type AND ${x}.target_id = ${r}.id
        AND ${x}.type = ? AND ${x}.code = ? AND ${sources})`;
    }
    const list = types.map(() => '?').join(', ');
    args.push(this.fv, c.sourceType, c.param.code, ...types, this.fv, c.sourceType, ...innerArgs);
    const select = types.length === 1 ? `${r}.id IN (SELECT ${x}.target_id` : `(${r}.type, ${r}.id) IN (SELECT ${x}.target_type, ${x}.target_id`;
    return `${select} FROM ${INDEX_TABLE.reference} ${x} WHERE ${x}.fv = ? AND ${x}.type = ? AND ${x}.code = ? AND ${x}.target_type IN (${list}) AND ${sources})`;
  }

  /**
   * _has through a parameter that holds canonicals: a live source whose canonical reference names
   * the resource `r` (its `url`, and its `version` when the reference names one) satisfies `inner`.
   * Only the searched types a canonical of the parameter can name; undefined when there are none.
   */
  private hasCanonical(c: Extract<Condition, { kind: 'has' }>, at: At, args: unknown[]): string | undefined {
    const types = at.types.filter((type) => c.param.canonical?.includes(type));
    if (types.length === 0) return undefined;
    const { r } = at;
    const x = this.alias();
    const s = this.alias();
    const u = this.alias();
    const innerArgs: unknown[] = [];
    const inner = this.condition(c.inner, s, [c.sourceType], innerArgs);
    const list = types.map(() => '?').join(', ');
    // The sources first (a source type's rows by the parameter, then its URL's `url` rows).
    const from = `${INDEX_TABLE.reference} ${x} CROSS JOIN ${INDEX_TABLE.uri} ${u}`;
    const where = `${x}.fv = ? AND ${x}.type = ? AND ${x}.code = ? AND ${x}.target_type IS NULL AND ${x}.url IS NOT NULL
      AND ${x}.id IN (SELECT ${s}.id FROM resources ${s} WHERE ${s}.fv = ? AND ${s}.type = ? AND ${s}.deleted = 0 AND ${inner})
      AND ${u}.fv = ${x}.fv AND ${u}.type IN (${list}) AND ${namesUrl(x, u, this.dialect)}`;
    args.push(this.fv, c.sourceType, c.param.code, this.fv, c.sourceType, ...innerArgs, ...types);
    if (at.probe) return `EXISTS (SELECT 1 FROM ${from} WHERE ${where} AND ${u}.type = ${r}.type AND ${u}.id = ${r}.id)`;
    const select = at.types.length === 1 ? `${r}.id IN (SELECT ${u}.id` : `(${r}.type, ${r}.id) IN (SELECT ${u}.type, ${u}.id`;
    return `${select} FROM ${from} WHERE ${where})`;
  }

  /** One index row (alias t) against one search value. */
  private row(t: string, v: SearchValue, modifier: string | undefined, args: unknown[], type: SearchParam['type']): string {
    switch (v.kind) {
      case 'string':
        // token:text carries its text as a string value.
        if (type === 'token') return prefixRange(`${t}.text`, v.value, args);
        return stringRow(t, v.value, modifier, args, this.dialect);
      case 'token':
        return tokenRow(t, v, modifier, args, this.dialect);
      case 'reference':
        return referenceRow(t, v, args);
      case 'date':
        return rangeRow(`${t}.lo`, `${t}.hi`, v, args, this.now);
      case 'number':
      case 'quantity':
        return quantityRow(t, v, args);
      case 'uri':
        return uriRow(t, v.value, modifier, args, this.dialect);
      default:
        return 'FALSE';
    }
  }
}

/**
 * `_id` and `_lastUpdated` are columns of the resources row itself (every resource has both, so
 * :missing=true matches nothing). lastUpdated is an ISO instant with milliseconds, which compares
 * as text in the same order as time.
 */
function ownColumn(c: Extract<Condition, { kind: 'param' }>, r: string, args: unknown[], missing: boolean, now: number): string {
  const ors = c.values.map((v) => {
    if (v.kind === 'missing') return v.missing ? 'FALSE' : 'TRUE';
    if (c.param.code === '_id') {
      const id = v.kind === 'token' ? v.value : v.kind === 'string' ? v.value : undefined;
      if (id === undefined) return 'FALSE';
      args.push(id);
      return `${r}.id = ?`;
    }
    if (v.kind !== 'date') return 'FALSE';
    const iso = (ms: number) => (ms === -Infinity ? '0000' : ms === Infinity ? '9999' : new Date(ms).toISOString());
    return rangeRow(`${r}.last_updated`, `${r}.last_updated`, { prefix: v.prefix, lo: v.lo, hi: v.hi }, args, now, iso);
  });
  const sql = anyOf(ors);
  return c.modifier === 'not' && !missing ? `NOT ${sql}` : sql;
}

/**
 * `(a OR b OR …)` nested as a balanced tree: SQLite bounds expression depth (1,000) and a flat
 * chain of n ORs is n deep, so a search with a few hundred OR values would fail. The planner
 * flattens nested ORs again, so the plan is the same.
 */
function anyOf(terms: string[]): string {
  if (terms.length <= 8) return `(${terms.join(' OR ')})`;
  const mid = terms.length >> 1;
  return `(${anyOf(terms.slice(0, mid))} OR ${anyOf(terms.slice(mid))})`;
}

function prefixRange(col: string, prefix: string, args: unknown[]): string {
  args.push(prefix, prefix + AFTER_PREFIX);
  return `${col} >= ? AND ${col} < ?`;
}

/** The first `n` characters (code points, as SQL counts them) of `s`. */
function firstChars(s: string, n: number): string {
  if (s.length <= n) return s;
  return Array.from(s.slice(0, 2 * n)).slice(0, n).join('');
}

/** The indexed prefix of a long text column (Dialect.keyChars), or undefined when it is whole. */
function keyOf(col: string, d: Dialect): string | undefined {
  return d.keyChars === undefined ? undefined : `substr(${col}, 1, ${d.keyChars})`;
}

/**
 * The canonical reference row `x` names the resource whose `url` row is `u`: the same URL (on the
 * indexed prefix too, where the dialect indexes one) and, when the reference names a version, the
 * resource's `version`; a resource that records no version is named by any.
 */
export function namesUrl(x: string, u: string, d: Dialect): string {
  const key = keyOf(`${u}.value`, d);
  const sameUrl = key === undefined ? `${u}.value = ${x}.url` : `${key} = ${keyOf(`${x}.url`, d)} AND ${u}.value = ${x}.url`;
  const version = (alias: string) => `SELECT 1 FROM ${INDEX_TABLE.token} ${alias} WHERE ${alias}.fv = ${u}.fv AND ${alias}.type = ${u}.type AND ${alias}.id = ${u}.id AND ${alias}.code = 'version'`;
  return `${u}.code = 'url' AND ${sameUrl} AND (${x}.version IS NULL OR EXISTS (${version(`${u}v`)} AND ${u}v.value = ${x}.version) OR NOT EXISTS (${version(`${u}n`)}))`;
}

/**
 * `col = value`, on the indexed prefix where the dialect indexes only a prefix. A value shorter
 * than the prefix equals the prefix only when it is the whole column, so the column itself is
 * compared only for longer values. Comparing both always was not just redundant: PostgreSQL
 * multiplied the two conditions' selectivities, judged 10,000 matches to be 43, and chose plans
 * that look up every match one by one (a page of a LOINC code with 10,000 Observations: 54-122
 * ms, 0.6-1.1 ms with the prefix alone).
 */
function equalText(col: string, value: string, args: unknown[], d: Dialect): string {
  const key = keyOf(col, d);
  if (key === undefined) {
    args.push(value);
    return `${col} = ?`;
  }
  const prefix = firstChars(value, d.keyChars!);
  args.push(prefix);
  const whole = prefix === value && (value.length < d.keyChars! || Array.from(value).length < d.keyChars!);
  if (!whole) {
    args.push(value);
    return `${key} = ? AND ${col} = ?`;
  }
  return `${key} = ?`;
}

/**
 * `col` starts with `prefix`. With a prefix index, its key starts with the prefix's first
 * keyChars characters (a range the index serves); the whole value then decides.
 */
function startsWith(col: string, prefix: string, args: unknown[], d: Dialect): string {
  const key = keyOf(col, d);
  if (key === undefined) return prefixRange(col, prefix, args);
  return `${prefixRange(key, firstChars(prefix, d.keyChars!), args)} AND ${prefixRange(col, prefix, args)}`;
}

function stringRow(t: string, value: string, modifier: string | undefined, args: unknown[], d: Dialect): string {
  if (modifier === 'exact') {
    args.push(value);
    return `${t}.exact = ?`;
  }
  if (modifier === 'contains') {
    args.push(value);
    return d.contains(`${t}.norm`, '?');
  }
  return startsWith(`${t}.norm`, value, args, d);
}

function tokenRow(t: string, v: Extract<SearchValue, { kind: 'token' }>, modifier: string | undefined, args: unknown[], d: Dialect): string {
  if (modifier === 'text') return prefixRange(`${t}.text`, v.value ?? '', args);
  if (modifier === 'of-type') {
    if (v.value === undefined) return 'FALSE';
    return `${equalText(`${t}.system`, `${v.typeSystem ?? ''}|${v.typeCode ?? ''}`, args, d)} AND ${equalText(`${t}.value`, v.value, args, d)}`;
  }
  const parts: string[] = [];
  if (v.value !== undefined) parts.push(equalText(`${t}.value`, v.value, args, d));
  if (v.system === null) parts.push(`${t}.system IS NULL`);
  else if (v.orNoSystem) parts.push(`(${t}.system IS NULL OR ${equalText(`${t}.system`, v.system!, args, d)})`);
  else if (v.codesOfSystem) {
    // Arguments in the order of their placeholders: the system's, then the codes'.
    const system = equalText(`${t}.system`, v.system!, args, d);
    const codes = v.codesOfSystem.map((c) => equalText(`${t}.value`, c, args, d)).join(' OR ');
    parts.push(`(${system} OR (${t}.system IS NULL AND (${codes})))`);
  }
  else if (v.system !== undefined) parts.push(equalText(`${t}.system`, v.system, args, d));
  return parts.length ? parts.join(' AND ') : 'FALSE';
}

function referenceRow(t: string, v: Extract<SearchValue, { kind: 'reference' }>, args: unknown[]): string {
  const parts: string[] = [];
  const eq = (col: string, val: unknown) => {
    args.push(val);
    parts.push(`${t}.${col} = ?`);
  };
  if (v.identifierValue !== undefined) {
    eq('ident_value', v.identifierValue);
    if (v.identifierSystem === null) parts.push(`${t}.ident_system IS NULL`);
    else if (v.identifierSystem !== undefined) eq('ident_system', v.identifierSystem);
    return parts.join(' AND ');
  }
  if (v.url !== undefined) eq('url', v.url);
  if (v.id !== undefined) eq('target_id', v.id);
  if (v.targetType !== undefined) eq('target_type', v.targetType);
  if (v.version !== undefined) eq('version', v.version);
  return parts.length ? parts.join(' AND ') : 'FALSE';
}

/**
 * Date prefixes on ranges (search.html#prefix): target [lo, hi] against search [slo, shi].
 * eq: target within search; gt: target reaches above search; lt: target reaches below; sa/eb:
 * entirely after/before; ap: overlap.
 */
function rangeRow(
  lo: string,
  hi: string,
  v: { prefix: string; lo: number; hi: number },
  args: unknown[],
  now: number,
  as: (ms: number) => unknown = (ms) => ms,
): string {
  const push = (...ms: number[]) => args.push(...ms.map(as));
  // `lo <= hi` always, so `hi <= B` implies `lo <= B`: saying so lets the (lo, hi) index bound
  // the range on both sides instead of reading every row after A.
  const within = () => {
    push(v.lo, v.hi, v.hi);
    return `(${lo} >= ? AND ${hi} <= ? AND ${lo} <= ?)`;
  };
  switch (v.prefix) {
    case 'eq':
      return within();
    case 'ne':
      return `NOT ${within()}`;
    case 'gt':
      push(v.hi);
      return `${hi} > ?`;
    case 'lt':
      push(v.lo);
      return `${lo} < ?`;
    case 'ge': {
      push(v.hi);
      return `(${hi} > ? OR ${within()})`;
    }
    case 'le': {
      push(v.lo);
      return `(${lo} < ? OR ${within()})`;
    }
    case 'sa':
      push(v.hi);
      return `${lo} > ?`;
    case 'eb':
      push(v.lo, v.lo);
      return `(${hi} < ? AND ${lo} < ?)`;
    default: {
      // ap: overlap with the search range widened by 10% of its distance to now (compare.ts).
      const tolerance = apDateTolerance(v, now);
      push(v.hi + tolerance, v.lo - tolerance);
      return `(${lo} <= ? AND ${hi} >= ?)`;
    }
  }
}

function quantityRow(t: string, v: Extract<SearchValue, { kind: 'number' | 'quantity' }>, args: unknown[]): string {
  const cmp = numberPrefix(`${t}.value`, v, args);
  if (v.kind === 'number') return cmp;
  const parts = [cmp];
  if (v.system === null) parts.push(`${t}.system IS NULL`);
  else if (v.system !== undefined) {
    args.push(v.system);
    parts.push(`${t}.system = ?`);
  }
  if (v.unit !== undefined) {
    if (v.system !== undefined) {
      args.push(v.unit);
      parts.push(`${t}.unit_code = ?`);
    } else {
      args.push(v.unit, v.unit);
      parts.push(`(${t}.unit_code = ? OR ${t}.unit = ?)`);
    }
  }
  return parts.join(' AND ');
}

/** Number prefixes with the search value's implicit precision [lo, hi) (search.html#number). */
function numberPrefix(col: string, v: { prefix: string; value: number; lo: number; hi: number }, args: unknown[]): string {
  switch (v.prefix) {
    case 'eq':
      args.push(v.lo, v.hi);
      return `(${col} >= ? AND ${col} < ?)`;
    case 'ne':
      args.push(v.lo, v.hi);
      return `NOT (${col} >= ? AND ${col} < ?)`;
    case 'gt':
    case 'sa':
      args.push(v.value);
      return `${col} > ?`;
    case 'lt':
    case 'eb':
      args.push(v.value);
      return `${col} < ?`;
    case 'ge':
      args.push(v.value);
      return `${col} >= ?`;
    case 'le':
      args.push(v.value);
      return `${col} <= ?`;
    default: {
      // ap: within the implicit range, or within 10% of the value.
      const tol = Math.abs(v.value) / 10;
      args.push(v.lo, v.hi, v.value - tol, v.value + tol);
      return `((${col} >= ? AND ${col} < ?) OR (${col} >= ? AND ${col} <= ?))`;
    }
  }
}

/** uri: exact; :below the row is the value or under it; :above the reverse; :contains any case. */
function uriRow(t: string, value: string, modifier: string | undefined, args: unknown[], d: Dialect): string {
  const col = `${t}.value`;
  if (modifier === 'below') {
    const root = value.endsWith('/') ? value : `${value}/`;
    return `((${equalText(col, value, args, d)}) OR (${startsWith(col, root, args, d)}))`;
  }
  if (modifier === 'above') {
    args.push(value, value, value);
    return `(${col} = ? OR substr(?, 1, length(${col}) + 1) = ${col} || '/' OR (${lastCharOf(d, col)} = '/' AND substr(?, 1, length(${col})) = ${col}))`;
  }
  if (modifier === 'contains') {
    args.push(value.toLowerCase());
    return d.contains(`lower(${col})`, '?');
  }
  return equalText(col, value, args, d);
}
