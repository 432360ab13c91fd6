import assert from 'node:assert/strict';
import fc from 'fast-check';
import { VERSIONS } from '../helpers/server.ts';
import { readNotification, subscriptionResource, topicResource, type Version } from '../helpers/subscriptions.ts';
import { connectWs } from '../helpers/ws.ts';
import { type Json, accept, anyJson, contentType, encoded, exampleOf, malformed, mutate, mutation, oddId, oddString, prototypeKeys, segment, wrongValue } from './arbitraries.ts';
import { type BaseInfo, type FuzzRequest, type Harness, type Success, TOPIC, describe } from './harness.ts';

/**
 * The fuzz properties, one per area of the API. Each generates requests against every base and
 * holds when the server's answer satisfies the oracle (harness.ts): a 4xx OperationOutcome or the
 * right success, never a 5xx, never a hang. `weight` sets the share of runs each gets.
 */
export interface FuzzProperty {
  name: string;
  weight: number;
  property(h: Harness): fc.IAsyncProperty<any>;
}

const version = fc.constantFrom(...VERSIONS);
const root = (v: Version) => `/fhir/${v}`;

/** Headers: mostly the right content type, sometimes anything; sometimes Accept, Prefer, If-*. */
const headers = (right: string) =>
  fc
    .record(
      {
        'content-type': fc.oneof({ weight: 4, arbitrary: fc.constant(right) }, { weight: 1, arbitrary: contentType }),
        accept,
        prefer: fc.constantFrom('return=minimal', 'return=OperationOutcome', 'return=representation', 'handling=strict', 'handling=lenient', 'bogus'),
        'if-match': fc.constantFrom('W/"1"', 'W/"2"', '*', '"1"', 'W/""', 'W/"x"', 'garbage'),
        'if-none-match': fc.constantFrom('W/"1"', '*', 'nope'),
      },
      { requiredKeys: [] },
    )
    .map((h) => Object.fromEntries(Object.entries(h).filter(([, x]) => x !== undefined)) as Record<string, string>);

/** An id that stays a path segment (the URL parser folds '', '.' and '..' into the path around them). */
const segmentLike = (id: string) => !/^\.{0,2}$/.test(id);
const expecting = (ok: boolean, resourceType: string) => (ok ? { success: { resourceType } } : {});

const idOf = (b: BaseInfo) => fc.oneof({ weight: 2, arbitrary: fc.constantFrom(b.patientId, b.observationId, b.wsSubscriptionId, b.hookSubscriptionId) }, { weight: 3, arbitrary: oddId });
const typeOf = (b: BaseInfo) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('Patient', 'Observation', 'Subscription', b.version === 'R4' ? 'Basic' : 'SubscriptionTopic') },
    { weight: 3, arbitrary: fc.constantFrom(...b.types) },
    { weight: 1, arbitrary: fc.constantFrom('patient', 'Resource', 'DomainResource', 'Bundle', 'Wombat', '_history', 'metadata', '$status') },
  );

/** A body for `type`: a mutated example, malformed JSON text, or any JSON at all. */
const bodyFor = (v: Version) =>
  exampleOf(v).chain(({ resource }) =>
    fc.oneof(
      { weight: 4, arbitrary: fc.array(mutation, { maxLength: 4 }).map((ms) => ({ type: String(resource.resourceType), text: JSON.stringify(mutate(resource, ms)) })) },
      { weight: 1, arbitrary: malformed(JSON.stringify(resource)).map((text) => ({ type: String(resource.resourceType), text })) },
      { weight: 1, arbitrary: anyJson.map((j) => ({ type: String(resource.resourceType), text: JSON.stringify(j) })) },
    ),
  );

