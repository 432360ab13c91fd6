import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { StatusInfo, SubscriptionSpec } from '../../subscription-model.ts';
import { FHIR_VERSIONS, type FhirVersion, type Resource } from '../../types.ts';
import { adapterFor } from '../index.ts';
import * as constants from './constants.ts';
import { SPEC_DIR, assert422, assertValid, loadSpec } from '../../../../test/fixtures/spec.ts';

const load = (path: string): Resource => loadSpec<Resource>(path);
const subs = (v: FhirVersion) => adapterFor(v).subscriptions;
const clone = <T>(v: T): T => structuredClone(v);



const ADMISSION: SubscriptionSpec = {
  topic: 'http://hl7.org/SubscriptionTopic/admission',
  status: 'active',
  end: '2020-12-31T12:00:00Z',
  filters: [{ resourceType: 'Encounter', filterParameter: 'patient', value: 'Patient/123' }],
  channel: {
    type: 'rest-hook',
    endpoint: 'https://example.org/Endpoints/d7dcc004-808d-452b-8030-3a3a13cd871d',
    headers: [],
    heartbeatPeriod: 86400,
    timeout: 60,
    maxCount: 20,
    contentType: 'application/fhir+json',
    content: 'id-only',
  },
};

describe('readSubscription: backport R4/R4B (S-2..S-10, R5-4, D-16)', () => {
  const backport: FhirVersion[] = ['R4', 'R4B'];

  it('S-2 S-3 S-9: every IG example Subscription reads in R4 and R4B, and each is valid', () => {
    const expected: Record<string, SubscriptionSpec> = {
      'Subscription-subscription-admission.json': ADMISSION,
      'Subscription-subscription-admission-with-identifier.json': ADMISSION,
      'Subscription-subscription-multi-resource.json': { ...ADMISSION, filters: [{ resourceType: 'Observation', filterParameter: 'subject', value: 'Patient/123' }] },
      'Subscription-subscription-zulip.json': { ...ADMISSION, channel: { ...ADMISSION.channel, endpoint: 'https://example.org/Endpoints/ZulipForwarder', type: 'http://example.org/subscription-channel-type#zulip' } },
    };
    const files = readdirSync(join(SPEC_DIR, 'examples/subscriptions')).sort();
    assert.deepEqual(files, Object.keys(expected).sort());
    for (const v of backport) {
      for (const file of files) {
        const resource = load(`examples/subscriptions/${file}`);
        assertValid(v, resource);
        assert.deepEqual(subs(v).readSubscription(resource), expected[file], `${v} ${file}`);
      }
    }
  });

  it('ISSUE-4 CC-1: backport-channel-type overrides channel.type', () => {
    assert.equal(subs('R4').readSubscription(load('examples/subscriptions/Subscription-subscription-zulip.json')).channel.type, 'http://example.org/subscription-channel-type#zulip');
    const r = withChannel((c) => (c._type = { extension: [{ url: constants.EXT.channelType, valueCoding: { system: constants.SYSTEM.channelTypeR5, code: 'websocket' } }] }));
    assert.equal(subs('R4').readSubscription(r).channel.type, 'websocket');
  });

  it('S-9: reads fhir-candle (heartbeat as valueInteger) and Inferno (Type.param filter, header) subscriptions', () => {
    const candle = subs('R4').readSubscription(load('third-party/fhir-candle/r4/Subscription-encounter-complete.json'));
    assert.equal(candle.channel.heartbeatPeriod, 120);
    assert.equal(candle.status, 'requested');
    assert.deepEqual(candle.filters, [{ resourceType: 'Encounter', filterParameter: 'patient', value: 'Patient/example' }]);
    const inferno = subs('R4').readSubscription(load('third-party/inferno-subscriptions-test-kit/spec-fixtures/subscription_resource_example.json'));
    assert.deepEqual(inferno.filters, [{ resourceType: 'Encounter', filterParameter: 'patient', value: 'Patient/123' }]);
    assert.deepEqual(inferno.channel.headers, [{ name: 'Authorization', value: 'Bearer SAMPLE_TOKEN' }]);
  });

  it('S-4 ISSUE-2 ISSUE-5 R5-4: filter criteria in all three syntaxes, with modifiers and value prefixes', () => {
    const cases: [string, object[]][] = [
      ['Encounter?patient=Patient/123', [{ resourceType: 'Encounter', filterParameter: 'patient', value: 'Patient/123' }]],
      ['Encounter.patient=Patient/123', [{ resourceType: 'Encounter', filterParameter: 'patient', value: 'Patient/123' }]],
      ['patient=Patient/123', [{ filterParameter: 'patient', value: 'Patient/123' }]],
      ['Encounter?subject:Patient=123', [{ resourceType: 'Encounter', filterParameter: 'subject', modifier: 'Patient', value: '123' }]],
      ['Encounter.status:not=finished', [{ resourceType: 'Encounter', filterParameter: 'status', modifier: 'not', value: 'finished' }]],
      ['code:in=http://example.org/vs', [{ filterParameter: 'code', modifier: 'in', value: 'http://example.org/vs' }]],
      ['Encounter?length=gt5', [{ resourceType: 'Encounter', filterParameter: 'length', comparator: 'gt', value: '5' }]],
      ['date=ge2024-01-01', [{ filterParameter: 'date', comparator: 'ge', value: '2024-01-01' }]],
      ['status=entered-in-error', [{ filterParameter: 'status', value: 'entered-in-error' }]],
      ['Observation?code=a&status=final', [{ resourceType: 'Observation', filterParameter: 'code', value: 'a' }, { resourceType: 'Observation', filterParameter: 'status', value: 'final' }]],
    ];
    for (const [text, filters] of cases) {
      const r = withFilters([text]);
      assert.deepEqual(subs('R4').readSubscription(r).filters, filters, text);
    }
    // ISSUE-5: repeated extensions are separate filters, ANDed.
    assert.equal(subs('R4B').readSubscription(withFilters(['Encounter?patient=Patient/1', 'Encounter.status=finished', 'class=IMP'])).filters.length, 3);
  });

  it('D-16: a missing backport-payload-content means empty', () => {
    const r = withChannel((c) => delete c._payload);
    assert.equal(subs('R4').readSubscription(r).channel.content, 'empty');
  });

  it('R4 classic subscriptions: a search expression in criteria is classicCriteria, not a topic', () => {
    const r = { resourceType: 'Subscription', status: 'requested', reason: 'x', criteria: 'Observation?code=http://loinc.org|1234-5', channel: { type: 'rest-hook', endpoint: 'https://example.org/hook' } };
    const spec = subs('R4').readSubscription(r);
    assert.equal(spec.topic, undefined);
    assert.equal(spec.classicCriteria, 'Observation?code=http://loinc.org|1234-5');
    assert.deepEqual([spec.channel.content, spec.channel.contentType], ['empty', '']);
    const withPayload = subs('R4').readSubscription({ ...r, channel: { ...r.channel, payload: 'application/fhir+json' } });
    assert.equal(withPayload.channel.content, 'full-resource');
  });

  it('N-2 S-13 D-16: malformed subscriptions are rejected with 422 naming the element', () => {
    const cases: [string, Resource][] = [
      ['Subscription.criteria', edit((r) => delete r.criteria)],
      ['Subscription.criteria', edit((r) => (r.criteria = 'not a url or search'))],
      ['Subscription.status', edit((r) => delete r.status)],
      ['Subscription.status', edit((r) => (r.status = 'entered-in-error'))],
      ['Subscription.channel', edit((r) => delete r.channel)],
      ['Subscription.channel.type', withChannel((c) => delete c.type)],
      ['Subscription.channel.payload', withChannel((c) => delete c.payload)],
      ['Subscription.channel.payload.extension[0].valueCode', withChannel((c) => (c._payload.extension[0].valueCode = 'everything'))],
      ['Subscription.channel.header[1]', withChannel((c) => (c.header = ['Authorization: Bearer x', 'no colon here']))],
      ['Subscription.channel.header[0]', withChannel((c) => (c.header = [': value only']))],
      ['Subscription.channel.header[0]', withChannel((c) => (c.header = [42]))],
      ['Subscription.channel.extension[0].valueUnsignedInt', withChannel((c) => (c.extension[0].valueUnsignedInt = -1))],
      ['Subscription.channel.extension[2].valuePositiveInt', withChannel((c) => (c.extension[2].valuePositiveInt = 0))],
      ['Subscription.channel.extension[1].valueString', withChannel((c) => (c.extension[1] = { url: c.extension[1].url, valueString: '60' }))],
      ['Subscription.channel.type.extension[0].valueCoding', withChannel((c) => (c._type = { extension: [{ url: constants.EXT.channelType }] }))],
      ['Subscription.channel.type.extension[0].valueCoding.code', withChannel((c) => (c._type = { extension: [{ url: constants.EXT.channelType, valueCoding: { system: 'http://x' } }] }))],
      ['Subscription.criteria.extension[0].valueString', withFilters(['patient'])],
      ['Subscription.criteria.extension[0].valueString', withFilters(['encounter?patient=1'])],
      ['Subscription.criteria.extension[1].valueString', withFilters(['patient=1', 'patient='])],
      ['Subscription.criteria.extension[0].valueString', withFilters(['Encounter?'])],
      ['Subscription.criteria.extension[0].valueString', withFilters(['pat ient=1'])],
      ['Subscription.criteria.extension[0].valueString', withFilters(['patient:=1'])],
      ['Subscription.criteria.extension[0].value', edit((r) => (r._criteria.extension[0] = { url: constants.EXT.filterCriteria, valueInteger: 1 }))],
    ];
    for (const v of backport) {
      for (const [expression, resource] of cases) {
        if (v === 'R4B' && resource.status === 'entered-in-error') continue; // a valid R4B status
        assert422(() => subs(v).readSubscription(resource), expression);
      }
    }
    assert.equal(subs('R4B').readSubscription(edit((r) => (r.status = 'entered-in-error'))).status, 'entered-in-error');
  });
});

