import { unprocessable } from '../../fhir/errors.ts';
import { compileCriteria } from '../../fhir/fhirpath.ts';
import type { Interaction, ResourceTrigger } from '../../fhir/subscription-model.ts';
import type { FhirVersion, Resource } from '../../fhir/types.ts';
import { compileMatcher, type Matcher } from '../../search/match.ts';
import type { SearchRegistry } from '../../search/parameters.ts';
import { CriterionFault } from './faults.ts';

/** One committed change of one resource, as matching sees it. */
export interface ResourceChange {
  type: string;
  id: string;
  versionId: number;
  interaction: Interaction;
  /** The version before the change (undefined for a create). */
  previous?: Resource;
  /** The new version (undefined for a delete). */
  current?: Resource;
  /** ISO instant of the change. */
  timestamp: string;
}

export interface CompiledTrigger {
  resource: string;
  /** Whether the change triggers; throws a CriterionFault when a criterion cannot be evaluated. */
  test(change: ResourceChange): boolean;
}

/**
 * Compiles a resourceTrigger (R5 subscriptiontopic.html#resourceTrigger). A change triggers when
 * its interaction is supported, the queryCriteria hold and the fhirPathCriteria hold (D-12: both).
 * queryCriteria: `previous` is tested on the old version (a create takes `resultForCreate`),
 * `current` on the new one (a delete takes `resultForDelete`); with `requireBoth` both must pass,
 * otherwise either. A missing result code counts as passing, so a topic with only `current`
 * still fires on the creates that satisfy it.
 *
 * Throws a 422 naming the element when a criterion does not compile: topics are checked on write.
 * A criterion that fails on a change (D-20) throws a CriterionFault naming its element.
 */
/** `now` is the clock of `ap` date criteria (the server's injected clock). */
export function compileTrigger(trigger: ResourceTrigger, index: number, version: FhirVersion, registry: SearchRegistry, now: () => number): CompiledTrigger {
  const at = `resourceTrigger[${index}]`;
  if (!registry.paramsFor(trigger.resource).size) throw unprocessable(`${at}.resource: '${trigger.resource}' is not a resource type of this FHIR version`, [`${at}.resource`]);
  const interactions = new Set(trigger.supportedInteraction);
  const qc = trigger.queryCriteria;
  const previous = qc?.previous ? criterion(registry, trigger.resource, qc.previous, `${at}.queryCriteria.previous`, now) : undefined;
  const current = qc?.current ? criterion(registry, trigger.resource, qc.current, `${at}.queryCriteria.current`, now) : undefined;
  const fhirPath = trigger.fhirPathCriteria ? fhirPathCriterion(trigger.fhirPathCriteria, version, `${at}.fhirPathCriteria`) : undefined;
  const createPasses = qc?.resultForCreate !== 'test-fails';
  const deletePasses = qc?.resultForDelete !== 'test-fails';
  const requireBoth = qc?.requireBoth ?? false;

  return {
    resource: trigger.resource,
    test(change) {
      if (change.type !== trigger.resource) return false;
      if (interactions.size > 0 && !interactions.has(change.interaction)) return false;
      if (previous || current) {
        const p = previous && (change.previous ? evaluate(`${at}.queryCriteria.previous`, () => previous.matches(change.previous!)) : createPasses);
        const c = current && (change.current ? evaluate(`${at}.queryCriteria.current`, () => current.matches(change.current!)) : deletePasses);
        const results = [p, c].filter((r): r is boolean => r !== undefined);
        const ok = requireBoth ? results.every(Boolean) : results.some(Boolean);
        if (!ok) return false;
      }
      return fhirPath ? evaluate(`${at}.fhirPathCriteria`, () => fhirPath(change.current, change.previous)) : true;
    },
  };
}

function evaluate(element: string, test: () => boolean): boolean {
  try {
    return test();
  } catch (err) {
    throw new CriterionFault(element, err);
  }
}

function criterion(registry: SearchRegistry, type: string, query: string, at: string, now: () => number): Matcher {
  try {
    return compileMatcher(registry, type, query, { now });
  } catch (err) {
    throw unprocessable(`${at}: '${query}' is not a usable search criterion: ${(err as Error).message}`, [at]);
  }
}

function fhirPathCriterion(expression: string, version: FhirVersion, at: string): (cur: unknown, prev: unknown) => boolean {
  try {
    return compileCriteria(expression, version);
  } catch (err) {
    throw unprocessable(`${at}: the FHIRPath ${(err as Error).message}`, [at]);
  }
}
