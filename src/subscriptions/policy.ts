import { unprocessable } from '../fhir/errors.ts';
import type { SubscriptionSpec } from '../fhir/subscription-model.ts';
import type { SubscriptionPaths } from '../fhir/versions/index.ts';
import type { EndpointGuard } from './endpoints.ts';

/**
 * What Herald accepts in a Subscription beyond its structure (REQUIREMENTS N-2, S-8, S-10, S-12,
 * RH-7, D-16, D-17, D-19). Out-of-range numbers are rejected, not clamped, so the client always gets
 * exactly what it asked for or a precise reason why not.
 */
export interface SubscriptionPolicy {
  /** Channel types this server delivers (others are rejected, CC-1). */
  channels: ReadonlySet<string>;
  /** Where rest-hook endpoints may point (RH-7, issue 13: https, no internal addresses, never Herald itself). */
  endpoints: EndpointGuard;
  /** The operator's quotas (issue 14); a Subscription beyond one is refused with 422 naming its setting. */
  quotas: SubscriptionQuotas;
}

export interface SubscriptionQuotas {
  /** Shortest heartbeatPeriod accepted (seconds): 200 subscriptions at 1 s made Herald a 200 POST/s reflector. */
  minHeartbeatS: number;
  /** Longest timeout accepted (seconds): also how long a stop may wait for one delivery. */
  maxDeliveryTimeoutS: number;
  /** Live subscriptions on one topic. */
  maxSubscriptionsPerTopic: number;
  /** Live classic (criteria, no topic) subscriptions on one base: each is a topic of its own, tested on every write of its type. */
  maxClassicSubscriptions: number;
  /** Filters of one subscription. */
  maxFiltersPerSubscription: number;
}

/** Each channel number: its range, and the setting that bounds it where an operator may. */
function ranges(q: SubscriptionQuotas): Record<'heartbeatPeriod' | 'timeout' | 'maxCount', { min: number; max: number; unit: string; setting?: string }> {
  return {
    heartbeatPeriod: { min: q.minHeartbeatS, max: 86_400, unit: ' seconds', setting: 'HERALD_MIN_HEARTBEAT_S' },
    timeout: { min: 1, max: q.maxDeliveryTimeoutS, unit: ' seconds', setting: 'HERALD_MAX_DELIVERY_TIMEOUT_S' },
    maxCount: { min: 1, max: 1000, unit: '' },
  };
}

const MIME = new Set(['application/fhir+json', 'application/json']);

/** Checks the channel and `end`; errors name the element at `paths`, where this version writes it. */
export function checkChannel(spec: SubscriptionSpec, policy: SubscriptionPolicy, mimeVersion: string, now: number, paths: SubscriptionPaths): void {
  const ch = spec.channel;
  if (!policy.channels.has(ch.type)) {
    throw unprocessable(`channel type '${ch.type}' is not supported here (supported: ${[...policy.channels].join(', ')})`, [paths.channelType]);
  }
  if (ch.type === 'rest-hook') checkEndpoint(ch.endpoint, policy, paths.endpoint);
  // D-19: a classic R4 subscription without a payload type is notified without a body.
  if (!(spec.classicCriteria !== undefined && ch.contentType === '')) checkPayload(ch.contentType, mimeVersion, paths.contentType);
  for (const [key, { min, max, unit, setting }] of Object.entries(ranges(policy.quotas))) {
    const v = ch[key as 'heartbeatPeriod'];
    if (v === undefined || (v >= min && v <= max)) continue;
    const why = setting ? ` (this server's limit is ${setting})` : '';
    throw unprocessable(`${key} must be from ${min} to ${max}${unit}${why}, not ${v}`, [paths[key as 'heartbeatPeriod']]);
  }
  if (spec.end !== undefined && Date.parse(spec.end) <= now) throw unprocessable(`end (${spec.end}) is already past`, [paths.end]);
}

function checkPayload(contentType: string, mimeVersion: string, at: string): void {
  const [mime, ...params] = contentType.split(';').map((p) => p.trim());
  if (!MIME.has(mime!.toLowerCase())) {
    throw unprocessable(`payload MIME type '${contentType}' is not supported: use application/fhir+json`, [at]);
  }
  const fhirVersion = params.find((p) => p.toLowerCase().startsWith('fhirversion='))?.split('=')[1];
  if (fhirVersion !== undefined && fhirVersion !== mimeVersion) {
    throw unprocessable(`notifications in fhirVersion=${fhirVersion} are not available on this base (it serves ${mimeVersion})`, [at]);
  }
}

function checkEndpoint(endpoint: string | undefined, policy: SubscriptionPolicy, at: string): void {
  if (!endpoint) throw unprocessable('a rest-hook subscription needs an endpoint', [at]);
  policy.endpoints.check(endpoint, at);
}