describe('extensions Herald must understand (S-3, S-7, S-9, S-10, S-11, S-13)', () => {
  const backport: FhirVersion[] = ['R4', 'R4B'];
  const unknown = (url: string, value: object = { valueString: 'x' }) => ({ url, ...value });
  /** Inferno's "unsupported cross-version extensions" test: the filter extension under a wrong canonical. */
  const WRONG_FILTER = 'http://hl7.org/fhir/5.0/subscriptions-backport/StructureDefinition/backport-filter-criteria';

  it('refuses unknown extensions on criteria, channel, channel.type and channel.payload, and any modifierExtension, naming the element and the URL', () => {
    const cases: [string, Resource][] = [
      ['Subscription.criteria.extension[0]', edit((r) => (r._criteria = { extension: [unknown(WRONG_FILTER, { valueString: 'Encounter?patient=Patient/123' })] }))],
      ['Subscription.criteria.extension[1]', edit((r) => r._criteria.extension.push(unknown('http://example.org/filter')))],
      ['Subscription.channel.extension[3]', withChannel((c) => c.extension.push(unknown(`${constants.IG}/StructureDefinition/backport-hearbeat-period`, { valueUnsignedInt: 5 })))],
      ['Subscription.channel.type.extension[0]', withChannel((c) => (c._type = { extension: [unknown('http://example.org/channel-type', { valueCoding: { code: 'x' } })] }))],
      ['Subscription.channel.payload.extension[1]', withChannel((c) => c._payload.extension.push(unknown('http://example.org/payload-shape')))],
      ['Subscription.modifierExtension[0]', edit((r) => (r.modifierExtension = [unknown('http://example.org/only-on-weekdays', { valueBoolean: true })]))],
      ['Subscription.channel.modifierExtension[0]', withChannel((c) => (c.modifierExtension = [unknown('http://example.org/dry-run', { valueBoolean: true })]))],
    ];
    for (const v of backport) {
      for (const [expression, resource] of cases) {
        assert422(() => subs(v).readSubscription(resource), expression);
        assert.throws(() => subs(v).readSubscription(resource), (err: Error) => err.message.includes('http'), 'the message names the URL');
      }
    }
    assert.throws(() => subs('R4').readSubscription(cases[0]![1]), (err: Error) => err.message.includes(WRONG_FILTER));
  });

  it('keeps ordinary extensions elsewhere: on the resource, on other elements and on primitives', () => {
    const withIdentifier = load('examples/subscriptions/Subscription-subscription-admission-with-identifier.json');
    const ordinary = edit((r) => {
      r.extension = [unknown('http://example.org/owner-team')];
      r._reason = { extension: [unknown('http://example.org/translation')] };
      r.channel._endpoint = { extension: [unknown('http://example.org/endpoint-note')] };
    });
    for (const v of backport) {
      assert.deepEqual(subs(v).readSubscription(withIdentifier), ADMISSION);
      assert.deepEqual(subs(v).readSubscription(ordinary), ADMISSION);
    }
  });

  it('R5: refuses any modifierExtension, keeps ordinary extensions', () => {
    assert422(() => subs('R5').readSubscription(r5Sub((s) => (s.modifierExtension = [unknown('http://example.org/m', { valueBoolean: true })]))), 'Subscription.modifierExtension[0]');
    assert422(
      () => subs('R5').readSubscription(r5Sub((s) => (s.filterBy = [{ filterParameter: 'patient', value: 'Patient/1', modifierExtension: [unknown('http://example.org/negate', { valueBoolean: true })] }]))),
      'Subscription.filterBy[0].modifierExtension[0]',
    );
    assert.equal(subs('R5').readSubscription(r5Sub((s) => (s.extension = [unknown('http://example.org/owner-team')]))).topic, 'http://hl7.org/SubscriptionTopic/admission');
  });
});

