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
  };
}

function int(raw: string, name: string, min: number, max: number): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) throw new Error(`${name} must be an integer from ${min} to ${max}, not '${raw}'`);
  return n;
}
