/**
 * Reading literal references (`Patient/1`, `http://x/fhir/Patient/1/_history/2`) and canonical
 * URLs (`http://x/Questionnaire/q|2.0`). Shared by the `resolve() is X` tests (criteria.ts), which
 * need the target type without fetching anything, and the reference rows (values.ts).
 */

/** A reference's type, id and optional version. */
export interface Literal {
  type: string;
  id: string;
  version: string | null;
}

/** `[base/]Type/id[/_history/vid]` at the end of a reference (ids as FHIR allows them). */
const LITERAL = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/([A-Za-z0-9\-.]{1,64}))?$/;
const RELATIVE = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/([A-Za-z0-9\-.]{1,64}))?$/;

/** Parses `Type/id[/_history/v]` exactly (a relative literal reference), else undefined. */
export function parseRelative(ref: string): Literal | undefined {
  const m = RELATIVE.exec(ref);
  return m === null ? undefined : { type: m[1]!, id: m[2]!, version: m[3] ?? null };
}

/** The resource type a reference string points to, relative or absolute; undefined when unknown. */
export function referencedType(ref: string): string | undefined {
  return LITERAL.exec(ref)?.[1];
}

/** Splits `url|version`. */
export function splitCanonical(value: string): { url: string; version: string | null } {
  const bar = value.indexOf('|');
  return bar < 0 ? { url: value, version: null } : { url: value.slice(0, bar), version: value.slice(bar + 1) || null };
}
