/**
 * Boolean expressions, compiled like paths (plan.ts) into plain functions: the criteria of
 * `where(...)` and the few parameters whose expression is itself a boolean
 * (`Patient.deceased.exists() and Patient.deceased != false`).
 *
 * `resolve() is X` never resolves anything: it reads the target type off the reference
 * (`Patient/1`, `http://x/Patient/1`, a contained `#id` looked up in the resource, or
 * Reference.type when there is no literal), which is what the search parameters use it for.
 */
import type { Ast } from './expression.ts';
import { compilePath, isA, propsByName, Unsupported, type CompileContext, type Slot, type Step } from './plan.ts';
import { collect, rootResource } from './run.ts';
import { referencedType, splitCanonical } from './references.ts';

type Test = (value: unknown) => boolean;

const BOOLEAN_OPS = new Set(['and', 'or', 'xor', 'implies', '=', '!=', '~', '!~', '<', '>', '<=', '>=', 'in', 'contains']);
const BOOLEAN_FUNCTIONS = new Set(['exists', 'empty', 'not', 'hasExtension', 'hasValue', 'all', 'allTrue', 'anyTrue']);

/** True when an expression yields a boolean rather than elements. */
export function isBooleanExpression(ast: Ast): boolean {
  switch (ast.kind) {
    case 'binary':
      return BOOLEAN_OPS.has(ast.op);
    case 'type':
      return ast.op === 'is';
    case 'call':
      return BOOLEAN_FUNCTIONS.has(ast.name);
    case 'literal':
      return typeof ast.value === 'boolean';
    default:
      return false;
  }
}

/** Compiles a boolean expression evaluated on values of `slot`; empty results count as false. */
export function compileTest(ctx: CompileContext, ast: Ast, slot: Slot): Test {
  switch (ast.kind) {
    case 'binary':
      return compileBinary(ctx, ast, slot);
    case 'type':
      if (ast.op === 'is' && isResolve(ast.target)) return referenceIs(ctx, slot.type, ast.type);
      throw new Unsupported(`${ast.op} ${ast.type}`);
    case 'call':
      return compileFunction(ctx, ast, slot);
    case 'literal':
      if (typeof ast.value === 'boolean') {
        const b = ast.value;
        return () => b;
      }
      throw new Unsupported('non-boolean literal as criteria');
    default:
      throw new Unsupported(`${ast.kind} as criteria`);
  }
}

function isResolve(ast: Ast): boolean {
  return ast.kind === 'call' && ast.name === 'resolve' && ast.target === undefined && ast.args.length === 0;
}

function compileBinary(ctx: CompileContext, ast: Extract<Ast, { kind: 'binary' }>, slot: Slot): Test {
  switch (ast.op) {
    case 'and': {
      const [l, r] = [compileTest(ctx, ast.left, slot), compileTest(ctx, ast.right, slot)];
      return (v) => l(v) && r(v);
    }
    case 'or': {
      const [l, r] = [compileTest(ctx, ast.left, slot), compileTest(ctx, ast.right, slot)];
      return (v) => l(v) || r(v);
    }
    case '=':
    case '!=':
      return equality(ctx, ast, slot);
    default:
      throw new Unsupported(`operator ${ast.op}`);
  }
}

/**
 * `path = 'literal'` and `!=`. An empty left side is empty (false) either way, as in FHIRPath.
 * One deliberate liberty: a CodeableConcept or Coding equals a string when one of its codes
 * does, which is what `Device.identifier.where(type='SNO')` (R5 serial-number) means, though
 * strict FHIRPath would find no match.
 */
function equality(ctx: CompileContext, ast: Extract<Ast, { kind: 'binary' }>, slot: Slot): Test {
  const [path, lit] = ast.right.kind === 'literal' ? [ast.left, ast.right] : [ast.right, ast.left];
  if (lit.kind !== 'literal') throw new Unsupported('comparison without a literal');
  const expected = lit.value;
  const negate = ast.op === '!=';
  const direct = path.kind === 'ident' && slot.table !== undefined ? propsByName(slot.table).get(path.name) : undefined;
  if (direct?.length === 1 && direct[0]!.kind === 'primitive') {
    const key = direct[0]!.key;
    return (v) => {
      const found = (v as Record<string, unknown>)[key];
      return found !== undefined && found !== null && (found === expected) !== negate;
    };
  }
  const steps = subPlan(ctx, path, slot);
  return (v) => {
    const found = collect(steps, v);
    return found.length > 0 && found.some((f) => matches(f.value, f.type, expected)) !== negate;
  };
}