/** create, update, patch, delete, read, vread, conditional create and update on every base. */
const resourceRequest = (h: Harness): fc.Arbitrary<FuzzRequest> =>
  version.chain((v) => {
    const b = h.bases[v];
    const create = fc.tuple(bodyFor(v), headers('application/fhir+json'), fc.boolean()).map(
      ([body, hd, wrongType]): FuzzRequest => ({ method: 'POST', path: `${root(v)}/${wrongType ? 'Patient' : body.type}`, headers: hd, body: body.text, success: { resourceType: wrongType ? 'Patient' : body.type } }),
    );
    const update = fc.tuple(exampleOf(v), fc.oneof(idOf(b), oddId), fc.array(mutation, { maxLength: 3 }), headers('application/fhir+json')).map(([{ resource }, id, ms, hd]): FuzzRequest => ({
      method: 'PUT',
      path: `${root(v)}/${resource.resourceType}/${encoded(id)}`,
      headers: hd,
      body: JSON.stringify(mutate({ ...resource, id }, ms)),
      ...expecting(segmentLike(id), String(resource.resourceType)),
    }));
    const patchOp = fc.record(
      {
        op: fc.constantFrom('add', 'remove', 'replace', 'move', 'copy', 'test', 'bogus', ''),
        path: fc.oneof(fc.constantFrom('/name/0/family', '/name/-', '/active', '/id', '/resourceType', '/meta/versionId', '/status', '', '/', '/a/b/c/d', '/name/99', '/~2'), oddString),
        from: fc.constantFrom('/name/0', '/id', '/nope', ''),
        value: wrongValue,
      },
      { requiredKeys: ['op', 'path'] },
    );
    const patch = fc
      .tuple(fc.constantFrom('Patient', 'Observation', 'Subscription'), idOf(b), fc.oneof({ weight: 4, arbitrary: fc.array(patchOp, { maxLength: 4 }).map((ops) => JSON.stringify(ops)) }, { weight: 1, arbitrary: anyJson.map((j) => JSON.stringify(j)) }), headers('application/json-patch+json'))
      .map(([type, id, body, hd]): FuzzRequest => ({ method: 'PATCH', path: `${root(v)}/${type}/${encoded(id)}`, headers: hd, body, ...expecting(segmentLike(id), type) }));
    const remove = fc.tuple(typeOf(b), idOf(b), headers('application/fhir+json')).map(([type, id, hd]): FuzzRequest => ({ method: 'DELETE', path: `${root(v)}/${type}/${encoded(id)}`, headers: hd }));
    const read = fc.tuple(typeOf(b), idOf(b), fc.option(fc.oneof(fc.constantFrom('1', '2', '0', '-1', '1.0', '99999999999999999999'), oddId)), headers('application/fhir+json')).map(
      ([type, id, vid, hd]): FuzzRequest => ({ method: 'GET', path: `${root(v)}/${type}/${encoded(id)}${vid === null ? '' : `/_history/${encoded(vid)}`}`, headers: hd, ...expecting(segmentLike(id) && (vid === null || segmentLike(vid)) && b.types.includes(type), type) }),
    );
    const conditionalCreate = fc.tuple(bodyFor(v), query(b, 'Patient'), headers('application/fhir+json')).map(([body, q, hd]): FuzzRequest => ({
      method: 'POST',
      path: `${root(v)}/${body.type}`,
      headers: { ...hd, 'if-none-exist': q.replace(/[^\x20-\x7e]/g, '') },
      body: body.text,
      success: { resourceType: body.type },
    }));
    const conditionalUpdate = fc.tuple(bodyFor(v), query(b, 'Patient'), headers('application/fhir+json')).map(([body, q, hd]): FuzzRequest => ({
      method: 'PUT',
      path: `${root(v)}/${body.type}?${q}`,
      headers: hd,
      body: body.text,
      success: { resourceType: body.type },
    }));
    return fc.oneof(create, update, patch, remove, read, conditionalCreate, conditionalUpdate);
  });

const resources: FuzzProperty = {
  name: 'resource interactions (create, read, vread, update, patch, delete, conditional create/update)',
  weight: 4,
  property: (h) => fc.asyncProperty(resourceRequest(h), async (req) => void (await h.check(req))),
};

/** The same requests, several at once: writes that race on one resource or one condition. */
const concurrent: FuzzProperty = {
  name: 'concurrent resource interactions',
  weight: 1,
  property: (h) => fc.asyncProperty(fc.array(resourceRequest(h), { minLength: 2, maxLength: 8 }), async (reqs) => void (await Promise.all(reqs.map((r) => h.check(r))))),
};

const TOPIC_TYPE: Record<Version, string> = { R4: 'Basic', R4B: 'SubscriptionTopic', R5: 'SubscriptionTopic' };

