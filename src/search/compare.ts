/**
 * The comparison semantics of FHIR search: one index row against one search value. These small
 * functions are the specification both evaluators follow: the in-memory matcher (match.ts) calls
 * them, and the store's SQL search implements the same predicates. Section names refer to
 * FHIR R5 search.html. Values arrive already normalised by parse.ts (strings through
 * normalizeString, numbers and dates as ranges), rows by extract.ts.
 */
import type {
  DateRow,
  NumberRow,
  ParamType,
  Prefix,
  QuantityRow,
  ReferenceRow,
  SearchValue,
  StringRow,
  TokenRow,
  UriRow,
} from './types.ts';

export type TokenValue = Extract<SearchValue, { kind: 'token' }>;
export type ReferenceValue = Extract<SearchValue, { kind: 'reference' }>;
export type DateValue = Extract<SearchValue, { kind: 'date' }>;
export type NumberValue = Extract<SearchValue, { kind: 'number' }>;
export type QuantityValue = Extract<SearchValue, { kind: 'quantity' }>;
export type AnyRow = StringRow | TokenRow | ReferenceRow | DateRow | NumberRow | QuantityRow | UriRow;

/**
 * #string: the default matches when the normalised row starts with the normalised value;
 * :contains when it contains it anywhere; :exact when the row as written equals the value as
 * written (case, accents and whitespace significant).
 */
export function stringMatches(row: StringRow, value: string, modifier?: string): boolean {
  if (modifier === 'exact') return row.exact === value;
  if (modifier === 'contains') return row.norm.includes(value);
  return row.norm.startsWith(value);
}

/**
 * #token: `code` matches any system; `system|code` both (and rows without a system when the
 * parameter's `code` element binds that code to that system: `orNoSystem`); `|code` only rows
 * without a system (system null); `system|` any code of the system (and rows without a system
 * whose code the bindings give that system: `codesOfSystem`). Codes and systems compare exactly
 * (case-sensitive): Herald knows no code system that declares itself case-insensitive.
 */
export function tokenMatches(row: TokenRow, value: TokenValue): boolean {
  if (value.system !== undefined && row.system !== value.system) {
    if (row.system !== null) return false;
    if (value.codesOfSystem) return value.codesOfSystem.includes(row.value!);
    if (!value.orNoSystem) return false;
  }
  return value.value === undefined || row.value === value.value;
}

/**
 * #token :of-type (Identifier only). Extraction stores, besides an identifier's own row, one row
 * per coding of Identifier.type under the code `<code>:of-type` (ofTypeCode) with system
 * `typeSystem|typeCode` and the identifier's value: the value matches when both equal.
 */
export function ofTypeMatches(row: TokenRow, value: TokenValue): boolean {
  return row.system === `${value.typeSystem}|${value.typeCode}` && row.value === value.value;
}

/** The row code of the :of-type rows of token parameter `code`. */
export function ofTypeCode(code: string): string {
  return `${code}:of-type`;
}

/** #token :text: the normalised display/text starts with the normalised value (as #string). */
export function tokenTextMatches(row: TokenRow, text: string): boolean {
  return row.text !== null && row.text.startsWith(text);
}

/**
 * #reference: `Type/id` matches that type and id (any _history version); a bare `id` matches
 * the id with the parameter's single target type, or any type when it has several; an absolute
 * URL or canonical matches the row's canonical url, and `|version` (or `/_history/v`) also the
 * version; :identifier matches Reference.identifier (`value` any system, `|value` no system).
 */
export function referenceMatches(row: ReferenceRow, value: ReferenceValue): boolean {
  if (value.identifierValue !== undefined) {
    if (row.identifierValue !== value.identifierValue) return false;
    return value.identifierSystem === undefined || row.identifierSystem === value.identifierSystem;
  }
  if (value.version !== undefined && row.version !== value.version) return false;
  if (value.url !== undefined) return row.url === value.url;
  if (value.id === undefined || row.targetId !== value.id) return false;
  return value.targetType === undefined || row.targetType === value.targetType;
}

/**
 * #prefix for dates, on ranges (row [lo, hi] and value [lo, hi], all inclusive):
 * eq: the row lies within the value; ne: not eq; gt: the row extends after the value
 * (row.hi > value.hi); lt: it starts before (row.lo < value.lo); ge: gt or eq; le: lt or eq;
 * sa: it starts after the value ends (row.lo > value.hi); eb: it ends before the value starts
 * (row.hi < value.lo); ap: see dateApproximately.
 */
export function dateMatches(row: DateRow, value: DateValue, now: number): boolean {
  switch (value.prefix) {
    case 'eq':
      return within(row, value);
    case 'ne':
      return !within(row, value);
    case 'gt':
      return row.hi > value.hi;
    case 'lt':
      return row.lo < value.lo;
    case 'ge':
      return row.hi > value.hi || within(row, value);
    case 'le':
      return row.lo < value.lo || within(row, value);
    case 'sa':
      return row.lo > value.hi;
    case 'eb':
      return row.hi < value.lo;
    case 'ap':
      return dateApproximately(row, value, now);
  }
}