function edit(mutate: (r: Record<string, any>) => void): Resource {
  const r = clone(load('examples/subscriptions/Subscription-subscription-admission.json')) as Record<string, any>;
  mutate(r);
  return r as Resource;
}
const withChannel = (mutate: (c: Record<string, any>) => void) => edit((r) => mutate(r.channel));
const withFilters = (values: string[]) => edit((r) => (r._criteria = { extension: values.map((valueString) => ({ url: constants.EXT.filterCriteria, valueString })) }));

describe('readSubscription: native R5 (R5-1, R5-4)', () => {
  it('R5-1: reads the R5 example Subscriptions (parameter → headers, channelType Coding)', () => {
    const rest = subs('R5').readSubscription(load('examples/r5/Subscription-r5-admission-rest-hook.json'));
    const expected: SubscriptionSpec = { ...clone(ADMISSION), status: 'requested' };
    delete expected.end;
    expected.channel.headers = [{ name: 'Authorization', value: 'Bearer secret-token-abc-123' }];
    assert.deepEqual(rest, expected);
    const ws = subs('R5').readSubscription(load('examples/r5/Subscription-r5-admission-websocket.json'));
    assert.deepEqual(ws.channel, { type: 'websocket', headers: [], heartbeatPeriod: 60, contentType: 'application/fhir+json', content: 'full-resource' });
    for (const f of ['Subscription-r5-admission-rest-hook.json', 'Subscription-r5-admission-websocket.json']) assertValid('R5', load(`examples/r5/${f}`));
  });

  it('R5-4: filterBy with comparator, modifier and a StructureDefinition URL resourceType; custom channel Coding', () => {
    const r = r5Sub((s) => {
      s.filterBy = [{ resourceType: 'http://hl7.org/fhir/StructureDefinition/Encounter', filterParameter: 'length', comparator: 'gt', value: '5' }, { filterParameter: 'status', modifier: 'not', value: 'finished' }];
      s.channelType = { system: 'http://example.org/channels', code: 'zulip' };
    });
    const spec = subs('R5').readSubscription(r);
    assert.deepEqual(spec.filters, [{ resourceType: 'Encounter', filterParameter: 'length', comparator: 'gt', value: '5' }, { filterParameter: 'status', modifier: 'not', value: 'finished' }]);
    assert.equal(spec.channel.type, 'http://example.org/channels#zulip');
    const defaults = subs('R5').readSubscription(r5Sub((s) => { delete s.content; delete s.contentType; }));
    assert.deepEqual([defaults.channel.content, defaults.channel.contentType], ['empty', 'application/fhir+json']);
  });

  it('N-2: malformed R5 subscriptions are rejected with 422 naming the element', () => {
    const cases: [string, (s: Record<string, any>) => void][] = [
      ['Subscription.topic', (s) => delete s.topic],
      ['Subscription.status', (s) => (s.status = 'paused')],
      ['Subscription.channelType', (s) => delete s.channelType],
      ['Subscription.channelType.code', (s) => (s.channelType = { system: constants.SYSTEM.channelTypeR5 })],
      ['Subscription.content', (s) => (s.content = 'everything')],
      ['Subscription.parameter[0].value', (s) => (s.parameter = [{ name: 'Authorization' }])],
      ['Subscription.parameter[0].name', (s) => (s.parameter = [{ name: 'Bad Header', value: 'x' }])],
      ['Subscription.filterBy[0].value', (s) => (s.filterBy = [{ filterParameter: 'patient' }])],
      ['Subscription.filterBy[0].filterParameter', (s) => (s.filterBy = [{ value: 'x' }])],
      ['Subscription.filterBy[0].comparator', (s) => (s.filterBy = [{ filterParameter: 'length', comparator: 'bigger', value: '1' }])],
      ['Subscription.heartbeatPeriod', (s) => (s.heartbeatPeriod = -5)],
      ['Subscription.maxCount', (s) => (s.maxCount = 0)],
      ['Subscription.timeout', (s) => (s.timeout = '60')],
    ];
    for (const [expression, mutate] of cases) assert422(() => subs('R5').readSubscription(r5Sub(mutate)), expression);
  });
});

