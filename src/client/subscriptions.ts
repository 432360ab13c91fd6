/**
 * Websocket Subscription resources in each version's shape (REQUIREMENTS §3, §12), and the test
 * for "an existing subscription that does what we want" used to reuse one instead of creating
 * another.
 *
 * Filters are written the way the backport IG writes them (`Patient?identifier=x`,
 * `Patient.identifier=x` or `identifier=x`, each with an optional `:modifier`); on R5 they become
 * `filterBy` elements.
 */
import type { FhirVersion, PayloadContent, Resource } from './types.ts';

const IG = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
const CHANNEL_TYPES = 'http://terminology.hl7.org/CodeSystem/subscription-channel-type';
const PREFIXED = /^(eq|ne|gt|lt|ge|le|sa|eb|ap)(?=[-+]?\d)/;
/** How an ephemeral listener's Subscription `reason` starts: nobody else reuses it, since it goes when its listener stops. */
export const EPHEMERAL_REASON = 'herald listen --ephemeral';

export interface WebsocketSubscriptionRequest {
  topic: string;
  filters?: string[];
  content?: PayloadContent;
  /** Seconds of idleness after which the server sends a heartbeat. */
  heartbeatPeriod?: number;
  reason?: string;
}

export interface FilterParts {
  resourceType?: string;
  filterParameter: string;
  modifier?: string;
  comparator?: string;
  value: string;
}

/** Parses one filter string into its parts (a `Type?a=1&b=2` string gives several). */
export function parseFilter(text: string): FilterParts[] {
  const q = text.indexOf('?');
  const eq = text.indexOf('=');
  if (q >= 0 && (eq < 0 || q < eq)) {
    const type = text.slice(0, q);
    return text
      .slice(q + 1)
      .split('&')
      .filter((p) => p !== '')
      .map((p) => parseOne(p, type));
  }
  const dot = /^([A-Z][A-Za-z0-9]*)\.(.*)$/s.exec(text);
  return dot ? [parseOne(dot[2]!, dot[1])] : [parseOne(text, undefined)];
}

function parseOne(text: string, resourceType: string | undefined): FilterParts {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new Error(`filter '${text}' is not of the form parameter=value`);
  const name = text.slice(0, eq).trim();
  let value = text.slice(eq + 1).trim();
  try {
    value = decodeURIComponent(value);
  } catch {
    // keep as written
  }
  const [filterParameter, modifier] = name.split(':', 2) as [string, string | undefined];
  const comparator = PREFIXED.exec(value)?.[1];
  return {
    ...(resourceType ? { resourceType } : {}),
    filterParameter,
    ...(modifier ? { modifier } : {}),
    ...(comparator ? { comparator } : {}),
    value: comparator ? value.slice(comparator.length) : value,
  };
}

/** The Subscription to POST for a websocket channel, in the version's shape. */
export function websocketSubscription(version: FhirVersion, req: WebsocketSubscriptionRequest): Resource {
  const content = req.content ?? 'id-only';
  const filters = req.filters ?? [];
  if (version === 'R5') {
    return {
      resourceType: 'Subscription',
      status: 'requested',
      ...(req.reason ? { reason: req.reason } : {}),
      topic: req.topic,
      ...(filters.length
        ? {
            filterBy: filters.flatMap(parseFilter).map((f) => ({
              ...(f.resourceType ? { resourceType: f.resourceType } : {}),
              filterParameter: f.filterParameter,
              ...(f.comparator ? { comparator: f.comparator } : {}),
              ...(f.modifier ? { modifier: f.modifier } : {}),
              value: f.value,
            })),
          }
        : {}),
      channelType: { system: CHANNEL_TYPES, code: 'websocket' },
      ...(req.heartbeatPeriod !== undefined ? { heartbeatPeriod: req.heartbeatPeriod } : {}),
      contentType: 'application/fhir+json',
      content,
    };
  }
  return {
    resourceType: 'Subscription',
    meta: { profile: [`${IG}/backport-subscription`] },
    status: 'requested',
    reason: req.reason ?? 'herald client',
    criteria: req.topic,
    ...(filters.length ? { _criteria: { extension: filters.map((f) => ({ url: `${IG}/backport-filter-criteria`, valueString: f })) } } : {}),
    channel: {
      ...(req.heartbeatPeriod !== undefined ? { extension: [{ url: `${IG}/backport-heartbeat-period`, valueUnsignedInt: req.heartbeatPeriod }] } : {}),
      type: 'websocket',
      payload: 'application/fhir+json',
      _payload: { extension: [{ url: `${IG}/backport-payload-content`, valueCode: content }] },
    },
  };
}

