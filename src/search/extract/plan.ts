/**
 * Typed walkers over plain resource JSON, compiled from FHIRPath ASTs against the version's
 * element tables. A search parameter's expression becomes a tree of steps (`key` lookups that
 * flatten arrays, `test` filters, `pick` for `first()`/`[n]`) ending in `emit` leaves that
 * carry the FHIR type of what they emit. Types are static: a choice element such as
 * `Observation.value` expands at compile time into one `key` step per JSON property
 * (`valueQuantity`, `valueString`, ...), each with its own type, and `as`/`ofType` simply keep
 * the matching ones. Only whole resources (`Bundle.entry.resource`) are typed at run time.
 *
 * Running a plan is a few property reads per value, which is what keeps extraction of a whole
 * resource in the tens of microseconds; fhirpath.js costs about 100x more per expression.
 * What the compiler cannot express throws Unsupported, and the caller (PlanBuilder) then
 * falls back to fhirpath.js for that union branch only.
 */
import { compileTypedFhirPath, type TypedFhirPathFn } from '../../fhir/fhirpath.ts';
import type { Definitions, ElementTable, Prop } from '../../fhir/definitions/index.ts';
import { printExpression, type Ast } from './expression.ts';
import { compileTest, isBooleanExpression } from './criteria.ts';

export type Step =
  | { kind: 'key'; key: string; next: Step[] }
  | { kind: 'test'; test: (value: unknown) => boolean; next: Step[] }
  | { kind: 'root'; next: Step[] }
  | { kind: 'pick'; index: number; sub: Step[]; next: Step[][] }
  | { kind: 'bool'; test: (value: unknown) => boolean; slot: number }
  | { kind: 'emit'; type: string | undefined; slot: number }
  | { kind: 'fhirpath'; fn: TypedFhirPathFn; slot: number };

/** Receives each value a plan finds, with its FHIR type and the index of the slot that found it. */
export type Emit = (value: unknown, type: string, slot: number) => void;

/** What a plan's output position holds: its FHIR type (undefined: any resource, or untyped fallback). */
export interface SlotInfo {
  readonly type: string | undefined;
  readonly table: ElementTable | undefined;
  /** Definition path (`Observation.component`) or type name, the base for relative fallbacks. */
  readonly path: string;
  /** True for the value[x] of an Extension the expression selected: any type may turn up there. */
  readonly fromExtension?: boolean;
}

/** A compile-time position: what is there, and the step list that continues from it. */
export interface Slot extends SlotInfo {
  readonly into: Step[];
}

export class Unsupported extends Error {}

/** The compile context: definitions, the resource type compiled for, and collected warnings. */
export interface CompileContext {
  readonly defs: Definitions;
  readonly resourceType: string;
  readonly warnings: string[];
}

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

const propsCache = new WeakMap<ElementTable, Map<string, Prop[]>>();

/** A table's JSON properties by element name: one per type for choice elements. */
export function propsByName(table: ElementTable): Map<string, Prop[]> {
  let byName = propsCache.get(table);
  if (byName === undefined) {
    byName = new Map();
    for (const prop of table.props.values()) {
      if (prop.kind === 'primitive-ext') continue;
      const list = byName.get(prop.element.name);
      if (list === undefined) byName.set(prop.element.name, [prop]);
      else list.push(prop);
    }
    propsCache.set(table, byName);
  }
  return byName;
}

function slotFor(defs: Definitions, prop: Prop, into: Step[]): Slot {
  switch (prop.kind) {
    case 'primitive':
      return { type: prop.primitive!.name, table: undefined, path: prop.element.path, into };
    case 'resource':
      return { type: undefined, table: undefined, path: 'Resource', into };
    default: {
      const table = prop.table!;
      return { type: defs.types.has(table.path) ? table.path : 'BackboneElement', table, path: table.path, into };
    }
  }
}

/** The slot of a whole resource of a type. */
export function resourceSlot(defs: Definitions, type: string, into: Step[]): Slot {
  const def = defs.types.get(type);
  if (def === undefined) throw new Unsupported(`Unknown type ${type}`);
  return { type, table: def.root, path: type, into };
}

