/**
 * Parsing of one search value (one OR part) by parameter type, per FHIR search.html. Every
 * malformed value is a 400 naming the parameter: a search that silently matched nothing (or
 * everything) because of a typo is worse than an error the client can read.
 */
import { badRequest } from '../../fhir/errors.ts';
import { normalizeString } from '../normalize.ts';
import type { Prefix, SearchParam, SearchValue } from '../types.ts';
import { parseDate, parseNumber } from './scalars.ts';

/** What value parsing needs besides the text: the parameter (for errors and targets) and the base. */
export interface ValueContext {
  /** The parameter name as the client wrote it, for the OperationOutcome expression. */
  name: string;
  param: SearchParam;
  modifier?: string;
  /** Type from a `:[Type]` modifier on a reference parameter. */
  typeModifier?: string;
  /**
   * The implicit systems of a token parameter's `code` elements (SearchRegistry.implicitSystems),
   * for `component` of a composite; absent where they cannot be known (several resource types).
   */
  implicitSystems?: (param: SearchParam, component?: number) => ReadonlyMap<string, ReadonlySet<string>> | undefined;
  /** The composite component this value is of. */
  component?: number;
  /** The composite parameter of a component value. */
  composite?: SearchParam;
  baseUrl?: string;
}

const PREFIXES: ReadonlySet<string> = new Set(['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap']);
const ID = /^[A-Za-z0-9\-.]{1,64}$/;
const RELATIVE = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/([A-Za-z0-9\-.]{1,64}))?$/;
const ABSOLUTE = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/**
 * Splits on `sep` where it is not escaped with `\` (search.html#escaping). The parts keep their
 * escapes so that a later split (`|`, `$`) still sees them; `unescape` removes them at the end.
 */
export function splitUnescaped(text: string, sep: string): string[] {
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === sep) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** Removes the search escapes `\,` `\|` `\$` `\\`; other backslashes are literal. */
export function unescape(text: string): string {
  return text.includes('\\') ? text.replace(/\\([,|$\\])/g, '$1') : text;
}

/** Parses one OR part of a value (still escaped) for the context's parameter and modifier. */
export function parseValue(ctx: ValueContext, raw: string): SearchValue {
  if (raw === '') throw badRequest(`Empty value in search parameter '${ctx.name}'`, [ctx.name]);
  if (ctx.modifier === 'missing') return parseMissing(ctx, raw);
  switch (ctx.param.type) {
    case 'string':
      return parseStringValue(ctx, raw);
    case 'token':
      return ctx.modifier === 'text' ? { kind: 'string', value: normalized(ctx, raw) } : parseToken(ctx, raw);
    case 'reference':
      return parseReference(ctx, raw);
    case 'date':
      return parseDateValue(ctx, raw);
    case 'number':
      return parseNumberValue(ctx, raw);
    case 'quantity':
      return parseQuantity(ctx, raw);
    case 'uri':
      return { kind: 'uri', value: unescape(raw) };
    case 'composite':
      return parseComposite(ctx, raw);
    default:
      throw badRequest(`Search parameter '${ctx.name}' of type ${ctx.param.type} is not supported`, [ctx.name]);
  }
}

function fail(ctx: ValueContext, what: string, raw: string): never {
  throw badRequest(`Invalid ${what} '${unescape(raw)}' in search parameter '${ctx.name}'`, [ctx.name]);
}

function parseMissing(ctx: ValueContext, raw: string): SearchValue {
  if (raw !== 'true' && raw !== 'false') fail(ctx, ':missing value (expected true or false)', raw);
  return { kind: 'missing', missing: raw === 'true' };
}

/** Default and :contains compare normalised text; :exact compares the value as written. */
function parseStringValue(ctx: ValueContext, raw: string): SearchValue {
  return { kind: 'string', value: ctx.modifier === 'exact' ? unescape(raw) : normalized(ctx, raw) };
}

/** Normalised text; only whitespace would normalise to '' and match everything, so it is refused. */
function normalized(ctx: ValueContext, raw: string): string {
  const text = normalizeString(unescape(raw));
  if (text === '') throw badRequest(`Empty value in search parameter '${ctx.name}'`, [ctx.name]);
  return text;
}

/**
 * `code` (any system), `system|code`, `|code` (no system: system null), `system|` (any code in
 * the system); with :of-type `typeSystem|typeCode|value` (search.html#token).
 */
function parseToken(ctx: ValueContext, raw: string): SearchValue {
  const parts = splitUnescaped(raw, '|').map(unescape);
  if (ctx.modifier === 'of-type') {
    if (parts.length !== 3 || parts.some((p) => p === '')) fail(ctx, ':of-type token (expected typeSystem|typeCode|value)', raw);
    return { kind: 'token', typeSystem: parts[0], typeCode: parts[1], value: parts[2] };
  }
  if (parts.length === 1) return { kind: 'token', value: parts[0] };
  if (parts.length !== 2 || (parts[0] === '' && parts[1] === '')) fail(ctx, 'token', raw);
  const [system, code] = parts;
  if (system === '') return { kind: 'token', system: null, value: code };
  // A `code` element carries no system: its binding says which system the code is from.
  const implicit = ctx.implicitSystems?.(ctx.composite ?? ctx.param, ctx.component)?.get(system!);
  if (code === '') return implicit ? { kind: 'token', system, codesOfSystem: [...implicit] } : { kind: 'token', system };
  return implicit?.has(code!) ? { kind: 'token', system, value: code, orNoSystem: true } : { kind: 'token', system, value: code };
}

