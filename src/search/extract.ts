/**
 * The index rows of a resource: for each search parameter of its type (or only those asked for),
 * the values its expression selects, converted per FHIR type (extract/values.ts). The store
 * writes these rows for search; the in-memory matcher extracts just the parameters of a query
 * (`only`) and compares them with the same code, so both agree on what a resource contains.
 *
 * Extraction never throws on odd data: values that do not fit their type are skipped, and a
 * parameter whose extraction fails (it should not) contributes no rows rather than failing the
 * write. It throws only for a resource over MAX_INDEX_ROWS (budget.ts): a 422 `too-costly`.
 */
import { FhirError } from '../fhir/errors.ts';
import type { Resource } from '../fhir/types.ts';
import type { ParamExtractor, SearchRegistry } from './parameters.ts';
import type { Plan } from './extract/builder.ts';
import { runPlan } from './extract/run.ts';
import { RowSink, type Convert } from './extract/sink.ts';
import { converterFor } from './extract/values.ts';
import type { IndexRows, ParamType, SearchParam } from './types.ts';

/**
 * The generation of what extraction yields. Raise it with any change that makes a stored resource
 * yield other rows than before (a converter, a parameter's expression, the definitions loaded,
 * compartment rows): a store whose index was built by an earlier generation is rebuilt from the
 * stored bodies when the server starts (store/reindex.ts). Raise it with a PostgreSQL migration
 * too (an empty one will do): a node refuses to start beside nodes of an older schema, and to run
 * on a newer one (schema.ts), so no node of another generation writes rows beside the rebuild.
 * 1: everything up to 2026-12-08; 2: a Timing is one range, its outer limits (it was each event
 * and its bounds Period apart), open-ended when it repeats without bounds.
 */
export const INDEX_GENERATION = 2;

export interface ExtractOptions {
  /** This server's base URL: absolute references into it are indexed as `Type/id`. */
  baseUrl?: string;
  /** Extract only these parameters (of the resource's type, from the same registry). */
  only?: readonly SearchParam[];
  /** Told when a parameter's extraction throws (a bug: converters skip odd data themselves). */
  onError?: (param: SearchParam, error: unknown) => void;
}

/** Extracts every index row of `resource` (meta parameters such as _id and _tag included). */
export function extractIndex(registry: SearchRegistry, resource: Resource, options: ExtractOptions = {}): IndexRows {
  const defs = registry.definitions;
  const baseUrl = options.baseUrl?.endsWith('/') ? options.baseUrl.replace(/\/+$/, '') : options.baseUrl;
  const sink = new RowSink(defs, baseUrl, (paramType, fhirType) => converterFor(defs, paramType, fhirType));
  const type = (resource as Partial<Resource> | null)?.resourceType;
  if (typeof type !== 'string' || !defs.isResourceType(type)) return sink.rows;
  for (const param of options.only ?? registry.paramsFor(type).values()) {
    const extractor = registry.extractor(param);
    if (extractor === undefined || extractor.resourceType !== type) continue;
    try {
      if (extractor.components === undefined) extractSimple(extractor, resource, sink);
      else extractComposite(extractor, resource, sink);
    } catch (error) {
      if (error instanceof FhirError) throw error; // over MAX_INDEX_ROWS (sink.ts)
      // A bug in a converter must not fail the write; the parameter just has fewer rows.
      options.onError?.(param, error);
    }
  }
  return sink.rows;
}

function extractSimple(extractor: ParamExtractor, resource: Resource, sink: RowSink): void {
  sink.begin(extractor.param.code, undefined);
  use(sink, extractor.plan, extractor.param.type);
  runPlan(extractor.plan, resource, resource, sink.emit);
}

/**
 * Composite values: each focus element (an Observation, each of its components, ...) is one
 * group; component i's rows go under `code#i` with the group's number, so a search can require
 * all components to match within the same element.
 */
function extractComposite(extractor: ParamExtractor, resource: Resource, sink: RowSink): void {
  const focus: { value: unknown; slot: number }[] = [];
  runPlan(extractor.plan, resource, resource, (value, _type, slot) => focus.push({ value, slot }));
  for (const { value, slot } of focus) {
    const grp = sink.nextGroup();
    const mark = sink.mark();
    let complete = true;
    for (const component of extractor.components!) {
      const plan = component.plans[slot];
      const before = sink.size();
      if (plan !== undefined) {
        sink.begin(component.rowCode, grp);
        use(sink, plan, component.param.type);
        runPlan(plan, value, resource, sink.emit);
      }
      if (sink.size() === before) complete = false;
    }
    // A composite search matches a group only through every component, so a group with a component
    // that has no value can never match: its other rows would only cost index pages (issue 15).
    if (!complete) sink.reset(mark);
  }
}

const slotConverters = new WeakMap<Plan, { type: ParamType; converters: (Convert | undefined)[] }>();

/** Points the sink at a plan: the converters of its statically typed slots, computed once. */
function use(sink: RowSink, plan: Plan, type: ParamType): void {
  let cached = slotConverters.get(plan);
  if (cached === undefined || cached.type !== type) {
    cached = { type, converters: plan.slots.map((s) => (s.type === undefined ? undefined : converterFor(sink.defs, type, s.type))) };
    slotConverters.set(plan, cached);
  }
  sink.converters = cached.converters;
  sink.paramType = type;
}
