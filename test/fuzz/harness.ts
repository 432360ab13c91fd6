import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { VERSIONS, call, startServer, type TestServer } from '../helpers/server.ts';
import { readNotification, subscriptionResource, type Version } from '../helpers/subscriptions.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { connectWs } from '../helpers/ws.ts';

/**
 * The fuzzer's side of the wire: a real Herald on loopback with a little known state on every
 * base, one way to send a generated request (with a timeout: a hang is a failure), the oracle every
 * answer must satisfy, and the check that the server is healthy and still delivering afterwards.
 */

/** The topic installed on every base (test/fixtures/topics): Patient creates, filterable by identifier. */
export const TOPIC = 'http://example.org/topics/patient-created';
const TOPICS_DIR = fileURLToPath(new URL('../fixtures/topics', import.meta.url));

/** Longest a request may take before it counts as a hang. */
export const REQUEST_TIMEOUT_MS = Number(process.env.FUZZ_TIMEOUT_MS ?? 15_000);

/** A generated HTTP request; `path` is below the server's root (e.g. `/fhir/R4/Patient?x=1`). */
export interface FuzzRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** What a success must look like, when the request is one a success is possible for. */
  success?: Success;
  /** Statuses that are right for this request; default: any non-5xx. */
  statuses?: readonly number[];
  /** Names the property a known-open bug is tolerated in (see KNOWN_OPEN). */
  tag?: string;
}

export interface Success {
  resourceType?: string;
  /** Bundle.type, when resourceType is Bundle. */
  bundleType?: readonly string[];
}

