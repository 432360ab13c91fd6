import type { VersionAdapter } from './index.ts';
import { r4Subscriptions } from './subscriptions/r4.ts';

/** FHIR R4 (4.0.1). */
export const r4: VersionAdapter = {
  version: 'R4',
  fhirVersion: '4.0.1',
  pathSegment: 'R4',
  mimeVersion: '4.0',
  subscriptions: r4Subscriptions,
};
