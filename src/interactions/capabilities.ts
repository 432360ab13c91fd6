import type { Resource } from '../fhir/types.ts';
import type { BaseContext } from './context.ts';

const TYPE_INTERACTIONS = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create', 'search-type'];
const SOFTWARE_VERSION = '0.1.0';

const referenceParams = (ctx: BaseContext, type: string) =>
  [...ctx.registry.paramsFor(type).values()].filter((p) => p.type === 'reference').map((p) => p.code);

const cache = new WeakMap<BaseContext, Resource>();

/**
 * The CapabilityStatement of one base: exactly the interactions and search parameters Herald
 * implements, for every resource type of that FHIR version. Built once per base.
 */
export function capabilityStatement(ctx: BaseContext): Resource {
  const cached = cache.get(ctx);
  if (cached) return cached;
  const statement: Resource = {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: ctx.now().toISOString(),
    kind: 'instance',
    software: { name: 'Herald', version: SOFTWARE_VERSION },
    implementation: { description: `Herald FHIR ${ctx.adapter.fhirVersion} base`, url: ctx.baseUrl },
    fhirVersion: ctx.adapter.fhirVersion,
    format: ['application/fhir+json', 'application/json'],
    patchFormat: ['application/json-patch+json'],
    rest: [
      {
        mode: 'server',
        resource: ctx.defs.resourceTypes.map((type) => ({
          type,
          interaction: TYPE_INTERACTIONS.map((code) => ({ code })),
          versioning: 'versioned-update',
          readHistory: true,
          updateCreate: true,
          conditionalCreate: true,
          conditionalRead: 'not-match',
          conditionalUpdate: true,
          conditionalDelete: 'not-supported',
          searchInclude: ['*', ...referenceParams(ctx, type).map((code) => `${type}:${code}`)],
          searchRevInclude: ['*'],
          searchParam: [...ctx.registry.paramsFor(type).values()].map((p) => ({ name: p.code, definition: p.url, type: p.type })),
        })),
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'history-system' }, { code: 'search-system' }],
      },
    ],
  };
  cache.set(ctx, statement);
  return statement;
}
