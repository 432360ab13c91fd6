/**
 * Dates and numbers of search values as ranges: FHIR search compares by the precision the client
 * wrote (search.html#date, #number), so `2024` means the whole year and `100` means [99.5, 100.5).
 */
import { daysInMonth } from '../../fhir/primitives.ts';

/** A date search value: epoch ms, both ends inclusive (as DateRow). */
export interface DateRange {
  lo: number;
  hi: number;
}

/**
 * A number search value: `value` as written, and its implicit precision range, `lo` INCLUSIVE and
 * `hi` EXCLUSIVE (eq means lo <= v < hi): half a unit of the last written digit on each side.
 */
export interface NumberRange {
  value: number;
  lo: number;
  hi: number;
}

const DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;
const NUMBER = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d{1,4}))?$/;
const MINUTE = 60_000;
const DAY = 86_400_000;

/**
 * Parses a FHIR date/dateTime/instant of any precision (year … fractional seconds) into the
 * inclusive range of milliseconds it denotes. A value without timezone is taken as UTC (Herald's
 * decision; the spec leaves it to the server). `+` of an offset often arrives decoded as a space
 * from an unencoded query string, so ` hh:mm` at the end is read as `+hh:mm`.
 */
export function parseDate(text: string): DateRange | undefined {
  const m = DATE.exec(text.replace(/ (\d{2}:\d{2})$/, '+$1'));
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const year = Number(y);
  const month = mo === undefined ? 1 : Number(mo);
  const day = d === undefined ? 1 : Number(d);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (h !== undefined && (Number(h) > 23 || Number(mi) > 59 || Number(s ?? 0) > 59)) return undefined;
  const offset = tzOffset(tz);
  if (offset === undefined) return undefined;
  const ms = frac === undefined ? 0 : Number(frac.slice(0, 3).padEnd(3, '0'));
  const lo = utc(year, month - 1, day, Number(h ?? 0), Number(mi ?? 0), Number(s ?? 0), ms) - offset;
  if (mo === undefined) return { lo, hi: utc(year + 1, 0, 1) - 1 - offset };
  if (d === undefined) return { lo, hi: utc(year, month, 1) - 1 - offset };
  return { lo, hi: lo + width(h, s, frac) - 1 };
}

/** Milliseconds covered by a day-or-finer value of this precision. */
function width(h: string | undefined, s: string | undefined, frac: string | undefined): number {
  if (h === undefined) return DAY;
  if (s === undefined) return MINUTE;
  if (frac === undefined) return 1000;
  return 10 ** (3 - Math.min(3, frac.length));
}

/** Offset of a timezone designator in ms (local = UTC + offset); 0 when absent (UTC). */
function tzOffset(tz: string | undefined): number | undefined {
  if (tz === undefined || tz === 'Z') return 0;
  const hours = Number(tz.slice(1, 3));
  const minutes = Number(tz.slice(4, 6));
  if (hours > 14 || minutes > 59) return undefined;
  return (tz[0] === '-' ? -1 : 1) * (hours * 60 + minutes) * MINUTE;
}

/** Date.UTC without its 0–99 → 1900s mapping (years 0001–0099 are valid FHIR dates). */
function utc(year: number, month: number, day: number, h = 0, mi = 0, s = 0, ms = 0): number {
  const date = new Date(0);
  date.setUTCFullYear(year, month, day);
  date.setUTCHours(h, mi, s, ms);
  return date.getTime();
}


/**
 * Parses a decimal (`100`, `100.00`, `1e2`, `-.5`) with its implicit precision: the range is half
 * a unit of the last written digit around the value, so `100` → [99.5, 100.5), `100.00` →
 * [99.995, 100.005) and `1e2` (one significant digit) → [50, 150). The bounds are computed in
 * decimal, not binary, so `99.995` is exactly the double a resource's `99.995` parses to.
 */
export function parseNumber(text: string): NumberRange | undefined {
  const m = NUMBER.exec(text);
  if (m === null) return undefined;
  const [, sign, int, frac = '', exp = '0'] = m;
  if (int === '' && frac === '') return undefined;
  const value = Number(text);
  if (!Number.isFinite(value)) return undefined;
  const scaled = BigInt(`${sign}${int}${frac}`) * 10n;
  const power = Number(exp) - frac.length - 1;
  return { value, lo: Number(`${scaled - 5n}e${power}`), hi: Number(`${scaled + 5n}e${power}`) };
}
