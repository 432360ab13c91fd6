/**
 * The REST calls the listener needs, against one FHIR base (`{server}/fhir/R4` and so on):
 * the server's FHIR version, Subscription search/create/read, `$get-ws-binding-token` (§7.3)
 * and `$events` (§7.2). Uses the `fetch` it is given, so it runs in Node and in browsers.
 */
import { outcomeMessage } from './notifications.ts';
import type { Bundle, FetchLike, FhirVersion, Resource } from './types.ts';

export class FhirHttpError extends Error {
  override name = 'FhirHttpError';
  constructor(
    readonly status: number,
    message: string,
    readonly outcome?: Resource,
  ) {
    super(message);
  }
}

export interface BindingToken {
  token: string;
  /** When the token stops working (ms since the epoch); NaN if the server gave no readable date. */
  expiresAt: number;
  subscriptionIds: string[];
  websocketUrl: string;
}

export interface RestOptions {
  baseUrl: string;
  fetch?: FetchLike;
  /** Extra headers for every request (e.g. `Authorization`). */
  headers?: Record<string, string>;
  /** Per-request timeout; default 30 s. */
  timeoutMs?: number;
}

export class FhirRestClient {
  readonly baseUrl: string;
  readonly #fetch: FetchLike;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;

  constructor(options: RestOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    const f = options.fetch ?? (globalThis.fetch as FetchLike | undefined);
    if (!f) throw new Error('no fetch available: pass options.fetch');
    this.#fetch = f;
    this.#headers = options.headers ?? {};
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** The FHIR version: from the base URL's last path segment (`/R4`, `/R4B`, `/R5`), else from the CapabilityStatement. */
  async fhirVersion(): Promise<FhirVersion> {
    const fromPath = versionFromBaseUrl(this.baseUrl);
    if (fromPath) return fromPath;
    const cs = await this.request<Resource>('GET', 'metadata');
    const v = versionFromFhirVersion(String(cs.fhirVersion ?? ''));
    if (!v) throw new Error(`unsupported fhirVersion '${String(cs.fhirVersion)}' at ${this.baseUrl}`);
    return v;
  }

  /** Subscriptions for a topic (every page, up to `maxPages`). */
  searchSubscriptions(topic: string, maxPages = 10): Promise<Resource[]> {
    return this.#subscriptionPages(`Subscription?topic=${encodeURIComponent(topic)}&_count=100`, maxPages);
  }

  /** Every Subscription the caller may see on the base (every page, up to `maxPages`). */
  listSubscriptions(maxPages = 100): Promise<Resource[]> {
    return this.#subscriptionPages('Subscription?_count=100', maxPages);
  }

  /**
   * `$status` (type level, `id=` repeated) for these subscriptions: each one's status resource
   * (R4 Parameters or SubscriptionStatus), asked in chunks so that URLs stay short.
   */
  async statuses(ids: readonly string[]): Promise<Resource[]> {
    const out: Resource[] = [];
    for (let i = 0; i < ids.length; i += 40) {
      const query = ids.slice(i, i + 40).map((id) => `id=${encodeURIComponent(id)}`).join('&');
      const bundle = await this.request<Bundle>('GET', `Subscription/$status?${query}`);
      for (const e of bundle.entry ?? []) if (e.resource) out.push(e.resource);
    }
    return out;
  }

  /** Deletes a Subscription (a 404 or 410 counts as done: it is gone either way). */
  async deleteSubscription(id: string): Promise<void> {
    try {
      await this.request<unknown>('DELETE', `Subscription/${encodeURIComponent(id)}`);
    } catch (err) {
      if (err instanceof FhirHttpError && (err.status === 404 || err.status === 410)) return;
      throw err;
    }
  }

  async #subscriptionPages(first: string, maxPages: number): Promise<Resource[]> {
    const out: Resource[] = [];
    let url: string | undefined = first;
    for (let page = 0; url && page < maxPages; page++) {
      const bundle: Bundle = await this.request<Bundle>('GET', url);
      for (const e of bundle.entry ?? []) if (e.resource?.resourceType === 'Subscription') out.push(e.resource);
      const next = (bundle.link as { relation?: string; url?: string }[] | undefined)?.find((l) => l.relation === 'next')?.url;
      url = next;
    }
    return out;
  }

  createSubscription(resource: Resource): Promise<Resource> {
    return this.request<Resource>('POST', 'Subscription', resource);
  }

  readSubscription(id: string): Promise<Resource> {
    return this.request<Resource>('GET', `Subscription/${encodeURIComponent(id)}`);
  }

