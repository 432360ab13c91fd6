import type { IssueSeverity, OperationOutcome, OperationOutcomeIssue } from './types.ts';

/**
 * A failure with an HTTP status and FHIR issue(s). Thrown by FHIR logic anywhere; turned into an
 * OperationOutcome response in exactly one place (http/errors.ts), and into a Bundle entry's
 * `response.outcome` by batch processing.
 */
export class FhirError extends Error {
  readonly status: number;
  readonly issues: OperationOutcomeIssue[];
  /** A 405's `Allow` header: the methods the target takes (RFC 9110 §15.5.6). */
  allow?: readonly string[];

  constructor(status: number, code: string, diagnostics: string, expression?: string[]) {
    super(diagnostics);
    this.name = 'FhirError';
    this.status = status;
    this.issues = [{ severity: 'error', code, diagnostics, ...(expression ? { expression } : {}) }];
  }

  /** Several issues under one status (a validation failure usually has more than one). */
  static withIssues(status: number, issues: OperationOutcomeIssue[]): FhirError {
    const err = new FhirError(status, issues[0]?.code ?? 'processing', issues[0]?.diagnostics ?? 'Error');
    err.issues.splice(0, 1, ...issues);
    return err;
  }
}

export const badRequest = (msg: string, expression?: string[]) => new FhirError(400, 'invalid', msg, expression);
export const notFound = (msg: string) => new FhirError(404, 'not-found', msg);
export const gone = (msg: string) => new FhirError(410, 'deleted', msg);
export const conflict = (msg: string) => new FhirError(409, 'conflict', msg);
/** A 405 with the methods the target does take (GET brings HEAD). */
export function methodNotAllowed(msg: string, allow: readonly string[]): FhirError {
  const err = new FhirError(405, 'not-supported', msg);
  err.allow = allow.flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m]));
  return err;
}
export const preconditionFailed = (msg: string) => new FhirError(412, 'conflict', msg);
export const unprocessable = (msg: string, expression?: string[]) =>
  new FhirError(422, 'processing', msg, expression);
export const notSupported = (msg: string) => new FhirError(501, 'not-supported', msg);

/**
 * A value from the request, for a diagnostic, before anything has checked its type: a string
 * (cut to `max` characters), a number, boolean or null as JSON writes it, an object or array as
 * `{…}` or `[…]`. Never `String(value)`: that throws on JSON such as `{"toString":1}`, whose own
 * toString is not a function, and the client would get a 500 for its bad input.
 */
export function shown(value: unknown, max = 80): string {
  if (typeof value === 'string') return value.slice(0, max);
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? '[…]' : '{…}';
}

export function operationOutcome(issues: OperationOutcomeIssue[]): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: issues };
}

export function outcomeOf(severity: IssueSeverity, code: string, diagnostics: string): OperationOutcome {
  return operationOutcome([{ severity, code, diagnostics }]);
}

/** Any thrown value as a FhirError; unknown errors become a 500 that reveals nothing internal. */
export function asFhirError(err: unknown): FhirError {
  if (err instanceof FhirError) return err;
  return new FhirError(500, 'exception', 'Internal server error');
}