/** Valid Subscriptions and topics of every version, mutated: created, updated, and their filters. */
const subscriptions: FuzzProperty = {
  name: 'Subscriptions and topics, mutated',
  weight: 2,
  property: (h) =>
    fc.asyncProperty(
      version.chain((v) => {
        const sub = fc
          .record({
            channel: fc.constantFrom('rest-hook', 'websocket') as fc.Arbitrary<'rest-hook' | 'websocket'>,
            content: fc.constantFrom('empty', 'id-only', 'full-resource') as fc.Arbitrary<'empty'>,
            filters: fc.array(fc.oneof(fc.constantFrom('Patient?identifier=urn:fuzz|x', 'identifier=a|b', 'Patient.identifier=x', 'Patient?gender=male', 'Patient?identifier:not=x', 'Observation?code=1'), oddString), { maxLength: 2 }),
            endpoint: fc.constantFrom(h.receiver.url, 'http://127.0.0.1:9/x', 'https://example.org/hook', 'http://example.org/hook', 'ftp://x', 'not a url'),
            heartbeat: fc.constantFrom(undefined, 0, 1, 86401, 60),
            topic: fc.oneof(fc.constant(TOPIC), oddString),
          })
          .map((s) => ({ type: 'Subscription', resource: subscriptionResource(v, s) as Json }));
        const topic = fc
          .record({
            url: fc.oneof(fc.constant('http://example.org/fuzz/topic'), oddString),
            resource: fc.oneof(fc.constantFrom('Patient', 'Observation', 'Encounter'), oddString),
            interactions: fc.subarray(['create', 'update', 'delete', 'bogus']),
            current: fc.option(fc.constantFrom('status=final', 'gender=male', 'bogus=1', 'code:in=x', '?&=', '_has:Observation:subject:code=x')),
            previous: fc.option(fc.constantFrom('status=preliminary', 'name=x')),
            fhirPath: fc.option(fc.oneof(fc.constantFrom('%current.status = \'final\'', '(%previous.empty() or %previous.status != \'final\')', 'Patient.name.family.exists()', '%nope', '((('), oddString)),
            canFilterBy: fc.array(fc.record({ param: fc.constantFrom('identifier', 'gender', 'code', 'nope', 'subject') }), { maxLength: 2 }),
            status: fc.constantFrom('active', 'draft', 'retired', 'bogus'),
          })
          .map((t) => ({ type: TOPIC_TYPE[v], resource: topicResource(v, { ...t, current: t.current ?? undefined, previous: t.previous ?? undefined, fhirPath: t.fhirPath ?? undefined } as any, 'fuzz') as Json }));
        return fc.tuple(fc.oneof(sub, topic), fc.array(mutation, { maxLength: 3 }), fc.constantFrom('POST', 'PUT'), idOf(h.bases[v])).map(([{ type, resource }, ms, method, id]): FuzzRequest => {
          const body = mutate(method === 'PUT' ? { ...(resource as object), id } : resource, ms);
          return { method, path: `${root(v)}/${type}${method === 'PUT' ? `/${encoded(id)}` : ''}`, headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(body), ...expecting(method === 'POST' || segmentLike(id), type) };
        });
      }),
      async (req) => void (await h.check(req)),
    ),
};

const MODIFIERS = ['missing', 'exact', 'contains', 'not', 'text', 'in', 'not-in', 'below', 'above', 'of-type', 'identifier', 'iterate', 'code-text', 'text-advanced'];
const PREFIXES = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'];

/** A value for a parameter of `type`, right or wrong. */
const valueFor = (type: string) => {
  const right: Record<string, fc.Arbitrary<string>> = {
    date: fc.constantFrom('2024', '2024-02', '2024-02-29', '2024-02-30', '2024-01-01T10:00:00Z', '2024-01-01T10:00', '1970-01-01T00:00:00+14:00', '99999', '0000', 'yesterday'),
    number: fc.constantFrom('100', '1e3', '-0', '0.0001', '1e400', 'abc', '1,2', ''),
    quantity: fc.constantFrom('5.4|http://unitsofmeasure.org|mg', '5.4||mg', '5.4', '||', '|x|', 'x|y|z', '1e999|a|b'),
    token: fc.constantFrom('http://loinc.org|8867-4', '|x', 'x|', '|', 'urn:fuzz|seed', 'male', 'a\\,b', 'a\\|b'),
    reference: fc.constantFrom('Patient/1', '1', 'http://x/Patient/1', 'Patient/', '/', 'Patient/1/_history/1', 'urn:uuid:1'),
    string: fc.constantFrom('Seed', 'seed', 'é', 'a,b', '%'),
    uri: fc.constantFrom('http://example.org', 'urn:x', 'not a uri', ''),
    composite: fc.constantFrom('a$b', 'http://loinc.org|8867-4$gt70', '$', '$$$'),
  };
  const prefixed = fc.tuple(fc.oneof(fc.constantFrom(...PREFIXES, 'xx', 'EQ', ''), fc.constant('')), right[type] ?? oddString).map(([p, x]) => p + x);
  return fc.oneof({ weight: 3, arbitrary: type === 'date' || type === 'number' || type === 'quantity' ? prefixed : (right[type] ?? oddString) }, { weight: 1, arbitrary: oddString });
};

