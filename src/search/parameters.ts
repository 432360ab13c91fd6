/**
 * The search parameters of a FHIR version, per resource type, each with a compiled extraction.
 *
 * The spec publishes one SearchParameter for many types at once (`patient` on 30 resources,
 * `Account.subject.where(resolve() is Patient) | AdverseEvent.subject.where(...) | …`), so each
 * (type, parameter) gets its own SearchParam and plan built from only the union branches that
 * start with that type (or an ancestor: `Resource.meta.tag`). Branches are compiled into plain-JS
 * walkers (extract/plan.ts); fhirpath.js evaluates only what the walkers cannot express.
 *
 * Parameters are compiled per type on first use, so startup pays nothing and a server that only
 * ever sees Patients only compiles Patient's parameters. What the registry leaves out is listed
 * in `unsupported`, with the reason, so nothing is silently ignored.
 */
import type { Definitions, RawSearchParameter } from '../fhir/definitions/index.ts';
import { extraSearchParameters } from './extra-params.ts';
import type { FhirVersion } from '../fhir/types.ts';
import { ParseError, branches, leadingIdentifier, parseExpression } from './extract/expression.ts';
import { patchedParameters, type Patch } from './extract/patches.ts';
import { PlanBuilder, type Plan } from './extract/builder.ts';
import { isA, type CompileContext, type SlotInfo } from './extract/plan.ts';
import type { ParamType, SearchParam } from './types.ts';

/** A composite component: its rows go under `rowCode` (`code#i`) with the param's type. */
export interface ComponentExtractor {
  readonly rowCode: string;
  readonly param: SearchParam;
  /** One plan per output slot of the composite's focus plan, relative to that focus. */
  readonly plans: readonly Plan[];
}

/** How one (type, parameter) is extracted. */
export interface ParamExtractor {
  readonly param: SearchParam;
  readonly resourceType: string;
  /** The values; for composites, the focus elements the components are read from. */
  readonly plan: Plan;
  readonly components: readonly ComponentExtractor[] | undefined;
  /** `walker` when no part needs fhirpath.js; `none` when no branch of the expression applies. */
  readonly strategy: 'walker' | 'fhirpath' | 'mixed' | 'none';
  /** Oddities met while compiling (elements the expression names that the type lacks, ...). */
  readonly warnings: readonly string[];
}

/** A spec parameter the registry does not serve, and why. */
export interface UnsupportedParam {
  readonly url: string;
  readonly code: string;
  readonly base: readonly string[];
  readonly reason: string;
}

export interface SearchRegistry {
  readonly version: FhirVersion;
  readonly definitions: Definitions;
  /** The type's parameters by code, including those of Resource and DomainResource. */
  paramsFor(type: string): ReadonlyMap<string, SearchParam>;
  param(type: string, code: string): SearchParam | undefined;
  /** The extraction of a parameter obtained from this registry; undefined for foreign objects. */
  extractor(param: SearchParam): ParamExtractor | undefined;
  /**
   * For a token parameter over `code` elements (or component `component` of a composite): the
   * systems their required bindings give those codes (system → codes), which the index rows do
   * not carry; undefined when there are none.
   */
  implicitSystems(param: SearchParam, component?: number): ReadonlyMap<string, ReadonlySet<string>> | undefined;
  readonly unsupported: readonly UnsupportedParam[];
  /** The spec corrections that applied to this version (extract/patches.ts). */
  readonly patches: ReadonlySet<Patch>;
}

const SP = 'http://hl7.org/fhir/SearchParameter/';
/** Element types a reference parameter holds besides resources (SearchParam.canonical). */
const REFERENCE_SLOTS: ReadonlySet<string> = new Set(['canonical', 'Reference', 'CodeableReference', 'uri', 'url']);
const registries = new WeakMap<Definitions, SearchRegistry>();

/** The registry of a version's definitions (built once; types compile lazily). */
export function searchRegistry(defs: Definitions): SearchRegistry {
  let registry = registries.get(defs);
  if (registry === undefined) {
    registry = new Registry(defs);
    registries.set(defs, registry);
  }
  return registry;
}

class Registry implements SearchRegistry {
  readonly version: FhirVersion;
  readonly unsupported: UnsupportedParam[] = [];
  readonly patches: ReadonlySet<Patch>;
  private readonly rawByType = new Map<string, Map<string, RawSearchParameter>>();
  private readonly rawByUrl = new Map<string, RawSearchParameter>();
  private readonly built = new Map<string, Map<string, SearchParam>>();
  private readonly extractors = new Map<SearchParam, ParamExtractor>();

  constructor(readonly definitions: Definitions) {
    this.version = definitions.version;
    const { params, applied } = patchedParameters(this.version, [...definitions.searchParameters, ...extraSearchParameters(this.version)]);
    this.patches = applied;
    for (const p of params) this.rawByUrl.set(p.url, p);
    const real = new Set(params.filter((p) => p.x !== 1).flatMap((p) => (p.base ?? []).map((b) => `${b}.${p.code}`)));
    for (const p of params) {
      const reason = this.skipReason(p, real);
      if (reason !== undefined) this.unsupported.push({ url: p.url, code: p.code, base: p.base ?? [], reason });
      else for (const type of this.expandBase(p.base!)) this.addRaw(type, p);
    }
  }

