import type { RawSearchParameter } from '../fhir/definitions/index.ts';
import type { FhirVersion } from '../fhir/types.ts';

const IG = 'http://hl7.org/fhir/uv/subscriptions-backport';
const XV5 = 'http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.url';
const XV43 = 'http://hl7.org/fhir/4.3/StructureDefinition/extension-SubscriptionTopic.url';

/**
 * Search parameters beyond the core spec. On R4 and R4B, the backport IG's Subscription
 * parameters (S-14), with expressions that point at the extensions where the profile puts them
 * (the IG's own FSH places them on the root). On R4, `url` on Basic finds Basic-wrapped topics by
 * their topic URL (both cross-version prefixes, ISSUE-6), next to the core `code` parameter (T-9).
 */
export function extraSearchParameters(version: FhirVersion): RawSearchParameter[] {
  if (version === 'R5') return [];
  const backport: RawSearchParameter[] = [
    { url: `${IG}/SearchParameter/Subscription-topic`, code: 'topic', type: 'uri', base: ['Subscription'], expr: 'Subscription.criteria' },
    {
      url: `${IG}/SearchParameter/Subscription-filter-criteria`,
      code: 'filter-criteria',
      type: 'string',
      base: ['Subscription'],
      expr: `Subscription.criteria.extension.where(url='${IG}/StructureDefinition/backport-filter-criteria').value`,
    },
    {
      url: `${IG}/SearchParameter/Subscription-payload-type`,
      code: 'payload-type',
      type: 'token',
      base: ['Subscription'],
      expr: `Subscription.channel.payload.extension.where(url='${IG}/StructureDefinition/backport-payload-content').value`,
    },
    {
      url: `${IG}/SearchParameter/Subscription-custom-channel`,
      code: 'custom-channel',
      type: 'token',
      base: ['Subscription'],
      expr: `Subscription.channel.type.extension.where(url='${IG}/StructureDefinition/backport-channel-type').value`,
    },
  ];
  if (version === 'R4B') return backport;
  return [
    ...backport,
    {
      url: 'urn:herald:SearchParameter/Basic-topic-url',
      code: 'url',
      type: 'uri',
      base: ['Basic'],
      expr: `Basic.extension.where(url='${XV5}').value | Basic.extension.where(url='${XV43}').value`,
    },
  ];
}
