import { request } from 'undici';

export type DeliveryResult = { ok: true; status: number } | { ok: false; error: string };

export interface Post {
  url: string;
  contentType: string;
  headers: { name: string; value: string }[];
  body: string;
  timeoutMs: number;
}

/**
 * One delivery attempt (REQUIREMENTS RH-1..RH-3, D-6): POST with Content-Type equal to the
 * subscription's MIME type and every channel header; success is any 2xx within the timeout.
 * Never throws: a failure is a value with a reason fit for `$status`.
 */
export async function post(p: Post): Promise<DeliveryResult> {
  const headers: Record<string, string> = {};
  for (const h of p.headers) headers[h.name.toLowerCase()] = h.value;
  // A classic R4 subscription without a payload type (D-19) POSTs no body, so no Content-Type.
  if (p.contentType !== '') headers['content-type'] = p.contentType;
  try {
    const res = await request(p.url, {
      method: 'POST',
      headers,
      body: p.body,
      headersTimeout: p.timeoutMs,
      bodyTimeout: p.timeoutMs,
      signal: AbortSignal.timeout(p.timeoutMs),
    });
    await res.body.dump();
    if (res.statusCode >= 200 && res.statusCode < 300) return { ok: true, status: res.statusCode };
    return { ok: false, error: `endpoint answered HTTP ${res.statusCode}` };
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.name === 'TimeoutError' || e.name === 'AbortError' || e.code === 'UND_ERR_HEADERS_TIMEOUT') {
      return { ok: false, error: `no answer within ${p.timeoutMs} ms` };
    }
    return { ok: false, error: `cannot reach endpoint: ${e.code ?? e.message}` };
  }
}
