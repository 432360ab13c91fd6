import { parseArgs } from 'node:util';
import type { AuthConfig } from './auth/index.ts';
import type { HttpLimits } from './http/server.ts';
import type { SubscriptionQuotas as EngineQuotas } from './subscriptions/index.ts';

/** Herald's whole configuration, resolved and validated once at start. */
export interface Config {
  port: number;
  host: string;
  /** `sqlite:<path>`, `sqlite::memory:`, or `postgres://…` / `postgresql://…`. */
  db: string;
  /** Public base URL (no trailing slash); FHIR bases are `${baseUrl}/fhir/R4` etc. */
  baseUrl: string;
  /** Largest request body in bytes. */
  bodyLimit: number;
  logLevel: string;
  /** Page size for history when `_count` is absent, and the largest `_count` honoured. */
  defaultPageSize: number;
  maxPageSize: number;
  /** Folder of topic resources installed at start (JSON files), or undefined. */
  topicsDir?: string;
  /** rest-hook: allow plain http:// endpoints to non-loopback hosts (RH-7). */
  allowInsecureEndpoints: boolean;
  /** rest-hook delivery: per-attempt timeout default, backoff base and cap, failure window (ms). */
  deliveryTimeoutMs: number;
  retryBaseMs: number;
  retryCapMs: number;
  failureWindowMs: number;
  /** Events older than this are pruned from the log (D-9). */
  eventRetentionMs: number;
  /** Lifetime of websocket binding tokens (D-2: 1 h). */
  wsTokenTtlMs: number;
  /** A websocket whose unsent data exceeds this many bytes is closed (slow reader). */
  wsMaxBufferedBytes: number;
  /** Protocol ping interval; a peer that misses a pong is dropped. */
  wsPingIntervalMs: number;
  /** How long a stop may take before the process exits anyway. */
  shutdownGraceMs: number;
  /** Auth mode (HERALD_AUTH_ISSUER or HERALD_AUTH_CLIENTS set): strict rest-hook endpoints, Origin checked on /ws. */
  authMode: boolean;
  /** rest-hook endpoints allowed despite the auth-mode rules: `host:port` or CIDR entries. */
  endpointAllow: string[];
  /**
   * Web origins whose pages may call the REST API (CORS) and open /ws (when set, or in auth mode,
   * other origins are refused on /ws); `*` (any origin) only in open mode.
   */
  corsOrigins: string[];
  /** PEM files of the certificate (chain) and its private key: https and wss on the same port. */
  tls?: { certFile: string; keyFile: string };
  /** Request logs carry query values (PHI) only when this is on (debugging). */
  logPhi: boolean;
  /** Bearer-token authentication (external and/or embedded issuer); undefined in open mode. */
  auth?: AuthConfig;
  /** Threads that run searches and history, each with its own read-only connection. */
  readThreads: number;
  /** A search or history read waits at most this long for a thread (503), then may run this long (422). */
  searchTimeoutMs: number;
  /** HTTP limits (issue 14): slow or idle clients cannot hold connections, nor too many of them. */
  http: HttpLimits;
  /** Websocket limits (issue 14): connections in total and per address, subscriptions and failed binds per socket. */
  ws: WebsocketLimits;
  /** Subscription quotas (issue 14), checked when a Subscription or binding token is asked for. */
  quotas: SubscriptionQuotas;
  /** The event log keeps at most this many events per subscription (besides the retention age). */
  eventLogMaxPerSubscription: number;
  /** How often the event log is pruned (also once shortly after start). */
  eventPruneIntervalMs: number;
  /** PostgreSQL: connections of this node's pool for writes and reads by key (searches use readThreads more). */
  pgPoolSize: number;
  /** Several nodes: how long a node's claim on a subscription's rest-hook delivery lasts without renewal. */
  deliveryLeaseMs: number;
}

export interface WebsocketLimits {
  maxConnections: number;
  maxConnectionsPerAddress: number;
  /** Subscriptions bound on one socket, over all its tokens. */
  maxSubscriptionsPerSocket: number;
  /** Refused binds after which the socket is closed (1008). */
  maxFailedBinds: number;
}

/** The engine's quotas, and the two enforced elsewhere (the delivery slots, the token operation). */
export interface SubscriptionQuotas extends EngineQuotas {
  /** rest-hook POSTs in flight at once, over every base; more wait for a free slot. */
  maxConcurrentDeliveries: number;
  maxSubscriptionsPerToken: number;
}