export interface FuzzResponse {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

/**
 * Known bugs being fixed elsewhere: an answer that fails the oracle but matches one of these is
 * counted, not failed, so that the fixed-seed run in `npm test` does not depend on them yet. Empty
 * when every bug the fuzzer has found is fixed (the three of issue 12 are).
 */
export const KNOWN_OPEN: Record<string, { issue: string; matches(req: FuzzRequest, res: FuzzResponse): boolean }> = {};

/** What each base offers, read from its CapabilityStatement (so generators use real names). */
export interface BaseInfo {
  version: Version;
  types: string[];
  params: Map<string, { name: string; type: string }[]>;
  patientId: string;
  observationId: string;
  /** A websocket and a rest-hook Subscription on TOPIC. */
  wsSubscriptionId: string;
  hookSubscriptionId: string;
}

export interface Harness {
  server: TestServer;
  receiver: Receiver;
  bases: Record<Version, BaseInfo>;
  /** Known-open bugs met so far, by KNOWN_OPEN key. */
  knownHits: Map<string, number>;
  send(req: FuzzRequest): Promise<FuzzResponse>;
  /** Sends and applies the oracle: throws an AssertionError describing the request on failure. */
  check(req: FuzzRequest): Promise<FuzzResponse>;
  /** /healthz answers 200, and a new websocket and rest-hook subscription on every base each get their event. */
  assertHealthyAndDelivering(): Promise<void>;
  close(): Promise<void>;
}

export async function startHarness(): Promise<Harness> {
  const server = await startServer({ HERALD_TOPICS: TOPICS_DIR, HERALD_BODY_LIMIT: String(4 * 1024 * 1024), HERALD_RETRY_BASE_MS: '50', HERALD_RETRY_CAP_MS: '200' });
  const receiver = await startReceiver();
  const bases = {} as Record<Version, BaseInfo>;
  for (const v of VERSIONS) bases[v] = await baseInfo(server, receiver, v);
  const knownHits = new Map<string, number>();

  const send = async (req: FuzzRequest): Promise<FuzzResponse> => {
    const res = await fetch(server.url + req.path, {
      method: req.method,
      headers: req.headers ?? {},
      ...(req.body !== undefined && req.method !== 'GET' ? { body: req.body } : {}),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    }).catch((err: Error) => {
      throw new assert.AssertionError({ message: `${describe(req)}: no answer (${err.name === 'TimeoutError' ? `hang: over ${REQUEST_TIMEOUT_MS} ms` : err.message})` });
    });
    const text = await res.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    return { status: res.status, headers: res.headers, text, body };
  };

  const check = async (req: FuzzRequest) => {
    const res = await send(req);
    try {
      assertAnswer(req, res);
    } catch (err) {
      const known = Object.entries(KNOWN_OPEN).find(([, k]) => k.matches(req, res));
      if (!known) throw err;
      knownHits.set(known[0], (knownHits.get(known[0]) ?? 0) + 1);
    }
    return res;
  };

  return {
    server,
    receiver,
    bases,
    knownHits,
    send,
    check,
    async assertHealthyAndDelivering() {
      const health = await send({ method: 'GET', path: '/healthz' });
      assert.equal(health.status, 200, `/healthz after fuzzing: ${health.text}`);
      for (const v of VERSIONS) await assertDelivering(server, receiver, v);
    },
    async close() {
      await receiver.close();
      await server.close();
    },
  };
}

/** The oracle: never a 5xx; an error is a JSON OperationOutcome; a success has the right shape. */
export function assertAnswer(req: FuzzRequest, res: FuzzResponse): void {
  const what = () => `${describe(req)}\n  → ${res.status} ${res.text.slice(0, 600)}`;
  assert.ok(res.status < 500, `5xx: ${what()}`);
  if (req.statuses) assert.ok(req.statuses.includes(res.status), `expected ${req.statuses.join('/')}: ${what()}`);
  if (res.status >= 400) {
    assert.match(res.headers.get('content-type') ?? '', /^application\/fhir\+json/, `error without FHIR JSON: ${what()}`);
    assert.equal(res.body?.resourceType, 'OperationOutcome', `error that is not an OperationOutcome: ${what()}`);
    assert.ok(Array.isArray(res.body.issue) && res.body.issue.length > 0, `OperationOutcome without issues: ${what()}`);
    return;
  }
  if (res.status === 304) return assert.ok(header(req, 'if-none-match'), `304 without If-None-Match: ${what()}`);
  assert.ok(res.status >= 200 && res.status < 300, `unexpected status: ${what()}`);
  if (res.status === 204 || (res.text === '' && /return=minimal/i.test(header(req, 'prefer') ?? ''))) return;
  assert.ok(res.body && typeof res.body.resourceType === 'string', `success without a resource: ${what()}`);
  if (/return=operationoutcome/i.test(header(req, 'prefer') ?? '') && res.body.resourceType === 'OperationOutcome') return;
  const s = req.success;
  if (s?.resourceType) assert.equal(res.body.resourceType, s.resourceType, `wrong resource: ${what()}`);
  if (s?.bundleType) assert.ok(s.bundleType.includes(res.body.type), `wrong Bundle.type: ${what()}`);
}

const header = (req: FuzzRequest, name: string) => Object.entries(req.headers ?? {}).find(([k]) => k.toLowerCase() === name)?.[1];

/** A request, short enough to read in a counterexample. */
export function describe(req: FuzzRequest): string {
  const body = req.body ?? '';
  const shown = body.length > 400 ? `${body.slice(0, 400)}… (${body.length} chars)` : body;
  const path = req.path.length > 400 ? `${req.path.slice(0, 400)}… (${req.path.length} chars)` : req.path;
  return `${req.method} ${path}${req.headers ? ` ${JSON.stringify(req.headers)}` : ''}${shown ? `\n  ${shown}` : ''}`;
}

async function baseInfo(server: TestServer, receiver: Receiver, v: Version): Promise<BaseInfo> {
  const base = server.fhir(v);
  const cs = (await call('GET', `${base}/metadata`)).body;
  const params = new Map<string, { name: string; type: string }[]>();
  for (const r of cs.rest[0].resource) params.set(r.type, (r.searchParam ?? []).map((p: any) => ({ name: p.name, type: p.type })));
  const created = async (path: string, body: unknown) => {
    const res = await call('POST', `${base}/${path}`, body);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.id as string;
  };
  const patientId = await created('Patient', { resourceType: 'Patient', identifier: [{ system: 'urn:fuzz', value: 'seed' }], name: [{ family: 'Seed' }], birthDate: '1970-01-01' });
  const observationId = await created('Observation', {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
    subject: { reference: `Patient/${patientId}` },
    valueQuantity: { value: 72, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
  });
  const wsSubscriptionId = await created('Subscription', subscriptionResource(v, { topic: TOPIC, channel: 'websocket', filters: ['Patient?identifier=urn:fuzz|seed'] }));
  const hookSubscriptionId = await created('Subscription', subscriptionResource(v, { topic: TOPIC, endpoint: receiver.url, filters: ['Patient?identifier=urn:fuzz|seed'] }));
  return { version: v, types: [...params.keys()], params, patientId, observationId, wsSubscriptionId, hookSubscriptionId };
}

let probe = 0;

/** A fresh websocket and rest-hook subscription each receive the event of a matching create. */
async function assertDelivering(server: TestServer, receiver: Receiver, v: Version): Promise<void> {
  const base = server.fhir(v);
  const value = `probe-${++probe}-${Date.now()}`;
  const filters = [`Patient?identifier=urn:fuzz-probe|${value}`];
  const ws = await call('POST', `${base}/Subscription`, subscriptionResource(v, { topic: TOPIC, channel: 'websocket', filters }));
  assert.equal(ws.status, 201, `${v}: websocket subscription after fuzzing: ${ws.text}`);
  const hook = await call('POST', `${base}/Subscription`, subscriptionResource(v, { topic: TOPIC, endpoint: `${receiver.url}/${value}`, filters }));
  assert.equal(hook.status, 201, `${v}: rest-hook subscription after fuzzing: ${hook.text}`);
  const token = await call('GET', `${base}/Subscription/${ws.body.id}/$get-ws-binding-token`);
  assert.equal(token.status, 200, token.text);
  const client = await connectWs(`${server.url.replace('http', 'ws')}/ws`);
  try {
    client.send(`bind-with-token ${token.body.parameter.find((p: any) => p.name === 'token').valueString}`);
    await client.next((f) => f?.resourceType === 'Bundle' && readNotification(f).type === 'handshake');
    const created = await call('POST', `${base}/Patient`, { resourceType: 'Patient', identifier: [{ system: 'urn:fuzz-probe', value }] });
    assert.equal(created.status, 201, created.text);
    const focus = `Patient/${created.body.id}`;
    const isEvent = (b: any) => b?.resourceType === 'Bundle' && readNotification(b).type === 'event-notification' && readNotification(b).events.some((e) => e.focus?.endsWith(focus));
    await client.next(isEvent);
    await receiver.waitFor((got) => got.some((r) => r.path.endsWith(`/${value}`) && isEvent(r.body)));
  } finally {
    await client.close();
  }
}
