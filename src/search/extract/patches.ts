/**
 * Corrections to the spec's own SearchParameters, applied before compilation. Each is a plain
 * error in the published definitions (a typo, a missing expression, swapped components) with an
 * obvious intended meaning; leaving them as published would make the parameter match nothing.
 * Every patch must still apply: extract.test.ts fails when one no longer finds its target.
 */
import type { RawSearchParameter } from '../../fhir/definitions/index.ts';
import type { FhirVersion } from '../../fhir/types.ts';

export interface Patch {
  versions: readonly FhirVersion[];
  url: string;
  why: string;
  apply(p: RawSearchParameter): RawSearchParameter;
}

const SP = 'http://hl7.org/fhir/SearchParameter/';

export const PATCHES: readonly Patch[] = [
  {
    versions: ['R4', 'R4B', 'R5'],
    url: `${SP}DocumentReference-relationship`,
    why: 'component expressions swapped: the relatesto reference is given `code`, the relation token `target`',
    apply: (p) => ({ ...p, comp: p.comp?.map((c, i, all) => ({ def: c.def, expr: all[1 - i]!.expr })) }),
  },
  {
    versions: ['R4', 'R4B'],
    url: `${SP}Bundle-composition`,
    why: 'takes the first entry whatever its type (a message bundle would index its MessageHeader); R5 added `as Composition`',
    apply: (p) => ({ ...p, expr: 'Bundle.entry[0].resource as Composition' }),
  },
  {
    versions: ['R4', 'R4B'],
    url: `${SP}Bundle-message`,
    why: 'takes the first entry whatever its type (a document would index its Composition); R5 added `as MessageHeader`',
    apply: (p) => ({ ...p, expr: 'Bundle.entry[0].resource as MessageHeader' }),
  },
  {
    versions: ['R5'],
    url: `${SP}clinical-date`,
    why: 'CareTeam is a base of the parameter but has no branch in the expression (R4 had CareTeam.period)',
    apply: (p) => ({ ...p, expr: `${p.expr} | CareTeam.period` }),
  },
  {
    versions: ['R4B'],
    url: `${SP}Ingredient-manufacturer`,
    why: 'points at the backbone element, not its Reference (R5 fixed it as Ingredient.manufacturer.manufacturer)',
    apply: (p) => ({ ...p, expr: 'Ingredient.manufacturer.manufacturer' }),
  },
  {
    versions: ['R5'],
    url: `${SP}ImagingStudy-reason`,
    why: 'published without an expression (R4 used reasonCode, R5 has reason: CodeableReference)',
    apply: (p) => ({ ...p, expr: 'ImagingStudy.reason' }),
  },
  {
    versions: ['R5'],
    url: `${SP}Medication-form`,
    why: 'published without an expression (R4 Medication.form became doseForm)',
    apply: (p) => ({ ...p, expr: 'Medication.doseForm' }),
  },
  {
    versions: ['R5'],
    url: `${SP}MedicationKnowledge-packaging-cost`,
    why: 'published without an expression',
    apply: (p) => ({ ...p, expr: 'MedicationKnowledge.packaging.cost.cost.ofType(Money)' }),
  },
  {
    versions: ['R5'],
    url: `${SP}MedicationKnowledge-packaging-cost-concept`,
    why: 'published without an expression',
    apply: (p) => ({ ...p, expr: 'MedicationKnowledge.packaging.cost.cost.ofType(CodeableConcept)' }),
  },
];

/** The parameters of a version with the patches applied (and the patches that applied). */
export function patchedParameters(version: FhirVersion, params: readonly RawSearchParameter[]): { params: RawSearchParameter[]; applied: Set<Patch> } {
  const byUrl = new Map(PATCHES.filter((p) => p.versions.includes(version)).map((p) => [p.url, p]));
  const applied = new Set<Patch>();
  const out = params.map((p) => {
    const patch = byUrl.get(p.url);
    if (patch === undefined) return p;
    applied.add(patch);
    return patch.apply(p);
  });
  return { params: out, applied };
}
