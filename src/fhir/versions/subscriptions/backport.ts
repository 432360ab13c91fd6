/**
 * R4/R4B Subscriptions (backport profile, §3) ⇄ the canonical SubscriptionSpec, and the
 * server-managed fields written back on store (withState).
 *
 * `criteria` holding an absolute URL is a topic canonical (S-2); anything shaped like
 * `Type` or `Type?query` is an R4 classic subscription and is passed on as `classicCriteria`.
 */
import type { Channel, Filter, PayloadContent, SubscriptionSpec, SubscriptionStatusCode } from '../../subscription-model.ts';
import type { Resource } from '../../types.ts';
import type { SubscriptionPaths } from './adapter.ts';
import { channelTypeOf, CONTENT_CODES, parseHeader } from './channel.ts';
import { EXT } from './constants.ts';
import { parseFilterCriteria } from './filters.ts';
import {
  codeIn, copy, extensionsWithUrl, extInteger, extString, fail, isObject, type Json, onlyKnownExtensions, optArray, optObject,
  optString, refuseUnknownModifiers, reqCode, reqObject, reqString,
} from './json.ts';

const P = 'Subscription';
const CANONICAL = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/;
const CLASSIC = /^[A-Z][A-Za-z0-9]*(\?.*)?$/s;

/**
 * Reads an R4/R4B Subscription; `statuses` are the version's subscription-status codes. Extensions
 * Herald must understand (S-3, S-7, S-9, S-10) are refused when unknown: on `criteria`, on
 * `channel`, `channel.type` and `channel.payload`, and any modifierExtension. Extensions elsewhere
 * (for example the cross-version `Subscription.identifier`) are kept as ordinary FHIR extensions.
 */
export function readBackportSubscription(resource: Resource, statuses: readonly SubscriptionStatusCode[]): SubscriptionSpec {
  if (resource.resourceType !== 'Subscription') fail('Subscription', `expected a Subscription, not ${String(resource.resourceType)}`);
  const r = resource as Json;
  refuseUnknownModifiers(r, P);
  const criteria = reqString(r, 'criteria', P);
  const classic = isClassic(criteria);
  const spec: SubscriptionSpec = {
    status: reqCode(r, 'status', P, statuses),
    filters: filterEntries(r).map((e) => e.filter),
    channel: readChannel(reqObject(r, 'channel', P), classic),
  };
  if (classic) spec.classicCriteria = criteria;
  else spec.topic = criteria;
  const end = optString(r, 'end', P);
  if (end !== undefined) spec.end = end;
  return spec;
}

/** Topic canonical (S-2) or classic search criteria; anything else is neither. */
function isClassic(criteria: string): boolean {
  if (CLASSIC.test(criteria)) return true;
  if (CANONICAL.test(criteria)) return false;
  return fail(`${P}.criteria`, `'${criteria.slice(0, 100)}' is neither a topic canonical URL nor a search expression`);
}

/** Each filter with the extension it is written in (one may hold several: `Type?a=1&b=2`). */
function filterEntries(r: Json): { filter: Filter; path: string }[] {
  const meta = optObject(r, '_criteria', P);
  if (meta === undefined) return [];
  onlyKnownExtensions(meta, `${P}.criteria`, [EXT.filterCriteria]);
  return extensionsWithUrl(meta, EXT.filterCriteria, `${P}.criteria`).flatMap((e) =>
    parseFilterCriteria(extString(e.node, e.path), `${e.path}.valueString`).map((filter) => ({ filter, path: e.path })),
  );
}

/** R4/R4B: the topic is `criteria`, filters and channel settings are backport extensions. */
export const BACKPORT_PATHS: SubscriptionPaths = {
  topic: `${P}.criteria`,
  end: `${P}.end`,
  channelType: `${P}.channel.type`,
  endpoint: `${P}.channel.endpoint`,
  contentType: `${P}.channel.payload`,
  heartbeatPeriod: `${P}.channel.extension('${EXT.heartbeatPeriod}')`,
  timeout: `${P}.channel.extension('${EXT.timeout}')`,
  maxCount: `${P}.channel.extension('${EXT.maxCount}')`,
  filter: (resource, index) => filterEntries(resource as Json)[index]?.path ?? `${P}.criteria`,
};