/** One search parameter: a known one with a modifier and value, a chain, _has, a result parameter, or nonsense. */
const searchParam = (b: BaseInfo, type: string): fc.Arbitrary<[string, string]> => {
  const known = b.params.get(type) ?? [];
  const named = known.length
    ? fc
        .tuple(fc.constantFrom(...known), fc.option(fc.oneof(fc.constantFrom(...MODIFIERS, 'Patient', 'Organization'), oddString), { freq: 3 }))
        .chain(([p, m]) => valueFor(m === 'missing' ? 'missing' : p.type).map((value): [string, string] => [m === null ? p.name : `${p.name}:${m}`, m === 'missing' ? (value.length % 2 ? 'true' : value) : value]))
    : fc.tuple(oddString, oddString);
  return fc.oneof(
    { weight: 5, arbitrary: named },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('subject:Patient.name', 'subject.name', 'subject.organization.name', 'patient.general-practitioner.name', 'subject:Wombat.name', 'subject.', '.name', 'subject:Patient.nope'), oddString) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('_has:Observation:subject:code', '_has:Observation:patient:_has:AuditEvent:entity:type', '_has:Wombat:x:y', '_has:', '_has:Observation:subject'), oddString) },
    {
      weight: 2,
      arbitrary: fc.tuple(
        fc.constantFrom('_include', '_revinclude', '_include:iterate', '_revinclude:iterate', '_sort', '_count', '_total', '_summary', '_elements', '_id', '_lastUpdated', '_tag', '_profile', '_security', '_source', '_text', '_content', '_type', '_format', '_cursor', '_bogus'),
        fc.oneof(fc.constantFrom('Observation:subject', 'Observation:subject:Patient', '*', 'Patient:nope', '-_lastUpdated', 'name,-birthdate', '0', '-1', '1000001', 'accurate', 'none', 'estimate', 'true', 'count', 'data', 'id,name', 'json', 'xml', 'Patient,Observation'), oddString),
      ),
    },
    { weight: 1, arbitrary: fc.tuple(oddString, oddString) },
  );
};

/** A query string for `type` (already encoded). */
const query = (b: BaseInfo, type: string) =>
  fc.array(searchParam(b, type), { maxLength: 4 }).map((ps) => ps.map(([k, val]) => `${encoded(k)}=${encoded(val)}`).join('&'));

/** Type, system and POST _search with generated parameters, modifiers, prefixes, chains and includes. */
const search: FuzzProperty = {
  name: 'search (type and system, GET and POST _search, modifiers, prefixes, chains, _include)',
  weight: 4,
  property: (h) =>
    fc.asyncProperty(
      version.chain((v) => {
        const b = h.bases[v];
        return typeOf(b).chain((type) =>
          fc.tuple(query(b, type), fc.constantFrom('type', 'post', 'system'), headers('application/x-www-form-urlencoded')).map(([q, how, hd]): FuzzRequest => {
            const success = b.types.includes(type) ? { resourceType: 'Bundle', bundleType: ['searchset'] } : undefined;
            const req: FuzzRequest =
              how === 'type'
                ? { method: 'GET', path: `${root(v)}/${type}?${q}`, headers: { prefer: hd.prefer ?? '' } }
                : how === 'system'
                  ? { method: 'GET', path: `${root(v)}?_type=${encoded(type)}&${q}`, headers: { prefer: hd.prefer ?? '' } }
                  : { method: 'POST', path: `${root(v)}/${type}/_search`, headers: { 'content-type': hd['content-type']! }, body: q };
            return success ? { ...req, success } : req;
          }),
        );
      }),
      async (req) => void (await h.check(req)),
    ),
};

/** A modifier that does not exist for any parameter type is a 400 naming the parameter (issue 12 item 4). */
const unknownModifier: FuzzProperty = {
  name: 'search: an unknown modifier is a 400',
  weight: 1,
  property: (h) =>
    fc.asyncProperty(
      version.chain((v) => {
        const b = h.bases[v];
        return fc
          .tuple(fc.constantFrom('Patient', 'Observation'), fc.stringMatching(/^[a-z]{3,8}$/).filter((m) => !MODIFIERS.includes(m)))
          .chain(([type, modifier]) => fc.constantFrom(...(b.params.get(type) ?? [])).map((p): FuzzRequest => ({ method: 'GET', path: `${root(v)}/${type}?${p.name}:${modifier}=x`, statuses: [400], tag: 'unknown-modifier' })));
      }),
      async (req) => {
        const res = await h.check(req);
        if (res.status === 400) assert.ok(JSON.stringify(res.body.issue).includes(req.path.split('?')[1]!.split(':')[0]!), `the 400 names the parameter: ${describe(req)} → ${res.text}`);
      },
    ),
};

