/**
 * Plans: a parameter's compiled expression, built one union branch at a time. Each branch
 * becomes a walker (plan.ts) when it can, and otherwise is handed to fhirpath.js whole; the plan
 * records which, so the registry can report how much of the spec needs the fallback.
 */
import { compileTypedFhirPath } from '../../fhir/fhirpath.ts';
import { compileTest, isBooleanExpression } from './criteria.ts';
import { printExpression, type Ast } from './expression.ts';
import { compilePath, normalizeFirst, Unsupported, type CompileContext, type Slot, type SlotInfo, type Step } from './plan.ts';

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
          this.slots.push({ type: slot.type, table: slot.table, path: slot.path, fromExtension: slot.fromExtension === true, ...(slot.binding ? { binding: slot.binding } : {}) });
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
  return slots.flatMap((slot) => (slot.type === 'Extension' ? compilePath(ctx, { kind: 'ident', name: 'value' }, [slot]) : [slot]));
}
