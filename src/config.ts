import { parseArgs } from 'node:util';
import type { AuthConfig } from './auth/index.ts';

/** Herald's whole configuration, resolved and validated once at start. */
export interface Config {
  port: number;
  host: string;
  /** `sqlite:<path>`, `sqlite::memory:` (later `postgres://…`). */
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
}

/** Each setting: its flag, its environment variable, its default. Flags win over the environment. */
const SETTINGS = {
  port: { flag: 'port', env: 'PORT', fallback: '8080' },
  host: { flag: 'host', env: 'HOST', fallback: '127.0.0.1' },
  db: { flag: 'db', env: 'HERALD_DB', fallback: 'sqlite:./data/herald.db' },
  baseUrl: { flag: 'base-url', env: 'HERALD_BASE_URL', fallback: '' },
  bodyLimit: { flag: 'body-limit', env: 'HERALD_BODY_LIMIT', fallback: String(16 * 1024 * 1024) },
  logLevel: { flag: 'log-level', env: 'LOG_LEVEL', fallback: 'info' },
  defaultPageSize: { flag: 'page-size', env: 'HERALD_PAGE_SIZE', fallback: '50' },
  maxPageSize: { flag: 'max-page-size', env: 'HERALD_MAX_PAGE_SIZE', fallback: '1000' },
  topicsDir: { flag: 'topics', env: 'HERALD_TOPICS', fallback: '' },
  allowInsecure: { flag: 'allow-insecure-endpoints', env: 'HERALD_ALLOW_INSECURE_ENDPOINTS', fallback: 'false' },
  deliveryTimeout: { flag: 'delivery-timeout-ms', env: 'HERALD_DELIVERY_TIMEOUT_MS', fallback: '10000' },
  retryBase: { flag: 'retry-base-ms', env: 'HERALD_RETRY_BASE_MS', fallback: '1000' },
  retryCap: { flag: 'retry-cap-ms', env: 'HERALD_RETRY_CAP_MS', fallback: '300000' },
  failureWindow: { flag: 'failure-window-s', env: 'HERALD_FAILURE_WINDOW_S', fallback: '86400' },
  retention: { flag: 'event-retention-days', env: 'HERALD_EVENT_RETENTION_DAYS', fallback: '7' },
  wsTokenTtl: { flag: 'ws-token-ttl-s', env: 'HERALD_WS_TOKEN_TTL_S', fallback: '3600' },
  wsMaxBuffered: { flag: 'ws-max-buffered-bytes', env: 'HERALD_WS_MAX_BUFFERED_BYTES', fallback: String(4 * 1024 * 1024) },
  wsPing: { flag: 'ws-ping-interval-ms', env: 'HERALD_WS_PING_INTERVAL_MS', fallback: '30000' },
  shutdownGrace: { flag: 'shutdown-grace-s', env: 'HERALD_SHUTDOWN_GRACE_S', fallback: '10' },
  endpointAllow: { flag: 'endpoint-allow', env: 'HERALD_ENDPOINT_ALLOW', fallback: '' },
  corsOrigins: { flag: 'cors-origins', env: 'HERALD_CORS_ORIGINS', fallback: '' },
  logPhi: { flag: 'log-phi', env: 'HERALD_LOG_PHI', fallback: 'false' },
  authIssuer: { flag: 'auth-issuer', env: 'HERALD_AUTH_ISSUER', fallback: '' },
  authJwks: { flag: 'auth-jwks', env: 'HERALD_AUTH_JWKS', fallback: '' },
  authAudience: { flag: 'auth-audience', env: 'HERALD_AUTH_AUDIENCE', fallback: '' },
  authJwksRefetch: { flag: 'auth-jwks-refetch-s', env: 'HERALD_AUTH_JWKS_REFETCH_S', fallback: '30' },
  authClients: { flag: 'auth-clients', env: 'HERALD_AUTH_CLIENTS', fallback: '' },
  authKey: { flag: 'auth-key', env: 'HERALD_AUTH_KEY', fallback: '' },
  authTokenTtl: { flag: 'auth-token-ttl-s', env: 'HERALD_AUTH_TOKEN_TTL_S', fallback: '300' },
  authAdminScope: { flag: 'auth-admin-scope', env: 'HERALD_AUTH_ADMIN_SCOPE', fallback: 'herald/admin' },
  maxSubsPerOwner: { flag: 'max-subscriptions-per-owner', env: 'HERALD_MAX_SUBSCRIPTIONS_PER_OWNER', fallback: '1000' },
  allowOpen: { flag: 'allow-open', env: 'HERALD_ALLOW_OPEN', fallback: 'false' },
  readThreads: { flag: 'read-threads', env: 'HERALD_READ_THREADS', fallback: '2' },
  searchTimeout: { flag: 'search-timeout-ms', env: 'HERALD_SEARCH_TIMEOUT_MS', fallback: '10000' },
  tlsCert: { flag: 'tls-cert', env: 'HERALD_TLS_CERT', fallback: '' },
  tlsKey: { flag: 'tls-key', env: 'HERALD_TLS_KEY', fallback: '' },
} as const;

export const CONFIG_HELP = Object.values(SETTINGS)
  .map((s) => `  --${s.flag.padEnd(14)} ${s.env.padEnd(20)} default: ${s.fallback || '(derived)'}`)
  .join('\n');

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
    deliveryTimeoutMs: int(get('deliveryTimeout'), 'HERALD_DELIVERY_TIMEOUT_MS', 1, 600_000),
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
  };
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
