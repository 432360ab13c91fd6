/**
 * Collects the index rows of one extraction: stamps each row with the current parameter code
 * (and composite group), normalises strings once, and drops rows identical to one already
 * collected for the same code and group, so `Ann Ann`, or a coding repeated in two elements,
 * is stored once.
 *
 * Duplicates are found by scanning the rows of the current batch (one parameter, or one
 * component of one composite group): batches are a handful of rows, where a scan beats building
 * and hashing a key per row. Past LARGE_BATCH rows the batch switches to a key set, so a
 * resource with thousands of identifiers stays linear.
 *
 * A resource may have at most MAX_INDEX_ROWS rows: the row past it ends the extraction with a 422
 * `too-costly`, so a resource with 80,000 names is refused after 20,000 rows, not indexed in full.
 */
import type { Definitions } from '../../fhir/definitions/index.ts';
import { FhirError } from '../../fhir/errors.ts';
import { MAX_INDEX_ROWS } from '../budget.ts';
import { normalizeString } from '../normalize.ts';
import { emptyIndexRows, type DateRow, type IndexRows, type NumberRow, type ParamType, type QuantityRow, type ReferenceRow, type StringRow, type TokenRow, type UriRow } from '../types.ts';
import type { Emit } from './plan.ts';

/** Turns one value of a FHIR type into rows. */
export type Convert = (value: unknown, sink: RowSink) => void;

/** Finds the converter for a value's FHIR type when the plan could not know it statically. */
export type ConverterLookup = (paramType: ParamType, fhirType: string) => Convert | undefined;

type Kind = keyof IndexRows;
type Row = IndexRows[Kind][number];

const LARGE_BATCH = 64;
const PRINTABLE_ASCII = /^[\x21-\x7e]+(?: [\x21-\x7e]+)*$/;

/**
 * normalizeString, with a shortcut that gives the identical result: printable ASCII without
 * leading, trailing or repeated spaces has nothing to decompose, strip or collapse, so lower-
 * casing is all normalisation does to it (extract.test.ts checks the two agree on the examples).
 */
export function normalize(s: string): string {
  return PRINTABLE_ASCII.test(s) ? s.toLowerCase() : normalizeString(s);
}

function rowKey(row: Row): string {
  return JSON.stringify(Object.values(row));
}

export class RowSink {
  readonly rows: IndexRows = emptyIndexRows();
  /** Code the rows are filed under (`name`, `combo-code-value-quantity#1`). */
  code = '';
  /** Composite group of the rows, undefined outside composites. */
  grp: number | undefined;
  /** Converters by plan slot, and the parameter type, of the plan being run. */
  converters: readonly (Convert | undefined)[] = [];
  paramType: ParamType = 'token';
  /** The Emit handed to plans: converts with the slot's converter, or looks one up by type. */
  readonly emit: Emit;
  private lastGrp = 0;
  private readonly start: Record<Kind, number> = { string: 0, token: 0, reference: 0, date: 0, number: 0, quantity: 0, uri: 0 };
  private large: Partial<Record<Kind, Set<string>>> = {};
  private count = 0;

  constructor(
    readonly defs: Definitions,
    /** Server base without trailing slash; absolute references into it become `Type/id`. */
    readonly baseUrl: string | undefined,
    lookup: ConverterLookup,
  ) {
    this.emit = (value, type, slot) => {
      const convert = this.converters[slot] ?? lookup(this.paramType, type);
      convert?.(value, this);
    };
  }

  /** Starts a batch: the rows of one parameter, or of one component within one group. */
  begin(code: string, grp: number | undefined): void {
    this.code = code;
    this.grp = grp;
    const rows = this.rows;
    const start = this.start;
    start.string = rows.string.length;
    start.token = rows.token.length;
    start.reference = rows.reference.length;
    start.date = rows.date.length;
    start.number = rows.number.length;
    start.quantity = rows.quantity.length;
    start.uri = rows.uri.length;
    this.large = {};
  }

  /** How many rows there are (of every kind). */
  size(): number {
    return this.count;
  }

  /** Where the rows end now, to drop what comes after with `reset`. */
  mark(): Record<Kind, number> {
    const r = this.rows;
    return { string: r.string.length, token: r.token.length, reference: r.reference.length, date: r.date.length, number: r.number.length, quantity: r.quantity.length, uri: r.uri.length };
  }

  /** Drops the rows added since `mark` (an incomplete composite group). */
  reset(mark: Record<Kind, number>): void {
    for (const kind of Object.keys(mark) as Kind[]) {
      const list = this.rows[kind] as unknown[];
      this.count -= list.length - mark[kind];
      list.length = mark[kind];
    }
  }

  /** Starts a new composite group and returns its number. */
  nextGroup(): number {
    return ++this.lastGrp;
  }

  /** Adds a row unless the batch has an equal one (`same` compares the kind's fields). */
  private add<K extends Kind>(kind: K, row: IndexRows[K][number], same: (a: IndexRows[K][number]) => boolean): void {
    if (this.grp !== undefined) row.grp = this.grp;
    const list = this.rows[kind] as IndexRows[K][number][];
    const from = this.start[kind];
    if (list.length - from < LARGE_BATCH) {
      for (let i = from; i < list.length; i++) if (same(list[i]!)) return;
    } else {
      let keys = this.large[kind];
      if (keys === undefined) this.large[kind] = keys = new Set(list.slice(from).map(rowKey));
      const key = rowKey(row);
      if (keys.has(key)) return;
      keys.add(key);
    }
    if (++this.count > MAX_INDEX_ROWS) {
      throw new FhirError(422, 'too-costly', `The resource would have more than ${MAX_INDEX_ROWS.toLocaleString('en')} search index rows (the limit; reached at parameter '${this.code}')`);
    }
    list.push(row);
  }

  string(exact: string): void {
    const norm = normalize(exact);
    if (norm === '') return;
    const row: StringRow = { code: this.code, norm, exact };
    this.add('string', row, (r) => r.exact === exact);
  }

  /** A token row; `code` overrides the current code (the `:of-type` rows of identifiers). */
  token(system: string | null, value: string | null, text: string | null, code = this.code): void {
    const row: TokenRow = { code, system, value, text };
    this.add('token', row, (r) => r.value === value && r.system === system && r.text === text && r.code === code);
  }

  reference(
    targetType: string | null,
    targetId: string | null,
    url: string | null,
    version: string | null,
    identifierSystem: string | null,
    identifierValue: string | null,
  ): void {
    const row: ReferenceRow = { code: this.code, targetType, targetId, url, version, identifierSystem, identifierValue };
    this.add('reference', row, (r) => r.targetId === targetId && r.targetType === targetType && r.url === url && r.version === version && r.identifierSystem === identifierSystem && r.identifierValue === identifierValue);
  }

  date(lo: number, hi: number): void {
    const row: DateRow = { code: this.code, lo, hi };
    this.add('date', row, (r) => r.lo === lo && r.hi === hi);
  }

  number(value: number): void {
    const row: NumberRow = { code: this.code, value };
    this.add('number', row, (r) => r.value === value);
  }

  quantity(value: number, system: string | null, unitCode: string | null, unit: string | null): void {
    const row: QuantityRow = { code: this.code, value, system, unitCode, unit };
    this.add('quantity', row, (r) => r.value === value && r.system === system && r.unitCode === unitCode && r.unit === unit);
  }

  uri(value: string): void {
    const row: UriRow = { code: this.code, value };
    this.add('uri', row, (r) => r.value === value);
  }
}
