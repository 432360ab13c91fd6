import { type AddressInfo, createServer } from 'node:net';
import { after, before } from 'node:test';
import { buildApp } from '../../src/app.ts';
import type { Store } from '../../src/store/store.ts';
import { loadConfig } from '../../src/config.ts';
import { createDatabase, dropDatabase } from './postgres.ts';

/** A Herald listening on a loopback port, with helpers to call it. */
export interface TestServer {
  url: string;
  fhir(version: 'R4' | 'R4B' | 'R5'): string;
  close(): Promise<void>;
}

export interface ServerOptions {
  /** Run on a fresh PostgreSQL database (dropped on close) instead of SQLite in memory. */
  postgres?: boolean;
  /** Wraps the real store (buildApp's `observeStore`), to count what the server asks of it. */
  observeStore?: (store: Store) => Store;
}

/** HERALD_TEST_STORE=postgres runs every test server without a HERALD_DB of its own on PostgreSQL. */
const postgresByDefault = process.env.HERALD_TEST_STORE === 'postgres';

/**
 * Starts a real Herald on 127.0.0.1 with an ephemeral port (default store: SQLite in memory, or
 * a fresh PostgreSQL database with `postgres` or HERALD_TEST_STORE=postgres). Its log lines go to
 * `logTo` if given (set LOG_LEVEL too: the default here is silent).
 */
export async function startServer(env: Record<string, string> = {}, logTo?: { write(line: string): void }, options: ServerOptions = {}): Promise<TestServer> {
  // The public base URL names the port, so the port is chosen before the app is built.
  const port = await freePort();
  const database = (options.postgres ?? postgresByDefault) && env.HERALD_DB === undefined ? await createDatabase() : undefined;
  const db = database ?? 'sqlite::memory:';
  const config = loadConfig([], { PORT: String(port), HERALD_DB: db, LOG_LEVEL: 'silent', HERALD_PG_POOL: '4', ...env });
  let app: Awaited<ReturnType<typeof buildApp>>;
  try {
    app = await buildApp(config, logTo, options);
    await app.listen({ port, host: '127.0.0.1' });
  } catch (err) {
    if (database) await dropDatabase(database);
    throw err;
  }
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    fhir: (v) => `${url}/fhir/${v}`,
    close: async () => {
      await app.close();
      if (database) await dropDatabase(database);
    },
  };
}

/**
 * A server for the enclosing `describe`: started before its tests, closed after them. Returns a
 * handle whose members are usable once the tests run. `env` may be a function, for settings
 * known only once the tests run (a database made for them).
 */
export function useServer(env: Record<string, string> | (() => Promise<Record<string, string>>) = {}, options: ServerOptions = {}): TestServer {
  let server: TestServer | undefined;
  before(async () => {
    server = await startServer(typeof env === 'function' ? await env() : env, undefined, options);
  });
  after(() => server?.close());
  const started = () => {
    if (!server) throw new Error('useServer: the server is not started yet');
    return server;
  };
  return {
    get url() {
      return started().url;
    },
    fhir: (v) => started().fhir(v),
    close: () => started().close(),
  };
}

export interface Res {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

/**
 * fetch with a FHIR JSON body; the answer's body parsed when it is JSON. Answers come uncompressed
 * (`accept-encoding: identity`) unless a test asks otherwise: undici's fetch would ask for gzip, br
 * and deflate by default, and compressing every answer costs CPU that timing-sensitive tests need.
 */
export async function call(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Res> {
  const init: RequestInit = { method, headers: { accept: 'application/fhir+json', 'accept-encoding': 'identity', ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/fhir+json';
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

export const VERSIONS = ['R4', 'R4B', 'R5'] as const;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
