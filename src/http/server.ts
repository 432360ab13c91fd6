import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyServerOptions, LogController } from 'fastify';
import type { Auth } from '../auth/index.ts';
import { notFound } from '../fhir/errors.ts';
import type { BaseContext } from '../interactions/index.ts';
import { mountIssuer, principals, refusals } from './auth.ts';
import { sendError } from './errors.ts';
import { parseBody } from './negotiation.ts';
import { mountBase } from './rest.ts';
import { type WebsocketOptions, attachWebsocket } from './websocket.ts';

/** The server the composition root hands to main.ts and tests: listen(), close(), server. */
export type HeraldServer = FastifyInstance;

export interface ServerDeps {
  bases: BaseContext[];
  /** Largest accepted request body in bytes (413 beyond). */
  bodyLimit: number;
  logger: FastifyServerOptions['logger'];
  /** Called once the server has stopped accepting and finished in-flight requests. */
  onClose?: () => Promise<void>;
  /** The websocket endpoint, when channels use it. */
  websocket?: WebsocketOptions;
  /** Bearer-token authentication; absent in open mode. */
  auth?: Auth;
}

/**
 * The HTTP edge: a fastify instance that is built but not listening (main.ts listens, tests too).
 * Knows HTTP and nothing of storage.
 */
export function buildServer(deps: ServerDeps): FastifyInstance {
  const app = Fastify({
    logger: deps.logger,
    bodyLimit: deps.bodyLimit,
    // One log line per request comes from our onResponse hook instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    // Malformed URLs and the like are answered as OperationOutcomes too.
    frameworkErrors: (err, req, reply) => sendError(err, req, reply),
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });

  // Bodies arrive as text and are parsed here, so every failure is an OperationOutcome.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (req, body, done) => {
    const mediaType = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    try {
      done(null, parseBody(mediaType, body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  app.addHook('onSend', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  app.addHook('onResponse', async (req, reply) => {
    // Who asked (never a token): every write and every denial is logged with the caller's identity.
    const principal = principals.get(req)?.id;
    const refused = refusals.get(req);
    req.log.info(
      {
        method: req.method,
        url: req.url.replace(/([?&]access_token=)[^&]*/g, '$1***'),
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        ...(principal !== undefined ? { principal } : {}),
        ...(refused !== undefined ? { refused } : {}),
      },
      'request',
    );
  });
  app.setErrorHandler((err, req, reply) => sendError(err, req, reply));
  app.setNotFoundHandler((req, reply) => sendError(notFound(`No such endpoint: ${req.method} ${req.url.slice(0, 200)}`), req, reply));

  // Ready, and able to write: a store that can no longer write (say its writer thread died) makes
  // this node unhealthy, so that a load balancer or supervisor takes it out and restarts it.
  app.get('/healthz', async (_req, reply) => {
    const failure = deps.bases[0]?.store.failure();
    if (failure) return reply.code(503).send({ status: 'unavailable', reason: failure });
    return { status: 'ok' };
  });
  if (deps.auth) mountIssuer(app, deps.auth);
  for (const base of deps.bases) mountBase(app, `/fhir/${base.adapter.pathSegment}`, base, deps.auth);
  if (deps.websocket) {
    const ws = attachWebsocket(app.server, deps.websocket);
    app.addHook('preClose', async () => ws.close());
  }
  if (deps.onClose) {
    const onClose = deps.onClose;
    app.addHook('onClose', async () => onClose());
  }
  return app;
}