/** History at every level with _since, _count and page cursors, and paging links with damaged cursors. */
const history: FuzzProperty = {
  name: 'history and paging (instance, type, system; _since, _count, damaged cursors)',
  weight: 2,
  property: (h) =>
    fc.asyncProperty(
      version,
      fc.constantFrom('history', 'search'),
      fc.constantFrom('instance', 'type', 'system'),
      fc.record({ _since: fc.constantFrom('2024-01-01T00:00:00Z', '2024', 'now', '', '9999-12-31T23:59:59Z'), _count: fc.constantFrom('1', '0', '-1', 'x', '1000000', '') }, { requiredKeys: [] }),
      fc.oneof(fc.constant(null), fc.tuple(fc.nat(), fc.constantFrom('cut', 'flip', 'append', 'replace')), fc.tuple(fc.nat(), fc.constant('odd'), oddString)),
      async (v, what, level, params, damage) => {
        const b = h.bases[v];
        const where = level === 'instance' ? `/Patient/${b.patientId}` : level === 'type' ? '/Patient' : '';
        const q = new URLSearchParams(params as Record<string, string>).toString();
        const first: FuzzRequest =
          what === 'history'
            ? { method: 'GET', path: `${root(v)}${where}/_history?${q}`, success: { resourceType: 'Bundle', bundleType: ['history'] } }
            : { method: 'GET', path: `${root(v)}${level === 'system' ? '?_type=Patient,Observation&' : '/Patient?'}_count=1`, success: { resourceType: 'Bundle', bundleType: ['searchset'] } };
        const res = await h.check(first);
        const next = res.body?.link?.find((l: any) => l.relation === 'next')?.url as string | undefined;
        if (!next || !damage) return;
        const url = new URL(next);
        const cursor = url.searchParams.get('_cursor') ?? '';
        const [at, how, odd] = damage as [number, string, string?];
        const i = cursor.length ? at % cursor.length : 0;
        const damaged = { cut: cursor.slice(0, i), flip: cursor.slice(0, i) + (cursor[i] === 'A' ? 'B' : 'A') + cursor.slice(i + 1), append: `${cursor}==`, replace: '0', odd: odd ?? '' }[how]!;
        url.searchParams.set('_cursor', damaged);
        await h.check({ ...first, path: url.pathname + url.search });
      },
    ),
};

/** batch and transaction Bundles of generated entries, and malformed Bundles. */
const bundles: FuzzProperty = {
  name: 'batch and transaction Bundles',
  weight: 2,
  property: (h) =>
    fc.asyncProperty(
      version.chain((v) => {
        const b = h.bases[v];
        const entry = fc
          .tuple(fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'get', ''), typeOf(b), idOf(b), exampleOf(v), fc.array(mutation, { maxLength: 2 }), fc.nat({ max: 3 }), query(b, 'Patient'))
          .map(([method, type, id, { resource }, ms, ref, q]) => {
            const url = ({ GET: `${type}/${encoded(id)}`, POST: String(resource.resourceType), PUT: `${resource.resourceType}/${encoded(id)}`, PATCH: `Patient/${encoded(id)}`, DELETE: `${type}?${q}` } as Record<string, string>)[method] ?? `${type}?${q}`;
            const body =
              method === 'PATCH'
                ? { resourceType: 'Binary', contentType: 'application/json-patch+json', data: Buffer.from(JSON.stringify([{ op: 'replace', path: '/active', value: true }])).toString('base64') }
                : mutate({ ...resource, ...(method === 'PUT' ? { id } : {}), ...(ref ? { subject: { reference: `urn:uuid:00000000-0000-0000-0000-00000000000${ref}` } } : {}) }, ms);
            return { fullUrl: `urn:uuid:00000000-0000-0000-0000-00000000000${ref}`, ...(method === 'GET' || method === 'DELETE' ? {} : { resource: body }), request: { method, url } };
          });
        return fc.tuple(fc.constantFrom('batch', 'transaction', 'collection', 'bogus'), fc.array(entry, { maxLength: 5 }), fc.array(mutation, { maxLength: 2 })).map(([type, entries, ms]): FuzzRequest => ({
          method: 'POST',
          path: root(v),
          headers: { 'content-type': 'application/fhir+json' },
          body: JSON.stringify(mutate({ resourceType: 'Bundle', type, entry: entries as Json }, ms)),
          success: { resourceType: 'Bundle', bundleType: ['batch-response', 'transaction-response'] },
        }));
      }),
      async (req) => void (await h.check(req)),
    ),
};

/** A binding token's text: well-formed (base64url, 43 characters) but unknown, or anything. */
const tokenLike = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{43}$/), fc.constantFrom('x'.repeat(43), 'x'.repeat(513), ''), oddString);

/** What a success of each operation is. */
const OPERATION_SUCCESS: Record<string, Success> = {
  status: { resourceType: 'Bundle', bundleType: ['searchset'] },
  events: { resourceType: 'Bundle', bundleType: ['history', 'subscription-notification'] },
  'get-ws-binding-token': { resourceType: 'Parameters' },
  'revoke-ws-binding-token': { resourceType: 'OperationOutcome' },
  bogus: {},
};

