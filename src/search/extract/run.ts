/**
 * Running compiled plans (plan.ts) over resource JSON: a loop over the step tree, flattening
 * arrays at each `key` step and skipping JSON nulls and non-objects, so odd data yields nothing
 * rather than an exception.
 */
import type { Plan } from './builder.ts';
import { isResource, type Emit, type Step } from './plan.ts';

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
