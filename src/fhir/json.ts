import { randomBytes } from 'node:crypto';
import { badRequest } from './errors.ts';

/**
 * JSON with FHIR decimals kept as written. A decimal's precision is part of its value
 * (datatypes.html#decimal: `1.50` is not `1.5`), but `JSON.parse` turns every number into a
 * double, which forgets trailing zeros, exponents and digits past about 17. So:
 *
 * - `parseJson` parses with `JSON.parse`, then scans the text; when it holds a number whose text a
 *   double does not give back (rare), the parsed object or array holding it gets a map, under a
 *   symbol, from the member's key to its text. Symbol members are
 *   invisible to JSON.stringify, `Object.keys` and `for…in`, and copied by object spread, so the
 *   resource travels through validation, FHIRPath and `{ ...r, id }` as plain JSON.
 * - `stringifyJson` writes those numbers back as they were written, as long as the member still
 *   holds the same value; anything else is `JSON.stringify`'s own output.
 *
 * What Herald stores is `stringifyJson`'s text, so reads, history, searches and notifications give
 * the decimal as it was sent.
 */

/** On an object or array: its members whose number text a double does not give back, key → text. */
const WRITTEN = Symbol('herald.written-numbers');
/** On an object or array: some member at any depth below it is in a WRITTEN map. */
const HOLDS = Symbol('herald.holds-written-numbers');

type Holder = { [WRITTEN]?: Map<string, string>; [HOLDS]?: true };

/**
 * Parses JSON text, keeping how its numbers were written where a double does not give it back.
 * `strict` (request bodies) also refuses an object that repeats a key (RFC 8259 wants names
 * unique; JSON.parse would keep the last silently): a 400 naming it. Stored texts, which Herald
 * wrote, are parsed without that check: the parsed value is walked only when the scan of the text
 * (indexOf over strings, about 600 MB/s) finds a written form.
 */
export function parseJson(text: string, options: { strict?: boolean } = {}): unknown {
  const value = JSON.parse(text) as unknown;
  if (typeof value !== 'object' || value === null) return value;
  const strict = options.strict === true;
  const scan = scanText(text);
  if (!strict && scan.written.size === 0) return value;
  // The parsed value is walked in the order JSON.parse built it, which is the text's as long as
  // no object has an integer-like key (those come first) or a repeated one (the last is kept at
  // the first one's place). The first stops the walk (no element of FHIR's is named so, and
  // validation refuses it); the second shows as fewer keys than the text has.
  const walk: Walk = { forms: scan.written, n: 0, keys: 0, misaligned: false, marks: [], holds: [] };
  let found: number;
  try {
    found = walkValue(value, walk);
  } catch {
    return value; // nested deeper than the stack: what JSON.parse gave
  }
  if (found < 0) return value;
  if (walk.keys !== scan.keys) {
    if (strict) throw badRequest(`The body repeats the key '${repeatedKey(text) ?? '?'}' in one object: JSON names must be unique (RFC 8259), and which value was meant is not known`);
    return value;
  }
  if (walk.misaligned || walk.n !== scan.count || scan.over) return value;
  for (let k = 0; k < walk.marks.length; k += 3) {
    const holder = walk.marks[k] as Holder;
    (holder[WRITTEN] ??= new Map()).set(walk.marks[k + 1] as string, walk.marks[k + 2] as string);
    holder[HOLDS] = true;
  }
  for (const h of walk.holds) h[HOLDS] = true;
  if (found > 0) (value as Holder)[HOLDS] = true;
  return value;
}

/**
 * The most numbers of one text kept as written: past it, all are read as doubles. Keeping one
 * costs about a microsecond and a map entry; a 16 MiB body of `1.50,` holds 3 million. A
 * transaction of 10,000 Observations, each with a few decimals written so, stays under it.
 */
export const MAX_WRITTEN = 100_000;

interface Scan {
  /** Number tokens. */
  count: number;
  /** Object keys (a string followed by `:`). */
  keys: number;
  /** By their place among the numbers, those a double does not give back (up to MAX_WRITTEN). */
  written: Map<number, string>;
  /** More than MAX_WRITTEN of them. */
  over: boolean;
}

