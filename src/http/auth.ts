import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Auth, type Principal, TokenError } from '../auth/index.ts';
import { FhirError } from '../fhir/errors.ts';

/** The caller of each authenticated request, for the request log line (never the token). */
export const principals = new WeakMap<FastifyRequest, Principal>();
/** Why a request's token was refused, for the log line. */
export const refusals = new WeakMap<FastifyRequest, string>();

/**
 * The bearer token of a request, verified (REQUIREMENTS §10): a missing, malformed or invalid
 * token is a 401 with `WWW-Authenticate: Bearer` (RFC 6750 §3) and an OperationOutcome. Tokens
 * are taken from the Authorization header only, never from the query string.
 */
export async function authenticate(auth: Auth, req: FastifyRequest, reply: FastifyReply): Promise<Principal> {
  const header = req.headers.authorization;
  try {
    if (header === undefined) {
      const inQuery = /[?&]access_token=/.test(req.url);
      throw new TokenError(inQuery ? 'Tokens are not accepted in the query string: send Authorization: Bearer <token>' : 'This server needs Authorization: Bearer <token>', inQuery ? 'invalid_request' : undefined);
    }
    const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i.exec(header);
    if (!m) throw new TokenError('The Authorization header must be Bearer <token>', 'invalid_request');
    const principal = await auth.verifier.verify(m[1]!);
    principals.set(req, principal);
    return principal;
  } catch (err) {
    if (!(err instanceof TokenError)) throw err;
    refusals.set(req, err.message);
    const detail = header === undefined && err.code === 'invalid_token' ? '' : `, error="${err.code}", error_description="${err.message}"`;
    reply.header('www-authenticate', `Bearer realm="herald"${detail}`);
    throw new FhirError(401, 'login', err.message);
  }
}

/**
 * The embedded issuer's endpoints: POST /auth/token (client_credentials, RFC 6749 §4.4; answers
 * are never cached) and GET /auth/jwks (its public key).
 */
export function mountIssuer(app: FastifyInstance, auth: Auth): void {
  const issuer = auth.issuer;
  if (!issuer) return;
  app.post('/auth/token', async (req, reply) => {
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
    if (!(req.body instanceof URLSearchParams)) {
      return reply.code(400).send({ error: 'invalid_request', error_description: 'Send application/x-www-form-urlencoded parameters' });
    }
    const res = await issuer.token(req.body, req.headers.authorization);
    if (res.wwwAuthenticate) reply.header('www-authenticate', res.wwwAuthenticate);
    if (res.status !== 200) refusals.set(req, String(res.body.error_description));
    return reply.code(res.status).send(res.body);
  });
  app.get('/auth/jwks', async () => issuer.jwks);
}
