/**
 * Required terminology bindings of the base types, and the value sets they name expanded into code
 * lists, from the package's own ValueSets and CodeSystems (never a terminology server).
 *
 * An element is listed when its binding strength is `required`. Its value set is expanded from its
 * `compose`: enumerated concepts of any system, whole code systems the package holds completely,
 * other value sets of the package, minus excludes. A value set that needs anything else (a code
 * system the package lacks or holds only in part, such as UCUM, BCP-47, ISO 4217, SNOMED CT, LOINC;
 * a filter; a value set the package lacks) is not expanded: its bindings are listed under `skipped`
 * with the reason, and such elements are not checked.
 */
import { compare } from './structure.ts';
import type { RawTerminology } from '../../src/fhir/definitions/format.ts';

interface Binding {
  strength?: string;
  valueSet?: string;
}

/** The subset of a StructureDefinition read here. */
export interface BoundStructure {
  type: string;
  snapshot?: { element: { path: string; binding?: Binding }[] };
}

interface Concept {
  code: string;
  concept?: Concept[];
}

export interface CodeSystem {
  resourceType: 'CodeSystem';
  url?: string;
  content?: string;
  concept?: Concept[];
}

interface ComposeRule {
  system?: string;
  concept?: { code: string }[];
  filter?: unknown[];
  valueSet?: string[];
}

export interface ValueSet {
  resourceType: 'ValueSet';
  url?: string;
  compose?: { include?: ComposeRule[]; exclude?: ComposeRule[] };
}

type Codes = Map<string, Set<string>>;

/** Thrown inside an expansion: why the value set cannot be expanded from the package. */
class NotExpandable extends Error {}

const unversioned = (canonical: string) => canonical.split('|')[0]!;

export function extractTerminology(fhirVersion: string, structures: BoundStructure[], valueSets: ValueSet[], codeSystems: CodeSystem[]): RawTerminology {
  const vsByUrl = new Map(valueSets.filter((v) => v.url).map((v) => [v.url!, v]));
  const csByUrl = new Map(codeSystems.filter((c) => c.url).map((c) => [c.url!, c]));
  const bindings: Record<string, string> = {};
  const expanded: Record<string, Record<string, string[]>> = {};
  const skipped: Record<string, string> = {};
  const elements = structures.flatMap((sd) => sd.snapshot?.element ?? []);
  for (const e of [...elements].sort((a, b) => compare(a.path, b.path))) {
    if (e.binding?.strength !== 'required' || !e.binding.valueSet) continue;
    const url = unversioned(e.binding.valueSet);
    if (expanded[url] === undefined && skipped[url] === undefined) {
      try {
        expanded[url] = toRecord(expand(url, vsByUrl, csByUrl, new Set()));
      } catch (err) {
        if (!(err instanceof NotExpandable)) throw err;
        skipped[url] = err.message;
      }
    }
    if (expanded[url] !== undefined) bindings[e.path] = e.binding.valueSet;
  }
  return { fhirVersion, bindings, valueSets: sortKeys(expanded), skipped: sortKeys(skipped) };
}

function expand(url: string, valueSets: Map<string, ValueSet>, codeSystems: Map<string, CodeSystem>, seen: Set<string>): Codes {
  const vs = valueSets.get(url);
  if (!vs) throw new NotExpandable(`the value set ${url} is not in the package`);
  if (seen.has(url)) throw new NotExpandable(`the value set ${url} includes itself`);
  if (!vs.compose?.include?.length) throw new NotExpandable(`the value set ${url} has no compose`);
  const inner = new Set([...seen, url]);
  const out: Codes = new Map();
  for (const rule of vs.compose.include) merge(out, ruleCodes(rule, valueSets, codeSystems, inner));
  for (const rule of vs.compose.exclude ?? []) {
    for (const [system, codes] of ruleCodes(rule, valueSets, codeSystems, inner)) for (const code of codes) out.get(system)?.delete(code);
  }
  return out;
}

/** The codes one include/exclude rule selects. */
function ruleCodes(rule: ComposeRule, valueSets: Map<string, ValueSet>, codeSystems: Map<string, CodeSystem>, seen: Set<string>): Codes {
  if (rule.filter?.length) throw new NotExpandable(`a filter on ${rule.system ?? 'a system'} needs a terminology server`);
  let codes: Codes | undefined;
  if (rule.system !== undefined) {
    codes = new Map([[rule.system, rule.concept ? new Set(rule.concept.map((c) => c.code)) : wholeSystem(rule.system, codeSystems)]]);
  }
  for (const imported of rule.valueSet ?? []) {
    const other = expand(unversioned(imported), valueSets, codeSystems, seen);
    codes = codes === undefined ? other : intersect(codes, other);
  }
  if (codes === undefined) throw new NotExpandable('an include with neither system nor valueSet');
  return codes;
}

function wholeSystem(system: string, codeSystems: Map<string, CodeSystem>): Set<string> {
  const cs = codeSystems.get(system);
  if (!cs) throw new NotExpandable(`the code system ${system} is not in the package`);
  if (cs.content !== 'complete') throw new NotExpandable(`the package holds the code system ${system} as '${cs.content}', not complete`);
  const out = new Set<string>();
  const walk = (concepts: Concept[] | undefined) => {
    for (const c of concepts ?? []) {
      out.add(c.code);
      walk(c.concept);
    }
  };
  walk(cs.concept);
  return out;
}

function merge(into: Codes, from: Codes): void {
  for (const [system, codes] of from) {
    const set = into.get(system) ?? new Set();
    for (const c of codes) set.add(c);
    into.set(system, set);
  }
}

function intersect(a: Codes, b: Codes): Codes {
  const out: Codes = new Map();
  for (const [system, codes] of a) {
    const other = b.get(system);
    if (other) out.set(system, new Set([...codes].filter((c) => other.has(c))));
  }
  return out;
}

function toRecord(codes: Codes): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const system of [...codes.keys()].sort(compare)) out[system] = [...codes.get(system)!].sort(compare);
  return out;
}

function sortKeys<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.keys(record).sort(compare).map((k) => [k, record[k]!]));
}
