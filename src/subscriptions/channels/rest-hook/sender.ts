import { Agent, buildConnector, request } from 'undici';
import { EndpointRefused, type EndpointGuard } from '../../endpoints.ts';

export type DeliveryResult = { ok: true; status: number } | { ok: false; error: string };

export interface Post {
  url: string;
  contentType: string;
  headers: { name: string; value: string }[];
  body: string;
  timeoutMs: number;
}

export interface Sender {
  post(p: Post): Promise<DeliveryResult>;
  close(): Promise<void>;
}

/**
 * The rest-hook HTTP client. Every connection goes through the endpoint guard first: the name is
 * resolved here, the guard judges the addresses (issue 13: DNS rebinding), and the socket is
 * opened to the address judged, with the TLS server name still the endpoint's host. Redirects are
 * never followed.
 */
export function createSender(guard: EndpointGuard): Sender {
  const direct = buildConnector({});
  const agent = new Agent({
    connect(opts, callback) {
      const host = opts.hostname.includes(':') && !opts.hostname.startsWith('[') ? `[${opts.hostname}]` : opts.hostname;
      guard.connectable(new URL(`${opts.protocol}//${host}:${opts.port}`)).then(
        ([first]) => direct({ ...opts, hostname: first!.address, servername: opts.servername ?? serverName(opts.hostname) }, callback),
        (err: Error) => callback(err, null),
      );
    },
  });
  return { post: (p) => post(agent, p), close: () => agent.close() };
}

/** SNI is for names only, never IP addresses (RFC 6066). */
const serverName = (hostname: string) => (/^[\d.]+$|:/.test(hostname) ? undefined : hostname.replace(/\.$/, ''));

/**
 * One delivery attempt (REQUIREMENTS RH-1..RH-3, D-6): POST with Content-Type equal to the
 * subscription's MIME type and every channel header; success is any 2xx within the timeout.
 * Never throws: a failure is a value with a reason fit for `$status`.
 */
async function post(dispatcher: Agent, p: Post): Promise<DeliveryResult> {
  const headers: Record<string, string> = {};
  for (const h of p.headers) headers[h.name.toLowerCase()] = h.value;
  // A classic R4 subscription without a payload type (D-19) POSTs no body, so no Content-Type.
  if (p.contentType !== '') headers['content-type'] = p.contentType;
  try {
    const res = await request(p.url, {
      dispatcher,
      method: 'POST',
      headers,
      body: p.body,
      headersTimeout: p.timeoutMs,
      bodyTimeout: p.timeoutMs,
      signal: AbortSignal.timeout(p.timeoutMs),
    });
    await res.body.dump();
    if (res.statusCode >= 200 && res.statusCode < 300) return { ok: true, status: res.statusCode };
    if (res.statusCode >= 300 && res.statusCode < 400) return { ok: false, error: `endpoint answered HTTP ${res.statusCode} (a redirect): redirects are not followed` };
    return { ok: false, error: `endpoint answered HTTP ${res.statusCode}` };
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e instanceof EndpointRefused) return { ok: false, error: `endpoint refused: ${e.message}` };
    if (e.name === 'TimeoutError' || e.name === 'AbortError' || e.code === 'UND_ERR_HEADERS_TIMEOUT') {
      return { ok: false, error: `no answer within ${p.timeoutMs} ms` };
    }
    return { ok: false, error: `cannot reach endpoint: ${e.code ?? e.message}` };
  }
}
