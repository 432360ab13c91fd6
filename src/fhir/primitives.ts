/**
 * Checks for FHIR primitive values, compiled once per version from the definition tables.
 *
 * Strings are checked against the version's own regex (anchored). Numbers and booleans are checked
 * by value; how an integer was written (`1.0`) is checked by the validator, from what fhir/json.ts kept. Two deliberate departures
 * from "just run the spec regex", both for a server that must survive hostile input:
 * - base64Binary is checked by a linear scan: R4's regex `(\s*([0-9a-zA-Z\+/=]){4}\s*)+` backtracks
 *   exponentially (a 151-character string takes over 30 s in V8), and any group-repeating regex
 *   overflows V8's backtracking stack on multi-megabyte attachments;
 * - a regex that still overflows on a huge value yields a `too-costly` verdict instead of a crash.
 *
 * Every string-valued primitive is held to the limit datatypes.html#string sets for strings (at most
 * 1,048,576 characters, counted as Unicode code points), checked before the regex so a huge value is
 * never scanned by it; except base64Binary, whose data are bounded by the body limit, and xhtml,
 * which is not a string type (the spec's own examples have narratives over the limit).
 */
import type { RawPrimitive } from './definitions/index.ts';

/** Outcome of a primitive check: undefined when valid, else the message and its issue code. */
export interface PrimitiveProblem {
  code: 'value' | 'too-long' | 'too-costly';
  message: string;
}

/** A compiled primitive type. */
export interface PrimitiveType {
  readonly name: string;
  /** JSON kind the value must have. */
  readonly json: 'string' | 'number' | 'boolean';
  /** The spec regex, anchored; undefined where the spec defines none (xhtml). */
  readonly regex: RegExp | undefined;
  /** Checks one JSON value (never null/undefined: callers handle absence). */
  readonly check: (value: unknown) => PrimitiveProblem | undefined;
}

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const JSON_KINDS = { s: 'string', n: 'number', b: 'boolean' } as const;
/** The most characters a FHIR string may have (datatypes.html#string: 1024 * 1024). */
export const MAX_STRING_LENGTH = 1024 * 1024;

/** Compiles one primitive type of a version. */
export function compilePrimitive(name: string, raw: RawPrimitive): PrimitiveType {
  const json = JSON_KINDS[raw.j];
  const regex = raw.r === undefined ? undefined : new RegExp(`^(?:${raw.r})$`);
  return { name, json, regex, check: checkerFor(name, json, regex) };
}

function checkerFor(name: string, json: PrimitiveType['json'], regex: RegExp | undefined): PrimitiveType['check'] {
  if (json === 'boolean') return (v) => (typeof v === 'boolean' ? undefined : wrongKind(name, json, v));
  if (json === 'number') return numberChecker(name);
  if (name === 'base64Binary') return base64Checker(regex);
  const checkFormat = regex === undefined ? undefined : regexChecker(name, regex);
  const checkRange = name === 'integer64' ? int64Range : CALENDAR_TYPES.has(name) ? calendarDay : undefined;
  const maxLength = name === 'xhtml' ? Infinity : MAX_STRING_LENGTH;
  return (v) => {
    if (typeof v !== 'string') return wrongKind(name, json, v);
    if (v.length === 0) return { code: 'value', message: `Empty string is not a valid ${name} (omit the element instead)` };
    if (v.length > maxLength && tooLong(v)) {
      return { code: 'too-long', message: `${name} longer than ${MAX_STRING_LENGTH} characters, the most FHIR allows in a string` };
    }
    return checkFormat?.(v) ?? checkRange?.(v);
  };
}

/**
 * Whether `v`, already longer than the limit in UTF-16 units, has more code points than the limit
 * (a surrogate pair is one character). Only strings over the limit in units get here.
 */
function tooLong(v: string): boolean {
  if (v.length > 2 * MAX_STRING_LENGTH) return true;
  let chars = 0;
  for (const _ of v) if (++chars > MAX_STRING_LENGTH) return true;
  return false;
}