/** $status, $events, $get-ws-binding-token, $revoke-ws-binding-token (and unknown operations) by GET and POST at every level. */
const operations: FuzzProperty = {
  name: 'operations ($status, $events, $get-ws-binding-token, $revoke-ws-binding-token)',
  weight: 3,
  property: (h) =>
    fc.asyncProperty(
      version.chain((v) => {
        const b = h.bases[v];
        const subId = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(b.wsSubscriptionId, b.hookSubscriptionId) }, { weight: 1, arbitrary: idOf(b) });
        const name = fc.constantFrom('id', 'status', 'eventsSinceNumber', 'eventsUntilNumber', 'content', 'token', '_format', 'bogus');
        const value = fc.oneof(fc.constantFrom('0', '1', '2', '999999', '-1', '1.5', '1e3', 'active', 'off', 'empty', 'id-only', 'full-resource', b.wsSubscriptionId, b.hookSubscriptionId), tokenLike, oddString);
        const parameter = fc.oneof(
          { weight: 5, arbitrary: fc.tuple(name, fc.constantFrom('valueString', 'valueId', 'valueInteger', 'valueCode', 'valueUnsignedInt', 'valueBoolean'), value).map(([n, k, x]) => ({ name: n, [k]: k === 'valueInteger' || k === 'valueUnsignedInt' ? Number(x) : k === 'valueBoolean' ? x === 'true' : x })) },
          { weight: 1, arbitrary: fc.tuple(name, fc.constantFrom('valueString', 'valueId', 'valueCode'), wrongValue).map(([n, k, x]) => ({ name: n, [k]: x })) },
        );
        const post = fc.oneof(
          { weight: 4, arbitrary: fc.tuple(fc.array(parameter, { maxLength: 4 }), fc.array(mutation, { maxLength: 2 })).map(([ps, ms]) => JSON.stringify(mutate({ resourceType: 'Parameters', parameter: ps as Json }, ms))) },
          { weight: 1, arbitrary: malformed(JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'id', valueString: b.wsSubscriptionId }] })) },
        );
        return fc
          .tuple(
            fc.constantFrom('status', 'events', 'get-ws-binding-token', 'revoke-ws-binding-token', 'bogus'),
            fc.constantFrom('instance', 'type', 'type', 'system', 'other-type'),
            subId,
            fc.constantFrom('GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE'),
            fc.array(fc.tuple(name, value), { maxLength: 3 }),
            post,
          )
          .map(([op, level, id, method, qs, body]): FuzzRequest => {
            const at = { instance: `/Subscription/${encoded(id)}`, type: '/Subscription', system: '', 'other-type': '/Patient' }[level];
            const q = qs.map(([k, x]) => `${encoded(k)}=${encoded(x)}`).join('&');
            return {
              method,
              path: `${root(v)}${at}/$${op}${q ? `?${q}` : ''}`,
              headers: method === 'POST' ? { 'content-type': 'application/fhir+json' } : {},
              ...(method === 'POST' ? { body } : {}),
              ...(level !== 'instance' || segmentLike(id) ? { success: OPERATION_SUCCESS[op]! } : {}),
            };
          });
      }),
      async (req) => void (await h.check(req)),
    ),
};

/**
 * $validate at type and instance level on every base, mostly by POST: the resource as the body
 * (mutated examples, malformed text, any JSON) or a Parameters with `resource`, `mode` and
 * `profile` (right, wrong or of the wrong JSON type), also in the query. A success is always a
 * 200 OperationOutcome (valid or not, the issues are in it); bad input a 4xx OperationOutcome.
 */