function readChannel(c: Json, classic: boolean): Channel {
  const p = `${P}.channel`;
  const type = reqString(c, 'type', p);
  onlyKnownExtensions(c, p, [EXT.heartbeatPeriod, EXT.timeout, EXT.maxCount]);
  const custom = optObject(c, '_type', p);
  if (custom) onlyKnownExtensions(custom, `${p}.type`, [EXT.channelType]);
  const customType = custom && extensionsWithUrl(custom, EXT.channelType, `${p}.type`)[0];
  const channel: Channel = {
    // ISSUE-4: the custom Coding overrides the base code that the profile still requires.
    type: customType ? channelTypeOf(reqObject(customType.node, 'valueCoding', customType.path), `${customType.path}.valueCoding`) : type,
    headers: optArray(c, 'header', p).map((h, i) => parseHeader(h, `${p}.header[${i}]`)),
    ...readPayload(c, classic),
  };
  const endpoint = optString(c, 'endpoint', p);
  if (endpoint !== undefined) channel.endpoint = endpoint;
  const limit = (url: string, key: 'heartbeatPeriod' | 'timeout' | 'maxCount', min: number) => {
    const ext = extensionsWithUrl(c, url, p)[0];
    if (ext !== undefined) channel[key] = extInteger(ext.node, ext.path, min);
  };
  limit(EXT.heartbeatPeriod, 'heartbeatPeriod', 0);
  limit(EXT.timeout, 'timeout', 0);
  limit(EXT.maxCount, 'maxCount', 1);
  return channel;
}

/**
 * MIME type and content level (S-7, D-16): a topic-based subscription without `channel.payload` is
 * rejected, and a missing `backport-payload-content` means `empty`. A classic R4 subscription
 * sends the resource when `payload` is set and nothing otherwise (contentType '' = no body).
 */
function readPayload(c: Json, classic: boolean): Pick<Channel, 'contentType' | 'content'> {
  const p = `${P}.channel`;
  const contentType = classic ? optString(c, 'payload', p) : reqString(c, 'payload', p);
  const meta = optObject(c, '_payload', p);
  if (meta) onlyKnownExtensions(meta, `${p}.payload`, [EXT.payloadContent]);
  const ext = payloadExtension(c);
  const fallback: PayloadContent = classic && contentType !== undefined ? 'full-resource' : 'empty';
  const content = ext ? codeIn(extString(ext.node, ext.path), CONTENT_CODES, `${ext.path}.valueCode`) : fallback;
  return { contentType: contentType ?? '', content };
}

function payloadExtension(c: Json): { node: Json; path: string } | undefined {
  const meta = optObject(c, '_payload', `${P}.channel`);
  return meta && extensionsWithUrl(meta, EXT.payloadContent, `${P}.channel.payload`)[0];
}

/**
 * The stored form: server-managed `status` and `error` (ST-8), plus an explicit
 * `backport-payload-content` `empty` where the client left it out (D-16: the stored Subscription
 * says what the client gets). Classic subscriptions get no backport extension.
 */
export function backportWithState(resource: Resource, state: { status: SubscriptionStatusCode; error?: string }): Resource {
  const out = copy(resource) as Json;
  out.status = state.status;
  if (state.error !== undefined && state.error !== '') out.error = state.error;
  else delete out.error;
  const channel = out.channel;
  const criteria = out.criteria;
  if (isObject(channel) && typeof channel.payload === 'string' && typeof criteria === 'string' && !CLASSIC.test(criteria)) {
    if (payloadExtension(channel) === undefined) addEmptyContent(channel);
  }
  return out as Resource;
}

function addEmptyContent(channel: Json): void {
  const meta = isObject(channel._payload) ? channel._payload : (channel._payload = {});
  const list = Array.isArray(meta.extension) ? meta.extension : (meta.extension = []);
  list.push({ url: EXT.payloadContent, valueCode: 'empty' });
}
