import type { Resource } from '../fhir/types.ts';
import type { BaseContext } from './context.ts';
import { VALIDATE_DEFINITION } from './validate.ts';

const TYPE_INTERACTIONS = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create', 'search-type'];
const SOFTWARE_VERSION = '0.1.0';

const referenceParams = (ctx: BaseContext, type: string) =>
  [...ctx.registry.paramsFor(type).values()].filter((p) => p.type === 'reference').map((p) => p.code);

const cache = new WeakMap<BaseContext, Resource>();

/**
 * The CapabilityStatement of one base: exactly the interactions and search parameters Herald
 * implements, for every resource type of that FHIR version, and its subscription support
 * (REQUIREMENTS §11): the backport profile and IG (R4/R4B), the Subscription operations, and the
 * active topics (T-8). The static part is built once per base; topics are added per request.
 */
export function capabilityStatement(ctx: BaseContext): Resource {
  const base = cache.get(ctx) ?? build(ctx);
  cache.set(ctx, base);
  const cap = ctx.adapter.subscriptions.capability;
  if (!cap.topicCanonicalExtension) return base;
  const topics = ctx.subscriptions.registry.allTopics().filter((t) => t.status === 'active');
  const rest = (base.rest as { resource: Resource[] }[])[0]!;
  // No topic, no extension: FHIR JSON has no empty arrays.
  if (topics.length === 0) return base;
  const resource = rest.resource.map((r) =>
    r.type !== 'Subscription' ? r : { ...r, extension: topics.map((t) => ({ url: cap.topicCanonicalExtension, valueCanonical: t.url })) },
  );
  return { ...base, rest: [{ ...rest, resource }] };
}

/** rest.security of a SMART-on-FHIR resource server (SMART App Launch, conformance). */
function security(tokenEndpoint: string | undefined): Record<string, unknown> {
  return {
    service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }] }],
    description: 'OAuth2 bearer tokens (SMART Backend Services); discovery at .well-known/smart-configuration',
    ...(tokenEndpoint
      ? { extension: [{ url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris', extension: [{ url: 'token', valueUri: tokenEndpoint }] }] }
      : {}),
  };
}

function build(ctx: BaseContext): Resource {
  const cap = ctx.adapter.subscriptions.capability;
  const operations = cap.operations.filter((o) => ctx.operations.includes(o.name)).map((o) => ({ name: o.name, definition: o.definition }));
  const validate = { name: 'validate', definition: VALIDATE_DEFINITION };
  const subscriptionExtras = (type: string) =>
    type !== 'Subscription'
      ? { operation: [validate] }
      : { ...(cap.subscriptionProfile ? { supportedProfile: [cap.subscriptionProfile] } : {}), operation: [...operations, validate] };
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    ...(cap.instantiates ? { instantiates: [cap.instantiates] } : {}),
    ...(cap.implementationGuide ? { implementationGuide: [cap.implementationGuide] } : {}),
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
          conditionalDelete: 'single',
          searchInclude: ['*', ...referenceParams(ctx, type).map((code) => `${type}:${code}`)],
          searchRevInclude: ['*'],
          searchParam: [...ctx.registry.paramsFor(type).values()].map((p) => ({ name: p.code, definition: p.url, type: p.type })),
          ...subscriptionExtras(type),
        })),
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'history-system' }, { code: 'search-system' }],
        ...(ctx.security ? { security: security(ctx.security.tokenEndpoint) } : {}),
      },
    ],
  };
}