const validate: FuzzProperty = {
  name: '$validate (type and instance level; resource or Parameters with mode and profile)',
  weight: 3,
  property: (h) =>
    fc.asyncProperty(
      version.chain((v) => {
        const b = h.bases[v];
        const mode = fc.oneof({ weight: 4, arbitrary: fc.constantFrom('create', 'update', 'delete') }, { weight: 1, arbitrary: fc.constantFrom('general', 'CREATE', '', 'bogus') }, { weight: 1, arbitrary: oddString });
        const profile = (type: string) => fc.oneof(fc.constantFrom(`http://hl7.org/fhir/StructureDefinition/${type}`, `http://hl7.org/fhir/StructureDefinition/${type}|4.0.1`, 'http://hl7.org/fhir/StructureDefinition/Patient', 'http://example.org/profile'), oddString);
        // A parameter in a form $validate does not read it in, or with a value of the wrong JSON type.
        const wrongForm = (name: string) =>
          fc.tuple(fc.constantFrom('valueCode', 'valueUri', 'valueString', 'resource', 'valueBoolean'), fc.oneof(wrongValue, prototypeKeys)).map(([k, x]): Json => ({ name, [k]: x }));
        // Each of resource, mode and profile at most once (a repeat is one more way to a 400), right or wrong.
        const parameters = (type: string, resource: Json) =>
          fc
            .tuple(
              fc.record(
                {
                  resource: fc.oneof({ weight: 4, arbitrary: fc.constant<Json>({ name: 'resource', resource }) }, { weight: 1, arbitrary: wrongForm('resource') }),
                  mode: fc.oneof({ weight: 3, arbitrary: fc.tuple(fc.constantFrom('valueCode', 'valueString', 'valueUri'), mode).map(([k, m]): Json => ({ name: 'mode', [k]: m })) }, { weight: 1, arbitrary: wrongForm('mode') }),
                  profile: fc.oneof({ weight: 2, arbitrary: fc.tuple(fc.constantFrom('valueUri', 'valueCanonical', 'valueString'), profile(type)).map(([k, x]): Json => ({ name: 'profile', [k]: x })) }, { weight: 1, arbitrary: wrongForm('profile') }),
                  other: fc.oneof(fc.constantFrom<Json>({ name: 'bogus', valueString: 'x' }, { name: '' }, { valueCode: 'create' }), wrongValue),
                },
                { requiredKeys: [] },
              ),
              fc.boolean(),
            )
            .map(([r, repeat]) => {
              const list = Object.values(r) as Json[];
              return repeat && list.length > 0 ? [...list, list[0]!] : list;
            });
        return fc
          .tuple(
            bodyFor(v),
            exampleOf(v),
            fc.oneof({ weight: 3, arbitrary: fc.constant<string | undefined>(undefined) }, { weight: 1, arbitrary: typeOf(b) }),
            fc.constantFrom('type', 'type', 'instance', 'instance', 'instance-seeded'),
            idOf(b),
            fc.constantFrom('resource', 'parameters', 'parameters', 'none'),
            fc.array(mutation, { maxLength: 2 }),
            fc.option(fc.tuple(fc.constantFrom('mode', 'profile', 'bogus', '_format'), fc.oneof(mode, oddString)), { freq: 4 }),
            fc.constantFrom('POST', 'POST', 'POST', 'POST', 'GET', 'PUT', 'DELETE'),
            headers('application/fhir+json'),
          )
          .chain(([body, example, otherType, level, id, shape, ms, q, method, hd]) => {
            // The raw body is the generated text; in a Parameters, the example itself (mutated below).
            const type = otherType ?? (shape === 'resource' ? body.type : String(example.resource.resourceType));
            const resource = example.resource as Json;
            const instance = level === 'instance-seeded' ? (type === 'Observation' ? b.observationId : b.patientId) : id;
            const at = level === 'type' ? `${root(v)}/${type}/$validate` : `${root(v)}/${type}/${encoded(instance)}/$validate`;
            const query = q ? `?${encoded(q[0])}=${encoded(q[1])}` : '';
            return parameters(type, mutate(level === 'type' ? resource : ({ ...(resource as object), id: instance } as Json), ms)).map((ps): FuzzRequest => {
              const text = shape === 'resource' ? body.text : shape === 'parameters' ? JSON.stringify({ resourceType: 'Parameters', parameter: ps }) : undefined;
              return {
                method,
                path: at + query,
                headers: hd,
                ...(text !== undefined ? { body: text } : {}),
                ...(level === 'type' || segmentLike(instance) ? { success: { resourceType: 'OperationOutcome' } } : {}),
              };
            });
          });
      }),
      async (req) => void (await h.check(req)),
    ),
};

/** Any method on any path of a base (metadata, _search, _history, odd segments), any content type and body. */
const raw: FuzzProperty = {
  name: 'raw requests (any method, path, content type, Accept and body; metadata)',
  weight: 2,
  property: (h) =>
    fc.asyncProperty(
      fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'),
      fc.oneof(
        { weight: 6, arbitrary: fc.tuple(version, fc.array(fc.oneof(fc.constantFrom('metadata', '_history', '_search', '$status', 'Patient', 'Subscription', '1', ''), segment), { maxLength: 5 })).map(([v, s]) => [root(v), ...s].join('/')) },
        { weight: 1, arbitrary: fc.constantFrom('/', '/fhir', '/fhir/', '/fhir/r4', '/fhir/R6/Patient', '/FHIR/R4/metadata', '/ws', '//fhir//R4', '/fhir/R4/../R5/metadata', '/fhir/R4?_format=xml') },
      ),
      fc.option(
        fc.oneof(
          fc.constantFrom('_format=json', '_format=xml', '_format=text/html', '_pretty=true', '_summary=true', '=', '&&&', '%', 'a=%zz', `name=${'x'.repeat(100_000)}`),
          oddString.map((s) => `${encoded(s)}=${encoded(s)}`),
        ),
      ),
      contentType,
      accept,
      fc.oneof(fc.constant(undefined), anyJson.map((j) => JSON.stringify(j)), malformed('{"resourceType":"Patient","active":true}'), fc.constant('a=b&c=%zz')),
      async (method, path, q, ct, acc, body) => {
        const req: FuzzRequest = {
          method,
          path: q === null ? path : `${path}?${q}`,
          headers: Object.fromEntries(Object.entries({ 'content-type': ct, accept: acc }).filter(([, x]) => x !== undefined)) as Record<string, string>,
          ...(body !== undefined && method !== 'GET' ? { body } : {}),
          ...(/\/metadata$/.test(path) && method === 'GET' ? { success: { resourceType: 'CapabilityStatement' } } : {}),
        };
        await h.check(req);
      },
    ),
};

const isHandshake = (f: any) => f?.resourceType === 'Bundle' && readNotification(f).type === 'handshake';

type Frame = { text: string } | { binary: Uint8Array } | { bind: 'valid' | 'revoked' } | { unbind: 'valid' } | { revoke: 'valid' };

