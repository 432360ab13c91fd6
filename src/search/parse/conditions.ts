/**
 * One `name=value` query parameter into a Condition: the name decides the shape (plain parameter
 * with an optional modifier, chain `a.b`, reverse chain `_has:T:ref:x`), the parameter's type how
 * the value is read (values.ts). Unknown names are skipped (recorded) unless strict; a modifier
 * Herald does not evaluate is always an error, whatever the handling (search.html#modifiers).
 */
import { badRequest, FhirError } from '../../fhir/errors.ts';
import { overBudget, SEARCH_BUDGET, shortName } from '../budget.ts';
import type { Condition, ParamType, SearchParam } from '../types.ts';
import { isResourceType, lookupParam, skip, typesLabel, type ParseContext } from './context.ts';
import { parseValue, splitUnescaped } from './values.ts';

/** Modifiers Herald evaluates, by parameter type (search.html#modifiers). */
const SUPPORTED: Record<ParamType, readonly string[]> = {
  string: ['exact', 'contains', 'missing'],
  token: ['not', 'text', 'of-type', 'missing'],
  reference: ['identifier', 'missing'],
  date: ['missing'],
  number: ['missing'],
  quantity: ['missing'],
  uri: ['above', 'below', 'contains', 'missing'],
  composite: ['missing'],
  special: [],
};

/**
 * Modifiers the spec allows on a type that Herald cannot evaluate (they need terminology or text
 * indexing). `:text` on strings is R5's; on R4/R4B it is merely not supported rather than not allowed.
 */
const UNEVALUATED: Partial<Record<ParamType, readonly string[]>> = {
  string: ['text'],
  token: ['above', 'below', 'in', 'not-in', 'code-text', 'text-advanced'],
  reference: ['above', 'below', 'text', 'code-text', 'text-advanced'],
};

/** Every modifier search.html defines: one of these on the wrong type is an error, not an unknown. */
const SPEC_MODIFIERS: ReadonlySet<string> = new Set([
  'above', 'below', 'code-text', 'contains', 'exact', 'identifier', 'in', 'iterate', 'missing', 'not', 'not-in', 'of-type', 'text', 'text-advanced',
]);

/** Registered parameters without an evaluable definition (no expression, or a whole feature of their own). */
const UNSUPPORTED_PARAMS: ReadonlySet<string> = new Set(['_text', '_content', '_list', '_query', '_filter', '_in']);

const TYPE_NAME = /^[A-Z][A-Za-z]+$/;

const HAS = /(?:^|[.:])_has:/g;

/** Parses one query parameter against `types`; undefined when it is skipped. */
export function parseCondition(ctx: ParseContext, types: readonly string[], name: string, raw: string): Condition | undefined {
  ctx.valueWeight = 2 ** chainLinks(name);
  return parseNamed(ctx, types, name, name, raw);
}

/**
 * The chain links of a name, after checking them and its nested `_has` against the budget, in the
 * text before anything recurses over them (a name is as long as the client likes).
 */
function chainLinks(name: string): number {
  let links = 0;
  for (let i = name.indexOf('.'); i >= 0 && links <= SEARCH_BUDGET.chainDepth; i = name.indexOf('.', i + 1)) links++;
  if (links > SEARCH_BUDGET.chainDepth) {
    throw overBudget(name, `Chain '${shortName(name)}' is too deep: more than ${SEARCH_BUDGET.chainDepth} links`);
  }
  const has = name.match(HAS)?.length ?? 0;
  if (has > SEARCH_BUDGET.hasDepth) {
    throw overBudget(name, `'${shortName(name)}' nests _has too deeply: ${has} levels, at most ${SEARCH_BUDGET.hasDepth}`);
  }
  return links;
}

