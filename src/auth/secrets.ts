import type { Resource } from '../fhir/types.ts';

/** What a masked secret reads as. */
export const MASK = '***';

interface SubscriptionSecrets {
  endpoint?: unknown;
  header?: unknown;
  parameter?: unknown;
  channel?: { endpoint?: unknown; header?: unknown };
}

/**
 * A Subscription as anyone but its owner sees it: `channel.header` values (R4/R4B) and
 * `parameter` values (R5) — often the bearer tokens of the receiving system — and the userinfo of
 * the endpoint URL are masked. Returns the resource itself when it holds no secret.
 */
export function maskSubscriptionSecrets(resource: Resource): Resource {
  const r = resource as Resource & SubscriptionSecrets;
  const channel = r.channel;
  const secret =
    hasUserinfo(r.endpoint) || hasUserinfo(channel?.endpoint) || nonEmpty(channel?.header) || nonEmpty(r.parameter);
  if (!secret) return resource;
  const out: Resource & SubscriptionSecrets = { ...r };
  if (typeof r.endpoint === 'string') out.endpoint = maskUserinfo(r.endpoint);
  if (Array.isArray(r.parameter)) {
    out.parameter = r.parameter.map((p: Record<string, unknown>) => ({ ...p, ...(p.value !== undefined ? { value: MASK } : {}) }));
  }
  if (channel) {
    out.channel = {
      ...channel,
      ...(typeof channel.endpoint === 'string' ? { endpoint: maskUserinfo(channel.endpoint) } : {}),
      ...(Array.isArray(channel.header) ? { header: channel.header.map(maskHeader) } : {}),
    };
  }
  return out;
}

const nonEmpty = (v: unknown) => Array.isArray(v) && v.length > 0;
const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#@]*)@/i;
const hasUserinfo = (v: unknown) => typeof v === 'string' && USERINFO.test(v);
const maskUserinfo = (url: string) => url.replace(USERINFO, `$1${MASK}@`);

/** `Authorization: Bearer abc` → `Authorization: ***`; a header without a name is masked whole. */
function maskHeader(h: unknown): unknown {
  if (typeof h !== 'string') return h;
  const colon = h.indexOf(':');
  return colon > 0 ? `${h.slice(0, colon)}: ${MASK}` : MASK;
}
