/**
 * The few FHIR shapes Herald's code handles directly. Resources are otherwise plain JSON:
 * validation against the official StructureDefinitions (fhir/validate.ts) is what keeps them honest.
 */

/** The FHIR versions Herald serves, one base each: /fhir/R4, /fhir/R4B, /fhir/R5. */
export type FhirVersion = 'R4' | 'R4B' | 'R5';
export const FHIR_VERSIONS: readonly FhirVersion[] = ['R4', 'R4B', 'R5'];

export interface Meta {
  versionId?: string;
  lastUpdated?: string;
  source?: string;
  profile?: string[];
  security?: Coding[];
  tag?: Coding[];
  [key: string]: unknown;
}

export interface Resource {
  resourceType: string;
  id?: string;
  meta?: Meta;
  [key: string]: unknown;
}

export interface Coding {
  system?: string;
  version?: string;
  code?: string;
  display?: string;
}

export type IssueSeverity = 'fatal' | 'error' | 'warning' | 'information';

export interface OperationOutcomeIssue {
  severity: IssueSeverity;
  code: string;
  diagnostics?: string;
  expression?: string[];
  details?: { text?: string; coding?: Coding[] };
}

export interface OperationOutcome extends Resource {
  resourceType: 'OperationOutcome';
  issue: OperationOutcomeIssue[];
}

export interface BundleEntry {
  fullUrl?: string;
  resource?: Resource;
  search?: { mode?: string; score?: number };
  request?: { method: string; url: string; ifNoneMatch?: string; ifModifiedSince?: string; ifMatch?: string; ifNoneExist?: string };
  response?: { status: string; location?: string; etag?: string; lastModified?: string; outcome?: Resource };
  [key: string]: unknown;
}

export interface Bundle extends Resource {
  resourceType: 'Bundle';
  type: string;
  timestamp?: string;
  total?: number;
  link?: { relation: string; url: string }[];
  entry?: BundleEntry[];
}
