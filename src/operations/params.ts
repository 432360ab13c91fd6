import { badRequest, shown } from '../fhir/errors.ts';

/**
 * The value types the operations here take, each with the `value[x]` forms a Parameters resource
 * may carry it in (every one a JSON string) and what its text must look like.
 */
const TYPES = {
  /** A FHIR id; `valueString` too, as many clients send ids that way. */
  id: { forms: ['valueId', 'valueString'], pattern: /^[A-Za-z0-9\-.]{1,64}$/, what: 'an id' },
  code: { forms: ['valueCode', 'valueString'], pattern: /^\S+( \S+)*$/, what: 'a code' },
  /** An event number: `string` in the backport IG, `integer64` (a JSON string) in R5. */
  'event-number': { forms: ['valueString', 'valueInteger64'], pattern: /^\d{1,15}$/, what: 'a non-negative integer' },
  /** A websocket binding token as $get-ws-binding-token hands it out (base64url). */
  'binding-token': { forms: ['valueString'], pattern: /^[A-Za-z0-9_-]{1,512}$/, what: 'a binding token' },
} as const;

/** One input parameter of an operation, as its OperationDefinition declares it. */
export interface ParameterDefinition {
  name: string;
  type: keyof typeof TYPES;
  max: 1 | '*';
  /** The values a code may take. */
  codes?: readonly string[];
}

/**
 * Operation input by GET (query parameters; `_format` and other `_` parameters are the HTTP
 * layer's) or POST (a Parameters resource), checked against the operation's parameters and
 * returned as one list of values per name (FHIR operations.html#request). Anything else is a 400
 * naming the parameter: a body that is not a Parameters resource, a parameter without a name or
 * value, a name the operation does not take (a misspelt bound must not silently widen a range),
 * a value of the wrong type or form, a repeated parameter that may be given once.
 */
export function operationParams(op: string, defs: readonly ParameterDefinition[], query: URLSearchParams, body: unknown): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (def: ParameterDefinition, value: string, where: string) => {
    const type = TYPES[def.type];
    if (!type.pattern.test(value) || (def.codes && !def.codes.includes(value))) {
      const expected = def.codes ? `one of ${def.codes.join(', ')}` : type.what;
      throw badRequest(`$${op} parameter '${def.name}' must be ${expected}, not '${value.slice(0, 60)}'`, [where]);
    }
    out.set(def.name, [...(out.get(def.name) ?? []), value]);
  };
  const definition = (name: string, where: string) => {
    const def = defs.find((d) => d.name === name);
    if (def) return def;
    const known = defs.length > 0 ? `it takes ${defs.map((d) => d.name).join(', ')}` : 'it takes none';
    throw badRequest(`$${op} has no parameter '${name.slice(0, 60)}': ${known}`, [where]);
  };
  for (const [name, value] of query) {
    if (name.startsWith('_')) continue;
    const def = definition(name, name);
    for (const part of value.split(',')) add(def, part, name);
  }
  if (body !== undefined) {
    for (const [where, name, value] of parametersOf(op, body)) {
      const def = definition(name, `${where}.name`);
      const forms: readonly string[] = TYPES[def.type].forms;
      const form = Object.keys(value)[0];
      if (form === undefined || !forms.includes(form) || typeof value[form] !== 'string') {
        const given = form === undefined ? 'no value' : `${form} ${JSON.stringify(value[form])?.slice(0, 40)}`;
        throw badRequest(`$${op} parameter '${def.name}' takes ${forms.join(' or ')} (a JSON string), not ${given}`, [where]);
      }
      add(def, value[form] as string, where);
    }
  }
  for (const def of defs) {
    if (def.max === 1 && (out.get(def.name)?.length ?? 0) > 1) throw badRequest(`$${op} parameter '${def.name}' may be given once`, [def.name]);
  }
  return out;
}

/** The parameters of a Parameters body: where each is, its name and its only `value[x]`. */
function* parametersOf(op: string, body: unknown): Iterable<[string, string, Record<string, unknown>]> {
  if (!isObject(body) || body.resourceType !== 'Parameters') {
    const what = isObject(body) ? `a ${shown(body.resourceType, 40)}` : Array.isArray(body) ? 'an array' : `a JSON ${body === null ? 'null' : typeof body}`;
    throw badRequest(`The body of $${op} must be a Parameters resource, not ${what}`, ['Parameters']);
  }
  if (body.parameter === undefined) return;
  if (!Array.isArray(body.parameter)) throw badRequest('Parameters.parameter must be an array', ['Parameters.parameter']);
  for (const [i, p] of body.parameter.entries()) {
    const where = `Parameters.parameter[${i}]`;
    if (!isObject(p) || typeof p.name !== 'string' || p.name === '') throw badRequest(`${where} must be an object with a name`, [where]);
    if (p.resource !== undefined || p.part !== undefined) throw badRequest(`$${op} parameter '${p.name.slice(0, 60)}' takes a primitive value, not a resource or parts`, [where]);
    const values = Object.entries(p).filter(([k]) => k.startsWith('value'));
    if (values.length > 1) throw badRequest(`$${op} parameter '${p.name.slice(0, 60)}' has ${values.length} values: give one`, [where]);
    yield [where, p.name, Object.fromEntries(values)];
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The value of a parameter that may be given once (checked by operationParams), as a number. */
export function numberParam(params: Map<string, string[]>, name: string): number | undefined {
  const value = params.get(name)?.[0];
  return value === undefined ? undefined : Number(value);
}
