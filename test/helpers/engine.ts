import { Compartments } from '../../src/auth/index.ts';
import { loadConfig } from '../../src/config.ts';
import { loadDefinitions } from '../../src/fhir/definitions/index.ts';
import type { FhirVersion } from '../../src/fhir/types.ts';
import { adapterFor } from '../../src/fhir/versions/index.ts';
import { searchRegistry } from '../../src/search/parameters.ts';
import type { Store } from '../../src/store/store.ts';
import { EndpointGuard, SubscriptionEngine } from '../../src/subscriptions/index.ts';

/**
 * A subscription engine of one FHIR version on a store, outside any server (default settings,
 * rest-hook endpoints on loopback allowed, no log), loaded from what the store holds.
 */
export async function openEngine(version: FhirVersion, store: Store, now: () => Date = () => new Date()): Promise<{ engine: SubscriptionEngine; baseUrl: string }> {
  const config = loadConfig([], { HERALD_DB: 'sqlite::memory:' });
  const adapter = adapterFor(version);
  const search = searchRegistry(loadDefinitions(version));
  const baseUrl = `http://herald.test/fhir/${adapter.pathSegment}`;
  const endpoints = new EndpointGuard({ authMode: config.authMode, allow: config.endpointAllow, allowInsecureEndpoints: true, baseUrl: config.baseUrl, listen: { host: '127.0.0.1', port: 1 } });
  const policy = { channels: new Set(['rest-hook', 'websocket']), endpoints, quotas: config.quotas };
  const log = { info() {}, warn() {}, error() {}, debug() {}, child() { return log; } } as never;
  const engine = new SubscriptionEngine({ version, adapter, search, store, baseUrl, policy, now, log, compartments: new Compartments(search, baseUrl) });
  await engine.load();
  return { engine, baseUrl };
}