/**
 * One setting. This table is the single source of the README's configuration table and of
 * `npm start -- --help` (test/e2e/docs.test.ts holds them equal; `npm run config-table` prints the
 * README's rows). A new setting needs all of: `flag` (kebab-case, no `--`), `env`, `fallback` (the
 * raw default, '' for none), `shown` when the default is derived rather than `fallback` (else
 * `fallback`, or – when empty), and `meaning` (one line; Markdown backticks and links allowed).
 */
interface Setting {
  flag: string;
  env: string;
  fallback: string;
  shown?: string;
  meaning: string;
}

/** Each setting: its flag, its environment variable, its default, what it means. Flags win over the environment. */
const SETTINGS = {
  port: { flag: 'port', env: 'PORT', fallback: '8080', meaning: 'TCP port' },
  host: { flag: 'host', env: 'HOST', fallback: '127.0.0.1', meaning: 'interface to listen on (`0.0.0.0` for all)' },
  db: { flag: 'db', env: 'HERALD_DB', fallback: 'sqlite:./data/herald.db', meaning: 'the store: `sqlite:<path>`, `sqlite::memory:` or `postgres://user@host:port/dbname` (the database must exist)' },
  baseUrl: { flag: 'base-url', env: 'HERALD_BASE_URL', fallback: '', shown: 'http://HOST:PORT', meaning: 'public base URL, used in `Location`, `fullUrl` and links (`https://HOST:PORT` by default with TLS)' },
  bodyLimit: { flag: 'body-limit', env: 'HERALD_BODY_LIMIT', fallback: String(16 * 1024 * 1024), meaning: 'largest request body in bytes (413 beyond)' },
  logLevel: { flag: 'log-level', env: 'LOG_LEVEL', fallback: 'info', meaning: 'pino level: `fatal error warn info debug trace silent`' },
  defaultPageSize: { flag: 'page-size', env: 'HERALD_PAGE_SIZE', fallback: '50', meaning: 'history page size when `_count` is absent' },
  maxPageSize: { flag: 'max-page-size', env: 'HERALD_MAX_PAGE_SIZE', fallback: '1000', meaning: 'largest `_count` honoured (larger values are clamped)' },
  topicsDir: { flag: 'topics', env: 'HERALD_TOPICS', fallback: '', meaning: 'folder of topic JSON files installed on every base at start' },
  allowInsecure: { flag: 'allow-insecure-endpoints', env: 'HERALD_ALLOW_INSECURE_ENDPOINTS', fallback: 'false', meaning: 'accept `http://` rest-hook endpoints on non-loopback hosts (the address rules of auth mode still hold)' },
  deliveryTimeout: { flag: 'delivery-timeout-ms', env: 'HERALD_DELIVERY_TIMEOUT_MS', fallback: '10000', meaning: 'rest-hook attempt timeout when the subscription sets none' },
  retryBase: { flag: 'retry-base-ms', env: 'HERALD_RETRY_BASE_MS', fallback: '1000', meaning: 'first retry delay (doubles per attempt, with jitter)' },
  retryCap: { flag: 'retry-cap-ms', env: 'HERALD_RETRY_CAP_MS', fallback: '300000', meaning: 'longest retry delay' },
  failureWindow: { flag: 'failure-window-s', env: 'HERALD_FAILURE_WINDOW_S', fallback: '86400', meaning: 'a subscription failing this long goes `off`' },
  retention: { flag: 'event-retention-days', env: 'HERALD_EVENT_RETENTION_DAYS', fallback: '7', meaning: 'how long the event log keeps events for `$events`' },
  wsTokenTtl: { flag: 'ws-token-ttl-s', env: 'HERALD_WS_TOKEN_TTL_S', fallback: '3600', meaning: 'lifetime of websocket binding tokens' },
  wsMaxBuffered: { flag: 'ws-max-buffered-bytes', env: 'HERALD_WS_MAX_BUFFERED_BYTES', fallback: String(4 * 1024 * 1024), meaning: 'a websocket with more unsent data is closed (slow reader)' },
  wsPing: { flag: 'ws-ping-interval-ms', env: 'HERALD_WS_PING_INTERVAL_MS', fallback: '30000', meaning: 'protocol ping interval; a peer missing a pong is dropped' },
  shutdownGrace: { flag: 'shutdown-grace-s', env: 'HERALD_SHUTDOWN_GRACE_S', fallback: '10', meaning: 'longest a stop may take before the process exits anyway' },
  endpointAllow: { flag: 'endpoint-allow', env: 'HERALD_ENDPOINT_ALLOW', fallback: '', meaning: 'rest-hook endpoints allowed despite the auth-mode address rules, comma-separated: `host:port` (may be `http`) or CIDR (`10.1.0.0/16`, `fd00::/8`); see [Rest-hook endpoint safety](#rest-hook-endpoint-safety)' },
  corsOrigins: { flag: 'cors-origins', env: 'HERALD_CORS_ORIGINS', fallback: '', meaning: 'web origins (`https://app.example.org`, comma-separated) whose pages may call the REST API (CORS) and open `/ws`; `*` for any origin, in open mode only (refused at start in auth mode); when set, or in auth mode, other origins are refused on `/ws`' },
  tlsCert: { flag: 'tls-cert', env: 'HERALD_TLS_CERT', fallback: '', meaning: 'PEM file of the TLS certificate (chain): with `--tls-key`, Herald serves `https` and `wss` on its port' },
  tlsKey: { flag: 'tls-key', env: 'HERALD_TLS_KEY', fallback: '', meaning: "PEM file of the certificate's private key" },
  logPhi: { flag: 'log-phi', env: 'HERALD_LOG_PHI', fallback: 'false', meaning: 'request logs carry full URLs with query values (PHI): for debugging only' },
  authIssuer: { flag: 'auth-issuer', env: 'HERALD_AUTH_ISSUER', fallback: '', meaning: 'external issuer: the `iss` its tokens carry (turns auth on)' },
  authJwks: { flag: 'auth-jwks', env: 'HERALD_AUTH_JWKS', fallback: '', meaning: "external issuer's keys: a JWKS `http(s)://` URL or file path" },
  authAudience: { flag: 'auth-audience', env: 'HERALD_AUTH_AUDIENCE', fallback: '', meaning: 'when set, external tokens must name it in `aud`' },
  authJwksRefetch: { flag: 'auth-jwks-refetch-s', env: 'HERALD_AUTH_JWKS_REFETCH_S', fallback: '30', meaning: 'least time between two JWKS fetches for an unknown `kid`' },
  authClients: { flag: 'auth-clients', env: 'HERALD_AUTH_CLIENTS', fallback: '', meaning: 'embedded issuer: the clients JSON file (turns auth on)' },
  authKey: { flag: 'auth-key', env: 'HERALD_AUTH_KEY', fallback: '', shown: '<data folder>/auth-key.json', meaning: "the embedded issuer's private JWK (created when missing); unset on PostgreSQL: kept in the database, shared by every node" },
  authTokenTtl: { flag: 'auth-token-ttl-s', env: 'HERALD_AUTH_TOKEN_TTL_S', fallback: '300', meaning: 'lifetime of embedded access tokens' },
  authAdminScope: { flag: 'auth-admin-scope', env: 'HERALD_AUTH_ADMIN_SCOPE', fallback: 'herald/admin', meaning: 'the scope that sees and manages every subscription' },
  maxSubsPerOwner: { flag: 'max-subscriptions-per-owner', env: 'HERALD_MAX_SUBSCRIPTIONS_PER_OWNER', fallback: '1000', meaning: 'one more is a 422' },
  allowOpen: { flag: 'allow-open', env: 'HERALD_ALLOW_OPEN', fallback: 'false', meaning: 'let open mode (no auth) listen on a non-loopback `HOST`' },
  readThreads: { flag: 'read-threads', env: 'HERALD_READ_THREADS', fallback: '2', meaning: 'threads running searches and history, each with its own read-only SQLite connection' },
  searchTimeout: { flag: 'search-timeout-ms', env: 'HERALD_SEARCH_TIMEOUT_MS', fallback: '10000', meaning: 'a search or history page waits at most this long before it runs, for the search index to catch up with acknowledged writes and for a free read thread together (then 503), and may run this long (then 422 `too-costly`)' },
  requestTimeout: { flag: 'request-timeout-ms', env: 'HERALD_REQUEST_TIMEOUT_MS', fallback: '60000', meaning: 'a request whose body has not fully arrived by then gets a 408 and its connection is closed' },
  headersTimeout: { flag: 'headers-timeout-ms', env: 'HERALD_HEADERS_TIMEOUT_MS', fallback: '10000', meaning: 'a request whose headers have not arrived by then gets a 408 (at most the request timeout)' },
  idleTimeout: { flag: 'idle-timeout-ms', env: 'HERALD_IDLE_TIMEOUT_MS', fallback: '120000', meaning: 'a connection with no traffic for this long is closed (keep it above the search timeout)' },
  keepAliveTimeout: { flag: 'keep-alive-timeout-ms', env: 'HERALD_KEEP_ALIVE_TIMEOUT_MS', fallback: '5000', meaning: 'an idle keep-alive connection between requests is closed after this' },
  maxConnections: { flag: 'max-connections', env: 'HERALD_MAX_CONNECTIONS', fallback: '10000', meaning: 'open TCP connections (websockets included); one more is closed unread' },
  wsMaxConnections: { flag: 'ws-max-connections', env: 'HERALD_WS_MAX_CONNECTIONS', fallback: '5000', meaning: 'open websockets in all; one more upgrade gets a 503' },
  wsMaxPerAddress: { flag: 'ws-max-connections-per-address', env: 'HERALD_WS_MAX_CONNECTIONS_PER_ADDRESS', fallback: '500', meaning: 'open websockets per client address; one more upgrade gets a 429 (raise it behind a proxy)' },
  wsMaxSubsPerSocket: { flag: 'ws-max-subscriptions-per-socket', env: 'HERALD_WS_MAX_SUBSCRIPTIONS_PER_SOCKET', fallback: '1000', meaning: 'subscriptions bound on one websocket; a bind past it is refused with an OperationOutcome frame' },
  wsMaxFailedBinds: { flag: 'ws-max-failed-binds', env: 'HERALD_WS_MAX_FAILED_BINDS', fallback: '10', meaning: 'refused binds on one websocket before it is closed with 1008' },
  minHeartbeat: { flag: 'min-heartbeat-s', env: 'HERALD_MIN_HEARTBEAT_S', fallback: '10', meaning: 'shortest `heartbeatPeriod` a Subscription may ask (less is a 422)' },
  maxDeliveryTimeout: { flag: 'max-delivery-timeout-s', env: 'HERALD_MAX_DELIVERY_TIMEOUT_S', fallback: '60', meaning: 'longest `timeout` a Subscription may ask (more is a 422)' },
  maxConcurrentDeliveries: { flag: 'max-concurrent-deliveries', env: 'HERALD_MAX_CONCURRENT_DELIVERIES', fallback: '64', meaning: 'rest-hook POSTs in flight at once, all subscriptions together; others wait their turn' },
  maxSubsPerTopic: { flag: 'max-subscriptions-per-topic', env: 'HERALD_MAX_SUBSCRIPTIONS_PER_TOPIC', fallback: '10000', meaning: 'live subscriptions to one topic on one base; one more is a 422' },
  maxClassicSubs: { flag: 'max-classic-subscriptions', env: 'HERALD_MAX_CLASSIC_SUBSCRIPTIONS', fallback: '1000', meaning: 'live R4 subscriptions with classic `criteria` (no topic) on one base: each write of their type tests every one; one more is a 422' },
  maxFilters: { flag: 'max-filters-per-subscription', env: 'HERALD_MAX_FILTERS_PER_SUBSCRIPTION', fallback: '20', meaning: 'filters on one Subscription; more is a 422' },
  maxSubsPerToken: { flag: 'max-subscriptions-per-token', env: 'HERALD_MAX_SUBSCRIPTIONS_PER_TOKEN', fallback: '100', meaning: 'subscriptions one `$get-ws-binding-token` may cover; more is a 400 `too-costly`' },
  eventLogMax: { flag: 'event-log-max-per-subscription', env: 'HERALD_EVENT_LOG_MAX_PER_SUBSCRIPTION', fallback: '100000', meaning: 'events kept per subscription; older ones are pruned (their numbers answer 410 in `$events`)' },
  eventPruneInterval: { flag: 'event-prune-interval-s', env: 'HERALD_EVENT_PRUNE_INTERVAL_S', fallback: '3600', meaning: 'how often the event log is pruned by age and size (also 10 s after start)' },
  pgPool: { flag: 'pg-pool', env: 'HERALD_PG_POOL', fallback: '10', meaning: 'PostgreSQL: connections of this node for transactions and reads by key (searches and history use `HERALD_READ_THREADS` more, with `HERALD_SEARCH_TIMEOUT_MS` as their statement timeout)' },
  deliveryLease: { flag: 'delivery-lease-s', env: 'HERALD_DELIVERY_LEASE_S', fallback: '10', meaning: "several nodes: how long a node's claim on delivering a subscription's rest-hook events lasts without renewal" },
} as const satisfies Record<string, Setting>;

