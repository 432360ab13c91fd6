/**
 * Per FHIR type, how a value becomes index rows for each kind of search parameter
 * (search.html: "the following table describes how each data type is matched"). The plan tells
 * the FHIR type of every value, so each converter handles exactly one shape and nothing here
 * guesses from the JSON. Values that do not fit their type are skipped, never thrown on.
 *
 * Pairs with no converter yield no rows, deliberately: a date parameter over
 * `Procedure.performed[x]` finds no date in its Age or Range variant, a quantity parameter none
 * in SampledData. extract.test.ts lists those pairs, so a missing converter cannot hide.
 */
import type { Definitions } from '../../fhir/definitions/index.ts';
import type { ParamType } from '../types.ts';
import { dateRange } from './dates.ts';
import { parseRelative, splitCanonical } from './references.ts';
import { normalize, type Convert, type RowSink } from './sink.ts';

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

function num(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

function each(v: unknown, fn: (item: unknown) => void): void {
  if (Array.isArray(v)) for (const item of v) fn(item);
  else if (v !== undefined && v !== null) fn(v);
}

function normText(v: unknown): string | null {
  const s = str(v);
  if (s === null) return null;
  const norm = normalize(s);
  return norm === '' ? null : norm;
}

const STRINGS = ['string', 'markdown', 'code', 'id', 'uri', 'url', 'canonical', 'oid', 'uuid'] as const;
const NUMBERS = ['decimal', 'integer', 'positiveInt', 'unsignedInt', 'integer64'] as const;
const DATES = ['date', 'dateTime', 'instant'] as const;

function forAll(types: readonly string[], convert: Convert): Record<string, Convert> {
  return Object.fromEntries(types.map((t) => [t, convert]));
}

// ---------------------------------------------------------------------------------------------
// string: HumanName and Address by part (search.html#string)
// ---------------------------------------------------------------------------------------------

function strings(v: unknown, s: RowSink): void {
  if (typeof v === 'string') s.string(v);
  else if (Array.isArray(v)) for (const x of v) if (typeof x === 'string') s.string(x);
}

const STRING: Record<string, Convert> = {
  ...forAll(STRINGS, strings),
  HumanName: (v, s) => {
    const n = obj(v);
    if (n === undefined) return;
    strings(n.family, s);
    strings(n.given, s);
    strings(n.prefix, s);
    strings(n.suffix, s);
    strings(n.text, s);
  },
  Address: (v, s) => {
    const a = obj(v);
    if (a === undefined) return;
    for (const part of [a.line, a.city, a.district, a.state, a.postalCode, a.country, a.text]) strings(part, s);
  },
  Identifier: (v, s) => strings(obj(v)?.value, s),
  ContactPoint: (v, s) => strings(obj(v)?.value, s),
  Coding: (v, s) => strings(obj(v)?.display, s),
  CodeableConcept: (v, s) => {
    const cc = obj(v);
    if (cc === undefined) return;
    strings(cc.text, s);
    each(cc.coding, (c) => strings(obj(c)?.display, s));
  },
  Annotation: (v, s) => strings(obj(v)?.text, s),
};

// ---------------------------------------------------------------------------------------------
// token (search.html#token): system|code plus display text for :text
// ---------------------------------------------------------------------------------------------

const coding: Convert = (v, s) => {
  const c = obj(v);
  if (c === undefined) return;
  const [system, code, text] = [str(c.system), str(c.code), normText(c.display)];
  if (system !== null || code !== null || text !== null) s.token(system, code, text);
};

const codeableConcept: Convert = (v, s) => {
  const cc = obj(v);
  if (cc === undefined) return;
  if (Array.isArray(cc.coding)) for (const c of cc.coding) coding(c, s);
  const text = normText(cc.text);
  if (text !== null) s.token(null, null, text);
};

/** Identifier: system|value with the type's text; and system|code|value rows for :of-type. */
const identifier: Convert = (v, s) => {
  const id = obj(v);
  if (id === undefined) return;
  const [system, value, type] = [str(id.system), str(id.value), obj(id.type)];
  const codings = Array.isArray(type?.coding) ? (type.coding as unknown[]) : [];
  let text = normText(type?.text);
  for (const c of codings) text ??= normText(obj(c)?.display);
  if (system !== null || value !== null) s.token(system, value, text);
  if (value === null) return;
  for (const c of codings) {
    const [typeSystem, typeCode] = [str(obj(c)?.system), str(obj(c)?.code)];
    if (typeSystem !== null && typeCode !== null) s.token(`${typeSystem}|${typeCode}`, value, null, `${s.code}:of-type`);
  }
};

const plainToken: Convert = (v, s) => {
  if (typeof v === 'string' && v !== '') s.token(null, v, null);
  else if (typeof v === 'boolean' || typeof v === 'number') s.token(null, String(v), null);
};

const TOKEN: Record<string, Convert> = {
  ...forAll([...STRINGS, ...NUMBERS, 'boolean'], plainToken),
  Coding: coding,
  CodeableConcept: codeableConcept,
  CodeableReference: (v, s) => codeableConcept(obj(v)?.concept, s),
  Identifier: identifier,
  /** ContactPoint: the value, no system (search.html lists no URI part for ContactPoint). */
  ContactPoint: (v, s) => plainToken(obj(v)?.value, s),
};

// ---------------------------------------------------------------------------------------------
// reference (search.html#reference)
// ---------------------------------------------------------------------------------------------

/**
 * A literal reference string: `Type/id[/_history/v]`, relative or absolute into this server's
 * base, gives type and id; any other absolute URL (or urn:) is kept as the url; `#id` points
 * into the resource's own contained resources and is not indexed.
 */
function referenceString(ref: string, s: RowSink, identifierSystem: string | null, identifierValue: string | null): void {
  if (ref.startsWith('#')) {
    if (identifierSystem !== null || identifierValue !== null) s.reference(null, null, null, null, identifierSystem, identifierValue);
    return;
  }
  const base = s.baseUrl;
  const local = base !== undefined && ref.startsWith(`${base}/`) ? ref.slice(base.length + 1) : ref;
  const literal = /^[A-Za-z][A-Za-z0-9+.-]*:/.test(local) ? undefined : parseRelative(local);
  if (literal !== undefined && s.defs.isResourceType(literal.type)) {
    s.reference(literal.type, literal.id, null, literal.version, identifierSystem, identifierValue);
  } else {
    s.reference(null, null, ref, null, identifierSystem, identifierValue);
  }
}

const reference: Convert = (v, s) => {
  const r = obj(v);
  if (r === undefined) return;
  const ident = obj(r.identifier);
  const [system, value] = [str(ident?.system), str(ident?.value)];
  const ref = str(r.reference);
  if (ref !== null) referenceString(ref, s, system, value);
  else if (system !== null || value !== null) s.reference(null, null, null, null, system, value);
};

const canonical: Convert = (v, s) => {
  const c = str(v);
  if (c === null || c.startsWith('#')) return;
  const { url, version } = splitCanonical(c);
  s.reference(null, null, url, version, null, null);
};

const REFERENCE: Record<string, Convert> = {
  Reference: reference,
  CodeableReference: (v, s) => reference(obj(v)?.reference, s),
  canonical,
  ...forAll(['uri', 'url', 'oid', 'uuid', 'string'], (v, s) => {
    const ref = str(v);
    if (ref !== null) referenceString(ref, s, null, null);
  }),
};

/** A whole resource as a reference value (`Bundle.entry[0].resource`): its type and id. */
const resourceAsReference: Convert = (v, s) => {
  const r = obj(v);
  const [type, id] = [str(r?.resourceType), str(r?.id)];
  if (type !== null && id !== null) s.reference(type, id, null, null, null, null);
};

// ---------------------------------------------------------------------------------------------
// date, number, quantity, uri
// ---------------------------------------------------------------------------------------------

const dateValue: Convert = (v, s) => {
  const range = typeof v === 'string' ? dateRange(v) : undefined;
  if (range !== undefined) s.date(range[0], range[1]);
};

/**
 * Period: open ends are unbounded (search.html#date); a Period with neither end is no value. One
 * whose end precedes its start (invalid, per-1, but nothing rejects it on write) is the range
 * between its two ends: every value's range starts no later than it ends, which the stores'
 * date windows rely on (store/date-bounds.ts).
 */
function periodRange(v: unknown): [number, number] | undefined {
  const p = obj(v);
  const start = typeof p?.start === 'string' ? dateRange(p.start) : undefined;
  const end = typeof p?.end === 'string' ? dateRange(p.end) : undefined;
  if (start !== undefined && end !== undefined && end[1] < start[0]) return [end[0], start[1]];
  if (start !== undefined || end !== undefined) return [start?.[0] ?? -Infinity, end?.[1] ?? Infinity];
  return undefined;
}

const period: Convert = (v, s) => {
  const range = periodRange(v);
  if (range !== undefined) s.date(range[0], range[1]);
};

const DATE: Record<string, Convert> = {
  ...forAll(DATES, dateValue),
  Period: period,
  /**
   * Timing: one range, its outer limits (search.html#date: "the specified scheduling details are
   * ignored and only the outer limits matter"): from the earliest event or start of the repeat's
   * boundsPeriod to the latest event or end of it, an open end of the bounds unbounded. Without
   * an event or a bounds Period a Timing is anchored to no date (only a code, or a repeat alone).
   */
  Timing: (v, s) => {
    const t = obj(v);
    let lo = Infinity;
    let hi = -Infinity;
    const widen = (range: readonly [number, number] | undefined) => {
      if (range === undefined) return;
      lo = Math.min(lo, range[0]);
      hi = Math.max(hi, range[1]);
    };
    each(t?.event, (e) => widen(typeof e === 'string' ? dateRange(e) : undefined));
    const repeat = obj(t?.repeat);
    widen(periodRange(repeat?.boundsPeriod));
    // A repeat with no bounds Period runs on from the first event: for its bounds Duration, else
    // for a count of times (bounded, but how far it reaches is not worked out: the events' extent),
    // else without end.
    if (repeat !== undefined && repeat.boundsPeriod === undefined && lo <= hi) {
      const duration = durationMs(obj(repeat.boundsDuration));
      if (duration !== undefined) hi = Math.max(hi, lo + duration);
      else if (repeat.count === undefined && repeat.countMax === undefined) hi = Infinity;
    }
    if (lo <= hi) s.date(lo, hi);
  },
};

/** UCUM time units of a Duration, in ms; a month and a year at their longest (the range is an outer limit). */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000, wk: 604_800_000, mo: 31 * 86_400_000, a: 366 * 86_400_000 };