/** `full` is the name as the client wrote it (for messages), `name` the part still to read. */
function parseNamed(ctx: ParseContext, types: readonly string[], full: string, name: string, raw: string): Condition | undefined {
  if (name.startsWith('_has:')) return parseHas(ctx, types, full, name, raw);
  const dot = name.indexOf('.');
  if (dot >= 0) return parseChain(ctx, types, full, name.slice(0, dot), name.slice(dot + 1), raw);
  const [code, modifier] = splitModifier(name);
  const param = lookupParam(ctx, types, code);
  if (param === undefined) return skip(ctx, full, `Unknown search parameter '${code}' for ${typesLabel(types)}`);
  if (UNSUPPORTED_PARAMS.has(code) || param.type === 'special') return skip(ctx, full, `Search parameter '${code}' is not supported`);
  return parseParam(ctx, full, param, modifier, raw, types.length === 1);
}

function splitModifier(name: string): [string, string | undefined] {
  const colon = name.indexOf(':');
  return colon < 0 ? [name, undefined] : [name.slice(0, colon), name.slice(colon + 1)];
}

/**
 * A plain parameter: comma-separated values are ORed. A `:[Type]` modifier on a reference is
 * folded into the values (their targetType) and does not appear as the condition's modifier.
 */
function parseParam(ctx: ParseContext, full: string, param: SearchParam, modifier: string | undefined, raw: string, oneType: boolean): Condition | undefined {
  const checked = checkModifier(ctx, full, param, modifier);
  const parts = splitUnescaped(raw, ',');
  const cost = parts.length * ctx.valueWeight;
  ctx.values += cost;
  if (ctx.values > SEARCH_BUDGET.values) {
    const chained = ctx.valueWeight > 1 ? ` (each counting ${ctx.valueWeight}, as a chain of ${Math.log2(ctx.valueWeight)} links, a link through canonicals counting two)` : '';
    const what = cost > SEARCH_BUDGET.values ? `'${shortName(full)}' has ${parts.length} values${chained}` : `'${shortName(full)}' brings the search to ${ctx.values} values${chained}`;
    throw overBudget(full, `Too many OR values: ${what}, more than the ${SEARCH_BUDGET.values} a search may have`);
  }
  // A code's implicit system is its type's: over several types (system search, a chain to
  // several targets) the parameter stands for all of them, and the first type's binding does not.
  const implicit = oneType && (param.type === 'token' || param.type === 'composite') ? { implicitSystems: implicitOf(ctx) } : {};
  const values = parts.map((part) => parseValue({ name: full, param, baseUrl: ctx.baseUrl, ...checked, ...implicit }, part));
  return checked.modifier === undefined ? { kind: 'param', param, values } : { kind: 'param', param, modifier: checked.modifier, values };
}

/** SearchRegistry.implicitSystems, bound to the registry. */
const implicitOf = (ctx: ParseContext) => (param: SearchParam, component?: number) => ctx.registry.implicitSystems(param, component);

interface CheckedModifier {
  modifier?: string;
  typeModifier?: string;
}

/**
 * Classifies a modifier: evaluated, or a reference's resource type; anything else is a 400 naming
 * the parameter, under any handling, since ignoring a modifier changes what a search means: one the
 * spec allows on the type but Herald cannot evaluate (`not-supported`), one of another type, or an
 * unknown one.
 */
function checkModifier(ctx: ParseContext, full: string, param: SearchParam, modifier: string | undefined): CheckedModifier {
  if (modifier === undefined) return {};
  if (SUPPORTED[param.type].includes(modifier)) return { modifier };
  if (param.type === 'reference' && TYPE_NAME.test(modifier)) return { typeModifier: checkTypeModifier(ctx, full, param, modifier) };
  if (UNEVALUATED[param.type]?.includes(modifier)) {
    throw new FhirError(400, 'not-supported', `Modifier ':${modifier}' on '${param.code}' is not supported by this server`, [full]);
  }
  if (SPEC_MODIFIERS.has(modifier) || TYPE_NAME.test(modifier)) {
    throw badRequest(`Modifier ':${modifier}' is not allowed on ${param.type} parameter '${param.code}'`, [full]);
  }
  throw badRequest(`Unknown modifier ':${modifier}' on ${param.type} parameter '${param.code}'`, [full]);
}

