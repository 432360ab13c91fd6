import { badRequest } from '../fhir/errors.ts';
import type { Resource } from '../fhir/types.ts';

/**
 * Operation input by GET (query parameters) or POST (a Parameters resource), as one list of
 * values per name (FHIR operations.html#request). Primitive values only: the operations here
 * take nothing else.
 */
export function operationParams(query: URLSearchParams, body: unknown): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (name: string, value: string) => out.set(name, [...(out.get(name) ?? []), value]);
  for (const [k, v] of query) if (!k.startsWith('_')) for (const part of v.split(',')) add(k, part);
  if (body === undefined) return out;
  const params = body as Resource & { parameter?: Record<string, unknown>[] };
  if (params.resourceType !== 'Parameters') throw badRequest('An operation body must be a Parameters resource');
  for (const [i, p] of (params.parameter ?? []).entries()) {
    const name = p.name;
    const key = Object.keys(p).find((k) => k.startsWith('value'));
    const value = key ? p[key] : undefined;
    if (typeof name !== 'string' || (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')) {
      throw badRequest(`Parameters.parameter[${i}] must have a name and a primitive value`, [`Parameters.parameter[${i}]`]);
    }
    add(name, String(value));
  }
  return out;
}

/** A non-negative integer parameter (event numbers are integer64 sent as strings). */
export function integerParam(params: Map<string, string[]>, name: string): number | undefined {
  const values = params.get(name);
  if (!values?.length) return undefined;
  if (values.length > 1) throw badRequest(`${name} may be given once`, [name]);
  if (!/^\d{1,15}$/.test(values[0]!)) throw badRequest(`${name} must be a non-negative integer, not '${values[0]!.slice(0, 40)}'`, [name]);
  return Number(values[0]);
}