function numberChecker(name: string): PrimitiveType['check'] {
  const min = name === 'positiveInt' ? 1 : name === 'unsignedInt' ? 0 : INT32_MIN;
  const isDecimal = name === 'decimal';
  return (v) => {
    if (typeof v !== 'number') return wrongKind(name, 'number', v);
    if (!Number.isFinite(v)) return { code: 'value', message: `${v} is not a valid ${name}` };
    if (isDecimal) return undefined;
    if (!Number.isInteger(v)) return { code: 'value', message: `${v} is not a valid ${name}: not a whole number` };
    if (v < min || v > INT32_MAX) return { code: 'value', message: `${v} is not a valid ${name}: outside ${min}..${INT32_MAX}` };
    return undefined;
  };
}

function regexChecker(name: string, regex: RegExp): (v: string) => PrimitiveProblem | undefined {
  return (v) => {
    try {
      if (regex.test(v)) return undefined;
    } catch {
      return { code: 'too-costly', message: `Value too large to check as ${name}` };
    }
    return { code: 'value', message: `${quote(v)} is not a valid ${name}` };
  };
}

/** Types whose values may name a day: the spec's regexes allow any day 01-31 in any month. */
const CALENDAR_TYPES = new Set(['date', 'dateTime', 'instant']);

/** Days in a month (1-12) of the proleptic Gregorian calendar FHIR dates use. */
export function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** A day that its month has (1990-02-30 and 2023-02-29 are not dates). */
function calendarDay(v: string): PrimitiveProblem | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(v);
  if (!m) return undefined;
  const days = daysInMonth(Number(m[1]), Number(m[2]));
  return Number(m[3]) > days ? { code: 'value', message: `${quote(v)} is not a valid date: ${m[1]}-${m[2]} has ${days} days` } : undefined;
}

function int64Range(v: string): PrimitiveProblem | undefined {
  if (v.length < 19) return undefined;
  const n = BigInt(v);
  return n < INT64_MIN || n > INT64_MAX ? { code: 'value', message: `${quote(v)} is not a valid integer64: out of range` } : undefined;
}

/**
 * Linear base64Binary check equivalent to the version's regex. Whether whitespace may separate the
 * 4-character groups (R4/R4B) and whether `=` may only pad the end (R5) is read off the version's
 * regex by probing it with two tiny samples, which is safe however the regex backtracks.
 */
function base64Checker(regex: RegExp | undefined): PrimitiveType['check'] {
  const allowSpace = regex?.test('QUJD QUJD') ?? true;
  const strictPadding = !(regex?.test('Q=JD') ?? true);
  return (v) => {
    if (typeof v !== 'string') return wrongKind('base64Binary', 'string', v);
    if (v.length === 0) return { code: 'value', message: 'Empty string is not a valid base64Binary (omit the element instead)' };
    return isBase64(v, allowSpace, strictPadding) ? undefined : { code: 'value', message: 'Value is not valid base64Binary' };
  };
}

function isBase64(v: string, allowSpace: boolean, strictPadding: boolean): boolean {
  let inGroup = 0;
  let groups = 0;
  let padding = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (isSpace(c)) {
      if (!allowSpace || inGroup !== 0) return false;
      continue;
    }
    if (c === 61 /* = */) padding++;
    else if (!isBase64Char(c) || (strictPadding && padding > 0)) return false;
    inGroup = (inGroup + 1) % 4;
    if (inGroup === 0) groups++;
  }
  if (inGroup !== 0 || groups === 0) return false;
  return !strictPadding || padding <= 2;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 9 || c === 10 || c === 11 || c === 12 || c === 13;
}

function isBase64Char(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47;
}

function wrongKind(name: string, json: string, v: unknown): PrimitiveProblem {
  const actual = Array.isArray(v) ? 'array' : typeof v;
  return { code: 'value', message: `${name} must be a JSON ${json}, found ${actual}` };
}

/** Quotes a value for a message, truncated so a huge value cannot bloat the outcome. */
function quote(v: string): string {
  return JSON.stringify(v.length > 64 ? `${v.slice(0, 61)}...` : v);
}
