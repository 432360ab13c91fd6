import type { Config } from './config.ts';
import { loadDefinitions } from './fhir/definitions/index.ts';
import { FHIR_VERSIONS } from './fhir/types.ts';
import { adapterFor } from './fhir/versions/index.ts';
import { type HeraldServer, buildServer } from './http/server.ts';
import type { BaseContext } from './interactions/index.ts';
import { searchRegistry } from './search/parameters.ts';
import { openSqliteStore } from './store/sqlite/index.ts';
import type { Store } from './store/store.ts';

/**
 * The composition root: the only place that names concrete implementations. Returns a server that
 * is ready but not listening; closing it closes the store.
 */
export async function buildApp(config: Config): Promise<HeraldServer> {
  const store = openStore(config.db);
  const now = () => new Date();
  const bases: BaseContext[] = FHIR_VERSIONS.map((version) => {
    const adapter = adapterFor(version);
    const defs = loadDefinitions(version);
    return {
      version,
      adapter,
      defs,
      registry: searchRegistry(defs),
      baseUrl: `${config.baseUrl}/fhir/${adapter.pathSegment}`,
      store,
      now,
      defaultPageSize: config.defaultPageSize,
      maxPageSize: config.maxPageSize,
    };
  });
  const app = buildServer({
    bases,
    bodyLimit: config.bodyLimit,
    logger: { level: config.logLevel },
    onClose: () => store.close(),
  });
  await app.ready();
  return app;
}

function openStore(url: string): Store {
  if (url.startsWith('sqlite:')) return openSqliteStore({ path: url.slice('sqlite:'.length) });
  throw new Error(`The store '${url.split(':')[0]}' is not available yet: use sqlite:<path>`);
}
