import { type LookupAddress, lookup as dnsLookup } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { unprocessable } from '../fhir/errors.ts';

/**
 * Where Herald may send rest-hook notifications (issue 13, REQUIREMENTS SEC-4): the rules for an
 * endpoint at creation and again for every connection, against the address actually connected
 * (so DNS rebinding gains nothing).
 *
 * - Every mode: never Herald itself (its public base URL, or its listening address under any
 *   spelling): such a subscription would create resources forever.
 * - Open mode: https, or plain http to a loopback host (or anywhere with allowInsecureEndpoints).
 * - Auth mode: https (unless allowInsecureEndpoints), and no host that is or resolves to an internal address (loopback,
 *   private, link-local, unspecified, multicast, carrier-grade NAT, cloud metadata, and the IPv6
 *   forms embedding those), unless the allow-list names it (`host:port` or a CIDR); a listed
 *   endpoint may be plain http.
 */
export interface EndpointRules {
  authMode: boolean;
  /** HERALD_ENDPOINT_ALLOW entries: `host:port`, `[v6]:port` or CIDR (`10.1.0.0/16`, `fd00::/8`). */
  allow: readonly string[];
  /** Plain http also to non-loopback hosts in open mode, and to unlisted ones in auth mode (HERALD_ALLOW_INSECURE_ENDPOINTS); the address rules still hold. */
  allowInsecureEndpoints: boolean;
  /** Herald's public base URL and the address it listens on. */
  baseUrl: string;
  listen: { host: string; port: number };
  /** Resolves host names; dns.lookup unless a test gives another resolver. */
  lookup?: typeof dnsLookup;
}

/** Address ranges an auth-mode endpoint may not reach, by the reason given. More specific first. */
const V4_RANGES: readonly [string, string, number][] = [
  ['a cloud metadata address', '169.254.169.254', 32],
  ['an unspecified address', '0.0.0.0', 8],
  ['a loopback address', '127.0.0.0', 8],
  ['a private address', '10.0.0.0', 8],
  ['a private address', '172.16.0.0', 12],
  ['a private address', '192.168.0.0', 16],
  ['a carrier-grade NAT address', '100.64.0.0', 10],
  ['a link-local address', '169.254.0.0', 16],
  ['a multicast address', '224.0.0.0', 4],
  ['a reserved address', '240.0.0.0', 4],
];
const V6_RANGES: readonly [string, string, number][] = [
  ['a cloud metadata address', 'fd00:ec2::254', 128],
  ['an unspecified address', '::', 128],
  ['a loopback address', '::1', 128],
  ['a private address', 'fc00::', 7],
  ['a private address', 'fec0::', 10],
  ['a link-local address', 'fe80::', 10],
  ['a multicast address', 'ff00::', 8],
];
/** IPv6 prefixes that embed an IPv4 address in their last 32 bits: IPv4-compatible, NAT64. */
const V4_IN_V6 = ['::', '64:ff9b::'];

