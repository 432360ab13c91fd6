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
 * What the compiler cannot express throws Unsupported, and the caller (builder.ts) then
 * falls back to fhirpath.js for that union branch only. Running the steps is run.ts.
 */
import type { TypedFhirPathFn } from '../../fhir/fhirpath.ts';
import type { Binding, Definitions, ElementTable, Prop } from '../../fhir/definitions/index.ts';
import type { Ast } from './expression.ts';
import { compileTest } from './criteria.ts';

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
  /** A `code` element's required binding: its codes' systems, which the element does not carry. */
  readonly binding?: Binding;
}

/** A compile-time position: what is there, and the step list that continues from it. */
export interface Slot extends SlotInfo {
  readonly into: Step[];
  /**
   * For a primitive read straight off its JSON property (`criteria`): where its id and extensions
   * are, the `_criteria` sibling read from the parent's step list. Valid only while the slot's
   * `into` is still `into` here: a where() or [n] in between would lose the pairing of the two
   * arrays (`given[i]` and `_given[i]`), so such paths go to fhirpath.js.
   */
  readonly primitive?: { readonly into: Step[]; readonly parent: Step[]; readonly key: string };
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

function slotFor(defs: Definitions, prop: Prop, into: Step[], parent: Step[]): Slot {
  switch (prop.kind) {
    case 'primitive': {
      const binding = prop.primitive!.name === 'code' ? prop.element.binding : undefined;
      const slot: Slot = { type: prop.primitive!.name, table: undefined, path: prop.element.path, into, ...(binding ? { binding } : {}) };
      return prop.partnerKey === undefined ? slot : { ...slot, primitive: { into, parent, key: prop.partnerKey } };
    }
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
  for (const input of inputs) {
    const slot = input.table === undefined ? primitiveElement(ctx, input, name) : input;
    const props = propsByName(slot.table!).get(name);
    if (props === undefined) {
      ctx.warnings.push(`${slot.path}.${name} is not an element`);
      continue;
    }
    const fromExtension = slot.fromExtension === true || (slot.type === 'Extension' && name === 'value');
    for (const prop of props) {
      const step: Step = { kind: 'key', key: prop.key, next: [] };
      slot.into.push(step);
      const found = slotFor(ctx.defs, prop, step.next, slot.into);
      out.push(fromExtension ? { ...found, fromExtension } : found);
    }
  }
  return out;
}

/**
 * The children of a primitive (`Subscription.criteria.extension`, `.id`) live in the JSON
 * sibling `_criteria` (an Element), read from where the primitive itself was read. Arrays of
 * primitives (`given` and `_given`) flatten the same way, so the extensions come in order.
 */
function primitiveElement(ctx: CompileContext, slot: Slot, name: string): Slot {
  const p = slot.primitive;
  if (p === undefined || p.into !== slot.into) throw new Unsupported(`.${name} on ${slot.type ?? 'a resource'}`);
  const step: Step = { kind: 'key', key: p.key, next: [] };
  p.parent.push(step);
  const table = ctx.defs.elementTable;
  return { type: table.path, table, path: slot.path, into: step.next, ...(slot.fromExtension === true ? { fromExtension: true } : {}) };
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

export function isResource(v: unknown): v is { resourceType: string } {
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
