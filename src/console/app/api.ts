/**
 * The FHIR API as the console calls it: same origin, JSON, the bearer token (auth mode) from
 * sessionStorage on every call. Errors carry the server's OperationOutcome text.
 */
import { outcomeMessage, type Resource } from '../../client/index.ts';

const TOKEN_KEY = 'herald.console.token';

export interface ConsoleConfig {
  bases: { version: 'R4' | 'R4B' | 'R5'; path: string }[];
  auth: 'off' | 'bearer' | 'issuer';
  tokenUrl?: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const session = {
  token: (): string | undefined => sessionStorage.getItem(TOKEN_KEY) ?? undefined,
  setToken: (t: string) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** Called when the server refuses the token (401): the app shows the login form. */
let onUnauthorized: (message: string) => void = () => undefined;
export const setUnauthorizedHandler = (fn: (message: string) => void) => (onUnauthorized = fn);

export function authHeaders(): Record<string, string> {
  const t = session.token();
  return t ? { authorization: `Bearer ${t}` } : {};
}

/** One FHIR call against a base path (`/fhir/R4`); answers the parsed JSON (undefined for an empty body). */
export async function fhir<T = Resource>(base: string, method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/fhir+json', ...authHeaders() };
  if (body !== undefined) headers['content-type'] = 'application/fhir+json';
  const res = await fetch(`${base}/${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  let parsed: any;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const message = parsed?.resourceType === 'OperationOutcome' ? outcomeMessage(parsed) : text.slice(0, 300) || res.statusText;
    if (res.status === 401) onUnauthorized(message);
    throw new ApiError(res.status, `HTTP ${res.status}: ${message}`);
  }
  return parsed as T;
}

/** Every page of a search (up to `maxPages`), as resources. */
export async function searchAll(base: string, query: string, maxPages = 20): Promise<Resource[]> {
  const out: Resource[] = [];
  let next: string | undefined = query;
  for (let page = 0; next && page < maxPages; page++) {
    const bundle: any = await fhir(base, 'GET', next);
    for (const e of bundle?.entry ?? []) if (e.resource && e.search?.mode !== 'include' && e.search?.mode !== 'outcome') out.push(e.resource);
    const link = (bundle?.link ?? []).find((l: any) => l.relation === 'next')?.url as string | undefined;
    next = link ? link.slice(link.indexOf(base) + base.length + 1) : undefined;
  }
  return out;
}

export async function loadConfig(): Promise<ConsoleConfig> {
  const res = await fetch('/console/config.json');
  return (await res.json()) as ConsoleConfig;
}

/** Client credentials at the embedded issuer (client_secret_post); answers the access token. */
export async function clientCredentials(tokenUrl: string, clientId: string, secret: string, scope: string): Promise<string> {
  const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret });
  if (scope.trim()) form.set('scope', scope.trim());
  const res = await fetch(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
  const body: any = await res.json().catch(() => ({}));
  if (!res.ok || typeof body.access_token !== 'string') throw new ApiError(res.status, `HTTP ${res.status}: ${body.error_description ?? body.error ?? 'no token'}`);
  return body.access_token;
}