  private skipReason(p: RawSearchParameter, real: ReadonlySet<string>): string | undefined {
    if (p.base === undefined || p.base.length === 0) return 'no base resource (an extension parameter of the spec)';
    if (p.type === 'special') return 'type special: evaluated by the search engine, never indexed';
    if (p.x === 1 && (p.url.startsWith(`${SP}example`) || p.base.some((b) => real.has(`${b}.${p.code}`)))) return 'spec example that would shadow a real parameter';
    if (p.expr === undefined) return 'no expression: a search control, evaluated by the search engine';
    if (p.url === `${SP}Resource-in`) return '_in (membership of CareTeam/Group/List): evaluated by the search engine, Resource.id is no index';
    const special = p.comp?.find((c) => this.rawByUrl.get(c.def)?.type === 'special');
    if (special !== undefined) return `composite with a special component (${special.def})`;
    return undefined;
  }

  /** Concrete resource types a base names (`Resource` and `DomainResource` stand for their descendants). */
  private expandBase(base: readonly string[]): string[] {
    const defs = this.definitions;
    return defs.resourceTypes.filter((t) => base.some((b) => isA(defs, t, b)));
  }

  /** Registers a raw parameter for a type; one naming the type itself beats Resource-level ones. */
  private addRaw(type: string, p: RawSearchParameter): void {
    let byCode = this.rawByType.get(type);
    if (byCode === undefined) this.rawByType.set(type, (byCode = new Map()));
    const existing = byCode.get(p.code);
    if (existing === undefined || (!existing.base!.includes(type) && p.base!.includes(type))) byCode.set(p.code, p);
  }

  paramsFor(type: string): ReadonlyMap<string, SearchParam> {
    let params = this.built.get(type);
    if (params === undefined) {
      params = this.build(type);
      this.built.set(type, params);
    }
    return params;
  }

  param(type: string, code: string): SearchParam | undefined {
    return this.paramsFor(type).get(code);
  }

  extractor(param: SearchParam): ParamExtractor | undefined {
    return this.extractors.get(param);
  }

  private readonly implicit = new WeakMap<SearchParam, (ReadonlyMap<string, ReadonlySet<string>> | undefined)[]>();

  implicitSystems(param: SearchParam, component?: number): ReadonlyMap<string, ReadonlySet<string>> | undefined {
    const ex = this.extractors.get(param);
    if (ex === undefined) return undefined;
    const at = component === undefined ? 0 : component + 1;
    let cached = this.implicit.get(param);
    if (cached === undefined) this.implicit.set(param, (cached = []));
    if (at in cached) return cached[at];
    const c = component === undefined ? undefined : ex.components?.[component];
    const type = component === undefined ? param.type : c?.param.type;
    const slots = type !== 'token' ? [] : component === undefined ? ex.plan.slots : (c?.plans.flatMap((p) => p.slots) ?? []);
    const bindings = [...new Set(slots.flatMap((s) => (s.type === 'code' && s.binding ? [s.binding] : [])))];
    let out: Map<string, Set<string>> | undefined;
    for (const b of bindings) {
      for (const [system, codes] of b.systems) {
        out ??= new Map();
        const into = out.get(system) ?? out.set(system, new Set()).get(system)!;
        for (const c of codes) into.add(c);
      }
    }
    cached[at] = out;
    return out;
  }

  /** Compiles a type's parameters; composites last, so their components can reuse the others. */
  private build(type: string): Map<string, SearchParam> {
    const params = new Map<string, SearchParam>();
    const raws = [...(this.rawByType.get(type)?.values() ?? [])];
    raws.sort((a, b) => Number(a.type === 'composite') - Number(b.type === 'composite'));
    for (const raw of raws) {
      const extractor = this.compile(type, raw, params);
      params.set(raw.code, extractor.param);
      this.extractors.set(extractor.param, extractor);
    }
    return params;
  }

  private compile(type: string, raw: RawSearchParameter, params: ReadonlyMap<string, SearchParam>): ParamExtractor {
    const ctx: CompileContext = { defs: this.definitions, resourceType: type, warnings: [] };
    const root = this.definitions.types.get(type)!.root;
    const plan = compileExpression(ctx, { type, table: root, path: type }, raw.expr!);
    const components = raw.type === 'composite' ? (raw.comp ?? []).map((c, i) => this.component(ctx, plan, raw.code, i, c, params)) : undefined;
    const param: SearchParam = {
      code: raw.code,
      type: raw.type as ParamType,
      url: raw.url,
      targets: raw.target ?? [],
      ...this.canonicalTargets(raw, plan),
      ...(components === undefined ? {} : { components: components.map((c, i) => ({ param: c.param, expression: raw.comp![i]!.expr })) }),
    };
    const all = [plan, ...(components ?? []).flatMap((c) => c.plans)];
    return { param, resourceType: type, plan, components, strategy: strategyOf(all), warnings: ctx.warnings };
  }