  /** `$get-ws-binding-token` for the given subscriptions (type level; none = all the caller's websocket subscriptions). */
  async bindingToken(subscriptionIds: readonly string[]): Promise<BindingToken> {
    const query = subscriptionIds.map((id) => `id=${encodeURIComponent(id)}`).join('&');
    const p = await this.request<Resource>('GET', `Subscription/$get-ws-binding-token${query ? `?${query}` : ''}`);
    if (p.resourceType !== 'Parameters') throw new Error(`$get-ws-binding-token answered a ${String(p.resourceType)}, not Parameters`);
    const params = (p.parameter as Record<string, any>[] | undefined) ?? [];
    const value = (name: string) => params.find((x) => x.name === name);
    const token = value('token')?.valueString;
    const websocketUrl = value('websocket-url')?.valueUrl ?? value('websocket-url')?.valueUri ?? value('websocket-url')?.valueString;
    if (typeof token !== 'string' || !token) throw new Error('$get-ws-binding-token gave no token');
    if (typeof websocketUrl !== 'string' || !websocketUrl) throw new Error('$get-ws-binding-token gave no websocket-url');
    const expiration = value('expiration')?.valueDateTime ?? value('expiration')?.valueInstant;
    return {
      token,
      expiresAt: typeof expiration === 'string' ? Date.parse(expiration) : NaN,
      subscriptionIds: params.filter((x) => x.name === 'subscription').map((x) => String(x.valueString ?? x.valueId ?? x.valueReference?.reference ?? '')),
      websocketUrl: resolveWebsocketUrl(websocketUrl, this.baseUrl),
    };
  }

  /** `$events` for `from..to` (inclusive): a notification Bundle of type query-event. */
  events(subscriptionId: string, from: number, to: number): Promise<Bundle> {
    return this.request<Bundle>('GET', `Subscription/${encodeURIComponent(subscriptionId)}/$events?eventsSinceNumber=${from}&eventsUntilNumber=${to}`);
  }

  /** One JSON request; a non-2xx answer throws FhirHttpError with the OperationOutcome's text. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = /^https?:\/\//.test(path) ? path : `${this.baseUrl}/${path}`;
    const headers: Record<string, string> = { accept: 'application/fhir+json', ...this.#headers };
    if (body !== undefined) headers['content-type'] = 'application/fhir+json';
    let res: Response;
    try {
      res = await this.#fetch(url, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      throw new Error(`${method} ${url}: ${unreachable(err, this.#timeoutMs)}`, { cause: err });
    }
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const outcome = json?.resourceType === 'OperationOutcome' ? (json as Resource) : undefined;
      const detail = outcome ? outcomeMessage(outcome) : text.slice(0, 200);
      throw new FhirHttpError(res.status, `${method} ${url.replace(this.baseUrl, '[base]')}: HTTP ${res.status}${detail ? ` ${detail}` : ''}`, outcome);
    }
    // A DELETE may answer 204 without a body (or 200 with an OperationOutcome).
    if (json === undefined && method === 'DELETE' && !text) return undefined as T;
    if (json === undefined) throw new FhirHttpError(res.status, `${method} ${url}: the answer is not JSON`);
    return json as T;
  }
}

/**
 * Why a request got no answer. Node's fetch says only "fetch failed" and puts the reason
 * (ECONNREFUSED, ENOTFOUND, a certificate error, …) in `cause`.
 */
function unreachable(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: unknown; message?: unknown } };
  if (e.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  const reason = e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
  return `cannot reach the server (${String(reason)})`;
}

export function versionFromBaseUrl(baseUrl: string): FhirVersion | undefined {
  let path: string;
  try {
    path = new URL(baseUrl).pathname;
  } catch {
    path = baseUrl;
  }
  const last = path.replace(/\/+$/, '').split('/').pop()?.toUpperCase();
  return last === 'R4' || last === 'R4B' || last === 'R5' ? last : undefined;
}

export function versionFromFhirVersion(fhirVersion: string): FhirVersion | undefined {
  if (fhirVersion.startsWith('4.0')) return 'R4';
  if (fhirVersion.startsWith('4.3')) return 'R4B';
  if (fhirVersion.startsWith('5.0')) return 'R5';
  return undefined;
}

/** A relative websocket-url is taken relative to the FHIR base, with http(s) → ws(s). */
function resolveWebsocketUrl(url: string, baseUrl: string): string {
  try {
    const u = new URL(url, baseUrl);
    if (u.protocol === 'http:') u.protocol = 'ws:';
    if (u.protocol === 'https:') u.protocol = 'wss:';
    return u.toString();
  } catch {
    return url;
  }
}

/** Whether an error is worth retrying (network trouble, timeouts, 408/429/5xx) rather than a final answer. */
export function isTransient(err: unknown): boolean {
  if (err instanceof FhirHttpError) return err.status === 408 || err.status === 429 || err.status >= 500;
  return true;
}
