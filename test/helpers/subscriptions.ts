/**
 * Hand-written topic and Subscription resources in each version's own shape (R4: Basic-wrapped
 * topic + backport profile; R4B: SubscriptionTopic + backport profile; R5: native), and readers
 * of notification Bundles, so end-to-end tests speak to Herald as a real client would.
 */
export type Version = 'R4' | 'R4B' | 'R5';

const IG = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
const XV = 'http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic';

export interface TopicInput {
  url: string;
  resource: string;
  interactions?: string[];
  current?: string;
  previous?: string;
  requireBoth?: boolean;
  fhirPath?: string;
  canFilterBy?: { param: string; modifiers?: string[] }[];
  status?: string;
  include?: string[];
  revInclude?: string[];
}

export function topicResource(v: Version, t: TopicInput, id: string): any {
  const interactions = t.interactions ?? ['create', 'update'];
  const qc = t.current || t.previous ? { ...(t.previous ? { previous: t.previous, resultForCreate: 'test-passes' } : {}), ...(t.current ? { current: t.current, resultForDelete: 'test-fails' } : {}), ...(t.requireBoth !== undefined ? { requireBoth: t.requireBoth } : {}) } : undefined;
  if (v !== 'R4') {
    return {
      resourceType: 'SubscriptionTopic',
      id,
      url: t.url,
      status: t.status ?? 'active',
      resourceTrigger: [{ resource: t.resource, supportedInteraction: interactions, ...(qc ? { queryCriteria: qc } : {}), ...(t.fhirPath ? { fhirPathCriteria: t.fhirPath } : {}) }],
      ...(t.canFilterBy?.length
        ? { canFilterBy: t.canFilterBy.map((c) => ({ resource: t.resource, filterParameter: c.param, ...(c.modifiers ? (v === 'R5' ? r5Split(c.modifiers) : { modifier: c.modifiers }) : {}) })) }
        : {}),
      ...(t.include || t.revInclude
        ? { notificationShape: [{ resource: t.resource, ...(t.include ? { include: t.include } : {}), ...(t.revInclude ? { revInclude: t.revInclude } : {}) }] }
        : {}),
    };
  }
  const sub = (url: string, ext: any) => ({ url, ...ext });
  const trigger = [
    sub('resource', { valueUri: t.resource }),
    ...interactions.map((i) => sub('supportedInteraction', { valueCode: i })),
    ...(qc ? [sub('queryCriteria', { extension: Object.entries(qc).map(([k, val]) => (typeof val === 'boolean' ? sub(k, { valueBoolean: val }) : k.startsWith('result') ? sub(k, { valueCode: val }) : sub(k, { valueString: val }))) })] : []),
    ...(t.fhirPath ? [sub('fhirPathCriteria', { valueString: t.fhirPath })] : []),
  ];
  return {
    resourceType: 'Basic',
    id,
    code: { coding: [{ system: 'http://hl7.org/fhir/fhir-types', code: 'SubscriptionTopic' }] },
    modifierExtension: [{ url: `${XV}.status`, valueCode: t.status ?? 'active' }],
    extension: [
      { url: `${XV}.url`, valueUri: t.url },
      { url: `${XV}.resourceTrigger`, extension: trigger },
      ...(t.canFilterBy ?? []).map((c) => ({
        url: `${XV}.canFilterBy`,
        extension: [sub('resource', { valueUri: t.resource }), sub('filterParameter', { valueString: c.param }), ...(c.modifiers ?? []).map((m) => sub('modifier', { valueCode: m }))],
      })),
      ...(t.include || t.revInclude
        ? [
            {
              url: `${XV}.notificationShape`,
              extension: [
                sub('resource', { valueUri: t.resource }),
                ...(t.include ?? []).map((i) => sub('include', { valueString: i })),
                ...(t.revInclude ?? []).map((i) => sub('revInclude', { valueString: i })),
              ],
            },
          ]
        : []),
    ],
  };
}

export interface SubscriptionInput {
  topic: string;
  channel?: 'rest-hook' | 'websocket';
  endpoint?: string;
  content?: 'empty' | 'id-only' | 'full-resource';
  filters?: string[];
  headers?: string[];
  heartbeat?: number;
  maxCount?: number;
  status?: string;
  contentType?: string;
  id?: string;
}

