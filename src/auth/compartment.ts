import { patientCompartment } from '../fhir/definitions/index.ts';
import type { Resource } from '../fhir/types.ts';
import { extractIndex } from '../search/extract.ts';
import type { SearchRegistry } from '../search/parameters.ts';
import type { Condition, IndexRows, ReferenceRow, SearchParam } from '../search/types.ts';

/**
 * Patient compartments (the version's CompartmentDefinition `patient`), for patient-context
 * tokens. At write time every resource gets one extra reference index row per patient whose
 * compartment it is in (`_compartment` → Patient/id; a Patient is in its own), so a search can be
 * confined to a compartment with one indexed condition, whatever parameters put it there.
 * In memory, `contains` answers the same question for one resource.
 */
const PARAM: SearchParam = { code: '_compartment', type: 'reference', url: 'urn:herald:patient-compartment', targets: ['Patient'] };

export class Compartments {
  private readonly params = new Map<string, readonly SearchParam[]>();

  constructor(
    private readonly registry: SearchRegistry,
    private readonly baseUrl: string,
  ) {
    for (const [type, codes] of patientCompartment(registry.version)) {
      const params = codes.map((c) => registry.param(type, c)).filter((p): p is SearchParam => p?.type === 'reference');
      if (params.length > 0) this.params.set(type, params);
    }
  }

  /** Whether resources of this type can be in a patient's compartment at all. */
  covers(type: string): boolean {
    return type === 'Patient' || this.params.has(type);
  }

  /** The patients whose compartment holds the resource, from its already extracted index rows. */
  private patients(type: string, id: string | undefined, rows: IndexRows): Set<string> {
    const out = new Set<string>();
    if (type === 'Patient' && id !== undefined) out.add(id);
    const codes = this.params.get(type);
    if (!codes) return out;
    for (const row of rows.reference) {
      if (row.targetType === 'Patient' && row.targetId !== null && codes.some((p) => p.code === row.code)) out.add(row.targetId);
    }
    return out;
  }

  /** The `_compartment` rows to store with a version (index rows of the resource given). */
  rows(resource: Resource, index: IndexRows): ReferenceRow[] {
    return [...this.patients(resource.resourceType, resource.id, index)].map((id) => ({
      code: PARAM.code,
      targetType: 'Patient',
      targetId: id,
      url: null,
      version: null,
      identifierSystem: null,
      identifierValue: null,
    }));
  }

  /** Whether `resource` is in the compartment of Patient/`patient` (extracts only the parameters needed). */
  contains(resource: Resource, patient: string): boolean {
    if (resource.resourceType === 'Patient' && resource.id === patient) return true;
    const only = this.params.get(resource.resourceType);
    if (!only) return false;
    return this.patients(resource.resourceType, resource.id, extractIndex(this.registry, resource, { only, baseUrl: this.baseUrl })).has(patient);
  }

  /** A search condition: the resource is in the compartment of Patient/`patient`. */
  condition(patient: string): Condition {
    return { kind: 'param', param: PARAM, values: [{ kind: 'reference', targetType: 'Patient', id: patient }] };
  }
}