/** One BlockList per reason; IPv4-mapped IPv6 (::ffff:a.b.c.d) is checked against IPv4 rules by BlockList itself. */
const FORBIDDEN: [string, BlockList][] = (() => {
  const lists = new Map<string, BlockList>();
  const add = (reason: string, net: string, prefix: number, family: 'ipv4' | 'ipv6') => {
    if (!lists.has(reason)) lists.set(reason, new BlockList());
    lists.get(reason)!.addSubnet(net, prefix, family);
  };
  for (const [reason, net, prefix] of V4_RANGES) {
    add(reason, net, prefix, 'ipv4');
    if (net === '0.0.0.0') continue; // its embedded forms would be :: and ::1, listed as themselves below
    const [a, b, c, d] = net.split('.').map(Number) as [number, number, number, number];
    const low32 = `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
    for (const p of V4_IN_V6) add(reason, `${p}${low32}`, 96 + prefix, 'ipv6');
    add(reason, `2002:${low32}::`, 16 + prefix, 'ipv6'); // 6to4
  }
  for (const [reason, net, prefix] of V6_RANGES) add(reason, net, prefix, 'ipv6');
  return [...lists];
})();

const family = (ip: string): 'ipv4' | 'ipv6' => (isIP(ip) === 6 ? 'ipv6' : 'ipv4');
const unbracket = (host: string) => host.replace(/^\[(.*)\]$/, '$1');

/** Why an address is internal ('a loopback address', …), or undefined for a public one. */
export function internalAddress(ip: string): string | undefined {
  return FORBIDDEN.find(([, list]) => list.check(ip, family(ip)))?.[0];
}

/** `localhost` and `*.localhost` always mean loopback (RFC 6761), with or without a trailing dot. */
const LOOPBACK_NAME = /^(.+\.)?localhost\.?$/i;

/** An allow-list key: the host as WHATWG URL parsing normalises it, without a trailing dot. */
const hostKey = (hostname: string, port: number) => `${hostname.toLowerCase().replace(/\.$/, '')}:${port}`;

const defaultPort = (protocol: string) => (protocol === 'https:' ? 443 : 80);

/** A refusal with its reason, from the creation check or a connection. */
export class EndpointRefused extends Error {
  readonly code = 'HERALD_ENDPOINT_REFUSED';
}

export class EndpointGuard {
  private readonly allowHosts = new Set<string>();
  private readonly allowNets = new BlockList();
  private readonly self: { origin: string; path: string };
  /** Addresses that reach Herald's listening socket (when listening on all interfaces, every local one). */
  private readonly selfAddresses = new BlockList();
  private readonly lookupFn: typeof dnsLookup;

  constructor(private readonly rules: EndpointRules) {
    for (const entry of rules.allow) this.addAllowed(entry);
    const base = new URL(rules.baseUrl);
    this.self = { origin: base.origin, path: base.pathname.replace(/\/+$/, '') };
    const host = unbracket(rules.listen.host);
    const wildcard = host === '0.0.0.0' || host === '::';
    if (wildcard || LOOPBACK_NAME.test(host) || (isIP(host) !== 0 && internalAddress(host) === 'a loopback address')) {
      this.selfAddresses.addSubnet('127.0.0.0', 8, 'ipv4');
      this.selfAddresses.addAddress('::1', 'ipv6');
      this.selfAddresses.addSubnet('0.0.0.0', 8, 'ipv4');
      this.selfAddresses.addAddress('::', 'ipv6');
    }
    if (wildcard) {
      for (const nic of Object.values(networkInterfaces()).flat()) if (nic) this.selfAddresses.addAddress(nic.address, family(nic.address));
    } else if (isIP(host)) this.selfAddresses.addAddress(host, family(host));
    this.lookupFn = rules.lookup ?? dnsLookup;
  }

  private addAllowed(entry: string): void {
    const cidr = /^([^/]+)\/(\d{1,3})$/.exec(entry);
    if (cidr && isIP(cidr[1]!)) {
      const prefix = Number(cidr[2]);
      if (prefix > (isIP(cidr[1]!) === 4 ? 32 : 128)) throw new Error(`HERALD_ENDPOINT_ALLOW: '${entry}' has a prefix that is too long`);
      this.allowNets.addSubnet(cidr[1]!, prefix, family(cidr[1]!));
      return;
    }
    const hostPort = /^(.+):(\d{1,5})$/.exec(entry);
    let url: URL | undefined;
    try {
      url = hostPort ? new URL(`http://${hostPort[1]}`) : undefined;
    } catch {
      url = undefined;
    }
    if (!url || url.pathname !== '/' || url.username || Number(hostPort![2]) > 65535) {
      throw new Error(`HERALD_ENDPOINT_ALLOW: '${entry}' is neither host:port nor a CIDR range`);
    }
    this.allowHosts.add(hostKey(url.hostname, Number(hostPort![2])));
  }

  /** Listed by host:port (names compared as WHATWG URL parsing normalises them), or an IP in a listed range. */
  private allowed(hostname: string, port: number): boolean {
    if (this.allowHosts.has(hostKey(hostname, port))) return true;
    const ip = unbracket(hostname);
    return isIP(ip) !== 0 && this.allowNets.check(ip, family(ip));
  }

  /** Herald's own base URL, or its listening port on an address that reaches it. */
  private selfLoop(url: URL, address?: string): boolean {
    const path = url.pathname.replace(/\/+$/, '');
    if (url.origin === this.self.origin && (path === this.self.path || path.startsWith(`${this.self.path}/`))) return true;
    const port = Number(url.port) || defaultPort(url.protocol);
    if (port !== this.rules.listen.port) return false;
    const ip = address ?? unbracket(url.hostname);
    return LOOPBACK_NAME.test(url.hostname) || (isIP(ip) !== 0 && this.selfAddresses.check(ip, family(ip)));
  }

  /**
   * At creation (inside the write, so no DNS here): the scheme, Herald itself, and in auth mode
   * every literal spelling of an internal address (WHATWG URL parsing turns `127.1`, `2130706433`,
   * `0x7f.1` and `0177.0.0.1` into 127.0.0.1 and `[::ffff:127.0.0.1]` into `[::ffff:7f00:1]`).
   * Throws a 422 naming the reason.
   */
  check(endpoint: string, at = 'Subscription.channel.endpoint'): void {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw unprocessable(`endpoint '${endpoint.slice(0, 200)}' is not a URL`, [at]);
    }
    const reason = this.refusal(url);
    if (reason) throw unprocessable(`endpoint ${url.protocol}//${url.host} is refused: ${reason}`, [at]);
  }

  private refusal(url: URL): string | undefined {
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return `it must be an https URL, not ${url.protocol}`;
    if (this.selfLoop(url)) return 'it is this Herald server itself (a notification would create resources forever)';
    const port = Number(url.port) || defaultPort(url.protocol);
    const ip = unbracket(url.hostname);
    const literal = isIP(ip) !== 0 ? internalAddress(ip) : LOOPBACK_NAME.test(url.hostname) ? 'a loopback address' : undefined;
    if (!this.rules.authMode) {
      if (url.protocol === 'http:' && !this.rules.allowInsecureEndpoints && literal !== 'a loopback address') {
        return 'it must use https (plain http is accepted only for loopback hosts)';
      }
      return undefined;
    }
    if (this.allowed(url.hostname, port)) return undefined;
    if (url.protocol === 'http:' && !this.rules.allowInsecureEndpoints) return 'it must use https (plain http only for endpoints listed in HERALD_ENDPOINT_ALLOW)';
    if (literal) return `${url.hostname} is ${literal} (list it in HERALD_ENDPOINT_ALLOW to allow it)`;
    return undefined;
  }

  /**
   * Before a write, outside its transaction (auth mode): a host name that resolves to an internal
   * address is refused now rather than at the first delivery. Throws a 422 naming the reason.
   */
  async screen(endpoint: string): Promise<void> {
    if (!this.rules.authMode || !URL.canParse(endpoint)) return;
    const url = new URL(endpoint);
    const port = Number(url.port) || defaultPort(url.protocol);
    // What fails without DNS is reported by check(), inside the write.
    if (this.refusal(url) || isIP(unbracket(url.hostname)) !== 0 || this.allowed(url.hostname, port)) return;
    const addresses = await this.resolve(url.hostname.replace(/\.$/, '')).catch(() => []);
    const reason = this.addressRefusal(url, addresses);
    if (reason) throw unprocessable(`endpoint ${url.protocol}//${url.host} is refused: ${reason}`, ['channel.endpoint']);
  }

  private resolve(hostname: string): Promise<LookupAddress[]> {
    return new Promise((resolve, reject) => this.lookupFn(hostname, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))));
  }

  /** The connection rule for the addresses a name resolved to: any refused address refuses them all. */
  private addressRefusal(url: URL, addresses: readonly LookupAddress[]): string | undefined {
    const listed = this.allowHosts.has(hostKey(url.hostname, Number(url.port) || defaultPort(url.protocol)));
    for (const { address } of addresses) {
      if (this.selfLoop(url, address)) return `${url.hostname} resolves to this Herald server itself (${address})`;
      if (!this.rules.authMode || listed || this.allowNets.check(address, family(address))) continue;
      const internal = internalAddress(address);
      if (internal) return `${url.hostname} resolves to ${address}, ${internal} (list it in HERALD_ENDPOINT_ALLOW to allow it)`;
    }
    return undefined;
  }

  /**
   * For every connection (the rest-hook sender's connector): the endpoint's rules, then those of
   * the address the connection is about to use, resolved here. Answers the addresses to connect
   * to, or throws EndpointRefused with the reason.
   */
  async connectable(url: URL): Promise<LookupAddress[]> {
    const reason = this.refusal(url);
    if (reason) throw new EndpointRefused(reason);
    const ip = unbracket(url.hostname);
    const addresses = isIP(ip) !== 0 ? [{ address: ip, family: isIP(ip) }] : await this.resolve(url.hostname.replace(/\.$/, ''));
    const refused = this.addressRefusal(url, addresses);
    if (refused) throw new EndpointRefused(refused);
    return addresses;
  }
}
