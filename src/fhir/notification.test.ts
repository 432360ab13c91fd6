import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildNotification, buildStatusBundle, type NotificationInput } from './notification.ts';
import type { NotificationEvent } from './subscription-model.ts';
import { FHIR_VERSIONS, type Bundle, type FhirVersion, type Resource } from './types.ts';
import { adapterFor } from './versions/index.ts';
import { assertValid, loadSpec } from '../../test/fixtures/spec.ts';

/**
 * Each IG notification example rebuilt from canonical input. Skipped, because the canonical model
 * has no such data: the `-with-auth` examples (authorization hints, 1.2.0-ballot SEC-6) and the
 * `-with-query` examples (related queries, P-8).
 */

type Json = Record<string, any>;
const load = (path: string): Json => loadSpec<Json>(path);
const clone = <T>(v: T): T => structuredClone(v);


const BASE = 'https://example.org/fhir';
const TS = '2020-05-29T11:44:13.1882432-05:00';
const TOPIC = 'http://hl7.org/SubscriptionTopic/admission';
const ENC_ID = '86009987-eabe-42bf-8c02-b112b18cb616';
const PAT_ID = '1599eb66-431a-447c-a3de-6897fe9ae9a1';
const multi = load('examples/r4/Bundle-r4-notification-multi-resource.json');
const ENCOUNTER = multi.entry[1].resource as Resource;
const PATIENT = multi.entry[2].resource as Resource;

const event = (eventNumber: number, interaction: NotificationEvent['interaction'] = 'create', id = ENC_ID): NotificationEvent =>
  ({ eventNumber, timestamp: TS, focus: { type: 'Encounter', id, versionId: 1 }, interaction });

function input(extra: Partial<NotificationInput>): NotificationInput {
  return {
    baseUrl: BASE, subscriptionId: 'admission', topic: TOPIC, status: 'active', type: 'event-notification',
    eventsSinceSubscriptionStart: 2, content: 'id-only', events: [event(2)], resources: new Map(), timestamp: TS, ...extra,
  };
}

/** Builds, validates, and returns the bundle without its status id (passed in from the example). */
function build(version: FhirVersion, extra: Partial<NotificationInput>): Bundle {
  const bundle = buildNotification(adapterFor(version), input(extra));
  assertValid(version, bundle);
  return bundle;
}

/** The example without the Bundle id (a server-chosen id the examples happen to have). */
function expected(path: string): Json {
  const example = load(path);
  delete example.id;
  return example;
}

const statusIdOf = (example: Json): string => example.entry[0].resource.id;

type Case = { name: string; extra: Partial<NotificationInput>; adjust?: (e: Json) => void };

const FULL = new Map<string, Resource>([[`Encounter/${ENC_ID}`, ENCOUNTER]]);
const FOCUS_ENTRY = { fullUrl: `${BASE}/Encounter/${ENC_ID}`, request: { method: 'POST', url: 'Encounter' }, response: { status: '201' } };

/** The canonical input of each IG example, and the deliberate differences (documented per case). */
const CASES: Case[] = [
  { name: 'handshake', extra: { type: 'handshake', status: 'requested', eventsSinceSubscriptionStart: 0, events: [] } },
  { name: 'heartbeat', extra: { type: 'heartbeat', events: [] } },
  {
    name: 'empty',
    extra: { content: 'empty' },
    // P-2 SEC-7: Herald leaves the topic out of empty notifications; the example keeps it.
    adjust: (e) => dropTopic(e.entry[0].resource),
  },
  {
    name: 'id-only',
    extra: { content: 'id-only' },
    // P-3 (MAY): Herald lists the focus as an entry without resource, as Inferno's conformant fixture does.
    adjust: (e) => e.entry.push(clone(FOCUS_ENTRY)),
  },
  { name: 'full-resource', extra: { content: 'full-resource', resources: FULL } },
  { name: 'multi-resource', extra: { content: 'full-resource', resources: FULL, additional: [PATIENT] } },
  {
    name: 'error',
    extra: { type: 'query-status', status: 'error', eventsSinceSubscriptionStart: 3, events: [], errors: [{ code: 'no-response', text: 'The endpoint did not answer' }] },
    // ST-8: Herald's errors always carry text next to the code.
    adjust: (e) => errorsOf(e.entry[0].resource).forEach((c: Json) => (c.text = 'The endpoint did not answer')),
  },
];

