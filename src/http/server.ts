import { randomUUID } from 'node:crypto';
import compress from '@fastify/compress';
import cors from '@fastify/cors';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Auth } from '../auth/index.ts';
import { FhirError, methodNotAllowed, notFound } from '../fhir/errors.ts';
import { allowedMethods, type BaseContext } from '../interactions/index.ts';
import { mountIssuer, principals, refusals } from './auth.ts';
import { mountConsole } from './console.ts';
import type { BrowserGuard } from './browser.ts';
import { sendClientError, sendError } from './errors.ts';
import { parseBody } from './negotiation.ts';
import { mountBase } from './rest.ts';
import { type WebsocketOptions, attachWebsocket } from './websocket.ts';

/** The server the composition root hands to main.ts and tests: listen(), close(), server. */
export type HeraldServer = FastifyInstance;

export interface ServerDeps {
  bases: BaseContext[];
  /** Largest accepted request body in bytes (413 beyond). */
  bodyLimit: number;
  /** The process's logger (pino), shared with the rest of the composition root. */
  logger: FastifyBaseLogger;
  /** Called once the server has stopped accepting and finished in-flight requests. */
  onClose?: () => Promise<void>;
  /** The websocket endpoint, when channels use it. */
  websocket?: WebsocketOptions;
  /** Which `Host` (and, on /ws, `Origin`) headers are Herald's (DNS rebinding). */
  browser: BrowserGuard;
  /** Log query values (search values are PHI) instead of only parameter names: for debugging. */
  logPhi: boolean;
  /** Bearer-token authentication; absent in open mode. */
  auth?: Auth;
  /** HERALD_CORS_ORIGINS: web origins whose pages may call the REST API (`*`: any, open mode only); none: no CORS headers. */
  corsOrigins: readonly string[];
  /** HERALD_TLS_CERT / HERALD_TLS_KEY, read: https (and wss) on the same port. */
  tls?: { cert: Buffer; key: Buffer };
  /** Timeouts and the connection cap: slow or idle clients cannot hold connections (issue 14). */
  limits: HttpLimits;
}

export interface HttpLimits {
  /** The whole request, headers and body, must arrive within this: else 408 and the connection closes. */
  requestTimeoutMs: number;
  /** The request line and headers must arrive within this. */
  headersTimeoutMs: number;
  /** A connection with no traffic in either direction for this long is closed. */
  idleTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** Open connections, websockets included; a connection beyond is closed as it arrives. */
  maxConnections: number;
}

/** Request headers FHIR clients send from browsers (Authorization, conditional and Prefer headers). */
const CORS_ALLOWED_HEADERS = ['Authorization', 'Content-Type', 'If-Match', 'If-None-Exist', 'If-None-Match', 'If-Modified-Since', 'Prefer', 'X-Request-Id'];
/** Response headers a browser app may read: versions, where a resource went, and the request id. */
const CORS_EXPOSED_HEADERS = ['ETag', 'Location', 'Content-Location', 'Last-Modified', 'X-Request-Id', 'Retry-After', 'WWW-Authenticate', 'Preference-Applied', 'Allow'];
/**
 * JSON answers and the console's pages are compressed; nothing else (no event streams; the
 * websocket is not an HTTP reply and is never touched).
 */
const COMPRESSIBLE = /^(?:application\/(?:fhir\+)?json|text\/html|text\/css|(?:application|text)\/javascript)(?:;|$)/;

/** A client's request id is used when it is short and plain; otherwise one is generated. */
const PLAIN_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** The path and the names of the query parameters, not their values (names, birth dates, identifiers). */
function loggedUrl(url: string): { path: string; params?: string[] } {
  const q = url.indexOf('?');
  if (q < 0) return { path: url };
  return { path: url.slice(0, q), params: [...new Set(new URLSearchParams(url.slice(q + 1)).keys())] };
}

/**
 * The HTTP edge: a fastify instance that is built but not listening (main.ts listens, tests too).
 * Knows HTTP and nothing of storage.
 */
