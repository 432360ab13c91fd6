import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { FhirError, operationOutcome } from '../fhir/errors.ts';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

/** Seconds a client is asked to wait after a 503. */
export const RETRY_AFTER_S = 5;

/**
 * The one place where failures become HTTP: a FhirError keeps its status and issues; fastify's own
 * errors (body too large, bad media type, …) keep their status with a plain message; anything else
 * is a 500 that is logged and reveals nothing.
 */
export function sendError(err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { status, outcome } = toOutcome(err);
  if (status >= 500) req.log.error({ err }, 'request failed');
  // A 503 is transient (the store cannot write right now): say when to try again.
  if (status === 503) reply.header('retry-after', String(RETRY_AFTER_S));
  if (err instanceof FhirError && err.allow) reply.header('allow', err.allow.join(', '));
  return reply.status(status).type(FHIR_JSON).send(JSON.stringify(outcome));
}

/**
 * Failures before there is a request to reply to (headers over Node's size limit, a malformed
 * request line or header, a request that does not arrive in time): an OperationOutcome too,
 * written on the socket, which is then closed.
 */
export function sendClientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, code, diagnostics] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'too-costly', 'The request line and headers are larger than this server accepts']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'timeout', 'The request did not arrive in time']
        : [400, 'Bad Request', 'invalid', 'Malformed HTTP request'];
  const body = JSON.stringify(operationOutcome([{ severity: 'error', code, diagnostics }]));
  if (socket.writable) socket.write(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: ${FHIR_JSON}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  socket.destroy(err);
}

function toOutcome(err: unknown): { status: number; outcome: object } {
  if (err instanceof FhirError) return { status: err.status, outcome: operationOutcome(err.issues) };
  const fe = err as Partial<FastifyError>;
  const status = typeof fe.statusCode === 'number' && fe.statusCode >= 400 ? fe.statusCode : 500;
  if (status >= 500) {
    return { status, outcome: operationOutcome([{ severity: 'error', code: 'exception', diagnostics: 'Internal server error' }]) };
  }
  return { status, outcome: operationOutcome([{ severity: 'error', code: codeFor(status), diagnostics: messageFor(fe, status) }]) };
}

const CODES: Record<number, string> = { 400: 'invalid', 404: 'not-found', 405: 'not-supported', 406: 'not-supported', 413: 'too-costly', 415: 'not-supported' };
const codeFor = (status: number) => CODES[status] ?? 'processing';

function messageFor(fe: Partial<FastifyError>, status: number): string {
  if (status === 413) return 'The request body is larger than this server accepts';
  if (status === 415) return 'Unsupported Content-Type: send application/fhir+json or application/json';
  return fe.message ?? 'Bad request';
}
