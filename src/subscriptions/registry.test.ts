import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadDefinitions } from '../fhir/definitions/index.ts';
import type { Filter, Interaction, SubscriptionSpec, SubscriptionStatusCode, Topic } from '../fhir/subscription-model.ts';
import type { Resource } from '../fhir/types.ts';
import { searchRegistry } from '../search/parameters.ts';
import type { ResourceChange } from './matching/trigger.ts';
import { LIVE_STATUSES, SubscriptionRegistry } from './registry.ts';

/**
 * The registry on its own: topics found by resource type, triggers tested once per change,
 * subscriptions filed by an equality filter (hash lookup) or checked one by one, and only the
 * live ones (S-6, D-2, D-8, D-17) notified. No store, no channel: match() is pure.
 */

const search = searchRegistry(loadDefinitions('R4B'));
const BASE = 'http://h.test/fhir/R4B';
const URL = 'http://example.org/topics/encounter';
const NOW = Date.parse('2026-06-01T00:00:00Z');

function topic(interactions: Interaction[] = ['create', 'update'], fhirPathCriteria?: string, url = URL): Topic {
  return {
    url,
    status: 'active',
    resourceTriggers: [{ resource: 'Encounter', supportedInteraction: interactions, ...(fhirPathCriteria ? { fhirPathCriteria } : {}) }],
    canFilterBy: [
      { resource: 'Encounter', filterParameter: 'patient', modifiers: [], comparators: [] },
      { resource: 'Encounter', filterParameter: 'status', modifiers: ['not'], comparators: [] },
    ],
    notificationShape: [],
  };
}

/** A topic on creates of one resource type, filtered by one parameter (its versions move it between types). */
function topicOn(url: string, resource: string, filterParameter: string, modifiers: string[] = []): Topic {
  return {
    url,
    status: 'active',
    resourceTriggers: [{ resource, supportedInteraction: ['create'] }],
    canFilterBy: [{ resource, filterParameter, modifiers, comparators: [] }],
    notificationShape: [],
  };
}

function spec(filters: Filter[] = [], status: SubscriptionStatusCode = 'active', end?: string): SubscriptionSpec {
  return {
    topic: URL,
    status,
    ...(end ? { end } : {}),
    filters,
    channel: { type: 'websocket', headers: [], contentType: 'application/fhir+json', content: 'id-only' },
  };
}

/** The first version of a resource (`interaction`: how it came), at NOW. */
function changeOf(resource: Record<string, unknown>, interaction: Interaction = 'create'): ResourceChange {
  const current = resource as unknown as Resource;
  return { type: current.resourceType, id: current.id!, versionId: 1, interaction, current, timestamp: new Date(NOW).toISOString() };
}

function encounterChange(patient: string, status = 'finished', interaction: Interaction = 'create'): ResourceChange {
  return changeOf({ resourceType: 'Encounter', id: 'e1', status, subject: { reference: patient } }, interaction);
}

function registryWith(t: Topic): SubscriptionRegistry {
  const r = new SubscriptionRegistry('R4B', search, BASE, () => NOW);
  r.putTopic(t);
  return r;
}

function add(r: SubscriptionRegistry, id: string, s: SubscriptionSpec): void {
  r.putSubscription(r.compileSubscription(id, s, r.topic(s.topic!)!));
}

const ids = (r: SubscriptionRegistry, c: ResourceChange) => r.match(c).map((s) => s.id).sort();