/** True when `type` is `ancestor` or derives from it (Age from Quantity, Patient from Resource). */
export function isA(defs: Definitions, type: string, ancestor: string): boolean {
  for (let t: string | undefined = type; t !== undefined; t = defs.types.get(t)?.base) if (t === ancestor) return true;
  return false;
}

/** FHIRPath System types (`DateTime`, `String`) name the FHIR primitive of the same name. */
function fhirTypeName(defs: Definitions, name: string): string {
  if (defs.types.has(name) || defs.primitives.has(name)) return name;
  const lower = name[0]!.toLowerCase() + name.slice(1);
  return defs.primitives.has(lower) ? lower : name;
}

// ---------------------------------------------------------------------------------------------
// Compilation
// ---------------------------------------------------------------------------------------------

/** Compiles a path expression from `inputs`, appending steps; returns the output slots. */
export function compilePath(ctx: CompileContext, ast: Ast, inputs: Slot[]): Slot[] {
  switch (ast.kind) {
    case 'ident':
      return ctx.defs.types.has(ast.name) ? ofType(ctx, inputs, ast.name) : member(ctx, inputs, ast.name);
    case 'env':
      if (ast.name !== 'resource' && ast.name !== 'rootResource') throw new Unsupported(`%${ast.name}`);
      return inputs.map((slot) => {
        const step: Step = { kind: 'root', next: [] };
        slot.into.push(step);
        return resourceSlot(ctx.defs, ctx.resourceType, step.next);
      });
    case 'member':
      return member(ctx, compilePath(ctx, ast.target, inputs), ast.name);
    case 'call':
      return compileCall(ctx, ast, ast.target === undefined ? inputs : compilePath(ctx, ast.target, inputs));
    case 'index':
      if (ast.index.kind !== 'literal' || typeof ast.index.value !== 'number') throw new Unsupported('computed index');
      return pick(ctx, ast.target, ast.index.value, inputs);
    case 'type':
      if (ast.op === 'is') throw new Unsupported('is in a path');
      return ofType(ctx, compilePath(ctx, ast.target, inputs), ast.type);
    case 'union':
      return ast.items.flatMap((item) => compilePath(ctx, item, inputs));
    default:
      throw new Unsupported(`${ast.kind} in a path`);
  }
}

function compileCall(ctx: CompileContext, ast: Extract<Ast, { kind: 'call' }>, focus: Slot[]): Slot[] {
  const [arg] = ast.args;
  switch (ast.name) {
    case 'where':
      if (ast.args.length !== 1) throw new Unsupported('where arity');
      return focus.map((slot) => {
        const step: Step = { kind: 'test', test: compileTest(ctx, arg!, slot), next: [] };
        slot.into.push(step);
        return { ...slot, into: step.next };
      });
    case 'as':
    case 'ofType':
      if (arg?.kind !== 'ident') throw new Unsupported(`${ast.name} argument`);
      return ofType(ctx, focus, arg.name);
    case 'extension': {
      if (arg?.kind !== 'literal' || typeof arg.value !== 'string') throw new Unsupported('extension argument');
      const url = arg.value;
      const test = (v: unknown): boolean => (v as { url?: unknown }).url === url;
      return member(ctx, focus, 'extension').map((slot) => {
        const step: Step = { kind: 'test', test, next: [] };
        slot.into.push(step);
        return { ...slot, into: step.next };
      });
    }
    default:
      throw new Unsupported(`${ast.name}()`);
  }
}

/** Member access: one `key` step per JSON property of the element (several for choices). */
function member(ctx: CompileContext, inputs: Slot[], name: string): Slot[] {
  const out: Slot[] = [];
  for (const slot of inputs) {
    if (slot.table === undefined) throw new Unsupported(`.${name} on ${slot.type ?? 'a resource'}`);
    const props = propsByName(slot.table).get(name);
    if (props === undefined) {
      ctx.warnings.push(`${slot.path}.${name} is not an element`);
      continue;
    }
    for (const prop of props) {
      const step: Step = { kind: 'key', key: prop.key, next: [] };
      slot.into.push(step);
      out.push(slotFor(ctx.defs, prop, step.next));
    }
  }
  return out;
}

