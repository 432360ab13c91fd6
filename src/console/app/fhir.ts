/**
 * Reading topics and subscriptions in every version's shape (R4: Basic-wrapped topic and the
 * backport profile; R4B: SubscriptionTopic and the backport profile; R5: native), and writing a
 * Subscription from the console's form. The client library's summarizeSubscription reads status,
 * topic, channel, content and filters; the rest (endpoint, headers, heartbeat, error) is read here.
 */
import { summarizeSubscription, type FilterParts, type Resource } from '../../client/index.ts';

type Obj = Record<string, any>;
type Version = 'R4' | 'R4B' | 'R5';

const IG = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
const XV = 'http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic';
const CHANNEL_TYPES = 'http://terminology.hl7.org/CodeSystem/subscription-channel-type';
/** Search comparators: written as a value prefix on R4/R4B, as filterBy.comparator on R5. */
export const COMPARATORS = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'];

export interface Trigger {
  resource: string;
  description?: string;
  interactions: string[];
  queryCriteria?: { previous?: string; current?: string; resultForCreate?: string; resultForDelete?: string; requireBoth?: boolean };
  fhirPathCriteria?: string;
}
export interface CanFilter {
  resource?: string;
  filterParameter: string;
  description?: string;
  comparators: string[];
  modifiers: string[];
}
export interface Shape {
  resource: string;
  include: string[];
  revInclude: string[];
}
export interface TopicView {
  id: string;
  resourceType: string;
  url: string;
  title?: string;
  status?: string;
  description?: string;
  triggers: Trigger[];
  eventTriggers: string[];
  canFilterBy: CanFilter[];
  shapes: Shape[];
}

const arr = (x: unknown): Obj[] => (Array.isArray(x) ? x : []);
/** R4 Basic-wrapped topics: the sub-extensions named `name`. */
const subs = (e: Obj | undefined, name: string): Obj[] => arr(e?.extension).filter((x) => x.url === name || x.url === `${XV}.${name}`);
const val = (e: Obj | undefined): any => (e ? Object.entries(e).find(([k]) => k.startsWith('value'))?.[1] : undefined);

/** A topic's parts, from a SubscriptionTopic (R4B/R5) or a Basic wrapping one (R4 backport). */
export function readTopic(r: Obj): TopicView | undefined {
  if (r.resourceType === 'SubscriptionTopic') return readNativeTopic(r);
  if (r.resourceType !== 'Basic') return undefined;
  const one = (name: string) => val(subs(r, name)[0]);
  const url = one('url');
  if (typeof url !== 'string') return undefined;
  const status = val(arr(r.modifierExtension).find((x) => x.url === `${XV}.status`)) ?? one('status');
  return {
    id: r.id,
    resourceType: 'Basic',
    url,
    title: one('title'),
    status,
    description: one('description'),
    triggers: subs(r, 'resourceTrigger').map((t) => {
      const qc = subs(t, 'queryCriteria')[0];
      const q = (n: string) => val(subs(qc, n)[0]);
      return {
        resource: String(val(subs(t, 'resource')[0]) ?? ''),
        description: val(subs(t, 'description')[0]),
        interactions: subs(t, 'supportedInteraction').map(val).map(String),
        ...(qc ? { queryCriteria: { previous: q('previous'), current: q('current'), resultForCreate: q('resultForCreate'), resultForDelete: q('resultForDelete'), requireBoth: q('requireBoth') } } : {}),
        fhirPathCriteria: val(subs(t, 'fhirPathCriteria')[0]),
      };
    }),
    eventTriggers: subs(r, 'eventTrigger').map((t) => String(val(subs(t, 'event')[0])?.text ?? val(subs(t, 'event')[0])?.coding?.[0]?.code ?? 'event')),
    canFilterBy: subs(r, 'canFilterBy').map((c) => split(subs(c, 'modifier').map(val).map(String), [], {
      resource: val(subs(c, 'resource')[0]),
      filterParameter: String(val(subs(c, 'filterParameter')[0]) ?? ''),
      description: val(subs(c, 'description')[0]),
    })),
    shapes: subs(r, 'notificationShape').map((s) => ({
      resource: String(val(subs(s, 'resource')[0]) ?? ''),
      include: subs(s, 'include').map(val).map(String),
      revInclude: subs(s, 'revInclude').map(val).map(String),
    })),
  };
}

