import { readFileSync } from 'node:fs';
import { type DestinationStream, pino } from 'pino';
import { type Auth, Compartments, createAuth, dataDirOf } from './auth/index.ts';
import type { Config } from './config.ts';
import { loadDefinitions } from './fhir/definitions/index.ts';
import { FHIR_VERSIONS, type Resource } from './fhir/types.ts';
import { adapterFor } from './fhir/versions/index.ts';
import { browserGuard } from './http/browser.ts';
import { type HeraldServer, buildServer } from './http/server.ts';
import type { BaseContext } from './interactions/index.ts';
import { OPERATIONS } from './operations/index.ts';
import { INDEX_GENERATION } from './search/extract.ts';
import { searchRegistry } from './search/parameters.ts';
import { openPostgresStore } from './store/postgres/index.ts';
import { openSqliteStore } from './store/sqlite/index.ts';
import { type Store, keepRebuilding } from './store/store.ts';
import { DeliverySlots, Dispatcher, EndpointGuard, HeartbeatScheduler, SubscriptionEngine, WebsocketHub, createRestHookDelivery } from './subscriptions/index.ts';
import { installTopics } from './topics-folder.ts';

export interface AppOptions {
  /**
   * Wraps the store the server uses, as opened (tests count its reads with it: e.g. that a live
   * notification reads nothing back from the event log). The wrapper must pass every call on.
   */
  observeStore?: (store: Store) => Store;
}

/**
 * The composition root: the only place that names concrete implementations. Returns a server that
 * is ready but not listening; closing it stops delivery and closes the store. Logs are JSON lines
 * on stdout unless `logTo` is given (tests read them there).
 */
