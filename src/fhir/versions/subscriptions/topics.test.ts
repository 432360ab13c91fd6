import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Topic } from '../../subscription-model.ts';
import { FHIR_VERSIONS, type FhirVersion, type Resource } from '../../types.ts';
import { adapterFor } from '../index.ts';
import { assert422, assertValid, loadSpec } from '../../../../test/fixtures/spec.ts';

const load = (path: string): Resource => loadSpec<Resource>(path);
const subs = (v: FhirVersion) => adapterFor(v).subscriptions;
const clone = <T>(v: T): T => structuredClone(v);



const ENCOUNTER_TRIGGER = {
  resource: 'Encounter',
  supportedInteraction: ['create', 'update'],
  queryCriteria: { previous: 'status:not=finished', current: 'status=finished', resultForCreate: 'test-passes', resultForDelete: 'test-fails', requireBoth: true },
} as const;
const INCLUDES = ['Encounter:patient&iterate=Patient.link', 'Encounter:practitioner', 'Encounter:service-provider', 'Encounter:account', 'Encounter:diagnosis', 'Encounter:observation', 'Encounter:location'];
const filterBy = (filterParameter: string, description: string, comparators: string[] = []) => ({ description, resource: 'Encounter', filterParameter, modifiers: [], comparators });
const SUBJECT = 'Filter based on the subject of an encounter.';
const IN_GROUP = 'Filter based on the group membership of the subject of an encounter.';

/** The IG's R4 Basic topic, as the canonical model. */
const IG_R4_TOPIC: Topic = {
  url: 'http://hl7.org/fhir/uv/subscriptions-backport/SubscriptionTopic/r4-encounter-complete',
  version: '1.2.0',
  title: 'Backported SubscriptionTopic: R4 Encounter Complete',
  name: 'R4 example of a basic-converted subscription topic for completed encounters.',
  date: '2019-01-01',
  description: 'R4 example of a subscription topic for completed encounters.',
  status: 'draft',
  resourceTriggers: [{
    ...clone(ENCOUNTER_TRIGGER), supportedInteraction: ['create', 'update'],
    description: 'Triggered when an encounter is completed.',
    fhirPathCriteria: "(%previous.id.empty() or (%previous.status != 'finished')) and (%current.status = 'finished')",
  }],
  canFilterBy: [filterBy('subject', SUBJECT), filterBy('_in', IN_GROUP)],
  notificationShape: [{ resource: 'Encounter', include: INCLUDES, revInclude: ['Encounter:subject'] }],
};

/** Writes with `version`, checks validity, reads back: the topic must survive unchanged. */
function roundTrip(version: FhirVersion, topic: Topic): Topic {
  const written = subs(version).writeTopic(topic, 'topic-1');
  assert.equal(written.resourceType, subs(version).topicResourceType);
  assert.equal(written.id, 'topic-1');
  assertValid(version, written);
  const back = subs(version).readTopic(written);
  assert.ok(back);
  return back;
}