function readNativeTopic(r: Obj): TopicView {
  return {
    id: r.id,
    resourceType: 'SubscriptionTopic',
    url: r.url,
    title: r.title,
    status: r.status,
    description: r.description,
    triggers: arr(r.resourceTrigger).map((t) => ({
      resource: String(t.resource ?? ''),
      description: t.description,
      interactions: arr(t.supportedInteraction).map(String),
      ...(t.queryCriteria ? { queryCriteria: t.queryCriteria } : {}),
      fhirPathCriteria: t.fhirPathCriteria,
    })),
    eventTriggers: arr(r.eventTrigger).map((t) => String(t.event?.text ?? t.event?.coding?.[0]?.code ?? 'event')),
    canFilterBy: arr(r.canFilterBy).map((c) => split(arr(c.modifier).map(String), arr(c.comparator).map(String), { resource: c.resource, filterParameter: String(c.filterParameter ?? ''), description: c.description })),
    shapes: arr(r.notificationShape).map((s) => ({ resource: String(s.resource ?? ''), include: arr(s.include).map(String), revInclude: arr(s.revInclude).map(String) })),
  };
}

/** R4/R4B list comparators among the modifiers (subscription-search-modifier: `=`, eq, gt, …, above, in…). */
function split(modifiers: string[], comparators: string[], base: Omit<CanFilter, 'comparators' | 'modifiers'>): CanFilter {
  const all = [...modifiers, ...comparators].filter((m) => m !== '=');
  return { ...base, comparators: [...new Set(all.filter((m) => COMPARATORS.includes(m)))], modifiers: [...new Set(all.filter((m) => !COMPARATORS.includes(m)))] };
}

export interface SubscriptionRow {
  id: string;
  status: string;
  topic: string;
  channel: string;
  endpoint?: string;
  content: string;
  filters: string[];
  heartbeat?: number;
  /** R4/R4B Subscription.error (Herald keeps the latest reason there). */
  error?: string;
  resource: Resource;
}

export function readSubscription(r: Resource): SubscriptionRow | undefined {
  const s = summarizeSubscription(r);
  if (!s) return undefined;
  const o = r as Obj;
  const channelExt = arr(o.channel?.extension);
  const heartbeat = o.heartbeatPeriod ?? val(channelExt.find((e) => e.url === `${IG}/backport-heartbeat-period`));
  return {
    id: s.id,
    status: s.status ?? '',
    topic: s.topic ?? '',
    channel: s.channelType ?? '',
    endpoint: o.endpoint ?? o.channel?.endpoint,
    content: s.content,
    filters: s.filters.map(filterText),
    ...(typeof heartbeat === 'number' ? { heartbeat } : {}),
    ...(typeof o.error === 'string' ? { error: o.error } : {}),
    resource: r,
  };
}

export function filterText(f: FilterParts): string {
  return `${f.resourceType ? `${f.resourceType}?` : ''}${f.filterParameter}${f.modifier ? `:${f.modifier}` : ''}=${f.comparator ?? ''}${f.value}`;
}

export interface FilterInput {
  resource?: string;
  parameter: string;
  /** A comparator (eq, gt, …) or a modifier (above, in, …); '' for plain equality. */
  operator: string;
  value: string;
}

export interface SubscriptionInput {
  topic: string;
  channel: 'rest-hook' | 'websocket';
  endpoint?: string;
  headers: string[];
  content: string;
  heartbeat?: number;
  filters: FilterInput[];
  reason?: string;
}

