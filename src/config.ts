import { parseArgs } from 'node:util';

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
  readThreads: { flag: 'read-threads', env: 'HERALD_READ_THREADS', fallback: '2' },
  searchTimeout: { flag: 'search-timeout-ms', env: 'HERALD_SEARCH_TIMEOUT_MS', fallback: '10000' },
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
  const baseUrl = (get('baseUrl') || `http://${host.includes(':') ? `[${host}]` : host}:${port}`).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+/.test(baseUrl)) throw new Error(`HERALD_BASE_URL must be an http(s) URL, not '${baseUrl}'`);
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
    readThreads: int(get('readThreads'), 'HERALD_READ_THREADS', 1, 64),
    searchTimeoutMs: int(get('searchTimeout'), 'HERALD_SEARCH_TIMEOUT_MS', 1, 600_000),
  };
}

function bool(raw: string, name: string): boolean {
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new Error(`${name} must be true or false, not '${raw}'`);
}

function int(raw: string, name: string, min: number, max: number): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) throw new Error(`${name} must be an integer from ${min} to ${max}, not '${raw}'`);
  return n;
}
