import { readFileSync } from 'node:fs';
import type { FhirVersion } from '../types.ts';

/**
 * The Patient compartment of a FHIR version (its CompartmentDefinition `patient`), generated into
 * `compartment-patient-*.json`: for each resource type that can belong to a patient's compartment,
 * the search parameters whose Patient references put it there. A Patient is also in its own
 * compartment. Types not listed never belong to one.
 */
export type PatientCompartment = ReadonlyMap<string, readonly string[]>;

const cache = new Map<FhirVersion, PatientCompartment>();

export function patientCompartment(version: FhirVersion): PatientCompartment {
  let table = cache.get(version);
  if (!table) {
    const raw = JSON.parse(readFileSync(new URL(`./compartment-patient-${version.toLowerCase()}.json`, import.meta.url), 'utf8')) as {
      resources: Record<string, string[]>;
    };
    table = new Map(Object.entries(raw.resources));
    cache.set(version, table);
  }
  return table;
}