const shownDefault = (s: Setting) => s.shown ?? (s.fallback || '–');

/** The README's configuration table (Markdown), header included. */
export function configTableMarkdown(): string {
  const rows = Object.values(SETTINGS as Record<string, Setting>).map((s) => `| \`--${s.flag}\` | \`${s.env}\` | ${s.fallback || s.shown ? `\`${shownDefault(s)}\`` : '–'} | ${s.meaning} |`);
  return ['| flag | environment | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

/** Markdown to plain text for a terminal: `code` → code, [text](#anchor) → text. */
const plain = (markdown: string) => markdown.replace(/`([^`]*)`/g, '$1').replace(/\[([^\]]+)\]\([^)]*\)/g, '$1');

/** The same table for `--help`: aligned columns, the meaning last (not wrapped). */
export function configTableText(): string {
  const rows = [
    ['flag', 'environment', 'default', 'meaning'],
    ...Object.values(SETTINGS as Record<string, Setting>).map((s) => [`--${s.flag}`, s.env, shownDefault(s), plain(s.meaning)]),
  ];
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell)).join('  ')).join('\n');
}

export function loadConfig(argv: string[], env: Record<string, string | undefined>): Config {
  const options = Object.fromEntries(Object.values(SETTINGS).map((s) => [s.flag, { type: 'string' as const }]));
  const { values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  const get = (key: keyof typeof SETTINGS): string => {
    const s = SETTINGS[key];
    return (values[s.flag] as string | undefined) ?? env[s.env] ?? s.fallback;
  };
  const port = int(get('port'), 'PORT', 0, 65535);
  const host = get('host');
  const db = get('db');
  if (!/^(sqlite:.+|postgres(ql)?:\/\/.+)$/.test(db)) {
    throw new Error(`HERALD_DB must be sqlite:<path>, sqlite::memory: or postgres://…, not '${db}'`);
  }
  const tls = tlsConfig(get('tlsCert'), get('tlsKey'));
  const baseUrl = (get('baseUrl') || `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+/.test(baseUrl)) throw new Error(`HERALD_BASE_URL must be an http(s) URL, not '${baseUrl}'`);
  const auth = authConfig(get);
  if (!auth && !isLoopback(host) && !bool(get('allowOpen'), 'HERALD_ALLOW_OPEN')) {
    throw new Error(
      `Open mode (no HERALD_AUTH_ISSUER or HERALD_AUTH_CLIENTS) lets anyone read and write everything: ` +
        `it listens only on loopback, not on '${host}', unless HERALD_ALLOW_OPEN=true`,
    );
  }
  const quotas: SubscriptionQuotas = {
    minHeartbeatS: int(get('minHeartbeat'), 'HERALD_MIN_HEARTBEAT_S', 1, 86_400),
    maxDeliveryTimeoutS: int(get('maxDeliveryTimeout'), 'HERALD_MAX_DELIVERY_TIMEOUT_S', 1, 120),
    maxConcurrentDeliveries: int(get('maxConcurrentDeliveries'), 'HERALD_MAX_CONCURRENT_DELIVERIES', 1, 10_000),
    maxSubscriptionsPerTopic: int(get('maxSubsPerTopic'), 'HERALD_MAX_SUBSCRIPTIONS_PER_TOPIC', 1, 10_000_000),
    maxClassicSubscriptions: int(get('maxClassicSubs'), 'HERALD_MAX_CLASSIC_SUBSCRIPTIONS', 1, 1_000_000),
    maxFiltersPerSubscription: int(get('maxFilters'), 'HERALD_MAX_FILTERS_PER_SUBSCRIPTION', 1, 1000),
    maxSubscriptionsPerToken: int(get('maxSubsPerToken'), 'HERALD_MAX_SUBSCRIPTIONS_PER_TOKEN', 1, 100_000),
  };
  const deliveryTimeoutMs = int(get('deliveryTimeout'), 'HERALD_DELIVERY_TIMEOUT_MS', 1, 600_000);
  if (deliveryTimeoutMs > quotas.maxDeliveryTimeoutS * 1000) {
    throw new Error(`HERALD_DELIVERY_TIMEOUT_MS (${deliveryTimeoutMs}) must not exceed HERALD_MAX_DELIVERY_TIMEOUT_S (${quotas.maxDeliveryTimeoutS} s)`);
  }
  return {
    port,
    host,
    db,
    baseUrl,
    bodyLimit: int(get('bodyLimit'), 'HERALD_BODY_LIMIT', 1024, 1024 ** 3),
    logLevel: get('logLevel'),
    defaultPageSize: int(get('defaultPageSize'), 'HERALD_PAGE_SIZE', 1, 10000),
    maxPageSize: int(get('maxPageSize'), 'HERALD_MAX_PAGE_SIZE', 1, 10000),
    ...(get('topicsDir') ? { topicsDir: get('topicsDir') } : {}),
    allowInsecureEndpoints: bool(get('allowInsecure'), 'HERALD_ALLOW_INSECURE_ENDPOINTS'),
    deliveryTimeoutMs,
    retryBaseMs: int(get('retryBase'), 'HERALD_RETRY_BASE_MS', 1, 3_600_000),
    retryCapMs: int(get('retryCap'), 'HERALD_RETRY_CAP_MS', 1, 86_400_000),
    failureWindowMs: int(get('failureWindow'), 'HERALD_FAILURE_WINDOW_S', 1, 365 * 86_400) * 1000,
    eventRetentionMs: int(get('retention'), 'HERALD_EVENT_RETENTION_DAYS', 1, 3650) * 86_400_000,
    wsTokenTtlMs: int(get('wsTokenTtl'), 'HERALD_WS_TOKEN_TTL_S', 1, 7 * 86_400) * 1000,
    wsMaxBufferedBytes: int(get('wsMaxBuffered'), 'HERALD_WS_MAX_BUFFERED_BYTES', 1024, 1024 ** 3),
    wsPingIntervalMs: int(get('wsPing'), 'HERALD_WS_PING_INTERVAL_MS', 100, 3_600_000),
    shutdownGraceMs: int(get('shutdownGrace'), 'HERALD_SHUTDOWN_GRACE_S', 1, 3600) * 1000,
    authMode: auth !== undefined,
    endpointAllow: list(get('endpointAllow')),
    corsOrigins: corsOrigins(list(get('corsOrigins')), auth !== undefined),
    ...(tls ? { tls } : {}),
    logPhi: bool(get('logPhi'), 'HERALD_LOG_PHI'),
    ...(auth ? { auth } : {}),
    readThreads: int(get('readThreads'), 'HERALD_READ_THREADS', 1, 64),
    searchTimeoutMs: int(get('searchTimeout'), 'HERALD_SEARCH_TIMEOUT_MS', 1, 600_000),
    http: httpLimits(get),
    ws: {
      maxConnections: int(get('wsMaxConnections'), 'HERALD_WS_MAX_CONNECTIONS', 1, 1_000_000),
      maxConnectionsPerAddress: int(get('wsMaxPerAddress'), 'HERALD_WS_MAX_CONNECTIONS_PER_ADDRESS', 1, 1_000_000),
      maxSubscriptionsPerSocket: int(get('wsMaxSubsPerSocket'), 'HERALD_WS_MAX_SUBSCRIPTIONS_PER_SOCKET', 1, 1_000_000),
      maxFailedBinds: int(get('wsMaxFailedBinds'), 'HERALD_WS_MAX_FAILED_BINDS', 1, 1_000_000),
    },
    quotas,
    eventLogMaxPerSubscription: int(get('eventLogMax'), 'HERALD_EVENT_LOG_MAX_PER_SUBSCRIPTION', 1, 1_000_000_000),
    eventPruneIntervalMs: int(get('eventPruneInterval'), 'HERALD_EVENT_PRUNE_INTERVAL_S', 1, 86_400) * 1000,
    pgPoolSize: int(get('pgPool'), 'HERALD_PG_POOL', 1, 1000),
    deliveryLeaseMs: int(get('deliveryLease'), 'HERALD_DELIVERY_LEASE_S', 1, 3600) * 1000,
  };
}

function httpLimits(get: (key: keyof typeof SETTINGS) => string): HttpLimits {
  const limits: HttpLimits = {
    requestTimeoutMs: int(get('requestTimeout'), 'HERALD_REQUEST_TIMEOUT_MS', 100, 3_600_000),
    headersTimeoutMs: int(get('headersTimeout'), 'HERALD_HEADERS_TIMEOUT_MS', 100, 3_600_000),
    idleTimeoutMs: int(get('idleTimeout'), 'HERALD_IDLE_TIMEOUT_MS', 100, 3_600_000),
    keepAliveTimeoutMs: int(get('keepAliveTimeout'), 'HERALD_KEEP_ALIVE_TIMEOUT_MS', 100, 3_600_000),
    maxConnections: int(get('maxConnections'), 'HERALD_MAX_CONNECTIONS', 1, 1_000_000),
  };
  // Node refuses a headers timeout longer than the request's (the headers are part of it).
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new Error(`HERALD_HEADERS_TIMEOUT_MS (${limits.headersTimeoutMs}) must not exceed HERALD_REQUEST_TIMEOUT_MS (${limits.requestTimeoutMs})`);
  }
  return limits;
}

function authConfig(get: (key: keyof typeof SETTINGS) => string): AuthConfig | undefined {
  const issuer = get('authIssuer');
  const jwks = get('authJwks');
  const clients = get('authClients');
  if (!issuer && !clients) {
    if (jwks) throw new Error('HERALD_AUTH_JWKS needs HERALD_AUTH_ISSUER');
    return undefined;
  }
  if (issuer && !jwks) throw new Error('HERALD_AUTH_ISSUER needs HERALD_AUTH_JWKS (a JWKS URL or file)');
  const audience = get('authAudience');
  const key = get('authKey');
  return {
    ...(issuer
      ? { external: { issuer, jwks, ...(audience ? { audience } : {}), jwksRefetchMs: int(get('authJwksRefetch'), 'HERALD_AUTH_JWKS_REFETCH_S', 0, 86_400) * 1000 } }
      : {}),
    ...(clients ? { embedded: { clients, ...(key ? { key } : {}), tokenTtlMs: int(get('authTokenTtl'), 'HERALD_AUTH_TOKEN_TTL_S', 1, 86_400) * 1000 } } : {}),
    adminScope: get('authAdminScope'),
    maxSubscriptionsPerOwner: int(get('maxSubsPerOwner'), 'HERALD_MAX_SUBSCRIPTIONS_PER_OWNER', 1, 1_000_000),
  };
}

/** 127.0.0.0/8, ::1 and localhost: the addresses only this machine can reach. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

function bool(raw: string, name: string): boolean {
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new Error(`${name} must be true or false, not '${raw}'`);
}

function list(raw: string): string[] {
  return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** Exact origins, or `*` alone, which lets any page use the API: only in open mode, where no credential is at stake. */
function corsOrigins(raw: string[], authMode: boolean): string[] {
  if (!raw.includes('*')) return raw.map((o) => origin(o, 'HERALD_CORS_ORIGINS'));
  if (raw.length > 1) throw new Error(`HERALD_CORS_ORIGINS: '*' stands alone, not beside other origins`);
  if (authMode) throw new Error(`HERALD_CORS_ORIGINS=* is refused in auth mode: list the origins of the apps that may use bearer tokens here`);
  return ['*'];
}

/** Both PEM paths or neither. The files are read when the server is built. */
function tlsConfig(certFile: string, keyFile: string): Config['tls'] {
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) throw new Error('HERALD_TLS_CERT and HERALD_TLS_KEY go together: give both PEM files, or neither');
  return { certFile, keyFile };
}

/** A web origin as browsers send it: scheme://host[:port], nothing else. */
function origin(raw: string, name: string): string {
  const url = URL.canParse(raw) ? new URL(raw) : undefined;
  if (!url || !/^https?:$/.test(url.protocol) || url.pathname !== '/' || url.search || url.hash || url.username) {
    throw new Error(`${name}: '${raw}' is not an origin like https://app.example.org`);
  }
  return url.origin;
}

function int(raw: string, name: string, min: number, max: number): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) throw new Error(`${name} must be an integer from ${min} to ${max}, not '${raw}'`);
  return n;
}
