import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FhirError, badRequest } from '../fhir/errors.ts';
import { stringifyJson } from '../fhir/json.ts';
import { type BaseContext, type FhirRequest, type FhirResponse, type Method, preferredReturn, route } from '../interactions/index.ts';
import { FHIR_JSON } from './errors.ts';
import { checkAcceptable, wrongVersion } from './negotiation.ts';
import { invokeOperation } from '../operations/index.ts';
import type { Auth } from '../auth/index.ts';
import { authenticate } from './auth.ts';

/**
 * Mounts one FHIR base (e.g. /fhir/R4): every request below it becomes a FhirRequest for the
 * interaction router, and its FhirResponse becomes HTTP (status, ETag, Last-Modified, Location,
 * Prefer handling).
 */
export function mountBase(app: FastifyInstance, prefix: string, ctx: BaseContext, auth?: Auth): void {
  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const fhirReq = toFhirRequest(req, prefix);
    // In auth mode every request needs a valid bearer token, except the CapabilityStatement.
    if (auth && !(fhirReq.path === 'metadata' && fhirReq.method === 'GET')) fhirReq.principal = await authenticate(auth, req, reply);
    checkAcceptable(fhirReq.query.get('_format'), req.headers.accept, ctx.adapter.fhirVersion);
    const sentVersion = req.headers['content-type'] ? wrongVersion(req.headers['content-type'], ctx.adapter.fhirVersion) : undefined;
    if (sentVersion) throw new FhirError(415, 'not-supported', sentVersion);
    // $validate checks a write as the interactions would make it: the router runs it.
    const op = operationPath(fhirReq.path, 'validate');
    // (A $validate body is screened by $validate itself, whose answer lists what it finds.)
    const validating = fhirReq.path.endsWith('/$validate');
    if (!op && !validating && (fhirReq.method === 'POST' || fhirReq.method === 'PUT')) await ctx.subscriptions.screenEndpoints(fhirReq.body);
    const principal = fhirReq.principal ? { principal: fhirReq.principal } : {};
    const res = op
      ? await invokeOperation(ctx, { method: fhirReq.method, ...op, query: fhirReq.query, body: fhirReq.body, ...principal })
      : await route(ctx, ctx.store, fhirReq);
    if ('noStore' in res && res.noStore) reply.header('cache-control', 'no-store');
    return send(reply, fhirReq, res);
  };
  const methods: Method[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
  app.route({ method: methods, url: prefix, handler });
  app.route({ method: methods, url: `${prefix}/*`, handler });
  if (auth) app.get(`${prefix}/.well-known/smart-configuration`, async () => auth.smartConfiguration);
}

/** `[type]/$op` or `[type]/[id]/$op` (and `$op` at system level). */
function operationPath(path: string, routed: string): { type?: string; id?: string; name: string } | undefined {
  if (!path.includes('$')) return undefined;
  const parts = path.split('/');
  const last = parts[parts.length - 1]!;
  if (!last.startsWith('$') || parts.length > 3 || last === `$${routed}`) return undefined;
  const [type, id] = parts.length === 3 ? parts : parts.length === 2 ? [parts[0], undefined] : [undefined, undefined];
  return { name: last.slice(1), ...(type ? { type } : {}), ...(id ? { id } : {}) };
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function toFhirRequest(req: FastifyRequest, prefix: string): FhirRequest {
  const q = req.url.indexOf('?');
  const rawPath = q < 0 ? req.url : req.url.slice(0, q);
  const path = decodePath(rawPath.slice(prefix.length)).replace(/^\/+|\/+$/g, '');
  const contentType = header(req, 'content-type')?.split(';')[0]!.trim().toLowerCase();
  const out: FhirRequest = {
    // HEAD is a GET without the body: fastify answers it through the GET route and drops the body.
    method: (req.method === 'HEAD' ? 'GET' : req.method) as Method,
    path,
    query: new URLSearchParams(q < 0 ? '' : req.url.slice(q + 1)),
    body: req.body,
  };
  if (contentType) out.contentType = contentType;
  if (req.body instanceof URLSearchParams && !/(^|\/)_search$/.test(path)) {
    throw new FhirError(415, 'not-supported', `Unsupported Content-Type '${contentType}': send application/fhir+json`);
  }
  const prefer = header(req, 'prefer');
  if (prefer) out.prefer = prefer;
  const ifMatch = header(req, 'if-match');
  const ifNoneMatch = header(req, 'if-none-match');
  const ifNoneExist = header(req, 'if-none-exist');
  if (ifMatch) out.ifMatch = ifMatch;
  if (ifNoneMatch) out.ifNoneMatch = ifNoneMatch;
  if (ifNoneExist) out.ifNoneExist = ifNoneExist;
  return out;
}

/** Decodes each segment on its own: an encoded `/` is part of a segment (and so never valid), not a separator. */
function decodePath(raw: string): string {
  // Nothing encoded (the usual case): nothing to decode, and no encoded `/`.
  if (!raw.includes('%')) return raw;
  const segments = raw.split('/').map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw badRequest('The request path is not valid percent-encoded text');
    }
  });
  if (segments.some((s) => s.includes('/'))) throw badRequest('A path segment may not contain an encoded / (%2F)');
  return segments.join('/');
}

function send(reply: FastifyReply, req: FhirRequest, res: FhirResponse): FastifyReply {
  reply.status(res.status);
  if (res.versionId !== undefined) reply.header('etag', `W/"${res.versionId}"`);
  if (res.lastUpdated) reply.header('last-modified', new Date(res.lastUpdated).toUTCString());
  if (res.location) reply.header('location', res.location).header('content-location', res.location);
  if (res.status === 204 || res.status === 304) return reply.send();
  reply.type(FHIR_JSON);
  // Prefer: return=… concerns the version a create, update or patch wrote: the ones with a Location.
  const wanted = res.location !== undefined ? preferredReturn(req.prefer) : undefined;
  if (wanted) reply.header('preference-applied', `return=${wanted === 'operationoutcome' ? 'OperationOutcome' : wanted}`);
  if (wanted === 'minimal') return reply.send();
  if (wanted === 'operationoutcome') return reply.send(JSON.stringify(res.outcome));
  return reply.send(res.json ?? stringifyJson(res.resource));
}