function dropTopic(status: Json): void {
  if (status.resourceType === 'Parameters') status.parameter = status.parameter.filter((p: Json) => p.name !== 'topic');
  else delete status.topic;
}

function errorsOf(status: Json): Json[] {
  return status.resourceType === 'Parameters' ? status.parameter.filter((p: Json) => p.name === 'error').map((p: Json) => p.valueCodeableConcept) : status.error;
}

describe('notification bundles reproduce the IG examples (NB-1..NB-5, P-2..P-5, §5.4)', () => {
  for (const [version, dir, prefix] of [['R4', 'r4', 'r4'], ['R4B', 'r4b', 'r4b']] as const) {
    for (const c of CASES) {
      it(`NB-1 NB-2 ${version} ${c.name}: Bundle-${prefix}-notification-${c.name}`, () => {
        const want = expected(`examples/${dir}/Bundle-${prefix}-notification-${c.name}.json`);
        c.adjust?.(want);
        assert.deepEqual(build(version, { ...c.extra, statusId: statusIdOf(want) }), want);
      });
    }
  }

  it('R5-2 R5 handshake: Bundle-r5-notification-handshake (Herald adds request/response to the status entry)', () => {
    const want = expected('examples/r5/Bundle-r5-notification-handshake.json');
    withStatusRequest(want);
    const got = build('R5', { type: 'handshake', status: 'requested', eventsSinceSubscriptionStart: 0, events: [], statusId: statusIdOf(want) });
    assert.deepEqual(got, want);
  });

  it('R5-2 P-3 R5 id-only: Bundle-r5-notification-id-only (update focus; context Patient listed without resource)', () => {
    const want = expected('examples/r5/Bundle-r5-notification-id-only.json');
    withStatusRequest(want);
    want.entry.push({ fullUrl: `${BASE}/Patient/${PAT_ID}`, request: { method: 'GET', url: `Patient/${PAT_ID}` }, response: { status: '200' } });
    const got = build('R5', { events: [event(2, 'update')], additional: [PATIENT], statusId: statusIdOf(want) });
    assert.deepEqual(got, want);
  });

  it('§7.2 EN-2 R4B $events: Bundle-r4b-events-response (query-event, id-only, updates)', () => {
    const want = expected('examples/r4b/Bundle-r4b-events-response.json');
    const events = [307, 308].map((n, i) => ({ eventNumber: n, timestamp: `2020-05-29T10:0${i + 1}:00Z`, focus: { type: 'Encounter', id: String(n), versionId: 2 }, interaction: 'update' as const }));
    const got = build('R4B', { type: 'query-event', eventsSinceSubscriptionStart: 310, events, statusId: statusIdOf(want) });
    assert.deepEqual(got, want);
  });

  it('NB-2 P-3 P-4: Inferno\'s conformant R4 fixtures are reproduced exactly', () => {
    const dir = 'third-party/inferno-subscriptions-test-kit/spec-fixtures';
    const base = 'https://fhirserver.org/fhir';
    const shared = { baseUrl: base, subscriptionId: '123', topic: 'http://fhirserver.org/topics/patient-admission' };
    const one = { ...event(1), focus: { type: 'Encounter', id: ENC_ID, versionId: 1 } };
    const cases: [string, Partial<NotificationInput>][] = [
      ['handshake_bundle_example.json', { type: 'handshake', status: 'requested', eventsSinceSubscriptionStart: 0, events: [] }],
      ['heartbeat_bundle_example.json', { type: 'heartbeat', events: [] }],
      ['id_only_notification_bundle_example.json', { eventsSinceSubscriptionStart: 1, events: [one] }],
      ['full_resource_notification_bundle_example.json', { eventsSinceSubscriptionStart: 1, events: [one], content: 'full-resource' }],
    ];
    for (const [file, extra] of cases) {
      const want = expected(`${dir}/${file}`);
      const resources = new Map<string, Resource>();
      if (extra.content === 'full-resource') resources.set(`Encounter/${ENC_ID}`, want.entry[1].resource);
      assert.deepEqual(build('R4', { ...shared, ...extra, resources, statusId: statusIdOf(want) }), want, file);
    }
  });
});