/** Garbage on /ws: every frame is answered with an OperationOutcome (or pong); the socket stays usable. */
const websocket: FuzzProperty = {
  name: 'websocket frames (garbage, wrong JSON, bad tokens)',
  weight: 1,
  property: (h) => {
    const frame: fc.Arbitrary<Frame> = fc.oneof(
      { weight: 3, arbitrary: oddString.map((text) => ({ text })) },
      { weight: 2, arbitrary: anyJson.map((j) => ({ text: JSON.stringify(j) })) },
      {
        weight: 3,
        arbitrary: fc
          .tuple(fc.constantFrom('bind-with-token', 'unbind-from-token', 'unbind-with-token', 'ping', 'pong', 'BIND-WITH-TOKEN', ''), fc.oneof(fc.record({ token: wrongValue }), wrongValue))
          .map(([type, payload]) => ({ text: JSON.stringify({ type, payload }) })),
      },
      { weight: 2, arbitrary: fc.tuple(fc.constantFrom('bind-with-token', 'unbind-with-token', 'bind-with-token  ', 'bind-with-token\t'), oddString).map(([c, t]) => ({ text: `${c} ${t}` })) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((binary) => ({ binary })) },
      { weight: 1, arbitrary: fc.constantFrom<Frame>({ bind: 'valid' }, { bind: 'revoked' }, { unbind: 'valid' }, { revoke: 'valid' }) },
    );
    return fc.asyncProperty(version, fc.array(frame, { minLength: 1, maxLength: 8 }), async (v, frames) => {
      // A subscription of its own: the other properties may have deleted or changed the seeded ones.
      const sub = await h.send({ method: 'POST', path: `${root(v)}/Subscription`, headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(subscriptionResource(v, { topic: TOPIC, channel: 'websocket' })) });
      assert.equal(sub.status, 201, sub.text);
      const newToken = async () => {
        const res = await h.send({ method: 'GET', path: `${root(v)}/Subscription/${sub.body.id}/$get-ws-binding-token` });
        assert.equal(res.status, 200, res.text);
        return res.body.parameter.find((p: any) => p.name === 'token').valueString as string;
      };
      const valid = await newToken();
      const client = await connectWs(`${h.server.url.replace('http', 'ws')}/ws`);
      const closed = new Promise<number>((resolve) => client.ws.once('close', (code) => resolve(code)));
      try {
        // A frame over the endpoint's 64 KiB limit closes the socket with 1009 (message too big), as documented.
        const tooBig = frames.findIndex((f) => ('text' in f ? Buffer.byteLength(f.text) : 'binary' in f ? f.binary.length : 0) > 64 * 1024);
        for (const f of tooBig >= 0 ? frames.slice(0, tooBig + 1) : frames) {
          if ('text' in f) client.send(f.text);
          else if ('binary' in f) client.ws.send(f.binary, { binary: true });
          else if ('bind' in f) client.send(`bind-with-token ${f.bind === 'valid' ? valid : 'x'.repeat(43)}`);
          else if ('revoke' in f) {
            // $revoke-ws-binding-token with the real token, between frames: 200 OperationOutcome, bound or not.
            const body = JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'token', valueString: valid }] });
            await h.check({ method: 'POST', path: `${root(v)}/Subscription/$revoke-ws-binding-token`, headers: { 'content-type': 'application/fhir+json' }, body, statuses: [200], success: { resourceType: 'OperationOutcome' } });
          } else client.send(`unbind-with-token ${valid}`);
        }
        if (tooBig >= 0) return assert.equal(await closed, 1009);
        client.send('{"type":"ping"}');
        await client.next((x) => x?.type === 'pong', 5000);
        const strays = client.frames.filter((x) => !(x?.resourceType === 'OperationOutcome' || x?.resourceType === 'Bundle' || x?.type === 'pong'));
        assert.deepEqual(strays, [], `frames that are neither OperationOutcome, Bundle nor pong after ${JSON.stringify(frames).slice(0, 500)}`);
        // The socket is still usable: a fresh token binds and its handshake arrives.
        const handshakes = client.frames.filter(isHandshake).length;
        client.send(`bind-with-token ${await newToken()}`);
        await client.waitCount(isHandshake, handshakes + 1, 5000);
      } catch (err) {
        const code = await Promise.race([closed, new Promise((r) => setTimeout(() => r(undefined), 10))]);
        throw code === undefined ? err : new assert.AssertionError({ message: `the server closed the socket (${code}) after ${JSON.stringify(frames).slice(0, 500)}` });
      } finally {
        await client.close();
        await h.send({ method: 'DELETE', path: `${root(v)}/Subscription/${sub.body.id}` });
      }
    });
  },
};

export const PROPERTIES: readonly FuzzProperty[] = [resources, concurrent, subscriptions, search, unknownModifier, history, bundles, operations, validate, raw, websocket];