describe('SubscriptionRegistry', () => {
  it('finds topics by resource type and tests their triggers (interactions, FHIRPath) once per change', () => {
    const r = registryWith(topic(['create'], "%current.status = 'finished'"));
    add(r, 's1', spec());
    assert.equal(r.watches('Encounter'), true);
    assert.equal(r.watches('Patient'), false);
    assert.deepEqual(ids(r, encounterChange('Patient/p1')), ['s1']);
    assert.deepEqual(ids(r, encounterChange('Patient/p1', 'planned')), [], 'the FHIRPath criterion does not hold');
    assert.deepEqual(ids(r, encounterChange('Patient/p1', 'finished', 'update')), [], 'an interaction the topic does not support');
    assert.deepEqual(ids(r, { ...encounterChange('Patient/p1'), type: 'Patient' }), [], 'a type no topic watches');
    r.removeTopic(URL);
    assert.equal(r.watches('Encounter'), false);
    assert.deepEqual(ids(r, encounterChange('Patient/p1')), []);
  });

  it('an equality filter files a subscription by key, so a change reaches only the subscriptions of its key (S-5)', () => {
    const r = registryWith(topic());
    for (let i = 0; i < 1000; i++) add(r, `p${i}`, spec([{ filterParameter: 'patient', value: `Patient/${i}` }]));
    assert.deepEqual(ids(r, encounterChange('Patient/7')), ['p7']);
    assert.deepEqual(ids(r, encounterChange(`${BASE}/Patient/42`)), ['p42'], 'an absolute reference to this server is the same key');
    assert.deepEqual(ids(r, encounterChange('Patient/none')), []);
    r.removeSubscription('p7');
    assert.deepEqual(ids(r, encounterChange('Patient/7')), [], 'a removed subscription is unfiled');
    add(r, 'p8b', spec([{ filterParameter: 'patient', value: 'Patient/8' }]));
    assert.deepEqual(ids(r, encounterChange('Patient/8')), ['p8', 'p8b'], 'two subscriptions on one key');
    r.removeSubscription('p8');
    assert.deepEqual(ids(r, encounterChange('Patient/8')), ['p8b']);
    assert.equal(r.liveOnTopic(URL), 999);
  });

  it('a filter naming a code with the system its element\'s binding gives it is filed where the code\'s rows (no system) find it', () => {
    const r = registryWith(topic());
    add(r, 'sys', spec([{ filterParameter: 'status', value: 'http://hl7.org/fhir/encounter-status|finished' }]));
    add(r, 'bare', spec([{ filterParameter: 'status', value: 'finished' }]));
    add(r, 'other', spec([{ filterParameter: 'status', value: 'http://example.org/other|finished' }]));
    assert.deepEqual(ids(r, encounterChange('Patient/1')), ['bare', 'sys']);
    assert.deepEqual(ids(r, encounterChange('Patient/1', 'planned')), []);
  });

  it('a subscription is unfiled from where it was filed, though where is not kept: replaced, removed, after its topic changed', () => {
    const r = registryWith(topic());
    add(r, 'x', spec([{ filterParameter: 'patient', value: 'Patient/1' }]));
    add(r, 'y', spec([{ filterParameter: 'patient', value: 'Patient/1' }]));
    assert.deepEqual(r.filing(URL), { keys: 1, unindexed: 0, waiting: 0 }, 'x and y under one key');
    add(r, 'x', spec([{ filterParameter: 'patient', value: 'Patient/2' }]));
    assert.deepEqual(ids(r, encounterChange('Patient/1')), ['y'], 'replaced: its old key no longer reaches it');
    assert.deepEqual(ids(r, encounterChange('Patient/2')), ['x']);
    assert.deepEqual(r.filing(URL), { keys: 2, unindexed: 0, waiting: 0 }, 'the Patient/1 key holds y alone, the Patient/2 key x');
    add(r, 'x', spec([{ filterParameter: 'status', modifier: 'not', value: 'planned' }]));
    assert.deepEqual(ids(r, encounterChange('Patient/2')), ['x'], 'now checked one by one');
    assert.deepEqual(ids(r, encounterChange('Patient/2', 'planned')), []);
    assert.deepEqual(r.filing(URL), { keys: 1, unindexed: 1, waiting: 0 }, 'its Patient/2 key is gone');
    r.putTopic(topic(['create']));
    assert.deepEqual(r.filing(URL), { keys: 1, unindexed: 1, waiting: 0 }, 're-filed in the new topic');
    r.removeSubscription('x');
    r.removeSubscription('y');
    assert.deepEqual(r.filing(URL), { keys: 0, unindexed: 0, waiting: 0 }, 'removed after the topic was re-filed');
    assert.deepEqual(ids(r, encounterChange('Patient/1')), []);
    add(r, 'z', spec([{ filterParameter: 'patient', value: 'Patient/1' }]));
    assert.deepEqual(ids(r, encounterChange('Patient/1')), ['z']);
  });

  it('websocket channels without headers are one frozen object between subscriptions; rest-hook ones stay their own', () => {
    const r = registryWith(topic());
    add(r, 'a', spec());
    add(r, 'b', spec([{ filterParameter: 'patient', value: 'Patient/1' }]));
    const hook = (endpoint: string): SubscriptionSpec => ({ ...spec(), channel: { type: 'rest-hook', endpoint, headers: [{ name: 'Authorization', value: 'Bearer s' }], contentType: 'application/fhir+json', content: 'id-only' } });
    add(r, 'c', hook('https://a.test/hook'));
    add(r, 'd', hook('https://a.test/hook'));
    const channel = (id: string) => r.subscription(id)!.spec.channel;
    assert.equal(channel('a'), channel('b'));
    assert.ok(Object.isFrozen(channel('a')));
    assert.notEqual(channel('c'), channel('d'), 'an endpoint and headers are kept per subscription');
    assert.equal(channel('c').endpoint, 'https://a.test/hook');
  });

  it('a filter that cannot be hashed is checked one by one; several filters are ANDed', () => {
    const r = registryWith(topic());
    add(r, 'not-finished', spec([{ filterParameter: 'status', modifier: 'not', value: 'finished' }]));
    add(r, 'both', spec([{ filterParameter: 'status', modifier: 'not', value: 'planned' }, { filterParameter: 'patient', value: 'Patient/1' }]));
    add(r, 'all', spec());
    assert.deepEqual(ids(r, encounterChange('Patient/1', 'finished')), ['all', 'both']);
    assert.deepEqual(ids(r, encounterChange('Patient/2', 'planned')), ['all', 'not-finished']);
    assert.deepEqual(ids(r, encounterChange('Patient/1', 'planned')), ['all', 'not-finished']);
    assert.equal(r.subscription('both')!.filters, undefined, 'filed by its patient key, it holds no compiled matchers');
    assert.ok(r.subscription('not-finished')!.filters, 'checked on every change, it keeps them');
  });

  it('filed subscriptions\' matchers are recompiled on demand through a bounded cache, and stay right after eviction', () => {
    const r = registryWith(topic());
    const n = 10_050;
    for (let i = 0; i < n; i++) add(r, `p${i}`, spec([{ filterParameter: 'patient', value: `Patient/${i}` }, { filterParameter: 'status', modifier: 'not', value: 'planned' }]));
    for (let i = 0; i < n; i++) assert.deepEqual(ids(r, encounterChange(`Patient/${i}`)), [`p${i}`]);
    assert.deepEqual(ids(r, encounterChange('Patient/0', 'planned')), [], 'p0 was evicted long ago and is recompiled');
    assert.deepEqual(ids(r, encounterChange('Patient/0', 'finished')), ['p0']);
    r.removeSubscription('p0');
    add(r, 'p0', spec([{ filterParameter: 'patient', value: 'Patient/0' }, { filterParameter: 'status', value: 'planned' }]));
    assert.deepEqual(ids(r, encounterChange('Patient/0', 'planned')), ['p0'], 'a replaced subscription does not use the old matchers');
  });

  it('only live subscriptions are notified: requested, active and error are; off and entered-in-error are not (D-2, D-8)', () => {
    const r = registryWith(topic());
    const statuses: SubscriptionStatusCode[] = ['requested', 'active', 'error', 'off', 'entered-in-error'];
    for (const s of statuses) add(r, s, spec([], s));
    assert.deepEqual(ids(r, encounterChange('Patient/1')), ['active', 'error', 'requested']);
    assert.deepEqual([...LIVE_STATUSES].sort(), ['active', 'error', 'requested']);
    assert.equal(r.liveOnTopic(URL), 3);
    r.setStatus('active', 'off');
    r.setStatus('off', 'active');
    assert.deepEqual(ids(r, encounterChange('Patient/1')), ['error', 'off', 'requested'], 'setStatus takes effect on the next change');
    assert.equal(r.liveOnTopic(URL), 3, 'the live count follows status changes');
    r.setStatus('error', 'entered-in-error');
    add(r, 'requested', spec([], 'requested'));
    assert.equal(r.liveOnTopic(URL), 2, 'replacing a subscription does not count it twice');
    r.removeSubscription('requested');
    r.removeSubscription('active');
    assert.equal(r.liveOnTopic(URL), 1);
    assert.equal(r.liveOnTopic('http://example.org/topics/other'), 0);
  });

  it('subscriptions that are not live are not filed: no change looks at them, no new topic version files them; live again, they are filed in the topic as it is then', () => {
    const r = registryWith(topic());
    for (let i = 0; i < 1000; i++) add(r, `off${i}`, spec([], i % 2 ? 'off' : 'entered-in-error'));
    add(r, 'keyed-off', spec([{ resourceType: 'Encounter', filterParameter: 'patient', value: 'Patient/1' }], 'off'));
    add(r, 'live', spec([]));
    assert.deepEqual(r.filing(URL), { keys: 0, unindexed: 1, waiting: 0 }, 'only the live one is filed');
    assert.deepEqual(ids(r, encounterChange('Patient/1')), ['live']);
    // Turned off and on by status: out of the filing, then in it.
    r.setStatus('live', 'off');
    assert.deepEqual(r.filing(URL), { keys: 0, unindexed: 0, waiting: 0 });
    r.setStatus('keyed-off', 'requested');
    assert.deepEqual(r.filing(URL), { keys: 1, unindexed: 0, waiting: 0 });
    assert.deepEqual(ids(r, encounterChange('Patient/1')), ['keyed-off']);
    // A new topic version (only finished Encounters) while 'live' is off: when it is live again, it
    // is filed in that version and its trigger decides.
    r.putTopic(topic(['create', 'update'], "%current.status = 'finished'"));
    assert.deepEqual(r.filing(URL), { keys: 1, unindexed: 0, waiting: 0 }, 'the off ones were not filed again');
    r.setStatus('live', 'active');
    assert.deepEqual(r.filing(URL), { keys: 1, unindexed: 1, waiting: 0 });
    assert.deepEqual(ids(r, encounterChange('Patient/2', 'finished')), ['live']);
    assert.deepEqual(ids(r, encounterChange('Patient/2', 'in-progress')), []);
    // Removed while off, and a topic removed while its subscription is off: nothing is left behind.
    r.removeSubscription('off1');
    r.setStatus('keyed-off', 'off');
    r.removeTopic(URL);
    assert.deepEqual(r.filing(URL), { keys: 0, unindexed: 0, waiting: 1 }, 'only the live one waits for its topic');
    r.setStatus('keyed-off', 'active');
    assert.deepEqual(r.filing(URL), { keys: 0, unindexed: 0, waiting: 2 }, 'live again: it waits too');
    r.putTopic(topic());
    assert.deepEqual(r.filing(URL), { keys: 1, unindexed: 1, waiting: 0 });
    assert.equal(r.liveOnTopic(URL), 2);
  });

  it('a topic with no live subscription filed is not evaluated at all (an off classic subscription keeps its own topic registered)', () => {
    const r = registryWith(topic(['create'], '(1 | 2) + 1 = 3')); // a criterion that faults whenever it is tested
    assert.deepEqual(ids(r, encounterChange('Patient/1')), []);
    assert.equal(r.faults.of(URL), undefined, 'no subscription: not tested');
    assert.equal(r.watches('Encounter'), false, 'no subscription: its type is not watched (writes record nothing)');
    add(r, 'off', spec([], 'off'));
    assert.deepEqual(ids(r, encounterChange('Patient/1')), []);
    assert.equal(r.faults.of(URL), undefined, 'only an off one: not tested');
    assert.equal(r.watches('Encounter'), false, 'only an off one: not watched');
    r.setStatus('off', 'active');
    assert.equal(r.watches('Encounter'), true, 'live: watched');
    assert.deepEqual(ids(r, encounterChange('Patient/1')), []);
    assert.equal(r.faults.of(URL)?.count, 1, 'live: tested (and recorded, D-20)');
    r.setStatus('off', 'off');
    add(r, 'keyed', spec([{ resourceType: 'Encounter', filterParameter: 'patient', value: 'Patient/9' }]));
    r.removeSubscription('keyed'); // its index stays, emptied
    assert.deepEqual(ids(r, encounterChange('Patient/1')), []);
    assert.equal(r.faults.of(URL)?.count, 1, 'an emptied index files nothing: not tested');
  });

  it('a subscription past its end is not notified, judged by the change\'s own time (D-17)', () => {
    const r = registryWith(topic());
    add(r, 'ended', spec([], 'active', new Date(NOW - 1).toISOString()));
    add(r, 'ends-later', spec([], 'active', new Date(NOW + 60_000).toISOString()));
    assert.deepEqual(ids(r, encounterChange('Patient/1')), ['ends-later']);
  });

  it('a subscription registered before its topic is filed when the topic arrives; replacing a topic re-files its subscriptions', () => {
    const r = new SubscriptionRegistry('R4B', search, BASE, () => NOW);
    const t = topic();
    r.putSubscription(r.compileSubscription('early', spec([{ filterParameter: 'patient', value: 'Patient/1' }]), t));
    assert.deepEqual(ids(r, encounterChange('Patient/1')), [], 'no topic yet');
    r.putTopic(t);
    assert.deepEqual(ids(r, encounterChange('Patient/1')), ['early']);
    r.putTopic(topic(['update']));
    assert.deepEqual(ids(r, encounterChange('Patient/1')), [], 'the new version no longer triggers on create');
    assert.deepEqual(ids(r, encounterChange('Patient/1', 'finished', 'update')), ['early'], 'and the subscription is still filed by its key');
    assert.deepEqual(ids(r, encounterChange('Patient/2', 'finished', 'update')), []);
  });

  it('replacing a topic re-files a subscription filed under several keys once, from the old filing, beside one still waiting', () => {
    const OTHER = 'http://example.org/topics/other';
    const r = registryWith(topic());
    add(r, 'both', spec([{ filterParameter: 'patient', value: 'Patient/1,Patient/2' }]));
    add(r, 'one', spec([{ filterParameter: 'patient', value: 'Patient/2' }]));
    add(r, 'any', spec([{ filterParameter: 'status', modifier: 'not', value: 'planned' }]));
    r.putSubscription(r.compileSubscription('elsewhere', { ...spec([{ filterParameter: 'patient', value: 'Patient/1' }]), topic: OTHER }, topicOn(OTHER, 'Encounter', 'patient')));
    assert.deepEqual(r.filing(URL), { keys: 2, unindexed: 1, waiting: 0 });
    r.putTopic(topic(['update']));
    assert.deepEqual(r.filing(URL), { keys: 2, unindexed: 1, waiting: 0 }, 'filed as before, nothing left waiting');
    assert.deepEqual(r.filing(OTHER), { keys: 0, unindexed: 0, waiting: 1 }, 'another topic\'s subscription is untouched');
    assert.deepEqual(ids(r, encounterChange('Patient/1', 'finished', 'update')), ['any', 'both']);
    assert.deepEqual(ids(r, encounterChange('Patient/2', 'finished', 'update')), ['any', 'both', 'one']);
    for (const id of ['both', 'one', 'any']) r.removeSubscription(id);
    assert.deepEqual(r.filing(URL), { keys: 0, unindexed: 0, waiting: 0 }, 'each key was filed once: nothing is left behind');
  });

  it('a new topic version files a subscription of 500 keys once: its filter is parsed once, not once per key', () => {
    let lookups = 0;
    const counting = Object.create(search, { param: { value: (...args: Parameters<typeof search.param>) => (lookups++, search.param(...args)) } }) as typeof search;
    const r = new SubscriptionRegistry('R4B', counting, BASE, () => NOW);
    r.putTopic(topic(['create']));
    const value = Array.from({ length: 500 }, (_, i) => `Patient/${i}`).join(',');
    add(r, 'wide', spec([{ filterParameter: 'patient', value }]));
    const perFiling = lookups;
    lookups = 0;
    r.putTopic(topic(['update']));
    assert.deepEqual(r.filing(URL), { keys: 500, unindexed: 0, waiting: 0 });
    assert.ok(lookups <= perFiling, `filed once: ${lookups} parameter lookups, against ${perFiling} to file it the first time`);
    assert.deepEqual(ids(r, encounterChange('Patient/499', 'finished', 'update')), ['wide']);
  });

  it('a topic version that does not compile leaves no version registered: its subscriptions wait, and are filed again by the next good one', () => {
    const r = registryWith(topic());
    add(r, 'a', spec([{ filterParameter: 'patient', value: 'Patient/1' }]));
    add(r, 'b', spec([{ filterParameter: 'status', modifier: 'not', value: 'planned' }]));
    assert.throws(() => r.putTopic(topic(['create'], "%current.status = 'finished' and (")));
    assert.equal(r.topic(URL), undefined);
    assert.deepEqual(r.filing(URL), { keys: 0, unindexed: 0, waiting: 2 });
    assert.deepEqual(ids(r, encounterChange('Patient/1')), []);
    r.putTopic(topic());
    assert.deepEqual(r.filing(URL), { keys: 1, unindexed: 1, waiting: 0 });
    assert.deepEqual(ids(r, encounterChange('Patient/1')), ['a', 'b']);
  });

  it("a removed topic's subscriptions wait for it: filed again when it comes back, forgotten if removed meanwhile", () => {
    const r = registryWith(topic());
    add(r, 'a', spec([{ filterParameter: 'patient', value: 'Patient/1' }]));
    add(r, 'b', spec([{ filterParameter: 'status', modifier: 'not', value: 'planned' }]));
    add(r, 'c', spec([{ filterParameter: 'patient', value: 'Patient/1' }]));
    r.removeTopic(URL);
    assert.deepEqual(r.filing(URL), { keys: 0, unindexed: 0, waiting: 3 });
    assert.deepEqual(ids(r, encounterChange('Patient/1')), []);
    r.removeSubscription('c');
    assert.deepEqual(r.filing(URL), { keys: 0, unindexed: 0, waiting: 2 });
    r.putTopic(topic());
    assert.deepEqual(r.filing(URL), { keys: 1, unindexed: 1, waiting: 0 });
    assert.deepEqual(ids(r, encounterChange('Patient/1')), ['a', 'b']);
    r.removeTopic(URL);
    r.removeSubscription('a');
    r.removeSubscription('b');
    assert.deepEqual(r.filing(URL), { keys: 0, unindexed: 0, waiting: 0 }, 'nothing is left behind');
  });

  it('a topic version under which a filter no longer parses files the other subscriptions, checks that one one by one and records why (D-20)', () => {
    // `context` is a token on Composition and a reference on MedicationDispense: `|x` is a token
    // with no system, but no reference at all.
    const CTX = 'http://example.org/topics/context';
    const on = (resource: string) => topicOn(CTX, resource, 'context');
    const r = registryWith(on('Composition'));
    for (const [id, value] of [['odd', '|x'], ['plain', 'x']] as const) add(r, id, { ...spec([{ filterParameter: 'context', value }]), topic: CTX });
    assert.deepEqual(r.filing(CTX), { keys: 2, unindexed: 0, waiting: 0 });
    r.putTopic(on('MedicationDispense'));
    assert.deepEqual(r.filing(CTX), { keys: 1, unindexed: 1, waiting: 0 }, 'plain by its key, odd one by one');
    const dispense = changeOf({ resourceType: 'MedicationDispense', id: 'm1', status: 'completed', context: { reference: 'Encounter/x' } });
    assert.deepEqual(ids(r, dispense), ['plain']);
    assert.match(r.faults.statusErrors(CTX)[0]!.text, /Subscription\/odd/);
    r.putTopic(on('Composition'));
    assert.deepEqual(r.filing(CTX), { keys: 2, unindexed: 0, waiting: 0 }, 'both by their keys again');
  });

  it('a subscription checked one by one gets matchers compiled against the new version of its topic', () => {
    const STATUS = 'http://example.org/topics/status';
    const on = (resource: string) => topicOn(STATUS, resource, 'status', ['not']);
    const r = registryWith(on('Encounter'));
    add(r, 'not-planned', { ...spec([{ filterParameter: 'status', modifier: 'not', value: 'planned' }]), topic: STATUS });
    r.putTopic(on('EpisodeOfCare'));
    const episode = (id: string, status: string) => changeOf({ resourceType: 'EpisodeOfCare', id, status, patient: { reference: 'Patient/1' } });
    assert.deepEqual(ids(r, episode('e1', 'active')), ['not-planned']);
    assert.deepEqual(ids(r, episode('e2', 'planned')), [], 'its filter applies to the type the topic now names');
  });

  it('a criterion that cannot be evaluated does not trigger and does not throw: it is recorded against its topic (D-20)', () => {
    const r = registryWith(topic(['create'], '(1 | 2) + 1 = 3'));
    add(r, 's1', spec());
    assert.deepEqual(ids(r, encounterChange('Patient/1')), []);
    assert.deepEqual(ids(r, encounterChange('Patient/1')), []);
    const fault = r.faults.of(URL);
    assert.ok(fault, 'the fault is recorded');
    assert.equal(fault.count, 2);
    assert.equal(fault.element, 'resourceTrigger[0].fhirPathCriteria');
    r.putTopic(topic(['create']));
    assert.equal(r.faults.of(URL), undefined, 'a new version of the topic starts clean');
    assert.deepEqual(ids(r, encounterChange('Patient/1')), ['s1']);
  });

  it('a filter that fails on a resource is recorded against the topic naming the subscription, and the others still match', () => {
    const r = registryWith(topic());
    add(r, 'ok', spec());
    add(r, 'odd', spec([{ filterParameter: 'status', modifier: 'not', value: 'planned' }]));
    const broken = r.subscription('odd')!;
    broken.filters!.set('Encounter', { matches: () => { throw new Error('boom'); } } as never);
    assert.deepEqual(ids(r, encounterChange('Patient/1')), ['ok']);
    assert.match(r.faults.statusErrors(URL)[0]!.text, /Subscription\/odd.*boom/);
  });
});