function r5Sub(mutate: (s: Record<string, any>) => void): Resource {
  const s = clone(load('examples/r5/Subscription-r5-admission-rest-hook.json')) as Record<string, any>;
  mutate(s);
  return s as Resource;
}

describe('withState: server-managed fields (ST-1, ST-8, D-16)', () => {
  it('ST-8: R4/R4B set status and error, and remove the error when cleared; the input is untouched', () => {
    for (const v of ['R4', 'R4B'] as const) {
      const original = load('examples/subscriptions/Subscription-subscription-admission.json');
      const before = clone(original);
      const failed = subs(v).withState(original, { status: 'error', error: 'endpoint answered 500' });
      assert.deepEqual([failed.status, failed.error], ['error', 'endpoint answered 500']);
      assertValid(v, failed);
      const cleared = subs(v).withState(failed, { status: 'active' });
      assert.equal(cleared.status, 'active');
      assert.equal('error' in cleared, false);
      assert.deepEqual(original, before);
      assert.deepEqual(subs(v).readSubscription(cleared), ADMISSION);
    }
  });

  it('D-16: a missing backport-payload-content is stored as an explicit empty; an existing one is kept', () => {
    const bare = withChannel((c) => delete c._payload);
    const stored = subs('R4').withState(bare, { status: 'requested' }) as Record<string, any>;
    assert.deepEqual(stored.channel._payload, { extension: [{ url: constants.EXT.payloadContent, valueCode: 'empty' }] });
    assertValid('R4', stored);
    const kept = subs('R4B').withState(load('examples/subscriptions/Subscription-subscription-admission.json'), { status: 'active' }) as Record<string, any>;
    assert.deepEqual(kept.channel._payload.extension, [{ url: constants.EXT.payloadContent, valueCode: 'id-only' }]);
  });

  it('D-16: R5 content is made explicit; R5 has no error element', () => {
    const stored = subs('R5').withState(r5Sub((s) => delete s.content), { status: 'error', error: 'boom' });
    assert.deepEqual([stored.status, stored.content, stored.error], ['error', 'empty', undefined]);
    assertValid('R5', stored);
  });

  it('classic R4 subscriptions get no backport extension', () => {
    const classic = { resourceType: 'Subscription', status: 'requested', reason: 'x', criteria: 'Observation?code=1', channel: { type: 'rest-hook', payload: 'application/fhir+json' } };
    assert.deepEqual(subs('R4').withState(classic, { status: 'active' }), { ...classic, status: 'active' });
  });
});

