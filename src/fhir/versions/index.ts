import type { FhirVersion } from '../types.ts';
import { r4 } from './r4.ts';
import { r4b } from './r4b.ts';
import { r5 } from './r5.ts';
import type { SubscriptionAdapter } from './subscriptions/adapter.ts';

export type {
  CapabilityOperation,
  SubscriptionAdapter,
  SubscriptionCapability,
  SubscriptionPaths,
  SubscriptionState,
} from './subscriptions/adapter.ts';

/**
 * Everything that differs between FHIR versions, in one record per version. Code elsewhere asks the
 * adapter of its base instead of switching on the version.
 */
export interface VersionAdapter {
  version: FhirVersion;
  /** The exact FHIR version this base serves, as in CapabilityStatement.fhirVersion. */
  fhirVersion: string;
  /** The path segment under /fhir/ that serves this version. */
  pathSegment: string;
  /** MIME type parameter value for `fhirVersion=` in Content-Type (R4 → 4.0). */
  mimeVersion: string;
  /** Topic-based subscriptions: topics, Subscriptions, status resources, notification shape. */
  subscriptions: SubscriptionAdapter;
}

const ADAPTERS: Record<FhirVersion, VersionAdapter> = { R4: r4, R4B: r4b, R5: r5 };

export function adapterFor(version: FhirVersion): VersionAdapter {
  return ADAPTERS[version];
}
