/**
 * docs/examples.md stays true: its topic and Subscription JSON (the `cat > file <<'EOF'` blocks)
 * are sent as written to a real Herald, with the endpoint pointed at a real receiver, and what the
 * examples show happens: 201 for the topic, 422 naming the element for the misspelt one, the
 * handshake, event #1 and `$status`, then error, retries and recovery with nothing skipped.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { call, startServer, type TestServer } from '../helpers/server.ts';
import { until } from '../helpers/until.ts';

const DOC = readFileSync(new URL('../../docs/examples.md', import.meta.url), 'utf8');

/** The JSON a `cat > name <<'EOF'` block of the document writes. */
function heredoc(name: string): any {
  const m = new RegExp(`cat > ${name.replace('.', '\\.')} <<'EOF'\\n([\\s\\S]*?)\\nEOF`).exec(DOC);
  assert.ok(m, `docs/examples.md writes ${name}`);
  return JSON.parse(m[1]!);
}

/** How long the server and the receiver get to do what an example shows. */
const WAIT = { timeoutMs: 60_000, intervalMs: 50 };

/** A notification's R4 Parameters status as name → value, and its events as `#n focus`. */
function read(body: any) {
  const status = body.entry[0].resource;
  const p = (name: string) => status.parameter.find((x: any) => x.name === name);
  const events = status.parameter
    .filter((x: any) => x.name === 'notification-event')
    .map((e: any) => `#${e.part.find((x: any) => x.name === 'event-number').valueString} ${e.part.find((x: any) => x.name === 'focus')?.valueReference.reference ?? ''}`);
  return { type: p('type').valueCode, status: p('status')?.valueCode, events, count: p('events-since-subscription-start')?.valueString, error: p('error')?.valueCodeableConcept };
}

describe('docs/examples.md, replayed', () => {
  let server: TestServer;
  let receiver: Receiver;
  before(async () => {
    // Short retries so that recovery comes soon; the examples use the defaults.
    server = await startServer({ HERALD_RETRY_BASE_MS: '100', HERALD_RETRY_CAP_MS: '500' });
    receiver = await startReceiver();
  });
  after(async () => {
    await server.close();
    await receiver.close();
  });

  it('1, 2 and 3: the topic, the subscription, an event, $status, the endpoint down and back', { timeout: 180_000 }, async () => {
    const base = server.fhir('R4');
    const topic = heredoc('topic.json');
    assert.equal((await call('PUT', `${base}/Basic/observation-final`, topic)).status, 201);
    const broken = JSON.parse(JSON.stringify(topic).replace('"status=final"', '"statuz=final"'));
    delete broken.id;
    const refused = await call('POST', `${base}/Basic`, broken);
    assert.equal(refused.status, 422);
    assert.deepEqual(refused.body.issue[0].expression, ['resourceTrigger[0].queryCriteria.current']);
    assert.match(refused.body.issue[0].diagnostics, /Unknown search parameter 'statuz' for Observation/);

    const sub = heredoc('sub.json');
    assert.equal(sub.channel.endpoint, 'http://127.0.0.1:9000/hook');
    sub.channel.endpoint = `${receiver.url}/hook`;
    const created = await call('POST', `${base}/Subscription`, sub);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.status, 'requested');
    const id = created.body.id as string;
    const notes = () => receiver.received.map((r) => read(r.body));
    await until('the handshake', () => notes().some((n) => n.type === 'handshake'), WAIT);
    await until('active after the handshake', async () => (await call('GET', `${base}/Subscription/${id}`)).body.status === 'active', WAIT);

    await call('PUT', `${base}/Patient/p1`, { resourceType: 'Patient', id: 'p1' });
    const obs = await call('POST', `${base}/Observation`, { resourceType: 'Observation', status: 'preliminary', code: { text: 'potassium' }, subject: { reference: 'Patient/p1' } });
    await call('PUT', `${base}/Observation/${obs.body.id}`, { ...obs.body, status: 'final' });
    const first = await until('event #1', () => notes().find((n) => n.type === 'event-notification'), WAIT);
    assert.deepEqual(first.events, [`#1 ${base}/Observation/${obs.body.id}`], 'the preliminary create did not match; the update to final did');
    const status = async () => read((await call('GET', `${base}/Subscription/${id}/$status`)).body);
    assert.deepEqual(await status(), { type: 'query-status', status: 'active', events: [], count: '1', error: undefined });

    receiver.respond(503);
    const more: string[] = [];
    for (const text of ['sodium', 'chloride']) {
      const r = await call('POST', `${base}/Observation`, { resourceType: 'Observation', status: 'final', code: { text }, subject: { reference: 'Patient/p1' } });
      assert.equal(r.status, 201, 'writes succeed while the endpoint is down');
      more.push(r.body.id);
    }
    const failing = await until(
      '$status error',
      async () => {
        const s = await status();
        return s.status === 'error' ? s : undefined;
      },
      WAIT,
    );
    assert.equal(failing.count, '3');
    assert.equal(failing.error.coding[0].code, 'no-response');

    receiver.respond(200);
    await until('events #2 and #3 after recovery', () => notes().filter((n) => n.type === 'event-notification').length >= 3, WAIT);
    assert.deepEqual(
      notes().filter((n) => n.type === 'event-notification').flatMap((n) => n.events),
      [`#1 ${base}/Observation/${obs.body.id}`, ...more.map((o, i) => `#${i + 2} ${base}/Observation/${o}`)],
      'in order, nothing skipped',
    );
    await until('$status active again', async () => (await status()).status === 'active', WAIT);
  });
});