/** `[prefix]value` for the ordered types; no prefix means eq (search.html#prefix). */
function splitPrefix(raw: string): { prefix: Prefix; rest: string } {
  const head = raw.slice(0, 2);
  if (PREFIXES.has(head)) return { prefix: head as Prefix, rest: raw.slice(2) };
  return { prefix: 'eq', rest: raw };
}

function parseDateValue(ctx: ValueContext, raw: string): SearchValue {
  const { prefix, rest } = splitPrefix(raw);
  const range = parseDate(unescape(rest));
  if (range === undefined) fail(ctx, 'date', raw);
  return { kind: 'date', prefix, lo: range.lo, hi: range.hi };
}

function parseNumberValue(ctx: ValueContext, raw: string): SearchValue {
  const { prefix, rest } = splitPrefix(raw);
  const n = parseNumber(unescape(rest));
  if (n === undefined) fail(ctx, 'number', raw);
  return { kind: 'number', prefix, ...n };
}

/**
 * `[prefix]number`, `[prefix]number|system|code` (system and coded unit must both match) or
 * `[prefix]number||code` (code or unit text matches, any system) (search.html#quantity).
 */
function parseQuantity(ctx: ValueContext, raw: string): SearchValue {
  const parts = splitUnescaped(raw, '|').map(unescape);
  const { prefix, rest } = splitPrefix(parts[0]);
  const n = parseNumber(rest);
  if (n === undefined) fail(ctx, 'quantity number', raw);
  if (parts.length === 1) return { kind: 'quantity', prefix, ...n };
  const [, system, unit] = parts;
  if (parts.length !== 3 || unit === '') fail(ctx, 'quantity (expected number|system|code)', raw);
  return system === '' ? { kind: 'quantity', prefix, ...n, unit } : { kind: 'quantity', prefix, ...n, system, unit };
}

/**
 * `Type/id`, `id`, an absolute URL (into `baseUrl`: read as `Type/id`), a canonical
 * `url|version`, or with :identifier `system|value` (search.html#reference).
 */
function parseReference(ctx: ValueContext, raw: string): SearchValue {
  if (ctx.modifier === 'identifier') return parseIdentifier(ctx, raw);
  const parts = splitUnescaped(raw, '|').map(unescape);
  if (parts.length > 2 || parts[1] === '') fail(ctx, 'reference', raw);
  const [ref, version] = parts;
  const local = intoBase(ref, ctx.baseUrl);
  if (local === undefined && ABSOLUTE.test(ref)) return version === undefined ? { kind: 'reference', url: ref } : { kind: 'reference', url: ref, version };
  if (version !== undefined) fail(ctx, 'reference (only canonical URLs take |version)', raw);
  return parseLocalReference(ctx, local ?? ref, raw);
}

function intoBase(ref: string, baseUrl: string | undefined): string | undefined {
  if (baseUrl === undefined) return undefined;
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  return ref.startsWith(base) ? ref.slice(base.length) : undefined;
}

function parseLocalReference(ctx: ValueContext, ref: string, raw: string): SearchValue {
  const typed = RELATIVE.exec(ref);
  if (typed !== null) {
    const [, targetType, id, version] = typed;
    if (ctx.typeModifier !== undefined && ctx.typeModifier !== targetType) fail(ctx, `reference for :${ctx.typeModifier}`, raw);
    return version === undefined ? { kind: 'reference', targetType, id } : { kind: 'reference', targetType, id, version };
  }
  if (!ID.test(ref)) fail(ctx, 'reference', raw);
  const targets = ctx.param.targets;
  const targetType = ctx.typeModifier ?? (targets.length === 1 ? targets[0] : undefined);
  return targetType === undefined ? { kind: 'reference', id: ref } : { kind: 'reference', targetType, id: ref };
}

function parseIdentifier(ctx: ValueContext, raw: string): SearchValue {
  const parts = splitUnescaped(raw, '|').map(unescape);
  if (parts.length === 1) return { kind: 'reference', identifierValue: parts[0] };
  if (parts.length !== 2 || parts[1] === '') fail(ctx, ':identifier value (expected system|value)', raw);
  return { kind: 'reference', identifierSystem: parts[0] === '' ? null : parts[0], identifierValue: parts[1] };
}

/** `a$b`: one part per component, each parsed as its component's type (search.html#composite). */
function parseComposite(ctx: ValueContext, raw: string): SearchValue {
  const components = ctx.param.components ?? [];
  const parts = splitUnescaped(raw, '$');
  if (parts.length !== components.length) fail(ctx, `composite value (expected ${components.length} parts joined by $)`, raw);
  return {
    kind: 'composite',
    parts: parts.map((part, i) =>
      parseValue({ name: ctx.name, param: components[i].param, baseUrl: ctx.baseUrl, ...(ctx.implicitSystems ? { implicitSystems: ctx.implicitSystems, composite: ctx.param, component: i } : {}) }, part),
    ),
  };
}