export function subscriptionResource(v: Version, s: SubscriptionInput): any {
  const channel = s.channel ?? 'rest-hook';
  const contentType = s.contentType ?? 'application/fhir+json';
  if (v === 'R5') {
    return {
      resourceType: 'Subscription',
      ...(s.id ? { id: s.id } : {}),
      status: s.status ?? 'requested',
      topic: s.topic,
      ...(s.filters?.length
        ? {
            filterBy: s.filters.map((f) => {
              const [name, value] = f.replace(/^\w+\?/, '').split('=');
              const [param, modifier] = name!.split(':');
              return { filterParameter: param, ...(modifier ? { modifier } : {}), value };
            }),
          }
        : {}),
      channelType: { system: 'http://terminology.hl7.org/CodeSystem/subscription-channel-type', code: channel },
      ...(s.endpoint ? { endpoint: s.endpoint } : {}),
      ...(s.headers?.length ? { parameter: s.headers.map((h) => ({ name: h.split(':')[0]!.trim(), value: h.slice(h.indexOf(':') + 1).trim() })) } : {}),
      ...(s.heartbeat ? { heartbeatPeriod: s.heartbeat } : {}),
      ...(s.maxCount ? { maxCount: s.maxCount } : {}),
      contentType,
      content: s.content ?? 'id-only',
    };
  }
  const channelExt = [
    ...(s.heartbeat ? [{ url: `${IG}/backport-heartbeat-period`, valueUnsignedInt: s.heartbeat }] : []),
    ...(s.maxCount ? [{ url: `${IG}/backport-max-count`, valuePositiveInt: s.maxCount }] : []),
  ];
  return {
    resourceType: 'Subscription',
    ...(s.id ? { id: s.id } : {}),
    meta: { profile: [`${IG}/backport-subscription`] },
    status: s.status ?? 'requested',
    reason: 'test',
    criteria: s.topic,
    ...(s.filters?.length ? { _criteria: { extension: s.filters.map((f) => ({ url: `${IG}/backport-filter-criteria`, valueString: f })) } } : {}),
    channel: {
      ...(channelExt.length ? { extension: channelExt } : {}),
      type: channel,
      ...(s.endpoint ? { endpoint: s.endpoint } : {}),
      ...(s.headers?.length ? { header: s.headers } : {}),
      payload: contentType,
      _payload: { extension: [{ url: `${IG}/backport-payload-content`, valueCode: s.content ?? 'id-only' }] },
    },
  };
}

export interface NotificationView {
  type: string;
  status: string;
  eventsSince: number;
  events: { number: number; focus?: string }[];
  topic?: string;
  entries: any[];
}

/** Reads the status part of a notification Bundle, whatever its version's shape. */
export function readNotification(bundle: any): NotificationView {
  const status = bundle.entry[0].resource;
  if (status.resourceType === 'Parameters') {
    const p = (name: string) => status.parameter.filter((x: any) => x.name === name);
    return {
      type: p('type')[0].valueCode,
      status: p('status')[0]?.valueCode,
      eventsSince: Number(p('events-since-subscription-start')[0]?.valueString ?? 0),
      topic: p('topic')[0]?.valueCanonical,
      events: p('notification-event').map((e: any) => ({
        number: Number(e.part.find((x: any) => x.name === 'event-number').valueString),
        focus: e.part.find((x: any) => x.name === 'focus')?.valueReference?.reference,
      })),
      entries: bundle.entry.slice(1),
    };
  }
  return {
    type: status.type,
    status: status.status,
    eventsSince: Number(status.eventsSinceSubscriptionStart ?? 0),
    topic: status.topic,
    events: (status.notificationEvent ?? []).map((e: any) => ({ number: Number(e.eventNumber), focus: e.focus?.reference })),
    entries: bundle.entry.slice(1),
  };
}

const R5_COMPARATORS = new Set(['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap']);

/** R5 keeps comparators (`gt`) and modifiers (`missing`) in two elements, each with its own value set. */
function r5Split(codes: string[]): { comparator?: string[]; modifier?: string[] } {
  const comparator = codes.filter((c) => R5_COMPARATORS.has(c));
  const modifier = codes.filter((c) => !R5_COMPARATORS.has(c));
  return { ...(comparator.length ? { comparator } : {}), ...(modifier.length ? { modifier } : {}) };
}
