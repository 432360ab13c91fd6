import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { eventsOf, idFromReference, NotificationFormatError, parseFrame, parseNotification } from './notifications.ts';
import { versionFromBaseUrl, versionFromFhirVersion } from './rest.ts';
import { isReusable, parseFilter, summarizeSubscription, websocketSubscription } from './subscriptions.ts';

const EXAMPLES = fileURLToPath(new URL('../../test/fixtures/spec/examples/', import.meta.url));
const example = (path: string) => JSON.parse(readFileSync(EXAMPLES + path, 'utf8'));
const ENC = 'https://example.org/fhir/Encounter/86009987-eabe-42bf-8c02-b112b18cb616';
const PAT = 'https://example.org/fhir/Patient/1599eb66-431a-447c-a3de-6897fe9ae9a1';

describe('parseNotification: every IG/R5 notification example', () => {
  for (const dir of ['r4', 'r4b', 'r5']) {
    for (const file of readdirSync(EXAMPLES + dir).filter((f) => /^Bundle-.*(notification|events)/.test(f))) {
      it(`${dir}/${file}`, () => {
        const n = parseNotification(example(`${dir}/${file}`));
        assert.equal(n.subscriptionId, 'admission');
        assert.equal(n.shape, dir === 'r4' ? 'parameters' : 'subscription-status');
        assert.ok(['handshake', 'heartbeat', 'event-notification', 'query-status', 'query-event'].includes(n.type));
        if (n.type === 'event-notification' || n.type === 'query-event') assert.ok(n.events.length > 0);
      });
    }
  }
});

for (const [v, shape] of [
  ['r4', 'parameters'],
  ['r4b', 'subscription-status'],
] as const) {
  describe(`${v} notifications (${shape})`, () => {
    it('handshake: type, status, count 0, no events', () => {
      const n = parseNotification(example(`${v}/Bundle-${v}-notification-handshake.json`));
      assert.equal(n.type, 'handshake');
      assert.equal(n.status, 'requested');
      assert.equal(n.eventsSinceSubscriptionStart, 0);
      assert.equal(n.topic, 'http://hl7.org/SubscriptionTopic/admission');
      assert.equal(n.subscriptionReference, 'https://example.org/fhir/Subscription/admission');
      assert.deepEqual(n.events, []);
      assert.deepEqual(eventsOf(n), []);
    });

    it('heartbeat: the count', () => {
      const n = parseNotification(example(`${v}/Bundle-${v}-notification-heartbeat.json`));
      assert.equal(n.type, 'heartbeat');
      assert.equal(n.eventsSinceSubscriptionStart, 2);
    });

    it('empty: event number and timestamp, no focus', () => {
      const [e, ...more] = eventsOf(parseNotification(example(`${v}/Bundle-${v}-notification-empty.json`)));
      assert.equal(more.length, 0);
      assert.equal(e!.eventNumber, 2);
      assert.equal(e!.timestamp, '2020-05-29T11:44:13.1882432-05:00');
      assert.equal(e!.focus, undefined);
      assert.equal(e!.resource, undefined);
      assert.equal(e!.source, 'event-notification');
    });

    it('id-only: the focus, no resource', () => {
      const [e] = eventsOf(parseNotification(example(`${v}/Bundle-${v}-notification-id-only.json`)));
      assert.equal(e!.focus, ENC);
      assert.equal(e!.resource, undefined);
    });

    it('full-resource: the focus resource and the interaction from its entry', () => {
      const [e] = eventsOf(parseNotification(example(`${v}/Bundle-${v}-notification-full-resource.json`)));
      assert.equal(e!.focus, ENC);
      assert.equal(e!.resource?.resourceType, 'Encounter');
      assert.equal(e!.resource?.id, '86009987-eabe-42bf-8c02-b112b18cb616');
      assert.equal(e!.interaction, 'create');
      assert.equal(e!.subscriptionId, 'admission');
      assert.equal(e!.topic, 'http://hl7.org/SubscriptionTopic/admission');
    });

    it('multi-resource: additional context', () => {
      const [e] = eventsOf(parseNotification(example(`${v}/Bundle-${v}-notification-multi-resource.json`)));
      assert.deepEqual(e!.additionalContext, [PAT]);
      assert.equal(e!.resource?.resourceType, 'Encounter');
    });

    it('error: query-status with its error and status', () => {
      const n = parseNotification(example(`${v}/Bundle-${v}-notification-error.json`));
      assert.equal(n.type, 'query-status');
      assert.equal(n.status, 'error');
      assert.ok(n.errors.length > 0);
    });
  });
}

