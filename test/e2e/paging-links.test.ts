import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { call, useServer, VERSIONS } from '../helpers/server.ts';

const linkOf = (bundle: any, relation: string): string | undefined => bundle.link.find((l: any) => l.relation === relation)?.url;

/** Searchsets and histories carry self and first besides next/previous (FHIR http.html#paging). */
describe('paging links', () => {
  const server = useServer();

  for (const v of VERSIONS) {
    it(`on /fhir/${v}: every searchset page links itself, the first page, and its neighbours`, async () => {
      const base = server.fhir(v);
      const family = `Pager${v}`;
      for (let i = 0; i < 5; i++) assert.equal((await call('POST', `${base}/Patient`, { resourceType: 'Patient', name: [{ family }] })).status, 201);
      const first = (await call('GET', `${base}/Patient?family=${family}&_count=2`)).body;
      assert.equal(linkOf(first, 'self'), `${base}/Patient?family=${family}&_count=2`);
      assert.equal(linkOf(first, 'first'), `${base}/Patient?family=${family}&_count=2`);
      assert.equal(linkOf(first, 'previous'), undefined);
      const second = (await call('GET', linkOf(first, 'next')!)).body;
      assert.equal(linkOf(second, 'self'), linkOf(first, 'next'), 'self is the page as asked for, its cursor included');
      assert.equal(linkOf(second, 'first'), linkOf(first, 'first'));
      assert.ok(linkOf(second, 'previous'));
      // Following self gives the same page again; following first gives the first page.
      const again = (await call('GET', linkOf(second, 'self')!)).body;
      assert.deepEqual(again.entry.map((e: any) => e.resource.id), second.entry.map((e: any) => e.resource.id));
      const back = (await call('GET', linkOf(second, 'first')!)).body;
      assert.deepEqual(back.entry.map((e: any) => e.resource.id), first.entry.map((e: any) => e.resource.id));
    });

    it(`on /fhir/${v}: every history page links itself and the first (newest) page`, async () => {
      const base = server.fhir(v);
      const created = await call('POST', `${base}/Patient`, { resourceType: 'Patient', active: true });
      const id = created.body.id as string;
      for (let i = 0; i < 3; i++) await call('PUT', `${base}/Patient/${id}`, { resourceType: 'Patient', id, active: i % 2 === 0 });
      const first = (await call('GET', `${base}/Patient/${id}/_history?_count=2`)).body;
      assert.equal(linkOf(first, 'self'), `${base}/Patient/${id}/_history?_count=2`);
      assert.equal(linkOf(first, 'first'), `${base}/Patient/${id}/_history?_count=2`);
      const second = (await call('GET', linkOf(first, 'next')!)).body;
      assert.equal(linkOf(second, 'self'), linkOf(first, 'next'));
      assert.equal(linkOf(second, 'first'), linkOf(first, 'first'));
      const back = (await call('GET', linkOf(second, 'first')!)).body;
      assert.deepEqual(back.entry.map((e: any) => e.response.etag), first.entry.map((e: any) => e.response.etag));
    });
  }
});
