import type { VersionAdapter } from './index.ts';
import { r4bSubscriptions } from './subscriptions/r4b.ts';

/** FHIR R4B (4.3.0). */
export const r4b: VersionAdapter = {
  version: 'R4B',
  fhirVersion: '4.3.0',
  pathSegment: 'R4B',
  mimeVersion: '4.3',
  subscriptions: r4bSubscriptions,
};