/**
 * `as T`/`ofType(T)`/a leading type name: keeps the slots of type T. Complex types match their
 * subtypes (Age is a Quantity); primitives match exactly, so `ofType(uri)` keeps `valueUri` and
 * not `valueCanonical`, as the spec's expressions intend. Resources are tested at run time.
 */
function ofType(ctx: CompileContext, inputs: Slot[], typeName: string): Slot[] {
  const type = fhirTypeName(ctx.defs, typeName);
  const out: Slot[] = [];
  for (const slot of inputs) {
    if (slot.type === undefined) {
      const def = ctx.defs.types.get(type);
      if (def?.kind !== 'resource') continue;
      const defs = ctx.defs;
      const step: Step = { kind: 'test', test: (v) => isResource(v) && isA(defs, v.resourceType, type), next: [] };
      slot.into.push(step);
      out.push(def.abstract ? { ...slot, into: step.next } : resourceSlot(defs, type, step.next));
    } else if (slot.type === type || (slot.table !== undefined && isA(ctx.defs, slot.type, type))) {
      out.push(slot);
    }
  }
  return out;
}

function isResource(v: unknown): v is { resourceType: string } {
  return typeof v === 'object' && v !== null && typeof (v as { resourceType?: unknown }).resourceType === 'string';
}

/** `X[n]` and `X.first()`: X becomes a sub-plan whose n-th result continues in its own slot. */
function pick(ctx: CompileContext, target: Ast, index: number, inputs: Slot[]): Slot[] {
  const out: Slot[] = [];
  for (const slot of inputs) {
    const sub: Step[] = [];
    const found = compilePath(ctx, target, [{ ...slot, into: sub }]);
    const step: Step = { kind: 'pick', index, sub, next: [] };
    found.forEach((f, i) => {
      const next: Step[] = [];
      f.into.push({ kind: 'emit', type: f.type, slot: i });
      step.next.push(next);
      out.push({ ...f, into: next });
    });
    slot.into.push(step);
  }
  return out;
}

/** Rewrites `X.first()` as `X[0]` so both go through pick(). */
export function normalizeFirst(ast: Ast): Ast {
  switch (ast.kind) {
    case 'call': {
      const target = ast.target === undefined ? undefined : normalizeFirst(ast.target);
      if (ast.name === 'first' && ast.args.length === 0 && target !== undefined) return { kind: 'index', target, index: { kind: 'literal', value: 0 } };
      return { ...ast, target, args: ast.args.map(normalizeFirst) };
    }
    case 'member':
    case 'type':
      return { ...ast, target: normalizeFirst(ast.target) };
    case 'index':
      return { ...ast, target: normalizeFirst(ast.target) };
    case 'binary':
      return { ...ast, left: normalizeFirst(ast.left), right: normalizeFirst(ast.right) };
    case 'union':
      return { ...ast, items: ast.items.map(normalizeFirst) };
    default:
      return ast;
  }
}

// ---------------------------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------------------------

/** A compiled expression: the step tree and what each output slot holds. */
export interface Plan {
  readonly steps: readonly Step[];
  readonly slots: readonly SlotInfo[];
  /** Union branches compiled into walkers, and branches left to fhirpath.js. */
  readonly walkerBranches: number;
  readonly fhirpathBranches: number;
}

/**
 * Builds a plan branch by branch: each branch is compiled on its own step list and merged only
 * when it compiled completely, so a branch that needs fhirpath.js leaves no half-built steps.
 */
export class PlanBuilder {
  private readonly steps: Step[] = [];
  private readonly slots: SlotInfo[] = [];
  private walkers = 0;
  private fallbacks = 0;

  constructor(
    private readonly ctx: CompileContext,
    /** Where the branches start: a resource, or a composite's focus. */
    private readonly start: SlotInfo,
  ) {}

