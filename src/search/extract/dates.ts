/**
 * FHIR date, dateTime and instant values as ranges of epoch milliseconds, both ends inclusive,
 * spanning the value's precision (search.html#date: a value is an implicit range). `2024` is the
 * whole year, `2024-03-05T10:00` the whole minute, `…T10:00:00Z` the whole second, `….5Z` a tenth
 * of one. Values without a timezone are taken as UTC (the spec leaves it to the server).
 */

export type Range = readonly [lo: number, hi: number];

const DATE =
  /^(-?\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/** Epoch ms of a UTC calendar time; Date.UTC maps years 0-99 to 19xx, so those go the long way. */
function utc(y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0): number {
  if (y >= 100) return Date.UTC(y, mo, d, h, mi, s, ms);
  const t = new Date(0);
  t.setUTCFullYear(y, mo, d);
  t.setUTCHours(h, mi, s, ms);
  return t.getTime();
}

/** The range a date/dateTime/instant string covers, or undefined when it is not one. */
export function dateRange(value: string): Range | undefined {
  const m = DATE.exec(value);
  if (m === null) return undefined;
  const y = Number(m[1]);
  if (m[2] === undefined) return [utc(y, 0, 1), utc(y + 1, 0, 1) - 1];
  const mo = Number(m[2]) - 1;
  if (mo < 0 || mo > 11) return undefined;
  if (m[3] === undefined) return [utc(y, mo, 1), utc(y, mo + 1, 1) - 1];
  const d = Number(m[3]);
  if (d < 1 || d > 31) return undefined;
  if (m[4] === undefined) return [utc(y, mo, d), utc(y, mo, d + 1) - 1];
  return timeRange(m, y, mo, d);
}

function timeRange(m: RegExpExecArray, y: number, mo: number, d: number): Range | undefined {
  const h = Number(m[4]);
  const mi = Number(m[5]);
  const s = m[6] === undefined ? 0 : Number(m[6]);
  if (h > 24 || mi > 59 || s > 60) return undefined;
  const offset = m[8] === undefined || m[8] === 'Z' ? 0 : offsetMinutes(m[8]);
  const fraction = m[7];
  let width: number;
  let ms = 0;
  if (m[6] === undefined) width = 60_000;
  else if (fraction === undefined) width = 1000;
  else {
    const digits = Math.min(fraction.length, 3);
    ms = Number(fraction.slice(0, 3).padEnd(3, '0'));
    width = 10 ** (3 - digits);
  }
  const lo = utc(y, mo, d, h, mi, s, ms) - offset * 60_000;
  return [lo, lo + width - 1];
}

function offsetMinutes(tz: string): number {
  const sign = tz[0] === '-' ? -1 : 1;
  return sign * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(4, 6)));
}