  /**
   * SearchParam.canonical: for a reference parameter whose elements are canonicals (and nothing
   * but references: an extension's value[x] can be any type), the targets a canonical can name.
   */
  private canonicalTargets(raw: RawSearchParameter, plan: Plan): { canonical?: readonly string[] } {
    if (raw.type !== 'reference') return {};
    const types = new Set(plan.slots.map((s) => s.type));
    if (!types.has('canonical') || [...types].some((t) => t === undefined || (!REFERENCE_SLOTS.has(t) && !this.definitions.isResourceType(t)))) return {};
    const targets = (raw.target ?? this.definitions.resourceTypes).filter((t) => {
      const url = this.rawByType.get(t)?.get('url');
      // Its own `url` element (R5 defines one parameter for every canonical resource, a union).
      return url?.type === 'uri' && url.expr !== undefined && url.expr.split('|').some((branch) => branch.trim() === `${t}.url`);
    });
    return targets.length === 0 ? {} : { canonical: targets };
  }

  /** A composite component: compiled relative to each focus slot; its parameter from `def`. */
  private component(
    ctx: CompileContext,
    focus: Plan,
    code: string,
    index: number,
    comp: { def: string; expr: string },
    params: ReadonlyMap<string, SearchParam>,
  ): ComponentExtractor {
    const plans = focus.slots.map((slot) => {
      if (slot.table !== undefined) return compileExpression(ctx, slot, comp.expr);
      ctx.warnings.push(`composite focus ${slot.path} is not walkable; component ${comp.expr} skipped`);
      return new PlanBuilder(ctx, slot).build();
    });
    const raw = this.rawByUrl.get(comp.def);
    const registered = raw === undefined ? undefined : params.get(raw.code);
    let param: SearchParam;
    if (registered !== undefined && registered.url === comp.def) param = registered;
    else if (raw !== undefined) param = { code: raw.code, type: raw.type as ParamType, url: raw.url, targets: raw.target ?? [] };
    else {
      const type = inferType(plans);
      ctx.warnings.push(`component ${comp.def} is not defined; typed ${type} from its elements`);
      param = { code: comp.def.slice(comp.def.lastIndexOf('/') + 1), type, url: comp.def, targets: [] };
    }
    return { rowCode: `${code}#${index}`, param, plans };
  }
}

/**
 * Compiles the union branches of `expr` that apply to the start's type: those starting with the
 * type's name or an ancestor's, else (for the one base type a spec expression forgot to prefix,
 * R5 Appointment's `(start | requestedPeriod.start).first()`) those starting with no type name.
 */
function compileExpression(ctx: CompileContext, start: SlotInfo, expr: string): Plan {
  const builder = new PlanBuilder(ctx, start);
  let all;
  try {
    all = branches(parseExpression(expr));
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    builder.addSource(expr, e.message);
    return builder.build();
  }
  const defs = ctx.defs;
  const leads = all.map((b) => {
    const lead = leadingIdentifier(b);
    return lead !== undefined && defs.types.has(lead) ? lead : undefined;
  });
  const mine = all.filter((_b, i) => leads[i] !== undefined && start.type !== undefined && isA(defs, start.type, leads[i]!));
  const chosen = mine.length > 0 ? mine : all.filter((_b, i) => leads[i] === undefined);
  if (chosen.length === 0) ctx.warnings.push(`no branch of the expression applies to ${start.path}`);
  for (const branch of chosen) builder.add(branch);
  return builder.build();
}

function strategyOf(plans: readonly Plan[]): ParamExtractor['strategy'] {
  const walkers = plans.reduce((n, p) => n + p.walkerBranches, 0);
  const fallbacks = plans.reduce((n, p) => n + p.fhirpathBranches, 0);
  if (fallbacks === 0) return walkers === 0 ? 'none' : 'walker';
  return walkers === 0 ? 'fhirpath' : 'mixed';
}

const TYPE_OF_ELEMENT: Record<string, ParamType> = {
  string: 'string',
  markdown: 'string',
  code: 'token',
  id: 'token',
  boolean: 'token',
  Coding: 'token',
  CodeableConcept: 'token',
  CodeableReference: 'token',
  Identifier: 'token',
  ContactPoint: 'token',
  date: 'date',
  dateTime: 'date',
  instant: 'date',
  Period: 'date',
  Timing: 'date',
  decimal: 'number',
  integer: 'number',
  positiveInt: 'number',
  unsignedInt: 'number',
  integer64: 'number',
  Quantity: 'quantity',
  Age: 'quantity',
  Duration: 'quantity',
  Count: 'quantity',
  Distance: 'quantity',
  Money: 'quantity',
  Range: 'quantity',
  Reference: 'reference',
  canonical: 'uri',
  uri: 'uri',
  url: 'uri',
};

/** The parameter type of a component whose definition the spec forgot, from what it finds. */
function inferType(plans: readonly Plan[]): ParamType {
  for (const plan of plans) for (const slot of plan.slots) if (slot.type !== undefined && TYPE_OF_ELEMENT[slot.type]) return TYPE_OF_ELEMENT[slot.type]!;
  return 'token';
}