export async function buildApp(config: Config, logTo?: DestinationStream, options: AppOptions = {}): Promise<HeraldServer> {
  // One logger: fastify's request lines and the subscriptions' background events (with `base`).
  const log = logTo ? pino({ level: config.logLevel }, logTo) : pino({ level: config.logLevel });
  // Read before anything is opened, so that a bad path leaves nothing running.
  const tls = config.tls ? { cert: readPem(config.tls.certFile, 'HERALD_TLS_CERT'), key: readPem(config.tls.keyFile, 'HERALD_TLS_KEY') } : undefined;
  // The one clock of the server: everything that asks the time is given this.
  const now = () => new Date();
  const opened = await openStore(config, now);
  const store = options.observeStore ? options.observeStore(opened) : opened;
  let auth: Auth | undefined;
  try {
    // The embedded issuer's key: a file beside a SQLite database, or kept in a shared database.
    const share = store.sharedSecret ? (candidate: string) => store.sharedSecret!('auth-signing-key', candidate) : undefined;
    auth = config.auth ? await createAuth(config.auth, config.baseUrl, now, dataDirOf(config.db), share) : undefined;
  } catch (err) {
    await store.close();
    throw err;
  }
  // D-4: one websocket endpoint, derived from the public base URL.
  // NT-3: one heartbeat scheduler for every channel of every base.
  const heartbeats = new HeartbeatScheduler({ onError: (key, err) => log.error({ key, err }, 'heartbeat failed') });
  const hub = new WebsocketHub({ heartbeats, maxBufferedBytes: config.wsMaxBufferedBytes, maxSubscriptionsPerSocket: config.ws.maxSubscriptionsPerSocket, maxFailedBinds: config.ws.maxFailedBinds });
  const websocket = {
    url: `${config.baseUrl.replace(/^http/, 'ws')}/ws`,
    tokenTtlMs: config.wsTokenTtlMs,
    revoked: (hash: string) => hub.revoked(hash),
    maxSubscriptionsPerToken: config.quotas.maxSubscriptionsPerToken,
  };
  const endpoints = new EndpointGuard({
    authMode: config.authMode,
    allow: config.endpointAllow,
    allowInsecureEndpoints: config.allowInsecureEndpoints,
    baseUrl: config.baseUrl,
    listen: { host: config.host, port: config.port },
  });
  const policy = { channels: new Set(['rest-hook', 'websocket']), endpoints, quotas: config.quotas };
  // One cap on outbound POSTs for the whole process, whichever base they come from.
  const slots = new DeliverySlots(config.quotas.maxConcurrentDeliveries);
  const bases: BaseContext[] = FHIR_VERSIONS.map((version) => {
    const adapter = adapterFor(version);
    const defs = loadDefinitions(version);
    const registry = searchRegistry(defs);
    const baseUrl = `${config.baseUrl}/fhir/${adapter.pathSegment}`;
    const compartments = new Compartments(registry, baseUrl);
    const limit = auth ? { maxSubscriptionsPerOwner: auth.maxSubscriptionsPerOwner } : {};
    const subscriptions = new SubscriptionEngine({ version, adapter, search: registry, store, baseUrl, policy, now, log: log.child({ base: version }), compartments, ...limit });
    const operations = OPERATIONS.map((o) => o.name);
    const security = auth ? { security: auth.issuer ? { tokenEndpoint: auth.issuer.tokenUrl } : {} } : {};
    return { version, adapter, defs, registry, subscriptions, operations, websocket, baseUrl, store, now, defaultPageSize: config.defaultPageSize, maxPageSize: config.maxPageSize, compartments, ...security };
  });
  // Per base, one dispatcher tells its channels of each commit: rest-hook delivery of its own, and the hub.
  const dispatchers: Dispatcher[] = [];
  for (const base of bases) {
    await base.subscriptions.load();
    if (config.topicsDir) await installTopics(base, config.topicsDir, base.subscriptions.log);
    const delivery = createRestHookDelivery(
      { engine: base.subscriptions, store, baseUrl: base.baseUrl, now },
      { endpoints, defaultTimeoutMs: config.deliveryTimeoutMs, retryBaseMs: config.retryBaseMs, retryCapMs: config.retryCapMs, failureWindowMs: config.failureWindowMs, slots, leaseMs: config.deliveryLeaseMs, heartbeats },
    );
    const dispatcher = new Dispatcher([delivery, hub.attach({ engine: base.subscriptions, store, baseUrl: base.baseUrl, now })]);
    base.subscriptions.attach(dispatcher);
    dispatchers.push(dispatcher);
  }
  // Each base's search index is rebuilt in the background when it was built otherwise (reindex.ts),
  // one base after the other. A stop waits for the page under way, and the next start resumes.
  const stopRebuild = new AbortController();
  const rebuilding = (async () => {
    for (const base of bases) {
      await keepRebuilding({
        store,
        fv: base.version,
        target: { generation: INDEX_GENERATION, base: base.baseUrl },
        indexOf: (resource: Resource) => base.subscriptions.indexRows(resource),
        log: log.child({ base: base.version }),
        signal: stopRebuild.signal,
        // Pages as measured with bench/reindex.ts: on SQLite a smaller page keeps a lone writer's
        // p99 near 14 ms (40 ms with 200); PostgreSQL's writers hardly notice either.
        batch: store.kind === 'sqlite' ? 50 : 200,
      });
    }
  })();
  // Retention (D-9) by age and by size: once shortly after start, so that frequent restarts do not
  // skip it, then every HERALD_EVENT_PRUNE_INTERVAL_S.
  const prune = () =>
    store
      .pruneEvents(new Date(now().getTime() - config.eventRetentionMs).toISOString(), config.eventLogMaxPerSubscription)
      .then((n) => n > 0 && log.info({ events: n }, 'pruned the event log'))
      .catch((err: Error) => log.error({ err }, 'pruning the event log failed'));
  const firstPrune = setTimeout(prune, Math.min(10_000, config.eventPruneIntervalMs));
  firstPrune.unref();
  const pruning = setInterval(prune, config.eventPruneIntervalMs);
  pruning.unref();
  const app = buildServer({
    bases,
    bodyLimit: config.bodyLimit,
    logger: log,
    browser: browserGuard({ baseUrl: config.baseUrl, listenHost: config.host, origins: config.corsOrigins, authMode: config.authMode }),
    logPhi: config.logPhi,
    corsOrigins: config.corsOrigins,
    ...(tls ? { tls } : {}),
    ...(auth ? { auth } : {}),
    websocket: { hub, path: '/ws', pingIntervalMs: config.wsPingIntervalMs, maxConnections: config.ws.maxConnections, maxConnectionsPerAddress: config.ws.maxConnectionsPerAddress },
    limits: config.http,
    onClose: async () => {
      stopRebuild.abort();
      await rebuilding;
      clearTimeout(firstPrune);
      clearInterval(pruning);
      await hub.stop();
      slots.close();
      for (const d of dispatchers) await d.stop();
      await heartbeats.stop();
      for (const b of bases) b.subscriptions.stop();
      await store.close();
    },
  });
  await app.ready();
  for (const d of dispatchers) d.start();
  return app;
}

function readPem(file: string, setting: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`${setting}: cannot read '${file}': ${(err as Error).message}`);
  }
}

async function openStore({ db: url, readThreads, searchTimeoutMs, pgPoolSize }: Config, now: () => Date): Promise<Store> {
  if (url.startsWith('sqlite:')) return openSqliteStore({ path: url.slice('sqlite:'.length), now, readThreads, readTimeoutMs: searchTimeoutMs });
  return openPostgresStore({ url, now, poolSize: pgPoolSize, searchPoolSize: readThreads, readTimeoutMs: searchTimeoutMs });
}
