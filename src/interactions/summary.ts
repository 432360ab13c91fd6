import { keepWrittenNumbers } from '../fhir/json.ts';
import type { Definitions } from '../fhir/definitions/index.ts';
import type { Coding, Resource } from '../fhir/types.ts';

/**
 * `_summary` and `_elements` (search.html#summary, #elements): a subset of each resource's
 * top-level elements, marked SUBSETTED in meta.tag. Mandatory elements are always kept. Nested
 * elements are not filtered: the summary of a kept element is the whole element.
 */
const SUBSETTED: Coding = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };
const ALWAYS = new Set(['resourceType', 'id', 'meta']);

export type Summary = 'true' | 'text' | 'data' | 'count' | 'false';

/** Whether `_summary` / `_elements` take anything away (else the resource is given whole). */
export const subsets = (summary?: Summary, elements?: readonly string[]) => !((summary === undefined || summary === 'false' || summary === 'count') && !elements);

export function subset(defs: Definitions, resource: Resource, summary?: Summary, elements?: readonly string[]): Resource {
  if (!subsets(summary, elements)) return resource;
  const props = defs.types.get(resource.resourceType)?.root.props;
  if (!props) return resource;
  const keep = (key: string): boolean => {
    if (ALWAYS.has(key)) return true;
    const element = props.get(key)?.element;
    if (!element) return false;
    if (element.min > 0) return true;
    if (elements) return elements.includes(element.name);
    if (summary === 'text') return key === 'text' || key === '_text';
    if (summary === 'data') return key !== 'text';
    return element.summary;
  };
  const out: Resource = { resourceType: resource.resourceType };
  for (const [key, value] of Object.entries(resource)) if (keep(key)) out[key] = value;
  keepWrittenNumbers(resource, out);
  const meta = out.meta ?? {};
  out.meta = { ...meta, tag: [...(meta.tag ?? []), SUBSETTED] };
  return out;
}
