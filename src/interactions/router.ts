import { FhirError, badRequest, methodNotAllowed, notFound } from '../fhir/errors.ts';
import { processBundle } from './bundle.ts';
import { capabilityStatement } from './capabilities.ts';
import type { BaseContext, Db, FhirRequest, FhirResponse, Method } from './context.ts';
import { conditionalDelete, conditionalUpdate, create, patch, read, remove, update, vread } from './crud.ts';
import { history } from './history.ts';
import { search } from './search.ts';
import { assertType } from './resource.ts';
import { validateOperation } from './validate.ts';

/**
 * Maps a FHIR request (method + path below the base) to its interaction. Used by the HTTP edge and
 * by batch/transaction processing alike, so both behave the same.
 */
export async function route(base: BaseContext, db: Db, req: FhirRequest): Promise<FhirResponse> {
  // The caller's scopes are enforced by the interactions, which find the Principal on the context.
  const ctx = req.principal && base.principal !== req.principal ? { ...base, principal: req.principal } : base;
  const parts = req.path === '' ? [] : req.path.split('/');
  if (parts.some((p) => p === '')) throw notFound(`No such endpoint: ${req.method} /${req.path.slice(0, 200)}`);
  const [first, second, third, fourth, ...rest] = parts;
  if (rest.length > 0) throw notFound(`No such endpoint: ${req.method} /${req.path.slice(0, 200)}`);

  if (first === undefined) {
    if (req.method === 'POST') return processBundle(ctx, db, req.body, req.prefer);
    if (req.method === 'GET') return search(ctx, db, req.query, { strict: isStrict(req) });
    throw notAllowed(req);
  }
  if (first === '_search' && second === undefined) {
    if (req.method === 'POST') return search(ctx, db, searchParams(req), { strict: isStrict(req) });
    throw notAllowed(req);
  }
  if (first === 'metadata' && second === undefined) {
    if (req.method === 'GET') return { status: 200, resource: capabilityStatement(ctx) };
    throw notAllowed(req);
  }
  if (first === '_history' && second === undefined) {
    if (req.method === 'GET') return history(ctx, db, req.query);
    throw notAllowed(req);
  }
  assertType(ctx, first);
  if (second === undefined) return typeLevel(ctx, db, req, first);
  if (second === '$validate' && third === undefined) return validateOperation(ctx, db, req, first, undefined);
  if (third === '$validate' && fourth === undefined) return validateOperation(ctx, db, req, first, second);
  if (second === '_search' && third === undefined) {
    if (req.method === 'POST') return search(ctx, db, searchParams(req), { type: first, strict: isStrict(req) });
    throw notAllowed(req);
  }
  if (second === '_history' && third === undefined) {
    if (req.method === 'GET') return history(ctx, db, req.query, first);
    throw notAllowed(req);
  }
  if (third === undefined) return instanceLevel(ctx, db, req, first, second);
  if (third === '_history') {
    if (req.method !== 'GET') throw notAllowed(req);
    return fourth === undefined ? history(ctx, db, req.query, first, second) : vread(ctx, db, first, second, fourth, req.query);
  }
  throw notFound(`No such endpoint: ${req.method} /${req.path.slice(0, 200)}`);
}

function typeLevel(ctx: BaseContext, db: Db, req: FhirRequest, type: string): Promise<FhirResponse> {
  switch (req.method) {
    case 'POST':
      return create(ctx, db, type, req.body, req.ifNoneExist, req.assignedId);
    case 'PUT':
      if ([...req.query.keys()].every((k) => k.startsWith('_format'))) {
        throw badRequest('PUT on a type needs search criteria (conditional update) or an id in the URL');
      }
      return conditionalUpdate(ctx, db, type, req.query, req.body, req.ifMatch, req.assignedId);
    case 'DELETE':
      if ([...req.query.keys()].every((k) => k.startsWith('_format'))) {
        throw badRequest('DELETE on a type needs search criteria (conditional delete) or an id in the URL');
      }
      return conditionalDelete(ctx, db, type, req.query, req.ifMatch);
    case 'GET':
      return search(ctx, db, req.query, { type, strict: isStrict(req) });
    default:
      throw notAllowed(req);
  }
}

function instanceLevel(ctx: BaseContext, db: Db, req: FhirRequest, type: string, id: string): Promise<FhirResponse> {
  switch (req.method) {
    case 'GET':
      return read(ctx, db, type, id, req.ifNoneMatch, req.query);
    case 'PUT':
      return update(ctx, db, type, id, req.body, req.ifMatch, req.ifNoneMatch);
    case 'PATCH':
      if (req.contentType !== 'application/json-patch+json') {
        throw new FhirError(415, 'not-supported', 'PATCH needs Content-Type application/json-patch+json (JSON Patch)');
      }
      return patch(ctx, db, type, id, req.body, req.ifMatch);
    case 'DELETE':
      return remove(ctx, db, type, id, req.ifMatch);
    default:
      throw notAllowed(req);
  }
}

/** `Prefer: handling=strict` turns ignored search parameters into errors (search.html#errors). */
const isStrict = (req: FhirRequest) => /handling\s*=\s*strict/i.test(req.prefer ?? '');

/** POST _search: parameters from the form body and the URL together. */
function searchParams(req: FhirRequest): URLSearchParams {
  const merged = new URLSearchParams(req.query);
  if (req.body instanceof URLSearchParams) for (const [k, v] of req.body) merged.append(k, v);
  else if (req.body !== undefined) {
    throw new FhirError(415, 'not-supported', 'POST _search takes application/x-www-form-urlencoded parameters');
  }
  return merged;
}

/**
 * The methods a path below a base takes, by its shape: the `Allow` of every 405 the router raises,
 * and of one for a method no base routes (http/server.ts).
 */
export function allowedMethods(path: string): Method[] {
  const parts = path === '' ? [] : path.split('/');
  const last = parts[parts.length - 1] ?? '';
  if (parts.length === 0) return ['GET', 'POST'];
  if (last.startsWith('$')) return ['GET', 'POST'];
  if (last === '_search') return ['POST'];
  if (parts.length === 1) return last === 'metadata' || last === '_history' ? ['GET'] : ['GET', 'POST', 'PUT', 'DELETE'];
  if (parts.length === 2) return last === '_history' ? ['GET'] : ['GET', 'PUT', 'PATCH', 'DELETE'];
  return ['GET'];
}

const notAllowed = (req: FhirRequest) => methodNotAllowed(`${req.method} is not allowed on /${req.path.slice(0, 200)}`, allowedMethods(req.path));