function matches(value: unknown, type: string, expected: unknown): boolean {
  if (type === 'Coding') return (value as { code?: unknown }).code === expected;
  if (type === 'CodeableConcept') {
    const codings = (value as { coding?: unknown }).coding;
    return Array.isArray(codings) && codings.some((c: { code?: unknown } | null) => c?.code === expected);
  }
  return value === expected;
}

function compileFunction(ctx: CompileContext, ast: Extract<Ast, { kind: 'call' }>, slot: Slot): Test {
  const [arg] = ast.args;
  switch (ast.name) {
    case 'exists':
    case 'empty': {
      const target: Ast | undefined = arg === undefined ? ast.target : { kind: 'call', target: ast.target, name: 'where', args: [arg] };
      const exists: Test = target === undefined ? () => true : nonEmpty(subPlan(ctx, target, slot));
      return ast.name === 'exists' ? exists : (v) => !exists(v);
    }
    case 'not': {
      if (ast.target === undefined) throw new Unsupported('not() without a focus');
      const inner = compileTest(ctx, ast.target, slot);
      return (v) => !inner(v);
    }
    case 'hasExtension': {
      if (arg?.kind !== 'literal' || typeof arg.value !== 'string') throw new Unsupported('hasExtension argument');
      const url = arg.value;
      if (ast.target === undefined) return (v) => hasExtension(v, url);
      const steps = subPlan(ctx, ast.target, slot);
      return (v) => collect(steps, v).some((f) => hasExtension(f.value, url));
    }
    default:
      throw new Unsupported(`${ast.name}() as criteria`);
  }
}

function nonEmpty(steps: Step[]): Test {
  return (v) => collect(steps, v).length > 0;
}

function hasExtension(value: unknown, url: string): boolean {
  const ext = (value as { extension?: unknown } | null)?.extension;
  return Array.isArray(ext) && ext.some((e: { url?: unknown } | null) => e?.url === url);
}

/** Compiles a path relative to `slot` into its own step list, for collect(). */
function subPlan(ctx: CompileContext, ast: Ast, slot: Slot): Step[] {
  const steps: Step[] = [];
  for (const out of compilePath(ctx, ast, [{ ...slot, into: steps }])) out.into.push({ kind: 'emit', type: out.type, slot: 0 });
  return steps;
}

/** `resolve() is X` on references, canonicals and CodeableReferences, without resolving. */
function referenceIs(ctx: CompileContext, type: string | undefined, target: string): Test {
  const defs = ctx.defs;
  const is = (t: string | undefined): boolean => t !== undefined && defs.types.has(t) && isA(defs, t, target);
  switch (type) {
    case 'Reference':
      return (v) => is(targetOf(v));
    case 'CodeableReference':
      return (v) => is(targetOf((v as { reference?: unknown }).reference));
    case 'canonical':
    case 'uri':
    case 'url':
      return (v) => typeof v === 'string' && is(referencedType(splitCanonical(v).url));
    default:
      ctx.warnings.push(`resolve() on ${type ?? 'a resource'} finds nothing`);
      return () => false;
  }
}

/** The type a Reference points to: literal, contained (`#id`), or its `type` element. */
function targetOf(ref: unknown): string | undefined {
  if (typeof ref !== 'object' || ref === null) return undefined;
  const { reference, type } = ref as { reference?: unknown; type?: unknown };
  if (typeof reference === 'string') {
    if (!reference.startsWith('#')) return referencedType(reference);
    const contained = (rootResource() as { contained?: unknown } | null)?.contained;
    if (!Array.isArray(contained)) return undefined;
    const id = reference.slice(1);
    const found = contained.find((c: { id?: unknown } | null) => c?.id === id) as { resourceType?: unknown } | undefined;
    return typeof found?.resourceType === 'string' ? found.resourceType : undefined;
  }
  if (typeof type !== 'string') return undefined;
  return type.slice(type.lastIndexOf('/') + 1);
}