describe('statusResource (NB-1, NB-5, NB-6, §5.2)', () => {
  const info: StatusInfo = {
    subscriptionUrl: 'https://example.org/fhir/Subscription/admission',
    topic: 'http://hl7.org/SubscriptionTopic/admission',
    status: 'active',
    type: 'event-notification',
    eventsSinceSubscriptionStart: 2,
    events: [{ eventNumber: 2, timestamp: '2020-05-29T11:44:13.1882432-05:00' }],
    errors: [],
  };

  it('§5.2: R4 Parameters reproduces Parameters-r4-notification-status exactly', () => {
    assert.deepEqual(subs('R4').statusResource(info, 'r4-notification-status'), load('examples/r4/Parameters-r4-notification-status.json'));
  });

  it('NB-6: R4B SubscriptionStatus reproduces SubscriptionStatus-r4b-notification-status exactly', () => {
    assert.deepEqual(subs('R4B').statusResource(info, 'r4b-notification-status'), load('examples/r4b/SubscriptionStatus-r4b-notification-status.json'));
  });

  it('R5-2: R5 SubscriptionStatus carries integer64 as JSON strings; every version validates with focus, context and errors', () => {
    const full: StatusInfo = {
      ...info,
      status: 'error',
      events: [{ eventNumber: 9007199254740991, timestamp: '2020-05-29T11:44:13Z', focus: 'https://example.org/fhir/Encounter/1', additionalContext: ['https://example.org/fhir/Patient/2'] }],
      eventsSinceSubscriptionStart: 9007199254740991,
      errors: [{ code: 'no-response', text: 'no answer within 10 s' }, { text: 'uncoded' }],
    };
    const r5 = subs('R5').statusResource(full, 's') as Record<string, any>;
    assert.equal(r5.eventsSinceSubscriptionStart, '9007199254740991');
    assert.equal(r5.notificationEvent[0].eventNumber, '9007199254740991');
    assert.deepEqual(r5.error, [{ coding: [{ system: constants.SYSTEM.subscriptionError, code: 'no-response' }], text: 'no answer within 10 s' }, { text: 'uncoded' }]);
    const r4 = subs('R4').statusResource(full, 's') as Record<string, any>;
    assert.deepEqual(r4.parameter.map((p: { name: string }) => p.name), ['subscription', 'topic', 'status', 'type', 'events-since-subscription-start', 'notification-event', 'error', 'error']);
    assert.deepEqual(r4.parameter[5].part.map((p: { name: string }) => p.name), ['event-number', 'timestamp', 'focus', 'additional-context']);
    for (const v of FHIR_VERSIONS) assertValid(v, subs(v).statusResource(full, 's'));
  });
});