/** `subject:Patient`: the type must be one the parameter can refer to. */
function checkTypeModifier(ctx: ParseContext, full: string, param: SearchParam, type: string): string {
  const allowed = param.targets.length === 0 ? isResourceType(ctx, type) : param.targets.includes(type);
  if (!allowed) throw badRequest(`'${param.code}' cannot refer to ${type}`, [full]);
  return type;
}

/**
 * `subject:Patient.name=x` / `subject.name=x` (search.html#chaining): resources whose reference
 * points to a target matching the rest. Without a type modifier, the targets are the parameter's
 * target types that define the chained parameter (with the type of the first that does).
 */
function parseChain(ctx: ParseContext, types: readonly string[], full: string, head: string, rest: string, raw: string): Condition | undefined {
  const [code, modifier] = splitModifier(head);
  const param = lookupParam(ctx, types, code);
  if (param === undefined) return skip(ctx, full, `Unknown search parameter '${code}' for ${typesLabel(types)}`);
  if (param.type !== 'reference') throw badRequest(`'${code}' is not a reference parameter and cannot be chained`, [full]);
  if (modifier !== undefined && !TYPE_NAME.test(modifier)) throw badRequest(`Only a resource type modifier can precede a chain, not ':${modifier}'`, [full]);
  const candidates = modifier === undefined ? param.targets : [checkTypeModifier(ctx, full, param, modifier)];
  if (candidates.length === 0) throw badRequest(`Chaining '${code}' needs a resource type modifier (${code}:[Type].…)`, [full]);
  const targetTypes = chainTargets(ctx, candidates, rest);
  if (targetTypes.length === 0) return skip(ctx, full, `No target of '${code}' (${candidates.join(', ')}) has a parameter '${rest}'`);
  // Through canonicals too, the link is searched twice over (by id and by URL): its values count double.
  if (param.canonical?.some((t) => targetTypes.includes(t))) ctx.valueWeight *= 2;
  const inner = parseNamed(ctx, targetTypes, full, rest, raw);
  return inner === undefined ? undefined : { kind: 'chain', param, targetTypes, inner };
}

/** The candidate types that define the chained parameter, with the same type as the first that does. */
function chainTargets(ctx: ParseContext, candidates: readonly string[], rest: string): string[] {
  if (rest.startsWith('_has:')) return [...candidates];
  const next = rest.split(/[.:]/, 1)[0];
  const first = candidates.map((t) => ctx.registry.param(t, next)).find((p) => p !== undefined);
  if (first === undefined) return [];
  return candidates.filter((t) => ctx.registry.param(t, next)?.type === first.type);
}

/**
 * `_has:Observation:subject:code=x` (search.html#has): resources referred to by an Observation's
 * `subject` where that Observation matches `code=x`. The rest may itself be a `_has` or a chain.
 */
function parseHas(ctx: ParseContext, types: readonly string[], full: string, name: string, raw: string): Condition | undefined {
  const parts = name.split(':');
  const [, sourceType, code] = parts;
  if (parts.length < 4 || !sourceType || !code || parts[3] === '') {
    throw badRequest(`Invalid reverse chain '${full}' (expected _has:Type:reference:parameter)`, [full]);
  }
  if (!isResourceType(ctx, sourceType)) return skip(ctx, full, `Unknown resource type '${sourceType}' in '${full}'`);
  const param = ctx.registry.param(sourceType, code);
  if (param === undefined) return skip(ctx, full, `Unknown search parameter '${code}' for ${sourceType}`);
  if (param.type !== 'reference') throw badRequest(`'${sourceType}.${code}' is not a reference parameter`, [full]);
  if (param.targets.length > 0 && types.length > 0 && !types.some((t) => param.targets.includes(t))) {
    throw badRequest(`'${sourceType}.${code}' cannot refer to ${typesLabel(types)}`, [full]);
  }
  if (param.canonical !== undefined) ctx.valueWeight *= 2;
  const inner = parseNamed(ctx, [sourceType], full, parts.slice(3).join(':'), raw);
  return inner === undefined ? undefined : { kind: 'has', sourceType, param, inner };
}