describe('r4b $events response', () => {
  it('two query-event events with focus and PUT = update', () => {
    const n = parseNotification(example('r4b/Bundle-r4b-events-response.json'));
    assert.equal(n.type, 'query-event');
    assert.equal(n.eventsSinceSubscriptionStart, 310);
    const events = eventsOf(n);
    assert.deepEqual(events.map((e) => e.eventNumber), [307, 308]);
    assert.deepEqual(events.map((e) => e.focus), ['https://example.org/fhir/Encounter/307', 'https://example.org/fhir/Encounter/308']);
    assert.deepEqual(events.map((e) => e.interaction), ['update', 'update']);
    assert.deepEqual(events.map((e) => e.source), ['query-event', 'query-event']);
  });
});

describe('r5 notifications', () => {
  it('handshake in a subscription-notification Bundle', () => {
    const n = parseNotification(example('r5/Bundle-r5-notification-handshake.json'));
    assert.equal(n.bundle.type, 'subscription-notification');
    assert.equal(n.type, 'handshake');
    assert.equal(n.eventsSinceSubscriptionStart, 0);
  });

  it('id-only with additional context; integer64 as string or number', () => {
    const bundle = example('r5/Bundle-r5-notification-id-only.json');
    const [e] = eventsOf(parseNotification(bundle));
    assert.equal(e!.eventNumber, 2);
    assert.equal(e!.focus, ENC);
    assert.deepEqual(e!.additionalContext, [PAT]);
    assert.equal(e!.interaction, 'update');
    bundle.entry[0].resource.notificationEvent[0].eventNumber = 7;
    bundle.entry[0].resource.eventsSinceSubscriptionStart = 7;
    const n = parseNotification(bundle);
    assert.equal(n.events[0]!.eventNumber, 7);
    assert.equal(n.eventsSinceSubscriptionStart, 7);
  });
});

describe('malformed notifications', () => {
  it('rejects what is not a notification', () => {
    assert.throws(() => parseNotification({ resourceType: 'Patient' }), NotificationFormatError);
    assert.throws(() => parseNotification({ resourceType: 'Bundle', entry: [] }), NotificationFormatError);
    assert.throws(() => parseNotification({ resourceType: 'Bundle', entry: [{ resource: { resourceType: 'Patient' } }] }), NotificationFormatError);
    const b = example('r4b/Bundle-r4b-notification-id-only.json');
    delete b.entry[0].resource.notificationEvent[0].eventNumber;
    assert.throws(() => parseNotification(b), /eventNumber/);
  });

  it('reads relative focus references and entries matched by type/id', () => {
    const b = example('r4b/Bundle-r4b-notification-full-resource.json');
    b.entry[0].resource.notificationEvent[0].focus.reference = 'Encounter/86009987-eabe-42bf-8c02-b112b18cb616';
    const [e] = eventsOf(parseNotification(b));
    assert.equal(e!.resource?.resourceType, 'Encounter');
  });
});

describe('parseFrame', () => {
  it('classifies notifications, OperationOutcomes, pong, keepalive and junk', () => {
    const n = parseFrame(JSON.stringify(example('r4/Bundle-r4-notification-id-only.json')));
    assert.equal(n.kind, 'notification');
    const o = parseFrame(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'expired', diagnostics: 'token expired' }] }));
    assert.deepEqual(o.kind === 'outcome' && o.message, 'token expired');
    assert.equal(parseFrame('{"type":"pong"}').kind, 'pong');
    assert.equal(parseFrame('keepalive 2024-01-01T00:00:00Z').kind, 'keepalive');
    assert.equal(parseFrame('hello').kind, 'unknown');
    assert.equal(parseFrame('{"resourceType":"Bundle"}').kind, 'unknown');
  });
});

