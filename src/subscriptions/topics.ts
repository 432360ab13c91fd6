import { unprocessable } from '../fhir/errors.ts';
import type { Topic } from '../fhir/subscription-model.ts';
import type { SearchRegistry } from '../search/parameters.ts';
import type { SubscriptionRegistry } from './registry.ts';

/** Search controls that are real FHIR parameters but have no index: a topic may name them. */
const SPECIAL = new Set(['_in', '_list', '_text', '_content', '_has', '_query', '_filter']);

/**
 * Rejects a topic Herald could not evaluate (422 naming the element): an unknown resource type,
 * queryCriteria that do not parse, FHIRPath that does not compile, or a canFilterBy parameter
 * that does not exist for its resource. Parameters that exist in the spec but that Herald cannot
 * evaluate are accepted here and refused when a Subscription tries to use them.
 */
export function checkTopic(topic: Topic, registry: SubscriptionRegistry, search: SearchRegistry): void {
  if (topic.resourceTriggers.length === 0) throw unprocessable('a topic needs at least one resourceTrigger', ['resourceTrigger']);
  registry.compileTopic(topic);
  topic.canFilterBy.forEach((c, i) => {
    const at = `canFilterBy[${i}]`;
    const types = c.resource ? [c.resource] : topic.resourceTriggers.map((t) => t.resource);
    for (const type of types) {
      if (!search.definitions.isResourceType(type)) throw unprocessable(`${at}.resource: unknown resource type '${type}'`, [`${at}.resource`]);
      const known =
        search.param(type, c.filterParameter) !== undefined ||
        SPECIAL.has(c.filterParameter) ||
        search.unsupported.some((u) => u.code === c.filterParameter && (u.base.includes(type) || u.base.includes('Resource')));
      if (!known) throw unprocessable(`${at}.filterParameter: '${c.filterParameter}' is not a search parameter of ${type}`, [`${at}.filterParameter`]);
    }
  });
}