describe('topics: read and write per version (T-1, T-2, T-4, T-5, D-12)', () => {
  it('T-2 ISSUE-6: reads the IG R4 Basic topic with mixed 5.0/4.3 extension prefixes', () => {
    assert.deepEqual(subs('R4').readTopic(load('examples/r4/Basic-r4-encounter-complete.json')), IG_R4_TOPIC);
  });

  it('T-2 D-12: reads the fhir-candle Basic topics; a StructureDefinition URL resource is reduced to its type', () => {
    const plain = subs('R4').readTopic(load('third-party/fhir-candle/r4/Basic-topic-encounter-complete.json'));
    const qualified = subs('R4').readTopic(load('third-party/fhir-candle/r4/Basic-topic-encounter-complete-qualified.json'));
    assert.deepEqual(qualified, plain);
    assert.equal(plain?.url, 'http://example.org/FHIR/SubscriptionTopic/encounter-complete');
    assert.equal(plain?.resourceTriggers[0]?.resource, 'Encounter');
    assert.deepEqual(plain?.canFilterBy[2], filterBy('length', 'Filter based on the length of an encounter.', ['gt', 'lt', 'ge', 'le']));
    assert.deepEqual(plain?.notificationShape[0]?.revInclude, ['Encounter:subject']);
  });

  it('T-5: reads the IG R4B SubscriptionTopic; R4B comparators in `modifier` become comparators', () => {
    const topic = subs('R4B').readTopic(load('examples/r4b/SubscriptionTopic-r4b-encounter-complete.json'));
    assert.deepEqual(topic, {
      url: 'http://hl7.org/fhir/uv/subscriptions-backport/SubscriptionTopic/r4b-encounter-complete',
      status: 'draft',
      resourceTriggers: IG_R4_TOPIC.resourceTriggers,
      canFilterBy: [filterBy('subject', SUBJECT), filterBy('_in', IN_GROUP), filterBy('length', 'Filter based on the length of an encounter.', ['gt', 'lt', 'ge', 'le'])],
      notificationShape: [{ resource: 'Encounter', include: INCLUDES, revInclude: [] }],
    });
  });

  it('T-4: every example topic round-trips through writeTopic/readTopic in every version, and each written topic validates', () => {
    const sources: [FhirVersion, string][] = [
      ['R4', 'examples/r4/Basic-r4-encounter-complete.json'],
      ['R4', 'third-party/fhir-candle/r4/Basic-topic-encounter-complete.json'],
      ['R4', 'third-party/fhir-candle/r4/Basic-topic-encounter-complete-qualified.json'],
      ['R4B', 'examples/r4b/SubscriptionTopic-r4b-encounter-complete.json'],
    ];
    for (const [from, file] of sources) {
      const topic = subs(from).readTopic(load(file));
      assert.ok(topic, file);
      for (const to of FHIR_VERSIONS) {
        // R4B SubscriptionTopic has no `name`; everything else survives.
        const expected: Topic = clone(topic);
        if (to === 'R4B') delete expected.name;
        assert.deepEqual(roundTrip(to, topic), expected, `${file} via ${to}`);
      }
    }
  });

  it('T-5: R5 comparator and modifier stay apart; R4B writes both into `modifier`', () => {
    const topic: Topic = { ...clone(IG_R4_TOPIC), derivedFrom: ['http://example.org/base-topic'], canFilterBy: [{ resource: 'Encounter', filterParameter: 'length', comparators: ['gt'], modifiers: ['missing'] }] };
    const r5 = subs('R5').writeTopic(topic, 't') as Resource & { canFilterBy: unknown[] };
    assert.deepEqual(r5.canFilterBy, [{ resource: 'Encounter', filterParameter: 'length', comparator: ['gt'], modifier: ['missing'] }]);
    const r4b = subs('R4B').writeTopic(topic, 't') as Resource & { canFilterBy: unknown[] };
    assert.deepEqual(r4b.canFilterBy, [{ resource: 'Encounter', filterParameter: 'length', modifier: ['missing', 'gt'] }]);
    for (const v of FHIR_VERSIONS) assert.deepEqual(roundTrip(v, topic).canFilterBy, topic.canFilterBy);
  });

  it('T-2: resources that are not topics read as undefined', () => {
    assert.equal(subs('R4').readTopic({ resourceType: 'Basic', code: { coding: [{ system: 'http://example.org', code: 'x' }] } }), undefined);
    assert.equal(subs('R4').readTopic({ resourceType: 'Patient' }), undefined);
    assert.equal(subs('R4B').readTopic({ resourceType: 'Basic', code: { text: 'x' } }), undefined);
    assert.equal(subs('R5').readTopic({ resourceType: 'Patient' }), undefined);
    assert.equal(subs('R4').topicResourceType, 'Basic');
    assert.equal(subs('R4B').topicResourceType, 'SubscriptionTopic');
    assert.equal(subs('R5').topicResourceType, 'SubscriptionTopic');
  });

  it('T-5: structurally unusable topics are rejected with 422 naming the element', () => {
    const r4b = load('examples/r4b/SubscriptionTopic-r4b-encounter-complete.json') as Record<string, any>;
    const without = (mutate: (r: Record<string, any>) => void) => { const r = clone(r4b); mutate(r); return r as Resource; };
    assert422(() => subs('R4B').readTopic(without((r) => delete r.url)), 'SubscriptionTopic.url');
    assert422(() => subs('R5').readTopic(without((r) => delete r.status)), 'SubscriptionTopic.status');
    assert422(() => subs('R5').readTopic(without((r) => (r.status = 'live'))), 'SubscriptionTopic.status');
    assert422(() => subs('R4B').readTopic(without((r) => delete r.resourceTrigger[0].resource)), 'SubscriptionTopic.resourceTrigger[0].resource');
    assert422(() => subs('R4B').readTopic(without((r) => (r.resourceTrigger[0].resource = 'http://example.org/StructureDefinition/my-enc'))), 'SubscriptionTopic.resourceTrigger[0].resource');
    assert422(() => subs('R4B').readTopic(without((r) => (r.resourceTrigger[0].supportedInteraction = ['create', 'read']))), 'SubscriptionTopic.resourceTrigger[0].supportedInteraction[1]');
    assert422(() => subs('R4B').readTopic(without((r) => (r.resourceTrigger[0].queryCriteria.resultForCreate = 'yes'))), 'SubscriptionTopic.resourceTrigger[0].queryCriteria.resultForCreate');
    assert422(() => subs('R4B').readTopic(without((r) => delete r.canFilterBy[1].filterParameter)), 'SubscriptionTopic.canFilterBy[1].filterParameter');
    assert422(() => subs('R4B').readTopic(without((r) => delete r.notificationShape[0].resource)), 'SubscriptionTopic.notificationShape[0].resource');
    assert422(() => subs('R4B').readTopic(without((r) => (r.resourceTrigger = { resource: 'Encounter' }))), 'SubscriptionTopic.resourceTrigger');
  });

  it('T-2: unusable Basic topics are rejected with 422 naming the extension', () => {
    const basic = load('third-party/fhir-candle/r4/Basic-topic-encounter-complete.json') as Record<string, any>;
    const edit = (mutate: (r: Record<string, any>) => void) => { const r = clone(basic); mutate(r); return r as Resource; };
    assert422(() => subs('R4').readTopic(edit((r) => r.extension.splice(0, 1))), 'Basic.extension');
    assert422(() => subs('R4').readTopic(edit((r) => delete r.modifierExtension)), 'Basic.modifierExtension');
    assert422(() => subs('R4').readTopic(edit((r) => (r.modifierExtension[0].valueCode = 'live'))), 'Basic.modifierExtension[0].valueCode');
    assert422(() => subs('R4').readTopic(edit((r) => r.extension[6].extension.splice(1, 1))), 'Basic.extension[6].extension');
    assert422(() => subs('R4').readTopic(edit((r) => (r.extension[6].extension[2].valueCode = 'read'))), 'Basic.extension[6].extension[2].valueCode');
    assert422(() => subs('R4').readTopic(edit((r) => (r.extension[0] = { url: r.extension[0].url }))), 'Basic.extension[0].value');
  });
  it('T-2 T-5: a modifierExtension Herald does not understand is refused; the status modifier of Basic topics (both prefixes) and ordinary extensions are not', () => {
    const modifier = { url: 'http://example.org/only-in-test', valueBoolean: true };
    const r4b = load('examples/r4b/SubscriptionTopic-r4b-encounter-complete.json') as Record<string, any>;
    const r4bWith = (mutate: (r: Record<string, any>) => void) => { const r = clone(r4b); mutate(r); return r as Resource; };
    for (const v of ['R4B', 'R5'] as const) {
      assert422(() => subs(v).readTopic(r4bWith((r) => (r.modifierExtension = [modifier]))), 'SubscriptionTopic.modifierExtension[0]');
      assert422(() => subs(v).readTopic(r4bWith((r) => (r.resourceTrigger[0].modifierExtension = [modifier]))), 'SubscriptionTopic.resourceTrigger[0].modifierExtension[0]');
      assert.ok(subs(v).readTopic(r4bWith((r) => (r.extension = [{ url: 'http://example.org/owner', valueString: 'x' }]))));
    }
    const basic = load('examples/r4/Basic-r4-encounter-complete.json') as Record<string, any>;
    assert.ok(basic.modifierExtension.length === 1 && subs('R4').readTopic(basic as Resource), 'the IG example with its status modifier');
    const status43 = clone(basic);
    status43.modifierExtension[0].url = status43.modifierExtension[0].url.replace('/5.0/', '/4.3/');
    assert.equal(subs('R4').readTopic(status43 as Resource)?.status, 'draft');
    const extra = clone(basic);
    extra.modifierExtension.push(modifier);
    assert422(() => subs('R4').readTopic(extra as Resource), 'Basic.modifierExtension[1]');
    const ordinary = clone(basic);
    ordinary.extension.push({ url: 'http://example.org/owner', valueString: 'x' });
    assert.deepEqual(subs('R4').readTopic(ordinary as Resource), IG_R4_TOPIC);
    assert.equal(subs('R4').readTopic({ resourceType: 'Basic', code: { text: 'not a topic' }, modifierExtension: [modifier] } as Resource), undefined, 'other Basics are not topics, and not judged');
  });
});
