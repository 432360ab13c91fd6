import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newResourceId } from './ids.ts';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

describe('newResourceId (UUID version 7)', () => {
  it('is a version 7, variant 10 UUID and a valid FHIR id', () => {
    const id = newResourceId(Date.now());
    assert.match(id, V7);
    assert.match(id, FHIR_ID);
  });

  it('carries the creation time in its first 48 bits', () => {
    const at = Date.UTC(2030, 0, 2, 3, 4, 5, 678);
    const id = newResourceId(at);
    assert.equal(parseInt(id.replace(/-/g, '').slice(0, 12), 16), at);
  });

  it('strictly increases, also for many ids in one millisecond and when the clock steps back', () => {
    const t = Date.UTC(2031, 0, 1);
    const ids = [
      ...Array.from({ length: 5000 }, () => newResourceId(t)), // more than the 4096 the counter holds
      newResourceId(t - 1000), // the clock went back a second
      newResourceId(t + 10_000),
    ];
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1]! < ids[i]!, `${ids[i - 1]} < ${ids[i]} (#${i})`);
    assert.equal(new Set(ids).size, ids.length);
  });
});