  /** Adds one union branch; returns how it will be evaluated. */
  add(ast: Ast): 'walker' | 'fhirpath' {
    const steps: Step[] = [];
    const root: Slot = { ...this.start, into: steps };
    try {
      const branch = normalizeFirst(ast);
      if (isBooleanExpression(branch)) {
        root.into.push({ kind: 'bool', test: compileTest(this.ctx, branch, root), slot: this.slots.length });
        this.slots.push({ type: 'boolean', table: undefined, path: 'boolean' });
      } else {
        for (const slot of expandExtensions(this.ctx, compilePath(this.ctx, branch, [root]))) {
          slot.into.push({ kind: 'emit', type: slot.type, slot: this.slots.length });
          this.slots.push({ type: slot.type, table: slot.table, path: slot.path, fromExtension: slot.fromExtension === true });
        }
      }
      this.steps.push(...steps);
      this.walkers++;
      return 'walker';
    } catch (e) {
      if (!(e instanceof Unsupported)) throw e;
      this.addSource(printExpression(ast), e.message);
      return 'fhirpath';
    }
  }

  /** Adds FHIRPath source evaluated by fhirpath.js (relative to the start when it is not a resource). */
  addSource(source: string, reason: string): void {
    const base = this.start.path === this.ctx.resourceType ? undefined : this.start.path;
    try {
      const fn = compileTypedFhirPath(source, this.ctx.defs.version, base);
      this.steps.push({ kind: 'fhirpath', fn, slot: this.slots.length });
      this.slots.push({ type: undefined, table: undefined, path: source });
      this.fallbacks++;
    } catch (e) {
      this.ctx.warnings.push(`${source}: not compiled (${reason}; fhirpath.js: ${(e as Error).message})`);
    }
  }

  build(): Plan {
    return { steps: this.steps, slots: this.slots, walkerBranches: this.walkers, fhirpathBranches: this.fallbacks };
  }
}

/** An Extension as a search value means its value[x] (`Patient.extension('…')` → the value). */
function expandExtensions(ctx: CompileContext, slots: Slot[]): Slot[] {
  return slots.flatMap((slot) => (slot.type === 'Extension' ? member(ctx, [slot], 'value').map((s) => ({ ...s, fromExtension: true })) : [slot]));
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

/** The resource being extracted, for `%resource` and contained-reference tests. */
let currentRoot: unknown;

/** The resource a running plan was started on (criteria.ts resolves `#id` references in it). */
export function rootResource(): unknown {
  return currentRoot;
}

/** Runs a plan on `input` (a resource, or a composite focus inside `root`). */
export function runPlan(plan: Plan, input: unknown, root: unknown, emit: Emit): void {
  currentRoot = root;
  runSteps(plan.steps, input, emit);
}

function runSteps(steps: readonly Step[], value: unknown, emit: Emit): void {
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    switch (step.kind) {
      case 'key': {
        if (typeof value !== 'object' || value === null) break;
        const v = (value as Record<string, unknown>)[step.key];
        if (v === undefined || v === null) break;
        if (Array.isArray(v)) {
          for (let j = 0; j < v.length; j++) if (v[j] !== null && v[j] !== undefined) runSteps(step.next, v[j], emit);
        } else {
          runSteps(step.next, v, emit);
        }
        break;
      }
      case 'test':
        if (step.test(value)) runSteps(step.next, value, emit);
        break;
      case 'emit':
        emit(value, step.type ?? (isResource(value) ? value.resourceType : 'Resource'), step.slot);
        break;
      case 'bool':
        emit(step.test(value), 'boolean', step.slot);
        break;
      case 'root':
        runSteps(step.next, currentRoot, emit);
        break;
      case 'pick':
        runPick(step, value, emit);
        break;
      case 'fhirpath':
        for (const r of step.fn(value)) if (r.type !== undefined) emit(r.value, r.type, step.slot);
        break;
    }
  }
}

function runPick(step: Extract<Step, { kind: 'pick' }>, value: unknown, emit: Emit): void {
  let count = 0;
  let picked: unknown;
  let pickedSlot = -1;
  runSteps(step.sub, value, (v, _type, slot) => {
    if (count++ === step.index) {
      picked = v;
      pickedSlot = slot;
    }
  });
  if (pickedSlot >= 0) runSteps(step.next[pickedSlot]!, picked, emit);
}

/** Collects what a sub-plan finds from `value` (used by where() tests). */
export function collect(steps: readonly Step[], value: unknown): { value: unknown; type: string }[] {
  const found: { value: unknown; type: string }[] = [];
  runSteps(steps, value, (v, type) => found.push({ value: v, type }));
  return found;
}
