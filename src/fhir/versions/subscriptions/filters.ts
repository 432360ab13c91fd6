/**
 * Backport `backport-filter-criteria` strings → canonical filters (S-3, S-4, R5-4).
 *
 * Three syntaxes are in use (ISSUE-2): `Type?param=value` (every IG example; a query string, so
 * `&` separates several filters, ANDed like separate extensions, S-3), `Type.param=value` (the IG
 * text and Inferno) and `param=value`. Each parameter may carry `:modifier`. A value that starts
 * with a search prefix followed by a number or date (`gt5`, `ge2024-01-01`) has the prefix split
 * off into `comparator`, as R5 `filterBy.comparator` holds it. Whether the topic allows the
 * filter is the engine's question (D-13), not this parser's.
 */
import type { Filter } from '../../subscription-model.ts';
import { fail } from './json.ts';

const TYPE = /^[A-Z][A-Za-z0-9]*$/;
/** A search parameter name, possibly chained (`subject.name`) or reverse-chained (`_has:…` is a modifier form). */
const PARAM = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const PREFIXED = /^(eq|ne|gt|lt|ge|le|sa|eb|ap)(?=[-+]?\d)/;

/** Parses one filter-criteria string; `path` names the extension value in errors. */
export function parseFilterCriteria(text: string, path: string): Filter[] {
  const eq = text.indexOf('=');
  const q = text.indexOf('?');
  if (q >= 0 && (eq < 0 || q < eq)) {
    const type = text.slice(0, q);
    if (!TYPE.test(type)) fail(path, `'${type}' before '?' is not a resource type`);
    const parts = text.slice(q + 1).split('&').filter((p) => p !== '');
    if (parts.length === 0) fail(path, `no filter after '?' in '${text}'`);
    return parts.map((part) => parseOne(part, type, path));
  }
  const dot = /^([A-Z][A-Za-z0-9]*)\.(.*)$/s.exec(text);
  return dot ? [parseOne(dot[2]!, dot[1], path)] : [parseOne(text, undefined, path)];
}

/** `param[:modifier]=value`, with the resource type already split off. */
function parseOne(text: string, resourceType: string | undefined, path: string): Filter {
  const eq = text.indexOf('=');
  if (eq < 0) fail(path, `'${text}' is not of the form parameter=value`);
  const name = text.slice(0, eq).trim();
  const raw = text.slice(eq + 1).trim();
  const colon = name.indexOf(':');
  const filterParameter = colon < 0 ? name : name.slice(0, colon);
  const modifier = colon < 0 ? undefined : name.slice(colon + 1);
  if (!PARAM.test(filterParameter)) fail(path, `'${filterParameter}' is not a search parameter name`);
  if (modifier === '') fail(path, `empty modifier after '${filterParameter}:'`);
  if (raw === '') fail(path, `no value for '${name}'`);
  const prefix = PREFIXED.exec(raw)?.[1];
  const filter: Filter = { filterParameter, value: prefix ? raw.slice(prefix.length) : raw };
  if (resourceType !== undefined) filter.resourceType = resourceType;
  if (modifier !== undefined) filter.modifier = modifier;
  if (prefix !== undefined) filter.comparator = prefix;
  return filter;
}