function withStatusRequest(bundle: Json): void {
  bundle.entry[0].request = { method: 'GET', url: `${BASE}/Subscription/admission/$status` };
  bundle.entry[0].response = { status: '200' };
}

describe('notification content rules (P-2..P-6, NB-3, NB-8, D-15, EN-1)', () => {
  it('P-2: empty has only the status entry, no focus, no context, no topic, in every version', () => {
    for (const v of FHIR_VERSIONS) {
      const b = build(v, { content: 'empty', resources: FULL, additional: [PATIENT] });
      assert.equal(b.entry?.length, 1);
      const text = JSON.stringify(b.entry![0]!.resource);
      for (const word of ['focus', 'additional', TOPIC, 'Patient/']) assert.ok(!text.includes(word), `${v}: ${word}`);
    }
  });

  it('§5.4: $status and $events answers keep the topic even for empty subscriptions', () => {
    const b = build('R4B', { content: 'empty', type: 'query-event' });
    assert.equal((b.entry![0]!.resource as Json).topic, TOPIC);
  });

  it('NB-3 P-4: request/response replay the interaction; a deleted or unavailable focus has no resource', () => {
    const obs = (eventNumber: number, interaction: NotificationEvent['interaction'], id: string): NotificationEvent =>
      ({ eventNumber, timestamp: TS, focus: { type: 'Observation', id, versionId: 3 }, interaction });
    const events = [obs(5, 'create', 'a'), obs(6, 'update', 'b'), obs(7, 'delete', 'c'), obs(8, 'update', 'gone')];
    // Valid in every version (an R4 Encounter is not a valid R5 one).
    const resources = new Map<string, Resource>(['a', 'b', 'c'].map((id) => [`Observation/${id}`, { resourceType: 'Observation', id, status: 'final', code: { text: 'x' } }]));
    for (const v of FHIR_VERSIONS) {
      const b = build(v, { content: 'full-resource', events, resources, eventsSinceSubscriptionStart: 8 });
      assert.deepEqual(b.entry!.slice(1).map((e) => [e.fullUrl, e.request?.method, e.request?.url, e.response?.status, e.resource?.id]), [
        [`${BASE}/Observation/a`, 'POST', 'Observation', '201', 'a'],
        [`${BASE}/Observation/b`, 'PUT', 'Observation/b', '200', 'b'],
        [`${BASE}/Observation/c`, 'DELETE', 'Observation/c', '204', undefined],
        [`${BASE}/Observation/gone`, 'PUT', 'Observation/gone', '200', undefined],
      ]);
    }
  });

  it('P-4: a versioned key wins, so a batch shows each version of one resource', () => {
    const resources = new Map<string, Resource>([
      [`Encounter/${ENC_ID}`, { ...ENCOUNTER, status: 'finished' }],
      [`Encounter/${ENC_ID}/_history/1`, { ...ENCOUNTER, status: 'planned' }],
    ]);
    const events = [event(1), { ...event(2, 'update'), focus: { type: 'Encounter', id: ENC_ID, versionId: 2 } }];
    const b = build('R4', { content: 'full-resource', events, resources });
    assert.deepEqual(b.entry!.slice(1).map((e) => (e.resource as Json).status), ['planned', 'finished']);
  });

  it('P-5 P-6: context resources are listed once, after their first focus, per payload level; per-event context wins', () => {
    const other = { resourceType: 'Patient', id: 'other' };
    const events = [event(1, 'update', 'e1'), event(2, 'update', 'e2')];
    const byEvent = new Map([[2, [PATIENT, other]]]);
    const b = build('R5', { content: 'id-only', events, additional: [PATIENT], additionalByEvent: byEvent });
    assert.deepEqual(b.entry!.slice(1).map((e) => [e.fullUrl, e.resource === undefined]), [
      [`${BASE}/Encounter/e1`, true], [`${BASE}/Patient/${PAT_ID}`, true], [`${BASE}/Encounter/e2`, true], [`${BASE}/Patient/other`, true],
    ]);
    const status = b.entry![0]!.resource as Json;
    assert.deepEqual(status.notificationEvent.map((e: Json) => e.additionalContext.map((r: Json) => r.reference)), [
      [`${BASE}/Patient/${PAT_ID}`], [`${BASE}/Patient/${PAT_ID}`, `${BASE}/Patient/other`],
    ]);
  });

  it('bdl-7: R5 lists a repeated focus once; history bundles (R4, R4B) list it per event', () => {
    const events = [event(1, 'update'), event(2, 'update')];
    for (const v of FHIR_VERSIONS) {
      const b = build(v, { events });
      assert.equal(b.entry!.length, v === 'R5' ? 2 : 3, v);
      const status = b.entry![0]!.resource as Json;
      const listed = v === 'R4' ? status.parameter.filter((p: Json) => p.name === 'notification-event') : status.notificationEvent;
      assert.equal(listed.length, 2, `${v}: both events stay in the status`);
    }
  });

  it('D-15: fullUrls and references are absolute on the public base (a trailing slash is ignored)', () => {
    const b = build('R4', { baseUrl: `${BASE}/`, content: 'full-resource', resources: FULL, additional: [PATIENT] });
    assert.deepEqual(b.entry!.map((e) => e.fullUrl?.split(':')[0]), ['urn', 'https', 'https']);
    assert.equal(b.entry![0]!.request?.url, `${BASE}/Subscription/admission/$status`);
    assert.ok(!JSON.stringify(b).includes('fhir//'));
  });

  it('NB-4: a fresh status id when none is given, shared by fullUrl and resource', () => {
    const b = build('R4B', { type: 'heartbeat', events: [] });
    const id = (b.entry![0]!.resource as Json).id as string;
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.equal(b.entry![0]!.fullUrl, `urn:uuid:${id}`);
  });

  it('NB-8 sst-1: event-notification and query-event without events are refused', () => {
    for (const type of ['event-notification', 'query-event'] as const) {
      assert.throws(() => buildNotification(adapterFor('R4'), input({ type, events: [] })), /sst-1/);
    }
  });

  it('EN-1 R5-2: counters are strings in every version (R5 integer64)', () => {
    const b = build('R5', { eventsSinceSubscriptionStart: 12345678901, events: [event(12345678901)] });
    const status = b.entry![0]!.resource as Json;
    assert.equal(status.eventsSinceSubscriptionStart, '12345678901');
    assert.equal(status.notificationEvent[0].eventNumber, '12345678901');
    assert.equal(b.type, 'subscription-notification');
  });
});