function within(row: DateRow, value: DateValue): boolean {
  return row.lo >= value.lo && row.hi <= value.hi;
}

/**
 * #prefix ap for dates: the row overlaps the value's range widened on both sides by 10% of the
 * gap between now and the value (the spec's recommendation). The gap is 0 when now lies inside
 * the value, so the tolerance is never less than the value's own range. The widening only grows
 * as time passes, so an ap match made today stays a match.
 */
export function dateApproximately(row: DateRow, value: DateValue, now: number): boolean {
  const tolerance = apDateTolerance(value, now);
  return row.hi >= value.lo - tolerance && row.lo <= value.hi + tolerance;
}

/** 10% of the distance from now to the nearest end of the value's range (0 when inside). */
export function apDateTolerance(value: { lo: number; hi: number }, now: number): number {
  const gap = now < value.lo ? value.lo - now : now > value.hi ? now - value.hi : 0;
  return gap / 10;
}

/**
 * #number (and the number part of #quantity): eq and ne use the value's implicit precision range
 * (value.lo <= x < value.hi, see parse/scalars.ts); the ordering prefixes ignore precision and
 * compare with the value as written (gt/sa: x > value, lt/eb: x < value, ge: x >= value,
 * le: x <= value); ap: within the implicit range or within 10% of the value.
 */
export function numberMatches(x: number, value: { prefix: Prefix; value: number; lo: number; hi: number }): boolean {
  switch (value.prefix) {
    case 'eq':
      return x >= value.lo && x < value.hi;
    case 'ne':
      return !(x >= value.lo && x < value.hi);
    case 'gt':
    case 'sa':
      return x > value.value;
    case 'lt':
    case 'eb':
      return x < value.value;
    case 'ge':
      return x >= value.value;
    case 'le':
      return x <= value.value;
    case 'ap':
      return (x >= value.lo && x < value.hi) || Math.abs(x - value.value) <= Math.abs(value.value) / 10;
  }
}

/**
 * #quantity units: with `number|system|code` the row's system and coded unit (Quantity.code)
 * must both equal; with `number||code` either the coded unit or the unit text (Quantity.unit)
 * equals, whatever the system; with a bare number any unit matches. No unit conversion.
 */
export function quantityMatches(row: QuantityRow, value: QuantityValue): boolean {
  if (!numberMatches(row.value, value)) return false;
  if (value.unit === undefined) return value.system === undefined || row.system === value.system;
  if (value.system !== undefined) return row.system === value.system && row.unitCode === value.unit;
  return row.unitCode === value.unit || row.unit === value.unit;
}

/**
 * #uri: the default is exact equality; :below matches rows equal to the value or under it on a
 * path boundary (`http://a.org/fhir` covers `http://a.org/fhir/ValueSet/1`, not
 * `http://a.org/fhirx`); :above the reverse (the row is the value or one of its ancestors);
 * :contains a case-insensitive substring.
 */
export function uriMatches(row: UriRow, value: string, modifier?: string): boolean {
  if (modifier === 'below') return isUnder(row.value, value);
  if (modifier === 'above') return isUnder(value, row.value);
  if (modifier === 'contains') return row.value.toLowerCase().includes(value.toLowerCase());
  return row.value === value;
}

function isUnder(uri: string, ancestor: string): boolean {
  if (uri === ancestor) return true;
  return uri.startsWith(ancestor.endsWith('/') ? ancestor : `${ancestor}/`);
}

/** One row against one value: the test above that applies to the parameter type and modifier. */
export type RowTest = (row: AnyRow, now: number) => boolean;

/** Selects, once per value, the comparison that applies (so evaluation does no dispatching). */
export function rowTest(type: ParamType, value: SearchValue, modifier: string | undefined): RowTest {
  switch (value.kind) {
    case 'string':
      if (type === 'token') return (row) => tokenTextMatches(row as TokenRow, value.value);
      return (row) => stringMatches(row as StringRow, value.value, modifier);
    case 'token':
      if (modifier === 'of-type') return (row) => ofTypeMatches(row as TokenRow, value);
      return (row) => tokenMatches(row as TokenRow, value);
    case 'reference':
      return (row) => referenceMatches(row as ReferenceRow, value);
    case 'date':
      return (row, now) => dateMatches(row as DateRow, value, now);
    case 'number':
      return (row) => numberMatches((row as NumberRow).value, value);
    case 'quantity':
      return (row) => quantityMatches(row as QuantityRow, value);
    case 'uri':
      return (row) => uriMatches(row as UriRow, value.value, modifier);
    default:
      throw new Error(`No row comparison for ${value.kind} values`);
  }
}
