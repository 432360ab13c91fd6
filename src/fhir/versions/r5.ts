import type { VersionAdapter } from './index.ts';
import { r5Subscriptions } from './subscriptions/r5.ts';

/** FHIR R5 (5.0.0). */
export const r5: VersionAdapter = {
  version: 'R5',
  fhirVersion: '5.0.0',
  pathSegment: 'R5',
  mimeVersion: '5.0',
  subscriptions: r5Subscriptions,
};