describe('$status bundle (§7.1, NB-8 sst-2)', () => {
  const status = (id: string) => ({
    id, subscriptionUrl: `${BASE}/Subscription/admission`, topic: TOPIC, status: 'active' as const,
    type: 'query-status' as const, eventsSinceSubscriptionStart: 310, events: [], errors: [],
  });

  it('§7.1: R4 reproduces Bundle-r4-status-response (plus a self link)', () => {
    const want = expected('examples/r4/Bundle-r4-status-response.json');
    const got = buildStatusBundle(adapterFor('R4'), BASE, [status(statusIdOf(want))], want.timestamp) as Json;
    assertValid('R4', got);
    assert.deepEqual(got.link, [{ relation: 'self', url: `${BASE}/Subscription/$status` }]);
    delete got.link;
    assert.deepEqual(got, want);
  });

  it('§7.1: one status resource per subscription, valid in every version, including none', () => {
    for (const v of FHIR_VERSIONS) {
      const b = buildStatusBundle(adapterFor(v), BASE, [status('a'), { ...status('b'), status: 'error', errors: [{ code: 'no-response', text: 'timeout' }] }], '2024-01-01T00:00:00.000Z');
      assertValid(v, b);
      assert.deepEqual([b.type, b.total, b.entry?.map((e) => e.resource?.resourceType)], ['searchset', 2, Array(2).fill(v === 'R4' ? 'Parameters' : 'SubscriptionStatus')]);
      const empty = buildStatusBundle(adapterFor(v), BASE, [], '2024-01-01T00:00:00.000Z');
      assertValid(v, empty);
      assert.equal(empty.total, 0);
    }
  });
});