/**
 * The text's numbers and keys. Strings are skipped (a string followed by `:` is a key); anything
 * else that starts with `-` or a digit is a number (JSON.parse has already said the text is JSON).
 */
function scanText(text: string): Scan {
  const written = new Map<number, string>();
  let count = 0;
  let keys = 0;
  let over = false;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      i = stringEnd(text, i) + 1;
      while (i < n && isSpace(text.charCodeAt(i))) i++;
      if (text.charCodeAt(i) === 58) keys++;
    } else if (c === 45 || (c >= 48 && c <= 57)) {
      const start = i;
      let dot = false;
      let exponent = false;
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 46) dot = true;
        else if (d === 101 || d === 69) exponent = true;
        else if (!((d >= 48 && d <= 57) || d === 43 || d === 45)) break;
      }
      // Only these can differ from how a double prints: an exponent, a fraction ending in 0 or
      // starting with six zeros, a negative zero, 16 characters or more.
      const maybe = exponent || i - start >= 16 || (c === 45 && text.charCodeAt(start + 1) === 48) || (dot && (text.charCodeAt(i - 1) === 48 || text.startsWith('.000000', text.indexOf('.', start))));
      if (maybe && !over) {
        const raw = text.slice(start, i);
        if (String(Number(raw)) !== raw && written.set(count, raw).size > MAX_WRITTEN) {
          over = true;
          written.clear();
        }
      }
      count++;
    } else {
      i++;
    }
  }
  return { count, keys, written, over };
}

/** Where the string opened at `open` closes (its quote): indexOf, skipping quotes escaped by an odd run of backslashes. */
function stringEnd(text: string, open: number): number {
  let end = text.indexOf('"', open + 1);
  while (end > 0 && text.charCodeAt(end - 1) === 92) {
    let b = end - 1;
    while (text.charCodeAt(b - 1) === 92) b--;
    if ((end - b) % 2 === 0) break; // an even run escapes itself: the quote closes
    end = text.indexOf('"', end + 1);
  }
  return end < 0 ? text.length : end;
}

const isSpace = (c: number) => c === 32 || c === 10 || c === 13 || c === 9;

/** The first key an object of the text repeats (only asked once the counts say one does). */
function repeatedKey(text: string): string | undefined {
  const open: (Set<string> | undefined)[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 123) open.push(new Set());
    else if (c === 91) open.push(undefined);
    else if (c === 125 || c === 93) open.pop();
    else if (c === 34) {
      const start = i;
      i = stringEnd(text, i);
      let j = i + 1;
      while (j < text.length && isSpace(text.charCodeAt(j))) j++;
      const keys = open.at(-1);
      if (text.charCodeAt(j) !== 58 || keys === undefined) continue;
      const key = JSON.parse(text.slice(start, i + 1)) as string;
      if (keys.has(key)) return key.length > 64 ? `${key.slice(0, 61)}...` : key;
      keys.add(key);
    }
  }
  return undefined;
}

interface Walk {
  forms: Map<number, string>;
  /** Numbers passed so far. */
  n: number;
  /** Object keys passed so far. */
  keys: number;
  /** A number that is not the one the text has at its place. */
  misaligned: boolean;
  /** holder, key, written form; flat. */
  marks: unknown[];
  /** Containers with a written number somewhere below them. */
  holds: Holder[];
}

/** 1: a written number below; 0: none; -1: an integer-like key (the walk stops). */
function walkValue(v: object, w: Walk): number {
  let found = 0;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const r = walkMember(v, i, v[i], w);
      if (r < 0) return r;
      found |= r;
    }
    return found;
  }
  for (const k in v) {
    const c = k.charCodeAt(0);
    if (c >= 48 && c <= 57 && /^(0|[1-9]\d*)$/.test(k)) return -1;
    w.keys++;
    const r = walkMember(v, k, (v as Record<string, unknown>)[k], w);
    if (r < 0) return r;
    found |= r;
  }
  return found;
}

function walkMember(holder: object, key: string | number, x: unknown, w: Walk): number {
  if (typeof x === 'number') {
    const written = w.forms.get(w.n++);
    if (written === undefined) return 0;
    if (!Object.is(Number(written), x)) {
      w.misaligned = true;
      return 0;
    }
    w.marks.push(holder, String(key), written);
    return 1;
  }
  if (typeof x !== 'object' || x === null) return 0;
  const r = walkValue(x, w);
  if (r > 0) w.holds.push(x as Holder);
  return r;
}