export function buildServer(deps: ServerDeps): FastifyInstance {
  const { limits } = deps;
  const socketOptions = {
    headersTimeout: limits.headersTimeoutMs,
    // Node checks the request and headers timeouts on this interval (30 s by default), so a
    // timeout is enforced within a quarter of itself.
    connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4))),
  };
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: deps.bodyLimit,
    // Without these a client that sends headers and then trickles (or stops) its body holds its
    // connection forever (fastify turns node's request timeout off by default).
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.idleTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // With TLS the same socket options go to the https server (fastify then ignores `http`).
    ...(deps.tls ? { https: { ...socketOptions, cert: deps.tls.cert, key: deps.tls.key } } : { http: socketOptions }),
    // One log line per request comes from our onResponse hook instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    // Malformed URLs and the like are answered as OperationOutcomes too.
    frameworkErrors: (err, req, reply) => sendError(err, req, reply),
    clientErrorHandler: sendClientError,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && PLAIN_ID.test(given) ? given : randomUUID();
    },
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

  app.addHook('onRequest', async (req) => {
    if (!deps.browser.hostAllowed(req.headers.host)) {
      throw new FhirError(421, 'security', `This server does not answer for the host '${String(req.headers.host ?? '').slice(0, 100)}': use its base URL`);
    }
  });
  app.addHook('onSend', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  app.addHook('onResponse', async (req, reply) => {
    // Who asked (never a token): every write and every denial is logged with the caller's identity.
    const principal = principals.get(req)?.id;
    const refused = refusals.get(req);
    const url = deps.logPhi ? { url: req.url.replace(/([?&]access_token=)[^&]*/g, '$1***') } : loggedUrl(req.url);
    req.log.info(
      {
        method: req.method,
        ...url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
        ...(principal !== undefined ? { principal } : {}),
        ...(refused !== undefined ? { refused } : {}),
      },
      'request',
    );
  });
  app.setErrorHandler((err, req, reply) => sendError(err, req, reply));
  // Past the cap node closes a new connection at once, before reading anything from it.
  app.server.maxConnections = limits.maxConnections;
  // gzip, deflate or br when the client asks (Accept-Encoding), for JSON of 1 KiB or more: the R4
  // CapabilityStatement is 379 KB as it is. Request bodies are not decompressed (no zip bombs).
  app.register(compress, { global: true, globalDecompression: false, encodings: ['br', 'gzip', 'deflate'], customTypes: COMPRESSIBLE });
  if (deps.corsOrigins.length > 0) {
    const any = deps.corsOrigins.includes('*');
    app.register(cors, {
      origin: any ? '*' : [...deps.corsOrigins],
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: CORS_ALLOWED_HEADERS,
      exposedHeaders: CORS_EXPOSED_HEADERS,
      maxAge: 600,
      strictPreflight: false,
    });
  }
  const bases = deps.bases.map((b) => `/fhir/${b.adapter.pathSegment}`);
  app.setNotFoundHandler((req, reply) => {
    // Under a base, every path is routed for the FHIR methods: another method (OPTIONS, TRACE, …) is a 405.
    const path = req.url.split('?')[0]!;
    const base = bases.find((b) => path === b || path.startsWith(`${b}/`));
    if (!ROUTED.has(req.method) && base !== undefined) {
      const below = path.slice(base.length).replace(/^\/+|\/+$/g, '');
      return sendError(methodNotAllowed(`${req.method.slice(0, 20)} is not a FHIR interaction`, allowedMethods(below)), req, reply);
    }
    return sendError(notFound(noSuchEndpoint(req.method, req.url, bases)), req, reply);
  });

  // Routes go in a child context registered after the plugins above, so that their hooks (added
  // per route as routes are declared) apply to every route.
  app.register(async (routes) => {
    // Ready, and able to write: a store that can no longer write (say its writer thread died) makes
    // this node unhealthy, so that a load balancer or supervisor takes it out and restarts it.
    routes.get('/healthz', async (_req, reply) => {
      const failure = deps.bases[0]?.store.failure();
      if (failure) return reply.code(503).send({ status: 'unavailable', reason: failure });
      return { status: 'ok' };
    });
    if (deps.auth) mountIssuer(routes, deps.auth);
    mountConsole(routes, { bases: deps.bases.map((b) => ({ version: b.adapter.pathSegment, path: `/fhir/${b.adapter.pathSegment}` })), ...(deps.auth ? { auth: deps.auth } : {}) });
    for (const base of deps.bases) mountBase(routes, `/fhir/${base.adapter.pathSegment}`, base, deps.auth);
  });
  if (deps.websocket) {
    const ws = attachWebsocket(app.server, deps.websocket, deps.browser);
    app.addHook('preClose', async () => ws.close());
  }
  if (deps.onClose) {
    const onClose = deps.onClose;
    app.addHook('onClose', async () => onClose());
  }
  return app;
}

/** The methods the FHIR bases route (HEAD through GET). */
const ROUTED = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * A 404 that tells a lost client where the FHIR bases are (`/`, `/fhir`, a typo), and which base a
 * path in the wrong case meant (`/fhir/r4/Patient` → `/fhir/R4/Patient`): base paths are case-sensitive.
 */
function noSuchEndpoint(method: string, url: string, bases: string[]): string {
  const path = url.split('?')[0]!.slice(0, 200);
  const lower = path.toLowerCase();
  const meant = bases.find((b) => lower === b.toLowerCase() || lower.startsWith(`${b.toLowerCase()}/`));
  // Only a base written in another case is worth a guess: the same path again is no hint.
  const hint = meant && !(path === meant || path.startsWith(`${meant}/`)) ? ` Did you mean ${meant}${path.slice(meant.length)}?` : '';
  return `No such endpoint: ${method} ${path}.${hint} The FHIR bases are ${bases.join(', ')}.`;
}
