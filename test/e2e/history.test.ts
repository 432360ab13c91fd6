import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { call, useServer, VERSIONS } from '../helpers/server.ts';

describe('history', () => {
  const server = useServer();

  for (const v of VERSIONS) {
    describe(`on /fhir/${v}`, () => {
      const base = () => server.fhir(v);

      it('instance history lists every version newest first with request and response', async () => {
        const id = (await call('POST', `${base()}/Observation`, obs('a'))).body.id;
        await call('PUT', `${base()}/Observation/${id}`, { ...obs('b'), id });
        await call('DELETE', `${base()}/Observation/${id}`);
        const res = await call('GET', `${base()}/Observation/${id}/_history`);
        assert.equal(res.status, 200);
        assert.equal(res.body.resourceType, 'Bundle');
        assert.equal(res.body.type, 'history');
        assert.equal(res.body.total, 3);
        const [del, upd, cre] = res.body.entry;
        assert.deepEqual(del.request, { method: 'DELETE', url: `Observation/${id}` });
        assert.equal(del.resource, undefined);
        assert.equal(del.response.etag, 'W/"3"');
        assert.deepEqual(upd.request, { method: 'PUT', url: `Observation/${id}` });
        assert.equal(upd.resource.meta.versionId, '2');
        assert.deepEqual(cre.request, { method: 'POST', url: 'Observation' });
        assert.equal(cre.response.status, '201 Created');
        for (const e of res.body.entry) assert.equal(e.fullUrl, `${base()}/Observation/${id}`);
      });

      it('type and system history page with _count and a next link that is stable under new writes', async () => {
        for (let i = 0; i < 5; i++) await call('POST', `${base()}/Device`, { resourceType: 'Device', serialNumber: `s${i}` });
        const first = await call('GET', `${base()}/Device/_history?_count=2`);
        assert.equal(first.body.entry.length, 2);
        assert.equal(first.body.total, 5);
        const seen = first.body.entry.map((e: any) => e.resource.serialNumber);
        await call('POST', `${base()}/Device`, { resourceType: 'Device', serialNumber: 'late' });
        let next = first.body.link.find((l: any) => l.relation === 'next')?.url;
        while (next) {
          const page = await call('GET', next);
          seen.push(...page.body.entry.map((e: any) => e.resource.serialNumber));
          next = page.body.link.find((l: any) => l.relation === 'next')?.url;
        }
        assert.deepEqual(seen, ['s4', 's3', 's2', 's1', 's0']);
        const system = await call('GET', `${base()}/_history?_count=1000`);
        const types = new Set(system.body.entry.map((e: any) => e.request.url.split('/')[0]));
        assert.ok(types.has('Device') && types.has('Observation'));
      });

      it('filters by _since', async () => {
        await call('POST', `${base()}/Location`, { resourceType: 'Location', name: 'before' });
        await new Promise((r) => setTimeout(r, 20));
        const since = new Date().toISOString();
        await call('POST', `${base()}/Location`, { resourceType: 'Location', name: 'after' });
        const res = await call('GET', `${base()}/Location/_history?_since=${encodeURIComponent(since)}`);
        assert.deepEqual(res.body.entry.map((e: any) => e.resource.name), ['after']);
      });

      it('rejects a malformed _since or _count with a 400 naming the parameter', async () => {
        const badSince = await call('GET', `${base()}/_history?_since=yesterday`);
        assert.equal(badSince.status, 400);
        assert.deepEqual(badSince.body.issue[0].expression, ['_since']);
        const badCount = await call('GET', `${base()}/_history?_count=-1`);
        assert.equal(badCount.status, 400);
        assert.deepEqual(badCount.body.issue[0].expression, ['_count']);
      });

      it('has no history for a resource that never existed (404), refuses _at and _list (400 not-supported), gives the total alone for _count=0 and clamps a huge _count', async () => {
        assert.equal((await call('GET', `${base()}/Location/never-was/_history`)).status, 404);
        const id = (await call('POST', `${base()}/Location`, { resourceType: 'Location', name: 'gone' })).body.id;
        await call('DELETE', `${base()}/Location/${id}`);
        const kept = await call('GET', `${base()}/Location/${id}/_history`);
        assert.equal(kept.status, 200, 'a deleted resource keeps its history');
        assert.equal(kept.body.total, 2);
        for (const name of ['_at', '_list']) {
          const res = await call('GET', `${base()}/_history?${name}=2026-01-01`);
          assert.equal(res.status, 400, name);
          assert.equal(res.body.issue[0].code, 'not-supported', name);
          assert.deepEqual(res.body.issue[0].expression, [name]);
        }
        const zero = await call('GET', `${base()}/Location/${id}/_history?_count=0`);
        assert.equal(zero.status, 200);
        assert.equal(zero.body.total, 2);
        assert.equal(zero.body.entry, undefined, 'no entries, and no empty array');
        assert.equal(zero.body.link.find((l: any) => l.relation === 'next'), undefined);
        assert.equal((await call('GET', `${base()}/_history?_count=99999999999`)).status, 200);
        assert.equal((await call('GET', `${base()}/Location?_count=99999999999`)).status, 200);
      });
    });
  }
});

function obs(code: string) {
  return { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code }] } };
}
