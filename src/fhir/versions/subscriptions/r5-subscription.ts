/**
 * Native R5 Subscriptions (R5-1) ⇄ the canonical SubscriptionSpec, which already has the R5 shape:
 * `filterBy` → filters, `channelType` → channel type, `parameter` → headers (RH-3), and the
 * heartbeat/timeout/maxCount/contentType/content elements one to one.
 */
import type { Channel, Filter, SubscriptionSpec, SubscriptionStatusCode } from '../../subscription-model.ts';
import type { Resource } from '../../types.ts';
import type { SubscriptionPaths } from './adapter.ts';
import { channelTypeOf, checkHeader, CONTENT_CODES, DEFAULT_CONTENT_TYPE } from './channel.ts';
import { copy, fail, type Json, objects, optCode, optString, refuseUnknownModifiers, reqCode, reqObject, reqString, resourceTypeOf } from './json.ts';

const P = 'Subscription';
const STATUSES: readonly SubscriptionStatusCode[] = ['requested', 'active', 'error', 'off', 'entered-in-error'];
const COMPARATORS = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'] as const;

export function readR5Subscription(resource: Resource): SubscriptionSpec {
  if (resource.resourceType !== 'Subscription') fail(P, `expected a Subscription, not ${String(resource.resourceType)}`);
  const r = resource as Json;
  refuseUnknownModifiers(r, P);
  const spec: SubscriptionSpec = {
    topic: reqString(r, 'topic', P),
    status: reqCode(r, 'status', P, STATUSES),
    filters: objects(r, 'filterBy', P).map((f) => readFilter(f.node, f.path)),
    channel: readChannel(r),
  };
  const end = optString(r, 'end', P);
  if (end !== undefined) spec.end = end;
  return spec;
}

/** R5: every element has its own name. */
export const R5_PATHS: SubscriptionPaths = {
  topic: `${P}.topic`,
  end: `${P}.end`,
  channelType: `${P}.channelType`,
  endpoint: `${P}.endpoint`,
  contentType: `${P}.contentType`,
  heartbeatPeriod: `${P}.heartbeatPeriod`,
  timeout: `${P}.timeout`,
  maxCount: `${P}.maxCount`,
  filter: (_resource, index) => `${P}.filterBy[${index}]`,
};

function readFilter(f: Json, p: string): Filter {
  const filter: Filter = { filterParameter: reqString(f, 'filterParameter', p), value: reqString(f, 'value', p) };
  const type = optString(f, 'resourceType', p);
  if (type !== undefined) filter.resourceType = resourceTypeOf(type, `${p}.resourceType`);
  const comparator = optCode(f, 'comparator', p, COMPARATORS);
  if (comparator !== undefined) filter.comparator = comparator;
  const modifier = optString(f, 'modifier', p);
  if (modifier !== undefined) filter.modifier = modifier;
  return filter;
}

function readChannel(r: Json): Channel {
  const channel: Channel = {
    type: channelTypeOf(reqObject(r, 'channelType', P), `${P}.channelType`),
    headers: objects(r, 'parameter', P).map(({ node, path }) =>
      checkHeader(reqString(node, 'name', path), reqString(node, 'value', path), path),
    ),
    contentType: optString(r, 'contentType', P) ?? DEFAULT_CONTENT_TYPE,
    content: optCode(r, 'content', P, CONTENT_CODES) ?? 'empty',
  };
  const endpoint = optString(r, 'endpoint', P);
  if (endpoint !== undefined) channel.endpoint = endpoint;
  const limit = (key: 'heartbeatPeriod' | 'timeout' | 'maxCount', min: number) => {
    const v = r[key];
    if (v === undefined) return;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) fail(`${P}.${key}`, `must be an integer of at least ${min}`);
    channel[key] = v;
  };
  limit('heartbeatPeriod', 0);
  limit('timeout', 0);
  limit('maxCount', 1);
  return channel;
}

/**
 * The stored form: server-managed `status`, and `content` made explicit (`empty`, D-16) when the
 * client left it out. R5 Subscription has no `error` element: errors show in `$status` (ST-8).
 */
export function r5WithState(resource: Resource, state: { status: SubscriptionStatusCode }): Resource {
  const out = copy(resource) as Json;
  out.status = state.status;
  if (out.content === undefined) out.content = 'empty';
  return out as Resource;
}
