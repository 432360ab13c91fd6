import type { VersionAdapter } from './index.ts';

/** FHIR R5 (5.0.0). */
export const r5: VersionAdapter = {
  version: 'R5',
  fhirVersion: '5.0.0',
  pathSegment: 'R5',
  mimeVersion: '5.0',
};
