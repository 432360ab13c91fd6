import { isIP } from 'node:net';

/**
 * Browser safety (issue 13): a page on another site can reach a local Herald through DNS
 * rebinding (its own name, re-pointed at 127.0.0.1), so a request is served only when its `Host`
 * names Herald: the public base URL's host, or a name it listens on (localhost, 127.0.0.1, [::1],
 * the HOST address; any IP address when listening on all interfaces, since a page whose origin is
 * an IP address is not another site's). Ports are not compared: a name is what rebinding forges.
 * Websocket upgrades also check `Origin`, when origins are configured or auth is on.
 */
export interface BrowserRules {
  baseUrl: string;
  listenHost: string;
  /** HERALD_CORS_ORIGINS: origins whose pages may open /ws (besides the base URL's own); `*` any. */
  origins: readonly string[];
  authMode: boolean;
}

export interface BrowserGuard {
  /** Whether a request with this `Host` header is for Herald. */
  hostAllowed(host: string | undefined): boolean;
  /** Whether a websocket upgrade with this `Origin` header may proceed (none: not a browser). */
  originAllowed(origin: string | undefined): boolean;
}

/** Host header values whose answer is remembered; past this the memory starts afresh. */
const MAX_HOSTS_REMEMBERED = 1000;

const bare = (hostname: string) => hostname.toLowerCase().replace(/\.$/, '');

export function browserGuard(rules: BrowserRules): BrowserGuard {
  const listen = rules.listenHost.replace(/^\[(.*)\]$/, '$1');
  const wildcard = listen === '0.0.0.0' || listen === '::';
  const names = new Set(['localhost', '127.0.0.1', '[::1]', bare(new URL(rules.baseUrl).hostname)]);
  if (!wildcard) names.add(bare(new URL(`http://${isIP(listen) === 6 ? `[${listen}]` : listen}`).hostname));
  const origins = new Set([new URL(rules.baseUrl).origin, ...rules.origins]);
  const checkOrigin = rules.authMode || rules.origins.length > 0;
  const allowedName = (hostname: string) => names.has(hostname) || (wildcard && isIP(hostname.replace(/^\[(.*)\]$/, '$1')) !== 0);
  const hosts = new Map<string, boolean>();
  return {
    hostAllowed(host) {
      if (!host) return false;
      // Every request asks, with one of a few values: parsing the URL each time cost ~4 µs a request.
      let allowed = hosts.get(host);
      if (allowed === undefined) {
        allowed = URL.canParse(`http://${host}`) && allowedName(bare(new URL(`http://${host}`).hostname));
        // The header is the client's to choose, so what is remembered is bounded.
        if (hosts.size >= MAX_HOSTS_REMEMBERED) hosts.clear();
        hosts.set(host, allowed);
      }
      return allowed;
    },
    originAllowed(origin) {
      return !checkOrigin || origin === undefined || origins.has('*') || origins.has(origin.toLowerCase());
    },
  };
}