describe('references and versions', () => {
  it('reads ids from absolute, relative and versioned references', () => {
    assert.equal(idFromReference('https://x/fhir/R4/Subscription/abc-1', 'Subscription'), 'abc-1');
    assert.equal(idFromReference('Subscription/abc/_history/3', 'Subscription'), 'abc');
    assert.equal(idFromReference('Patient/abc', 'Subscription'), undefined);
  });

  it('detects the FHIR version from the base URL or fhirVersion', () => {
    assert.equal(versionFromBaseUrl('http://h:1/fhir/R4'), 'R4');
    assert.equal(versionFromBaseUrl('http://h:1/fhir/r4b/'), 'R4B');
    assert.equal(versionFromBaseUrl('http://h:1/fhir/R5'), 'R5');
    assert.equal(versionFromBaseUrl('http://h:1/fhir'), undefined);
    assert.equal(versionFromFhirVersion('4.0.1'), 'R4');
    assert.equal(versionFromFhirVersion('4.3.0'), 'R4B');
    assert.equal(versionFromFhirVersion('5.0.0'), 'R5');
    assert.equal(versionFromFhirVersion('3.0.2'), undefined);
  });
});

describe('websocket Subscriptions', () => {
  const req = { topic: 'http://example.org/topics/patient-created', filters: ['Patient?identifier=x'], content: 'full-resource' as const };

  it('builds the backport shape on R4/R4B and the native one on R5', () => {
    const r4 = websocketSubscription('R4', req) as any;
    assert.equal(r4.criteria, req.topic);
    assert.equal(r4.channel.type, 'websocket');
    assert.equal(r4.channel.payload, 'application/fhir+json');
    assert.equal(r4.channel._payload.extension[0].valueCode, 'full-resource');
    assert.equal(r4._criteria.extension[0].valueString, 'Patient?identifier=x');
    assert.equal(r4.channel.endpoint, undefined);
    const r5 = websocketSubscription('R5', req) as any;
    assert.equal(r5.topic, req.topic);
    assert.equal(r5.channelType.code, 'websocket');
    assert.equal(r5.content, 'full-resource');
    assert.deepEqual(r5.filterBy, [{ resourceType: 'Patient', filterParameter: 'identifier', value: 'x' }]);
  });

  it('parses every filter syntax', () => {
    assert.deepEqual(parseFilter('Encounter?patient=Patient/1&status:not=finished'), [
      { resourceType: 'Encounter', filterParameter: 'patient', value: 'Patient/1' },
      { resourceType: 'Encounter', filterParameter: 'status', modifier: 'not', value: 'finished' },
    ]);
    assert.deepEqual(parseFilter('Observation.value-quantity=gt5'), [{ resourceType: 'Observation', filterParameter: 'value-quantity', comparator: 'gt', value: '5' }]);
    assert.deepEqual(parseFilter('identifier=x'), [{ filterParameter: 'identifier', value: 'x' }]);
  });

  it('reuses a stored subscription only with the same topic, filters, content and channel, live', () => {
    for (const v of ['R4', 'R4B', 'R5'] as const) {
      const stored = { ...websocketSubscription(v, req), id: 's1', status: 'active' };
      const s = summarizeSubscription(stored)!;
      assert.ok(isReusable(s, req), v);
      assert.ok(isReusable(s, { ...req, filters: ['identifier=x'] }), `${v}: same filter in another syntax`);
      assert.ok(!isReusable(s, { ...req, filters: ['Patient?identifier=y'] }), v);
      assert.ok(!isReusable(s, { ...req, content: 'id-only' }), v);
      assert.ok(!isReusable(s, { ...req, topic: 'http://other' }), v);
      assert.ok(!isReusable({ ...s, status: 'off' }, req), v);
      assert.ok(!isReusable({ ...s, channelType: 'rest-hook' }, req), v);
    }
  });
});
