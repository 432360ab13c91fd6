import { randomBytes } from 'node:crypto';

/**
 * JSON with FHIR decimals kept as written. A decimal's precision is part of its value
 * (datatypes.html#decimal: `1.50` is not `1.5`), but `JSON.parse` turns every number into a
 * double, which forgets trailing zeros, exponents and digits past about 17. So:
 *
 * - `parseJson` parses with `JSON.parse`; when the text holds a number whose text a double does
 *   not give back (rare: a fast scan says whether one may be there), the parsed object or array
 *   holding it gets a map, under a symbol, from the member's key to its text. Symbol members are
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
 * Text that may hold a number a double does not give back: a whole number token in value position
 * (after `:`, `,` or `[`, before `,`, `}` or `]`) that is a negative zero, has a fraction ending in
 * 0, an exponent, six zeros after the point (1e-7 prints as such) or 17 digits and points (too
 * many digits, or past 1e21). A string may match too, rarely; that only costs the slow path.
 */
const MAYBE_WRITTEN = /[:,[]\s*(?:-0|-?\d+\.\d*0|-?\d+(?:\.\d+)?[eE][-+]?\d+|-?\d*\.0{6}\d*|-?\d[\d.]{16,})\s*[,}\]]/;
export function parseJson(text: string): unknown {
  const value = JSON.parse(text) as unknown;
  if (!MAYBE_WRITTEN.test(text) || typeof value !== 'object' || value === null) return value;
  const forms = writtenForms(text);
  if (forms === undefined || forms.written.size === 0) return value;
  // The parsed value is walked in the order JSON.parse built it, which is the text's as long as
  // no object has an integer-like key (those come first) or a repeated one (the last is kept);
  // either shows as a count or a value that is not the text's, and then nothing is kept.
  const walk: Walk = { forms: forms.written, n: 0, marks: [], holds: [] };
  let found: number;
  try {
    found = walkValue(value, walk);
  } catch {
    return value; // nested deeper than the stack: what JSON.parse gave
  }
  if (found < 0 || walk.n !== forms.count) return value;
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

/**
 * The text's numbers: how many, and by their place among them those a double does not give back.
 * Strings are skipped; anything else that starts with `-` or a digit is a number (JSON.parse has
 * already said the text is JSON).
 */
function writtenForms(text: string): { count: number; written: Map<number, string> } | undefined {
  const written = new Map<number, string>();
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 92) i++;
        else if (d === 34) break;
      }
    } else if (c === 45 || (c >= 48 && c <= 57)) {
      const start = i;
      let dot = false;
      let exponent = false;
      for (; i + 1 < text.length; i++) {
        const d = text.charCodeAt(i + 1);
        if (d === 46) dot = true;
        else if (d === 101 || d === 69) exponent = true;
        else if (!((d >= 48 && d <= 57) || d === 43 || d === 45)) break;
      }
      const end = i + 1;
      // Only these can differ from how a double prints: an exponent, a fraction ending in 0 or
      // starting with six zeros, a negative zero, 16 characters or more.
      const maybe = exponent || end - start >= 16 || (c === 45 && text.charCodeAt(start + 1) === 48) || (dot && (text.charCodeAt(end - 1) === 48 || text.startsWith('.000000', text.indexOf('.', start))));
      if (maybe) {
        const raw = text.slice(start, end);
        if (String(Number(raw)) !== raw && written.set(count, raw).size > MAX_WRITTEN) return undefined;
      }
      count++;
    }
  }
  return { count, written };
}

interface Walk {
  forms: Map<number, string>;
  /** Numbers passed so far. */
  n: number;
  /** holder, key, written form; flat. */
  marks: unknown[];
  /** Containers with a written number somewhere below them. */
  holds: Holder[];
}

/** 1: a written number below; 0: none; -1: the value is not the text's. */
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
    if (Number(written) !== x) return -1;
    w.marks.push(holder, String(key), written);
    return 1;
  }
  if (typeof x !== 'object' || x === null) return 0;
  const r = walkValue(x, w);
  if (r > 0) w.holds.push(x as Holder);
  return r;
}

/**
 * Whether a value parsed by parseJson (or a copy by spread) holds a number kept as written; a
 * Bundle also when a resource of its entries does (Herald builds Bundles around parsed resources).
 */
export function holdsWrittenNumbers(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if ((value as Holder)[HOLDS] === true) return true;
  const b = value as { resourceType?: unknown; entry?: unknown };
  return b.resourceType === 'Bundle' && Array.isArray(b.entry) && b.entry.some((e) => holdsWrittenNumbers((e as { resource?: unknown } | null)?.resource));
}

/** A copy made member by member (a subset of a resource) keeps what its members were written as. */
export function keepWrittenNumbers(from: object, to: object): void {
  const f = from as Holder;
  if (f[WRITTEN]) (to as Holder)[WRITTEN] = f[WRITTEN];
  if (f[HOLDS]) (to as Holder)[HOLDS] = true;
}

/** A number member set since parsing (a JSON Patch value) that was written as `written`. */
export function setWrittenNumber(holder: object, key: string, written: string): void {
  const h = holder as Holder;
  (h[WRITTEN] ??= new Map()).set(key, written);
  h[HOLDS] = true;
}

// A number kept as written is first written as a string holding this marker (a control
// character, which JSON.stringify always escapes, and a per-process nonce), then unquoted.
const MARK = `\u0001herald-number-${randomBytes(8).toString('hex')}-`;
const ESCAPED = JSON.stringify(MARK).slice(1, -1).replaceAll('\\', '\\\\');
const MARKS = new RegExp(`"${ESCAPED}([-+.\\deE]+)"`, 'g');

export function stringifyJson(value: unknown): string {
  if (!holdsWrittenNumbers(value)) return JSON.stringify(value);
  const text = JSON.stringify(value, function (this: Holder, key: string, v: unknown) {
    if (typeof v !== 'number') return v;
    const written = this[WRITTEN]?.get(key);
    return written !== undefined && Number(written) === v ? MARK + written : v;
  });
  return text.replace(MARKS, (_m, written: string) => written);
}

/** The text a number member was written with, when a double does not give it back. */
export function writtenNumber(holder: object, key: string): string | undefined {
  return (holder as Holder)[WRITTEN]?.get(key);
}