/** The Subscription the form will POST, in the base's shape. */
export function buildSubscription(version: Version, s: SubscriptionInput): Resource {
  const filters = s.filters.filter((f) => f.parameter.trim() !== '');
  const comparator = (f: FilterInput) => (COMPARATORS.includes(f.operator) ? f.operator : undefined);
  const modifier = (f: FilterInput) => (f.operator && !COMPARATORS.includes(f.operator) ? f.operator : undefined);
  if (version === 'R5') {
    return {
      resourceType: 'Subscription',
      status: 'requested',
      reason: s.reason || 'herald console',
      topic: s.topic,
      ...(filters.length
        ? { filterBy: filters.map((f) => ({ ...(f.resource ? { resourceType: f.resource } : {}), filterParameter: f.parameter.trim(), ...(comparator(f) ? { comparator: comparator(f) } : {}), ...(modifier(f) ? { modifier: modifier(f) } : {}), value: f.value })) }
        : {}),
      channelType: { system: CHANNEL_TYPES, code: s.channel },
      ...(s.channel === 'rest-hook' && s.endpoint ? { endpoint: s.endpoint } : {}),
      ...(s.channel === 'rest-hook' && s.headers.length ? { parameter: s.headers.map((x) => ({ name: x.slice(0, x.indexOf(':')).trim(), value: x.slice(x.indexOf(':') + 1).trim() })) } : {}),
      ...(s.heartbeat ? { heartbeatPeriod: s.heartbeat } : {}),
      contentType: 'application/fhir+json',
      content: s.content,
    };
  }
  const criteria = filters.map((f) => `${f.resource ? `${f.resource}?` : ''}${f.parameter.trim()}${modifier(f) ? `:${modifier(f)}` : ''}=${comparator(f) ?? ''}${f.value}`);
  return {
    resourceType: 'Subscription',
    meta: { profile: [`${IG}/backport-subscription`] },
    status: 'requested',
    reason: s.reason || 'herald console',
    criteria: s.topic,
    ...(criteria.length ? { _criteria: { extension: criteria.map((c) => ({ url: `${IG}/backport-filter-criteria`, valueString: c })) } } : {}),
    channel: {
      ...(s.heartbeat ? { extension: [{ url: `${IG}/backport-heartbeat-period`, valueUnsignedInt: s.heartbeat }] } : {}),
      type: s.channel,
      ...(s.channel === 'rest-hook' && s.endpoint ? { endpoint: s.endpoint } : {}),
      ...(s.channel === 'rest-hook' && s.headers.length ? { header: s.headers } : {}),
      payload: 'application/fhir+json',
      _payload: { extension: [{ url: `${IG}/backport-payload-content`, valueCode: s.content }] },
    },
  };
}

/** Where a base keeps its topics: SubscriptionTopic, or Basic on R4. */
export const topicSearch = (version: Version) => (version === 'R4' ? 'Basic?code=SubscriptionTopic&_count=100' : 'SubscriptionTopic?_count=100');

/** A starting topic for the "new topic" editor. */
export function topicTemplate(version: Version): Obj {
  const url = `http://example.org/topics/patient-changes-${Date.now().toString(36)}`;
  if (version !== 'R4') {
    return {
      resourceType: 'SubscriptionTopic',
      url,
      title: 'Patient changes',
      status: 'active',
      resourceTrigger: [{ resource: 'Patient', supportedInteraction: ['create', 'update'], fhirPathCriteria: "%current.active != false" }],
      canFilterBy: [{ resource: 'Patient', filterParameter: 'identifier' }, { resource: 'Patient', filterParameter: 'birthdate', [version === 'R5' ? 'comparator' : 'modifier']: ['eq', 'gt', 'lt'] }],
      notificationShape: [{ resource: 'Patient' }],
    };
  }
  const sub = (u: string, ext: Obj) => ({ url: u, ...ext });
  return {
    resourceType: 'Basic',
    code: { coding: [{ system: 'http://hl7.org/fhir/fhir-types', code: 'SubscriptionTopic' }] },
    modifierExtension: [{ url: `${XV}.status`, valueCode: 'active' }],
    extension: [
      { url: `${XV}.url`, valueUri: url },
      { url: `${XV}.title`, valueString: 'Patient changes' },
      { url: `${XV}.resourceTrigger`, extension: [sub('resource', { valueUri: 'Patient' }), sub('supportedInteraction', { valueCode: 'create' }), sub('supportedInteraction', { valueCode: 'update' })] },
      { url: `${XV}.canFilterBy`, extension: [sub('resource', { valueUri: 'Patient' }), sub('filterParameter', { valueString: 'identifier' })] },
      { url: `${XV}.canFilterBy`, extension: [sub('resource', { valueUri: 'Patient' }), sub('filterParameter', { valueString: 'birthdate' }), sub('modifier', { valueCode: 'eq' }), sub('modifier', { valueCode: 'gt' }), sub('modifier', { valueCode: 'lt' })] },
    ],
  };
}

/** A reference on this base shown relative to it (`Encounter/123`); others as they are. */
export function shortRef(reference: string | undefined, base: string): string {
  if (!reference) return '–';
  const prefix = `${location.origin}${base}/`;
  return reference.startsWith(prefix) ? reference.slice(prefix.length) : reference;
}
