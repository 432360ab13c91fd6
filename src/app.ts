import type { Config } from './config.ts';
import { loadDefinitions } from './fhir/definitions/index.ts';
import { FHIR_VERSIONS } from './fhir/types.ts';
import { adapterFor } from './fhir/versions/index.ts';
import { type HeraldServer, buildServer } from './http/server.ts';
import type { BaseContext } from './interactions/index.ts';
import { OPERATIONS } from './operations/index.ts';
import { searchRegistry } from './search/parameters.ts';
import { openSqliteStore } from './store/sqlite/index.ts';
import type { Store } from './store/store.ts';
import { type RestHookDelivery, SubscriptionEngine, WebsocketHub, createRestHookDelivery } from './subscriptions/index.ts';
import { installTopics } from './topics-folder.ts';

/**
 * The composition root: the only place that names concrete implementations. Returns a server that
 * is ready but not listening; closing it stops delivery and closes the store.
 */
export async function buildApp(config: Config): Promise<HeraldServer> {
  const store = await openStore(config);
  const now = () => new Date();
  // D-4: one websocket endpoint, derived from the public base URL.
  const websocket = { url: `${config.baseUrl.replace(/^http/, 'ws')}/ws`, tokenTtlMs: config.wsTokenTtlMs };
  const hub = new WebsocketHub({ maxBufferedBytes: config.wsMaxBufferedBytes });
  const policy = { channels: new Set(['rest-hook', 'websocket']), allowInsecureEndpoints: config.allowInsecureEndpoints };
  const bases: BaseContext[] = FHIR_VERSIONS.map((version) => {
    const adapter = adapterFor(version);
    const defs = loadDefinitions(version);
    const registry = searchRegistry(defs);
    const baseUrl = `${config.baseUrl}/fhir/${adapter.pathSegment}`;
    const subscriptions = new SubscriptionEngine({ version, adapter, search: registry, store, baseUrl, policy, now });
    const operations = OPERATIONS.map((o) => o.name);
    return { version, adapter, defs, registry, subscriptions, operations, websocket, baseUrl, store, now, defaultPageSize: config.defaultPageSize, maxPageSize: config.maxPageSize };
  });
  const deliveries: RestHookDelivery[] = [];
  for (const base of bases) {
    await base.subscriptions.load();
    if (config.topicsDir) await installTopics(base, config.topicsDir);
    const delivery = createRestHookDelivery(
      { engine: base.subscriptions, store, baseUrl: base.baseUrl, now },
      { defaultTimeoutMs: config.deliveryTimeoutMs, retryBaseMs: config.retryBaseMs, retryCapMs: config.retryCapMs, failureWindowMs: config.failureWindowMs },
    );
    base.subscriptions.attach(delivery);
    base.subscriptions.attach(hub.attach({ engine: base.subscriptions, store, baseUrl: base.baseUrl, now }));
    deliveries.push(delivery);
  }
  // Retention (D-9): once shortly after start, so that frequent restarts do not skip it, then hourly.
  const prune = () =>
    store.pruneEvents(new Date(now().getTime() - config.eventRetentionMs).toISOString()).catch((err: Error) => process.emitWarning(`pruning the event log failed: ${err.message}`));
  const firstPrune = setTimeout(prune, 10_000);
  firstPrune.unref();
  const pruning = setInterval(prune, 3_600_000);
  pruning.unref();
  const app = buildServer({
    bases,
    bodyLimit: config.bodyLimit,
    logger: { level: config.logLevel },
    websocket: { hub, path: '/ws', pingIntervalMs: config.wsPingIntervalMs },
    onClose: async () => {
      clearTimeout(firstPrune);
      clearInterval(pruning);
      await hub.stop();
      for (const d of deliveries) await d.stop();
      for (const b of bases) b.subscriptions.stop();
      await store.close();
    },
  });
  await app.ready();
  for (const d of deliveries) d.start();
  return app;
}

async function openStore({ db: url, readThreads, searchTimeoutMs }: Config): Promise<Store> {
  if (url.startsWith('sqlite:')) return openSqliteStore({ path: url.slice('sqlite:'.length), readThreads, readTimeoutMs: searchTimeoutMs });
  throw new Error(`The store '${url.split(':')[0]}' is not available yet: use sqlite:<path>`);
}
