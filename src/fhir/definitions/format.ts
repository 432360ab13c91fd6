/**
 * Shape of the generated definition tables (`r4.json`, `searchparams-r4.json`, ...).
 *
 * Shared by the generator (scripts/build-definitions.ts), which writes them, and the loader
 * (./index.ts), which reads them, so the two cannot disagree. Keys are short on purpose: the
 * tables are committed and loaded at startup, and most of their bytes are these keys.
 */

/** One child element of a type or backbone element, in snapshot order. */
export interface RawElement {
  /** Name as in the StructureDefinition path; choice elements keep their `[x]` suffix. */
  n: string;
  /** Type codes (FHIRPath `System.*` types mapped to their FHIR type); absent for contentReference. */
  t?: string[];
  /** Minimum cardinality, omitted when 0. */
  m?: number;
  /** Maximum cardinality, omitted when 1; -1 stands for `*`. */
  x?: number;
  /** contentReference target path, without the leading `#` (e.g. `Questionnaire.item`). */
  r?: string;
  /** 1 when the element is a backbone element whose children are the table at `<parent>.<n>`. */
  i?: 1;
  /** 1 for XML attributes (Element.id, Extension.url): JSON has no `_name` sibling for them. */
  a?: 1;
  /** 1 when the element is part of the summary (`_summary=true`). */
  s?: 1;
}

/** A complex type or resource: its base type and element tables keyed by path (root first). */
export interface RawType {
  /** Kind: `r` resource, `c` complex (data) type. */
  k: 'r' | 'c';
  /** 1 for abstract types (Resource, DomainResource, Element, BackboneElement, ...). */
  a?: 1;
  /** Base type name (last segment of baseDefinition); absent for the roots of the hierarchy. */
  b?: string;
  /** Children per element path: `Patient`, `Patient.contact`, ... */
  e: Record<string, RawElement[]>;
}

/** A primitive type: its JSON kind and the value regex (translated to JavaScript syntax). */
export interface RawPrimitive {
  /** JSON kind: `s` string, `n` number, `b` boolean. */
  j: 's' | 'n' | 'b';
  /** Unanchored regex source for the lexical form; absent when the spec defines none (xhtml). */
  r?: string;
}

/** One version's structure tables (`r4.json`, `r4b.json`, `r5.json`). */
export interface RawDefinitions {
  /** The FHIR version of the source package, e.g. `4.0.1`. */
  fhirVersion: string;
  primitives: Record<string, RawPrimitive>;
  types: Record<string, RawType>;
}

/** A SearchParameter component (composite parameters). */
export interface RawSearchComponent {
  def: string;
  expr: string;
}

/** One SearchParameter, reduced to what a search implementation needs. */
export interface RawSearchParameter {
  url: string;
  code: string;
  /** Resource types the parameter applies to (absent on a few experimental spec examples). */
  base?: string[];
  type: string;
  /** FHIRPath expression (absent for special parameters such as `_text`). */
  expr?: string;
  target?: string[];
  mod?: string[];
  cmp?: string[];
  mOr?: boolean;
  mAnd?: boolean;
  comp?: RawSearchComponent[];
  /** 1 when the spec marks the parameter experimental (its example parameters). */
  x?: 1;
}

/** One version's search parameter table (`searchparams-r4.json`, ...), sorted by url. */
export interface RawSearchParameters {
  fhirVersion: string;
  params: RawSearchParameter[];
}

/**
 * One version's required bindings (`terminology-r4.json`, ...): element path → the value set's
 * canonical as the binding gives it, and each value set (by unversioned URL) expanded from the
 * package into codes per system. Bindings to value sets the package cannot expand are left out
 * of `bindings`; `skipped` says why per value set.
 */
export interface RawTerminology {
  fhirVersion: string;
  bindings: Record<string, string>;
  valueSets: Record<string, Record<string, string[]>>;
  skipped: Record<string, string>;
}