function durationMs(d: Record<string, unknown> | undefined): number | undefined {
  const value = num(d?.value);
  const unit = UNIT_MS[str(d?.code) ?? str(d?.unit) ?? ''];
  return value === undefined || unit === undefined || value < 0 ? undefined : value * unit;
}

const numberValue: Convert = (v, s) => {
  const n = num(v);
  if (n !== undefined) s.number(n);
};

const NUMBER: Record<string, Convert> = {
  ...forAll(NUMBERS, numberValue),
  Quantity: (v, s) => numberValue(obj(v)?.value, s),
  /** Range (RiskAssessment.probability[x]): its low and high values. */
  Range: (v, s) => {
    numberValue(obj(obj(v)?.low)?.value, s);
    numberValue(obj(obj(v)?.high)?.value, s);
  },
};

const quantity: Convert = (v, s) => {
  const q = obj(v);
  const value = num(q?.value);
  if (value !== undefined) s.quantity(value, str(q!.system), str(q!.code), str(q!.unit));
};

const QUANTITY: Record<string, Convert> = {
  ...forAll(NUMBERS, (v, s) => {
    const n = num(v);
    if (n !== undefined) s.quantity(n, null, null, null);
  }),
  Quantity: quantity,
  /** Money: the currency is the unit, coded in ISO 4217. */
  Money: (v, s) => {
    const m = obj(v);
    const value = num(m?.value);
    const currency = str(m?.currency);
    if (value !== undefined) s.quantity(value, currency === null ? null : 'urn:iso:std:iso:4217', currency, null);
  },
  Range: (v, s) => {
    quantity(obj(v)?.low, s);
    quantity(obj(v)?.high, s);
  },
};

