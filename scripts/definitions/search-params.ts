/**
 * Extraction of the spec's SearchParameters into the compact search table.
 *
 * Kept faithful: every parameter the package defines is listed (deduplicated by url), including
 * the spec's experimental example parameters, which are flagged `x` so a search implementation
 * can skip them (R4's `example` parameter, for instance, redefines `_id`).
 */
import { compare } from './structure.ts';
import type { RawSearchComponent, RawSearchParameter } from '../../src/fhir/definitions/format.ts';

/** The subset of a SearchParameter this module reads. */
export interface SearchParameter {
  resourceType: 'SearchParameter';
  url: string;
  code: string;
  base?: string[];
  type: string;
  expression?: string;
  target?: string[];
  modifier?: string[];
  comparator?: string[];
  multipleOr?: boolean;
  multipleAnd?: boolean;
  component?: { definition: string; expression: string }[];
  experimental?: boolean;
}

/**
 * Reduces the parameters to the compact form, sorted by url. The same url may come from several
 * sources (R4 ships both individual files and a Bundle); differing content is a packaging error.
 */
export function extractSearchParameters(params: SearchParameter[]): RawSearchParameter[] {
  const byUrl = new Map<string, RawSearchParameter>();
  for (const param of params) {
    const raw = toRaw(param);
    const known = byUrl.get(raw.url);
    if (known !== undefined && JSON.stringify(known) !== JSON.stringify(raw)) {
      throw new Error(`SearchParameter ${raw.url} is defined twice with different content`);
    }
    byUrl.set(raw.url, raw);
  }
  return [...byUrl.values()].sort((a, b) => compare(a.url, b.url));
}

function toRaw(p: SearchParameter): RawSearchParameter {
  const raw: RawSearchParameter = { url: p.url, code: p.code, type: p.type };
  if (p.base !== undefined) raw.base = p.base;
  if (p.expression !== undefined) raw.expr = p.expression;
  if (p.target !== undefined) raw.target = p.target;
  if (p.modifier !== undefined) raw.mod = p.modifier;
  if (p.comparator !== undefined) raw.cmp = p.comparator;
  if (p.multipleOr !== undefined) raw.mOr = p.multipleOr;
  if (p.multipleAnd !== undefined) raw.mAnd = p.multipleAnd;
  if (p.component !== undefined) raw.comp = p.component.map(toRawComponent);
  if (p.experimental === true) raw.x = 1;
  return raw;
}

function toRawComponent(c: { definition: string; expression: string }): RawSearchComponent {
  return { def: c.definition, expr: c.expression };
}