/** What a stored Subscription says about itself, whatever its version's shape. */
export interface SubscriptionSummary {
  id: string;
  status?: string;
  topic?: string;
  channelType?: string;
  /** R4 classic subscriptions: the search criteria instead of a topic. */
  criteria?: string;
  endpoint?: string;
  reason?: string;
  content: PayloadContent;
  filters: FilterParts[];
}

type Obj = Record<string, any>;

export function summarizeSubscription(resource: Resource): SubscriptionSummary | undefined {
  const r = resource as Obj;
  if (r.resourceType !== 'Subscription' || typeof r.id !== 'string') return undefined;
  const safe = (text: string) => {
    try {
      return parseFilter(text);
    } catch {
      return [{ filterParameter: `unparsable:${text}`, value: '' }];
    }
  };
  if (typeof r.topic === 'string' || r.channelType !== undefined) {
    return {
      id: r.id,
      status: r.status,
      topic: r.topic,
      channelType: r.channelType?.code,
      ...(typeof r.endpoint === 'string' ? { endpoint: r.endpoint } : {}),
      ...(typeof r.reason === 'string' ? { reason: r.reason } : {}),
      content: r.content ?? 'empty',
      filters: (Array.isArray(r.filterBy) ? r.filterBy : []).map((f: Obj) => ({
        ...(f.resourceType ? { resourceType: String(f.resourceType) } : {}),
        filterParameter: String(f.filterParameter),
        ...(f.modifier ? { modifier: String(f.modifier) } : {}),
        ...(f.comparator ? { comparator: String(f.comparator) } : {}),
        value: String(f.value),
      })),
    };
  }
  const exts = (x: unknown): Obj[] => (Array.isArray((x as Obj)?.extension) ? (x as Obj).extension : []);
  const customType = exts(r.channel?._type).find((e) => e.url === `${IG}/backport-channel-type`)?.valueCoding?.code;
  const classic = typeof r.criteria === 'string' && !/^[a-z][a-z0-9+.-]*:/i.test(r.criteria);
  return {
    id: r.id,
    status: r.status,
    ...(classic ? { criteria: r.criteria } : { topic: r.criteria }),
    channelType: customType ?? r.channel?.type,
    ...(typeof r.channel?.endpoint === 'string' ? { endpoint: r.channel.endpoint } : {}),
    ...(typeof r.reason === 'string' ? { reason: r.reason } : {}),
    content: exts(r.channel?._payload).find((e) => e.url === `${IG}/backport-payload-content`)?.valueCode ?? 'empty',
    filters: exts(r._criteria)
      .filter((e) => e.url === `${IG}/backport-filter-criteria` && typeof e.valueString === 'string')
      .flatMap((e) => safe(e.valueString)),
  };
}

/** The filters as a comparable key: order-free; the resource type is left out (a topic's filters name its own resource). */
function filterKey(filters: FilterParts[]): string {
  return filters
    .map((f) => `${f.filterParameter}|${f.modifier ?? ''}|${f.comparator ?? ''}|${f.value}`)
    .sort()
    .join('\n');
}

/** Whether an existing Subscription is a live websocket subscription to the same topic, filters and content. */
export function isReusable(existing: SubscriptionSummary, req: WebsocketSubscriptionRequest): boolean {
  return (
    (existing.status === 'active' || existing.status === 'requested') &&
    existing.channelType === 'websocket' &&
    !existing.reason?.startsWith(EPHEMERAL_REASON) &&
    existing.topic === req.topic &&
    existing.content === (req.content ?? 'id-only') &&
    filterKey(existing.filters) === filterKey((req.filters ?? []).flatMap(parseFilter))
  );
}