/** A copy made member by member (a subset of a resource) keeps what its members were written as. */
export function keepWrittenNumbers(from: object, to: object): void {
  const f = from as Holder;
  if (f[WRITTEN]) (to as Holder)[WRITTEN] = f[WRITTEN];
  if (f[HOLDS]) (to as Holder)[HOLDS] = true;
}

/**
 * A member set since parsing (a JSON Patch value): a number written as `written`, or, with
 * `undefined`, anything else (a form kept for what the member held before no longer applies).
 */
export function setWrittenNumber(holder: object, key: string, written: string | undefined): void {
  const h = holder as Holder;
  if (written === undefined) {
    h[WRITTEN]?.delete(key);
    return;
  }
  (h[WRITTEN] ??= new Map()).set(key, written);
  h[HOLDS] = true;
}

/** Forgets every form kept for the members of `holder` (an array whose items moved). */
export function forgetWrittenNumbers(holder: object): void {
  delete (holder as Holder)[WRITTEN];
}

// A number kept as written is first written as a string holding this marker (a control
// character, which JSON.stringify always escapes, and a per-process nonce), then unquoted.
const MARK = `\u0001herald-number-${randomBytes(8).toString('hex')}-`;
const ESCAPED = JSON.stringify(MARK).slice(1, -1).replaceAll('\\', '\\\\');
const MARKS = new RegExp(`"${ESCAPED}([-+.\\deE]+)"`, 'g');

/** On a stand-in for a stored resource (storedResource): the resource's JSON text. */
const STORED = Symbol('herald.stored-json');
/** What a stand-in's toJSON gives: only stringifyJson turns it into the text. */
const UNSPLICED = `\u0001herald-stored-${randomBytes(8).toString('hex')}`;
const SPLICE = `${UNSPLICED}-`;
const SPLICES = new RegExp(`"${JSON.stringify(SPLICE).slice(1, -1).replaceAll('\\', '\\\\')}(\\d+)"`, 'g');

/**
 * A stored resource's text standing in for the resource in an answer (the entries of a search or
 * history page, a notification's focus): it reads as `readsAs` (the parsed resource, or just its
 * resourceType and id), and stringifyJson writes the text in whole, so the resource is neither
 * parsed nor serialized again (and keeps its decimals as written). JSON.stringify alone writes a
 * marker string in its place.
 */
export function storedResource<T extends { resourceType: string; id?: string }>(text: string, readsAs: T): T {
  return Object.create(readsAs, { [STORED]: { value: text }, toJSON: { value: () => UNSPLICED } }) as T;
}

/** Whether stringifyJson must look inside `value`: written numbers, or stored stand-ins (in a Bundle's entries, Bundles nested). */
function special(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Holder & { [STORED]?: string; resourceType?: unknown; entry?: unknown };
  if (v[HOLDS] === true || v[STORED] !== undefined) return true;
  return v.resourceType === 'Bundle' && Array.isArray(v.entry) && v.entry.some((e) => special((e as { resource?: unknown } | null)?.resource));
}

export function stringifyJson(value: unknown): string {
  if (!special(value)) return JSON.stringify(value);
  const stored: string[] = [];
  const text = JSON.stringify(value, function (this: Holder & Record<string, unknown>, key: string, v: unknown) {
    if (v === UNSPLICED) {
      const raw = (this[key] as { [STORED]?: string } | undefined)?.[STORED];
      if (raw === undefined) return v;
      stored.push(raw);
      return SPLICE + (stored.length - 1);
    }
    if (typeof v !== 'number') return v;
    const written = this[WRITTEN]?.get(key);
    return written !== undefined && Object.is(Number(written), v) ? MARK + written : v;
  });
  const numbers = text.replace(MARKS, (_m, written: string) => written);
  return stored.length === 0 ? numbers : numbers.replace(SPLICES, (_m, i: string) => stored[Number(i)]!);
}

/** The text a number member was written with, when a double does not give it back. */
export function writtenNumber(holder: object, key: string): string | undefined {
  return (holder as Holder)[WRITTEN]?.get(key);
}
