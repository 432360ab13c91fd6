import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { topicResource } from '../../../test/helpers/subscriptions.ts';
import { loadDefinitions } from '../../fhir/definitions/index.ts';
import type { Interaction } from '../../fhir/subscription-model.ts';
import { adapterFor } from '../../fhir/versions/index.ts';
import { FHIR_VERSIONS, type FhirVersion, type Resource } from '../../fhir/types.ts';
import { searchRegistry } from '../../search/parameters.ts';
import { type CompiledTrigger, compileTrigger, type ResourceChange } from './trigger.ts';

/**
 * A topic written in its version's own shape (R4 Basic with cross-version extensions, R4B/R5
 * SubscriptionTopic), read by the version adapter and compiled, as the engine does on write.
 */
function trigger(version: FhirVersion, fhirPath: string): CompiledTrigger {
  const resource = topicResource(version, { url: 'http://example.org/t', resource: 'Encounter', interactions: ['create', 'update', 'delete'], fhirPath }, 't');
  const topic = adapterFor(version).subscriptions.readTopic(resource);
  assert.ok(topic);
  assert.equal(topic.resourceTriggers[0]!.fhirPathCriteria, fhirPath);
  return compileTrigger(topic.resourceTriggers[0]!, 0, version, searchRegistry(loadDefinitions(version)), Date.now);
}

const encounter = (status: string): Resource => ({ resourceType: 'Encounter', id: 'e1', status } as Resource);

function change(interaction: Interaction, previous?: string, current?: string): ResourceChange {
  return {
    type: 'Encounter',
    id: 'e1',
    versionId: 1,
    interaction,
    ...(previous ? { previous: encounter(previous) } : {}),
    ...(current ? { current: encounter(current) } : {}),
    timestamp: '2026-01-01T00:00:00Z',
  };
}

/** The three ways of saying "there was no previous version" (D-20). */
const NO_PREVIOUS = ['%previous.empty()', '%previous.exists().not()', '%previous.id.empty()'];
const NO_CURRENT = ['%current.empty()', '%current.exists().not()', '%current.id.empty()'];

describe('fhirPathCriteria on creates, updates and deletes (D-20, D-12, T-2, T-5)', () => {
  for (const version of FHIR_VERSIONS) {
    for (const idiom of NO_PREVIOUS) {
      it(`${version}: "(${idiom} or %previous.status != 'finished') and %current.status = 'finished'"`, () => {
        const t = trigger(version, `(${idiom} or %previous.status != 'finished') and %current.status = 'finished'`);
        assert.equal(t.test(change('create', undefined, 'finished')), true, 'a create of a finished encounter');
        assert.equal(t.test(change('create', undefined, 'planned')), false, 'a create of a planned encounter');
        assert.equal(t.test(change('update', 'in-progress', 'finished')), true, 'an update to finished');
        assert.equal(t.test(change('update', 'finished', 'finished')), false, 'an update of a finished encounter');
        assert.equal(t.test(change('delete', 'finished')), false, 'a delete');
      });
      it(`${version}: "${idiom}" alone holds on creates only`, () => {
        const t = trigger(version, idiom);
        assert.equal(t.test(change('create', undefined, 'planned')), true);
        assert.equal(t.test(change('update', 'planned', 'finished')), false);
        assert.equal(t.test(change('delete', 'planned')), false);
      });
    }
    for (const idiom of NO_CURRENT) {
      it(`${version}: "${idiom} and %previous.status = 'finished'" holds on deletes of finished encounters`, () => {
        const t = trigger(version, `${idiom} and %previous.status = 'finished'`);
        assert.equal(t.test(change('delete', 'finished')), true);
        assert.equal(t.test(change('delete', 'planned')), false);
        assert.equal(t.test(change('update', 'finished', 'finished')), false);
        assert.equal(t.test(change('create', undefined, 'finished')), false);
      });
    }
  }
});