const URI: Record<string, Convert> = forAll(STRINGS, (v, s) => {
  const u = str(v);
  if (u !== null) s.uri(u);
});

const BY_PARAM_TYPE: Partial<Record<ParamType, Record<string, Convert>>> = {
  string: STRING,
  token: TOKEN,
  reference: REFERENCE,
  date: DATE,
  number: NUMBER,
  quantity: QUANTITY,
  uri: URI,
};

const cache = new WeakMap<Definitions, Map<string, Convert | null>>();

/**
 * The converter of a FHIR type for a parameter type. Derived types use their base's (Age,
 * Duration, Count, Distance and SimpleQuantity are Quantities); a whole resource is a reference
 * value by type and id. Undefined when the pair yields no rows.
 */
export function converterFor(defs: Definitions, paramType: ParamType, fhirType: string): Convert | undefined {
  let byKey = cache.get(defs);
  if (byKey === undefined) cache.set(defs, (byKey = new Map()));
  const key = `${paramType}:${fhirType}`;
  let found = byKey.get(key);
  if (found === undefined) {
    found = lookup(defs, paramType, fhirType) ?? null;
    byKey.set(key, found);
  }
  return found ?? undefined;
}

function lookup(defs: Definitions, paramType: ParamType, fhirType: string): Convert | undefined {
  const table = BY_PARAM_TYPE[paramType];
  if (table === undefined) return undefined;
  for (let t: string | undefined = fhirType; t !== undefined; t = defs.types.get(t)?.base) {
    if (Object.hasOwn(table, t)) return table[t];
  }
  if (paramType === 'reference' && defs.types.get(fhirType)?.kind === 'resource') return resourceAsReference;
  return undefined;
}