describe('notification shape and capability per version (NB-1, CS-1..CS-6, §1)', () => {
  it('NB-1 R5-2: bundle type and profile', () => {
    assert.deepEqual([subs('R4').notificationBundleType, subs('R4').notificationProfile], ['history', constants.PROFILE.notificationR4]);
    assert.deepEqual([subs('R4B').notificationBundleType, subs('R4B').notificationProfile], ['history', constants.PROFILE.notificationR4B]);
    assert.deepEqual([subs('R5').notificationBundleType, subs('R5').notificationProfile], ['subscription-notification', undefined]);
  });

  it('CS-1 CS-2 CS-4 ISSUE-1 ISSUE-10 T-8: capability declarations', () => {
    const r4 = subs('R4').capability;
    assert.equal(r4.instantiates, 'http://hl7.org/fhir/uv/subscriptions-backport/CapabilityStatement/backport-subscription-server-r4');
    assert.equal(subs('R4B').capability.instantiates, 'http://hl7.org/fhir/uv/subscriptions-backport/CapabilityStatement/backport-subscription-server');
    assert.equal(r4.subscriptionProfile, 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription');
    assert.equal(r4.topicCanonicalExtension, 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/capabilitystatement-subscriptiontopic-canonical');
    // The IG's example CapabilityStatement lists exactly these operations.
    const example = load('examples/r4/CapabilityStatement-r4-capabilitystatement-example-server.json') as Record<string, any>;
    assert.deepEqual(r4.operations, example.rest[0].resource[0].operation);
    assert.deepEqual(subs('R5').capability, { operations: [
      { name: 'status', definition: 'http://hl7.org/fhir/OperationDefinition/Subscription-status' },
      { name: 'events', definition: 'http://hl7.org/fhir/OperationDefinition/Subscription-events' },
      { name: 'get-ws-binding-token', definition: 'http://hl7.org/fhir/OperationDefinition/Subscription-get-ws-binding-token' },
    ] });
  });

  it('§0 §1: every URL in the constants module appears in artifacts.json', () => {
    const artifacts = readFileSync(join(SPEC_DIR, 'artifacts.json'), 'utf8');
    const urls: string[] = [];
    const collect = (v: unknown) => {
      if (typeof v === 'string') urls.push(v);
      else if (Array.isArray(v)) v.forEach(collect);
      else if (typeof v === 'object' && v !== null) Object.values(v).forEach(collect);
    };
    collect(Object.values(constants));
    const checked = urls.filter((u) => u.startsWith('http') && !u.endsWith('.') && !u.endsWith('/'));
    assert.ok(checked.length > 20);
    for (const url of checked) assert.ok(artifacts.includes(`"${url}`) || artifacts.includes(`${url} `), url);
    for (const prefix of constants.XVER_TOPIC_PREFIXES) assert.ok(artifacts.includes(prefix), prefix);
  });
});
