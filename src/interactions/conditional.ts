import { badRequest } from '../fhir/errors.ts';
import type { FhirVersion, Resource } from '../fhir/types.ts';
import type { StoreReader, TokenIndexEntry, TokenQuery } from '../store/store.ts';

/**
 * Criteria of conditional interactions (If-None-Exist, conditional update). Until full search lands
 * these support the parameters that identify a resource: `_id` and `identifier`
 * (`system|value`, `|value` for no system, or `value` for any system), ANDed when repeated.
 * Anything else is refused with a 400 rather than silently ignored: a condition that is not
 * evaluated could create duplicates.
 */
const SUPPORTED = new Set(['_id', 'identifier']);

/** Index entries written with each version, which conditional criteria are answered from. */
export function tokensOf(resource: Resource): TokenIndexEntry[] {
  const out: TokenIndexEntry[] = [{ code: '_id', value: resource.id! }];
  const identifiers = resource.identifier;
  if (!Array.isArray(identifiers)) return out;
  for (const ident of identifiers as { system?: unknown; value?: unknown }[]) {
    if (typeof ident?.value !== 'string') continue;
    out.push({ code: 'identifier', value: ident.value, ...(typeof ident.system === 'string' ? { system: ident.system } : {}) });
  }
  return out;
}

export function parseCriteria(query: URLSearchParams | string): TokenQuery[] {
  const params = typeof query === 'string' ? new URLSearchParams(query.replace(/^\?/, '')) : query;
  const tokens: TokenQuery[] = [];
  for (const [name, raw] of params) {
    if (name.startsWith('_format')) continue;
    if (!SUPPORTED.has(name)) {
      throw badRequest(`Conditional criteria parameter '${name.slice(0, 80)}' is not supported: use _id or identifier`);
    }
    if (raw === '' || raw.includes(',')) throw badRequest(`Conditional criteria '${name}' needs exactly one value`);
    tokens.push(parseToken(name, raw));
  }
  if (tokens.length === 0) throw badRequest('A conditional interaction needs search criteria (e.g. identifier=system|value)');
  return tokens;
}

function parseToken(code: string, raw: string): TokenQuery {
  const bar = raw.indexOf('|');
  if (code === '_id' || bar < 0) return { code, value: raw };
  const value = raw.slice(bar + 1);
  if (value === '') throw badRequest(`Conditional criteria '${code}=${raw.slice(0, 80)}' has no value`);
  return { code, system: raw.slice(0, bar), value };
}

/** Ids of live resources matching the criteria (at most 2: enough to tell none, one or many). */
export function findMatches(db: StoreReader, fv: FhirVersion, type: string, criteria: TokenQuery[]): Promise<string[]> {
  return db.findByTokens(fv, type, criteria, 2);
}
